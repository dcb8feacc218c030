"""Cost of the Velodyne sources per revolution against velodyne-decoder alone, on the same packets.

A synthetic VLP-16 stream at 600 rpm (single return: 754 packets/s, about 75 a revolution,
~29k points) built to the packet layout (``velodyne_packet.build_packet``) is decoded
``--revolutions`` revolutions at a time, round-robin, by:

* ``velodyne_decoder``: velodyne-decoder's ``StreamDecoder`` alone (structured points) — the
  least any consumer of these packets does;
* ``source``: what the ``velodyne`` and ``velodyne_pcap`` sources do per packet and revolution:
  the packet checks, the same decoder, the intensity scale and padding, and the PointCloud2 CDR
  of each revolution (``RevolutionAssembler`` + ``Revolution.pointcloud2``);

and, per revolution, ``checks`` (the packet checks alone), ``pointcloud2`` (encoding one
revolution again: its memory is warm, so this is less than a fresh revolution costs inside
``source``) and ``lidar_decode`` (the ``lidar`` sensor decoding the record: the consumer's side).
Times are per revolution; the socket's receive (one ``recvmsg``) is not included. JSON to
``benchmarks/results/velodyne_bench.json``.

    python benchmarks/velodyne_bench.py [--revolutions 10] [--repeat 30] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import velodyne_decoder as vd
from machine import cpu_name, package_version
from timing import time_interleaved

from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sensors.pointcloud2 import MSGTYPE
from fusionrt.plugins.sources import velodyne_packet as wire
from fusionrt.plugins.sources.velodyne_revolutions import RevolutionAssembler
from fusionrt.runtime.messages import RawRecord

ROOT = Path(__file__).resolve().parents[1]
PACKET_NS = 1_327_104  # 12 blocks of 110.592 µs
AZIMUTH_PER_BLOCK = 39.81  # hundredths of a degree at 600 rpm


def vlp16_packets(count: int, start_ns: int, seed: int = 0) -> list[tuple[int, bytes]]:
    """``(fired_ns, packet)`` of a VLP-16 at 600 rpm, distances 1-60 m, the clock at start_ns."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        fired_ns = start_ns + index * PACKET_NS
        azimuths = [round((index * 12 + b) * AZIMUTH_PER_BLOCK) % 36000 for b in range(12)]
        distances = rng.integers(500, 30000, (12, 32)).tolist()
        reflectivity = rng.integers(0, 256, (12, 32)).tolist()
        stamp_us = (fired_ns // 1000) % 3_600_000_000
        out.append((fired_ns, wire.build_packet(azimuths, distances, reflectivity, stamp_us)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--revolutions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/velodyne_bench.json")
    args = parser.parse_args(argv)

    packets = vlp16_packets(args.revolutions * 76 + 76, time.time_ns())
    model = vd.Config(model=vd.Model.VLP16)

    def decoder_alone() -> int:
        decoder, count = vd.StreamDecoder(model), 0
        for fired_ns, data in packets:
            count += decoder.decode(fired_ns * 1e-9, data, True) is not None
        return count

    def source() -> int:
        assembler = RevolutionAssembler(
            model="VLP-16", sender=None, max_clock_offset_ns=100_000_000, name="bench"
        )
        count = 0
        for fired_ns, data in packets:
            if assembler.check(data, "192.0.2.1") is None:
                revolution = assembler.add(data, fired_ns)
                if revolution is not None:
                    revolution.pointcloud2("velodyne")
                    count += 1
        return count

    revolutions = decoder_alone()
    if source() != revolutions:
        raise SystemExit("the source and the decoder cut the stream differently")
    sample = RevolutionAssembler(
        model="VLP-16", sender=None, max_clock_offset_ns=100_000_000, name="bench"
    )
    one = None
    for fired_ns, data in packets:
        sample.check(data, "192.0.2.1")
        one = sample.add(data, fired_ns) or one
    assert one is not None
    cdr = one.pointcloud2("velodyne")
    record = RawRecord("velodyne", one.stamp_ns, cdr, MSGTYPE)
    sensor = LidarSensor("lidar_top", "velodyne")
    checker = RevolutionAssembler(model="VLP-16", sender=None, max_clock_offset_ns=0, name="c")
    per_revolution = len(one.points) // (wire.BLOCKS_PER_PACKET * wire.RETURNS_PER_BLOCK)

    def checks() -> None:
        for _, data in packets[:per_revolution]:
            checker.check(data, "192.0.2.1")

    streams = time_interleaved({"velodyne_decoder": decoder_alone, "source": source}, args.repeat)
    parts = time_interleaved(
        {
            "checks": checks,
            "pointcloud2": lambda: one.pointcloud2("velodyne"),
            "lidar_decode": lambda: sensor.decode(record),
        },
        args.repeat * 3,
    )
    per_rev = {
        name: {key: round(value / revolutions, 4) for key, value in summary.items()}
        for name, summary in streams.items()
    }
    result: dict[str, Any] = {
        "benchmark": "velodyne_bench",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/velodyne_bench.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "velodyne_decoder": package_version("velodyne-decoder"),
            "numpy": np.__version__,
        },
        "stream": {
            "model": "VLP-16",
            "rpm": 600,
            "revolutions": revolutions,
            "packets_per_revolution": per_revolution,
            "points_per_revolution": len(one.points),
            "record_bytes": len(cdr),
        },
        "per_revolution_ms": {**per_rev, **parts},
        "source_over_decoder": round(
            per_rev["source"]["median_ms"] / per_rev["velodyne_decoder"]["median_ms"], 3
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["per_revolution_ms"], indent=2))
    print("source / velodyne-decoder alone:", result["source_over_decoder"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
