"""Synthetic VLP-16 streams for the Velodyne tests: packets built to the manual's layout, the
points the manual says they hold, a sender over UDP on 127.0.0.1, and a ``.pcap`` of them.

The expected points follow the VLP-16 manual, not velodyne-decoder: each return's azimuth is
interpolated between its block's and the next block's by its firing time (laser ``k`` of
sequence ``s`` fires ``s·55.296 + k·2.304`` µs into the 110.592 µs block), its elevation and
vertical offset are its laser's, and x, y, z are in the ROS frame velodyne-decoder uses
(x forward, y left, z up: the manual's Y and −X).
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from fusionrt.plugins.sources import velodyne_packet as wire

BLOCK_US = 2 * wire.VLP16_SEQUENCE_US  # 110.592
PACKET_US = wire.BLOCKS_PER_PACKET * BLOCK_US  # 1327.104
HOUR_NS = 3600 * 10**9


@dataclass(frozen=True)
class Packet:
    """One synthetic packet: its bytes, when the lidar fired its first return (ns since the
    epoch, on the lidar's clock) and the points it holds (one row per return with a distance)."""

    data: bytes
    fired_ns: int
    points: np.ndarray | None  # x, y, z, intensity (0…1), laser, fired_ns


POINT = np.dtype(
    [("x", "f8"), ("y", "f8"), ("z", "f8"), ("intensity", "f8"), ("laser", "i4"), ("t", "i8")]
)


def vlp16_stream(
    count: int,
    start_ns: int,
    *,
    rpm: float = 600.0,
    seed: int = 0,
    no_return_every: int = 0,
    with_points: bool = True,
) -> list[Packet]:
    """``count`` consecutive packets of a VLP-16 spinning at ``rpm`` whose first firing is at
    ``start_ns``; distances 1-60 m and reflectivities drawn from ``seed``; every
    ``no_return_every``-th return (if > 0) has no return (distance 0); the expected points
    are computed ``with_points`` only (slow)."""
    rng = np.random.default_rng(seed)
    units_per_us = rpm / 60 * 36000 / 1e6  # azimuth hundredths of a degree per µs
    packets = []
    for index in range(count):
        fired_ns = start_ns + round(index * PACKET_US * 1000)
        first_block_us = index * PACKET_US
        azimuths = [
            round((first_block_us + b * BLOCK_US) * units_per_us) % 36000
            for b in range(wire.BLOCKS_PER_PACKET + 1)
        ]
        distances = rng.integers(500, 30000, (wire.BLOCKS_PER_PACKET, wire.RETURNS_PER_BLOCK))
        if no_return_every:
            flat = distances.reshape(-1)
            flat[(index * flat.size) % no_return_every :: no_return_every] = 0
        reflectivity = rng.integers(0, 256, distances.shape)
        stamp_us = (fired_ns // 1000) % (HOUR_NS // 1000)
        data = wire.build_packet(azimuths[:-1], distances.tolist(), reflectivity.tolist(), stamp_us)
        points = _points(azimuths, distances, reflectivity, fired_ns) if with_points else None
        packets.append(Packet(data, fired_ns, points))
    return packets


def _points(
    azimuths: list[int], distances: np.ndarray, reflectivity: np.ndarray, fired_ns: int
) -> np.ndarray:
    rows = []
    for block in range(wire.BLOCKS_PER_PACKET):
        gap = (azimuths[block + 1] - azimuths[block]) % 36000
        for channel in range(wire.RETURNS_PER_BLOCK):
            if distances[block, channel] == 0:
                continue
            sequence, laser = divmod(channel, 16)
            offset_us = sequence * wire.VLP16_SEQUENCE_US + laser * wire.VLP16_FIRING_US
            azimuth = math.radians((azimuths[block] + gap * offset_us / BLOCK_US) / 100)
            elevation = math.radians(wire.VLP16_ELEVATION_DEG[laser])
            r = distances[block, channel] * wire.VLP16_DISTANCE_UNIT_M
            rows.append(
                (
                    r * math.cos(elevation) * math.cos(azimuth),
                    -r * math.cos(elevation) * math.sin(azimuth),
                    r * math.sin(elevation) + wire.VLP16_VERTICAL_CORRECTION_M[laser],
                    reflectivity[block, channel] / 255,
                    laser,
                    fired_ns + round((block * BLOCK_US + offset_us) * 1000),
                )
            )
    return np.array(rows, POINT)


def expected_points(packets: list[Packet]) -> np.ndarray:
    """The points of ``packets`` in order."""
    return np.concatenate([p.points for p in packets if p.points is not None])


#: Rank of each laser's elevation: velodyne-decoder's ``ring`` (0 = lowest beam).
RING_OF_LASER = np.argsort(np.argsort(wire.VLP16_ELEVATION_DEG))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sender:
    """A UDP socket on ``address`` (a loopback address) sending to 127.0.0.1:``port``; records
    when each packet left (``sent_ns``: the host's clock, as the receiver's arrival)."""

    def __init__(self, port: int, address: str = "127.0.0.1") -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((address, 0))
        self.address = address
        self.port = port
        self.sent_ns: list[int] = []

    def send(self, data: bytes) -> None:
        self.sent_ns.append(time.time_ns())
        self.socket.sendto(data, ("127.0.0.1", self.port))

    def send_paced(self, packets: list[Packet]) -> None:
        """Send each packet when it fired (its ``fired_ns`` on the host's clock), in bursts of
        at most 10 ms: the lidar's clock then agrees with the host's."""
        for packet in packets:
            wait_s = (packet.fired_ns - time.time_ns()) / 1e9
            if wait_s > 0.01:
                time.sleep(wait_s)
            self.send(packet.data)

    def close(self) -> None:
        self.socket.close()


def write_pcap(
    path: Path,
    frames: list[tuple[int, bytes, str, int]],
    *,
    nano: bool = False,
) -> Path:
    """A libpcap file (dpkt's writer, Ethernet link) of UDP datagrams ``(capture_ns, payload,
    sender, destination port)`` sent to 192.0.2.1 (a documentation address: nothing is sent)."""
    import dpkt

    with path.open("wb") as stream:
        writer = dpkt.pcap.Writer(stream, snaplen=65535, nano=nano)
        for capture_ns, payload, sender, port in frames:
            udp = dpkt.udp.UDP(sport=2368, dport=port, data=payload)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(
                src=socket.inet_aton(sender), dst=socket.inet_aton("192.0.2.1"), p=17, data=udp
            )
            ip.len = len(ip)
            frame = dpkt.ethernet.Ethernet(
                src=b"\x60\x76\x88\x00\x00\x01", dst=b"\xff" * 6, type=0x0800, data=ip
            )
            # a Decimal keeps every digit (a float of today's epoch in seconds does not)
            writer.writepkt(bytes(frame), ts=Decimal(capture_ns) / 10**9)
    return path
