"""The ``velodyne_pcap`` replay source: a ``.pcap`` capture of a Velodyne lidar's UDP packets
(Wireshark, tcpdump, VeloView), replayed as the ``velodyne`` live source would have received it.

Packets are read with dpkt (the libpcap file format: either byte order, microsecond or
nanosecond stamps; Ethernet, Linux cooked v1/v2 and raw IP link types; IPv4 and IPv6). The UDP
datagrams sent to the data port (2368) go through the same
:class:`~fusionrt.plugins.sources.velodyne_revolutions.RevolutionAssembler` as the live
source's, with each packet's capture time as its arrival time, so a capture yields the records
the live source gave when the same packets arrived at the same times — and, where the lidar's
clock stamps them, the same records whenever they are replayed. The revolution still open at
the end of the capture is yielded too (it is incomplete).

The topic is ``velodyne`` (the ``topic`` argument changes it); a record's ``path`` is the
capture's and its ``offset`` the byte offset of the revolution's last packet in it. Datagrams
to other ports (position packets on 8308) and frames that are not UDP are skipped; a warning
names the ports seen when none went to the data port. What the assembler drops is a
:class:`~fusionrt.plugins.sources.BadRecord` with the same reason as live (``bad_size``,
``unexpected_sender``, ``malformed``, ``wrong_model``); a frame dpkt cannot
parse is ``corrupt_record``, a file cut inside a record header ``truncated``; ``offset`` is the
byte offset of the packet's record in the file.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from fusionrt.plugins.sensors.pointcloud2 import MSGTYPE as POINTCLOUD2
from fusionrt.plugins.sources import (
    MAX_BAD_RECORDS,
    BadRecord,
    RecordedSource,
    TopicInfo,
)
from fusionrt.plugins.sources import velodyne_packet as wire
from fusionrt.plugins.sources.velodyne_revolutions import (
    DEFAULT_MAX_CLOCK_OFFSET_MS,
    Revolution,
    RevolutionAssembler,
)
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.messages import RawRecord

__all__ = ["DEFAULT_TOPIC", "PCAP_MAGICS", "VelodynePcapSource"]

logger = logging.getLogger("fusionrt.velodyne")

DEFAULT_TOPIC = "velodyne"
#: The libpcap file magic numbers (microsecond and nanosecond stamps), as the first four bytes
#: read little-endian, in a file of either byte order.
PCAP_MAGICS = frozenset({0xA1B2C3D4, 0xA1B23C4D, 0xD4C3B2A1, 0x4D3CB2A1})
_FILE_HEADER = 24
_RECORD_HEADER = 16
#: Link types read (libpcap's LINKTYPE_ numbers): Ethernet, raw IP (101, and 12 as some
#: systems write it), Linux cooked capture v1 and v2 (``tcpdump -i any``).
_ETHERNET, _RAW_IP, _LINUX_SLL, _LINUX_SLL2 = 1, (101, 12), 113, 276

# (the payload of a UDP datagram, its sender's address, its destination port)
_Datagram = tuple[bytes, str, int]


def _dpkt() -> Any:
    try:
        import dpkt  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "the velodyne_pcap source needs dpkt: pip install 'fusionrt[velodyne]'"
        ) from None
    return dpkt


def _capture_ns(stamp: float | Decimal) -> int:
    """dpkt's capture time (float seconds; Decimal in a nanosecond file) as int ns."""
    if isinstance(stamp, Decimal):
        return int(stamp * 10**9)
    return round(stamp * 1e6) * 1000  # microseconds: exact through a float at today's epoch


class VelodynePcapSource(RecordedSource):
    """Revolutions of a ``.pcap`` of Velodyne packets (see the module docstring).

    ``path``: the capture. ``topic`` (default ``velodyne``), ``port`` (the data port, 2368),
    ``model``, ``sender``, ``max_clock_offset_ms`` and ``frame_id`` as the ``velodyne`` live
    source's options; and those of :class:`~fusionrt.plugins.sources.RecordedSource`.
    """

    name = "velodyne_pcap"
    opens = "a .pcap capture of Velodyne lidar UDP packets"

    @classmethod
    def can_open(cls, path: Path) -> bool:
        """Whether ``path`` is a ``.pcap`` file starting with a libpcap magic number."""
        path = Path(path)
        if path.suffix.lower() != ".pcap" or not path.is_file():
            return False
        try:
            with path.open("rb") as stream:
                head = stream.read(4)
        except OSError:
            return False
        return len(head) == 4 and int.from_bytes(head, "little") in PCAP_MAGICS

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        topic: str = DEFAULT_TOPIC,
        port: int = wire.DATA_PORT,
        model: str | None = None,
        sender: str | None = None,
        max_clock_offset_ms: float = DEFAULT_MAX_CLOCK_OFFSET_MS,
        frame_id: str = "velodyne",
        topics: Collection[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        on_bad_record: Callable[[BadRecord], None] | None = None,
        max_bad_records: int = MAX_BAD_RECORDS,
    ) -> None:
        super().__init__(
            topics=topics,
            start_ns=start_ns,
            stop_ns=stop_ns,
            on_bad_record=on_bad_record,
            max_bad_records=max_bad_records,
        )
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError("no .pcap file at this path", path=str(self.path))
        self.topic = topic
        self.port = port
        self.frame_id = frame_id
        self._dpkt = _dpkt()
        self._link = self._link_type()
        self._new_assembler: Callable[[], RevolutionAssembler] = functools.partial(
            RevolutionAssembler,
            model=model,
            sender=sender,
            max_clock_offset_ns=round(max_clock_offset_ms * 1e6),
            name=f"velodyne {self.path.name}",
        )
        self._new_assembler()  # a bad model is an error now, not at the first record
        self._span: tuple[int, int] | None = None
        self._check_topic_filter([topic])

    def _link_type(self) -> int:
        """The file's link type; ConfigError for a file that is not a libpcap file of a link
        type read here."""
        try:
            with self.path.open("rb") as stream:
                link = int(self._dpkt.pcap.Reader(stream).datalink())
        except (OSError, ValueError, self._dpkt.UnpackError) as exc:
            raise ConfigError(f"not a readable libpcap file: {exc}", path=str(self.path)) from None
        if link not in (_ETHERNET, *_RAW_IP, _LINUX_SLL, _LINUX_SLL2):
            raise ConfigError(
                f"link type {link} is not read (Ethernet, raw IP, Linux cooked are)",
                path=str(self.path),
            )
        return link

    # -- what a recording says --------------------------------------------------------------

    def topics(self) -> dict[str, TopicInfo]:
        """The one topic (its count is unknown without decoding the capture)."""
        return {self.topic: TopicInfo(self.topic, POINTCLOUD2)}

    @property
    def first_stamp_ns(self) -> int | None:
        """The capture time of the file's first packet (a revolution is stamped at most a
        revolution later on arrival, or within ``max_clock_offset_ms`` of it by the lidar)."""
        span = self._capture_span()
        return None if span is None else span[0]

    @property
    def last_stamp_ns(self) -> int | None:
        """The capture time of the file's last packet (see :attr:`first_stamp_ns`)."""
        span = self._capture_span()
        return None if span is None else span[1]

    def _capture_span(self) -> tuple[int, int] | None:
        """The earliest and latest capture times (read once, on first use)."""
        if self._span is None:
            first = last = None
            for stamp, _, _ in self._pcap_records(report=False):
                first = stamp if first is None else min(first, stamp)
                last = stamp if last is None else max(last, stamp)
            if first is not None and last is not None:
                self._span = (first, last)
        return self._span

    # -- reading ----------------------------------------------------------------------------

    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        if not self.wants(self.topic):
            return
        assembler = self._new_assembler()
        other_ports: Counter[int] = Counter()
        data_packets = offset = 0
        for capture_ns, offset, frame in self._pcap_records(report=True):
            datagram = self._datagram(frame, offset, capture_ns)
            if datagram is None:
                continue
            payload, sender, port = datagram
            if port != self.port:
                other_ports[port] += 1
                continue
            data_packets += 1
            revolution = self._decode(assembler, payload, sender, capture_ns, offset)
            if revolution is not None and self.in_window(revolution.stamp_ns, start_ns, stop_ns):
                yield self._record(revolution, offset)
        last = assembler.finish()
        if (
            last is not None
            and offset is not None
            and self.in_window(last.stamp_ns, start_ns, stop_ns)
        ):
            yield self._record(last, offset)
        if not data_packets and other_ports:
            seen = ", ".join(f"{port} ({count})" for port, count in other_ports.most_common(5))
            logger.warning(
                "%s: no UDP packet to port %d (ports seen: %s)", self.path, self.port, seen
            )

    def _decode(
        self,
        assembler: RevolutionAssembler,
        payload: bytes,
        sender: str,
        capture_ns: int,
        offset: int,
    ) -> Revolution | None:
        """The revolution this packet completes, if any; a dropped packet is reported."""
        dropped = assembler.check(payload, sender)
        if dropped is None:
            return assembler.add(payload, capture_ns)
        reason, detail = dropped
        self._bad(reason, detail, offset, capture_ns)
        return None

    def _record(self, revolution: Revolution, offset: int) -> RawRecord:
        data = revolution.pointcloud2(self.frame_id)
        return RawRecord(self.topic, revolution.stamp_ns, data, POINTCLOUD2, str(self.path), offset)

    def _bad(self, reason: str, detail: str, offset: int, stamp_ns: int | None) -> None:
        self.bad.report(
            BadRecord(
                reason, detail, path=str(self.path), topic=self.topic, offset=offset,
                stamp_ns=stamp_ns,
            )
        )  # fmt: skip

    # -- the file ---------------------------------------------------------------------------

    def _pcap_records(self, *, report: bool) -> Iterator[tuple[int, int, bytes]]:
        """``(capture_ns, offset, frame)`` of every record; a file that cannot be read or is
        cut inside a record header is reported (when ``report``) and ends the reading."""
        dpkt = self._dpkt
        offset = _FILE_HEADER
        try:
            with self.path.open("rb") as stream:
                records = iter(dpkt.pcap.Reader(stream))
                while True:
                    try:
                        stamp, frame = next(records)
                    except StopIteration:
                        return
                    except dpkt.UnpackError:
                        if report:
                            detail = "the file ends inside a record header"
                            self._bad("truncated", detail, offset, None)
                        return
                    yield _capture_ns(stamp), offset, frame
                    offset += _RECORD_HEADER + len(frame)
        except (OSError, ValueError) as exc:  # the file changed or vanished since it was opened
            if report:
                self._bad("unreadable", f"cannot read: {exc}", offset, None)

    def _datagram(self, frame: bytes, offset: int, capture_ns: int) -> _Datagram | None:
        """The UDP payload, sender and destination port of a captured frame; ``None`` for a
        frame that is not UDP (skipped) or cannot be parsed (reported ``corrupt_record``)."""
        dpkt = self._dpkt
        try:
            if self._link == _ETHERNET:
                network = dpkt.ethernet.Ethernet(frame).data
            elif self._link == _LINUX_SLL:
                network = dpkt.sll.SLL(frame).data
            elif self._link == _LINUX_SLL2:
                network = dpkt.sll2.SLL2(frame).data
            else:  # raw IP: the version is the first nibble
                network = dpkt.ip6.IP6(frame) if frame[:1] >= b"\x60" else dpkt.ip.IP(frame)
        except (dpkt.UnpackError, IndexError) as exc:
            self._bad("corrupt_record", f"frame cannot be parsed: {exc}", offset, capture_ns)
            return None
        if isinstance(network, dpkt.ip.IP):
            sender = socket.inet_ntop(socket.AF_INET, network.src)
        elif isinstance(network, dpkt.ip6.IP6):
            sender = socket.inet_ntop(socket.AF_INET6, network.src)
        else:
            return None
        udp = network.data
        if not isinstance(udp, dpkt.udp.UDP):
            return None
        return bytes(udp.data), sender, int(udp.dport)
