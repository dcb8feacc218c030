"""Receive cost of the ``ros2`` live source against a bare Zenoh subscriber, on the same bytes.

A publisher subprocess puts ``--messages`` samples of one recorded message of the sample drive
(a CAN frame, 40 B of CDR, and a lidar sweep, 66 kB) as fast as Zenoh takes them, with
rmw_zenoh's key and attachment, to this process over loopback. This process receives them
either with a bare ``eclipse-zenoh`` subscriber (a callback taking the payload's bytes: the
least any consumer does) or with :class:`~fusionrt.plugins.ros2.source.Ros2Source` into a
``RecordInbox`` (key resolved, attachment checked, sequence tracked, record put), and reports
the CPU time of the receiving process per message (all its threads, Zenoh's included: what a
message costs the machine) and the wall time from the first to the last message. Best of
``--repeat`` runs; JSON to ``benchmarks/results/ros2_receive_bench.json``.

    python benchmarks/ros2_receive_bench.py [--messages 20000] [--repeat 3] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import zenoh
from machine import cpu_name, package_version

from fusionrt.plugins.ros2.source import Ros2Source
from fusionrt.plugins.sources.rosbag import RosbagSource
from fusionrt.runtime.live import RecordInbox

ROOT = Path(__file__).resolve().parents[1]
BAG = ROOT / "examples" / "drives" / "sample" / "bag"
KINDS = {"can": "/vehicle/can0", "lidar": "/sensors/lidar_top/points"}


def _config(listen: list[str], connect: list[str]) -> zenoh.Config:
    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("listen/endpoints", json.dumps(listen))
    config.insert_json5("connect/endpoints", json.dumps(connect))
    config.insert_json5("scouting/multicast/enabled", "false")
    return config


def publish(endpoint: str, key: str, payload_file: str, count: int) -> None:
    """The publisher subprocess: wait for a subscriber, put ``count`` samples, linger."""
    payload = Path(payload_file).read_bytes()
    session = zenoh.open(_config([], [endpoint]))
    publisher = session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
    deadline = time.monotonic() + 30
    while not publisher.matching_status and time.monotonic() < deadline:
        time.sleep(0.01)
    gid = bytes(range(16))
    for sequence in range(1, count + 1):
        publisher.put(payload, attachment=struct.pack("<qqB16s", sequence, time.time_ns(), 16, gid))
    time.sleep(2.0)  # let the transport flush before the session closes
    session.close()


def _free_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp/127.0.0.1:{sock.getsockname()[1]}"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Clock:
    """First and last arrival of a run, and the CPU time at the first."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.first_s: float | None = None
        self.last_s = 0.0
        self.done = threading.Event()

    def tick(self) -> None:
        now = time.perf_counter()
        if self.first_s is None:
            self.first_s = now
        self.seen += 1
        self.last_s = now
        if self.seen >= self.count:
            self.done.set()


def run_once(receiver: str, topic: str, key: str, payload_file: str, count: int) -> dict[str, Any]:
    endpoint = _free_endpoint()
    clock = _Clock(count)
    if receiver == "bare":
        session = zenoh.open(_config([endpoint], []))

        def on_sample(sample: zenoh.Sample) -> None:
            sample.payload.to_bytes()
            clock.tick()

        session.declare_subscriber(key, on_sample)
        close = session.close
    else:

        class CountingInbox(RecordInbox):
            def put(self, record: Any, arrival_ns: int | None = None) -> None:
                super().put(record, arrival_ns)
                clock.tick()

        source = Ros2Source([topic], listen=[endpoint], receive_queue=count)
        inbox = CountingInbox()  # the default 8 per topic: memory is reused as in a run
        source.start(inbox)
        close = source.close
    cpu_before = _cpu_s()
    publisher = subprocess.Popen(
        [sys.executable, __file__, "--publish", endpoint, key, payload_file, str(count)]
    )
    received = clock.done.wait(timeout=300)
    cpu_s = _cpu_s() - cpu_before
    publisher.wait(timeout=60)
    close()
    if not received:
        raise RuntimeError(f"{receiver}: {clock.seen} of {count} messages arrived")
    return {
        "cpu_us_per_message": round(cpu_s / count * 1e6, 2),
        "wall_s": round(clock.last_s - (clock.first_s or clock.last_s), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/ros2_receive_bench.json"
    )
    parser.add_argument("--publish", nargs=4, metavar=("ENDPOINT", "KEY", "PAYLOAD", "COUNT"))
    args = parser.parse_args()
    if args.publish:
        endpoint, key, payload_file, count = args.publish
        publish(endpoint, key, payload_file, int(count))
        return

    from fusionrt.plugins.ros_types import typestore

    results: dict[str, Any] = {}
    with RosbagSource(BAG) as bag:
        first = {}
        for record in bag.records():
            first.setdefault(record.topic, record)
    for kind, topic in KINDS.items():
        record = first[topic]
        dds = record.msgtype.replace("/msg/", "::msg::dds_::") + "_"
        key = f"0{topic}/{dds}/{typestore().hash_rihs01(record.msgtype)}"
        payload_file = ROOT / "out" / f"ros2_bench_{kind}.cdr"
        payload_file.parent.mkdir(exist_ok=True)
        payload_file.write_bytes(bytes(record.data))
        count = args.messages if kind == "can" else max(1, args.messages // 10)
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "fusionrt": []}
        for _ in range(args.repeat):
            for receiver, measured in runs.items():
                measured.append(run_once(receiver, topic, key, str(payload_file), count))
        best = {r: min(v, key=lambda x: x["cpu_us_per_message"]) for r, v in runs.items()}
        results[kind] = {
            "payload_bytes": len(record.data),
            "messages": count,
            "bare": best["bare"],
            "fusionrt": best["fusionrt"],
            "cpu_ratio": round(
                best["fusionrt"]["cpu_us_per_message"] / best["bare"]["cpu_us_per_message"], 3
            ),
            "runs": runs,
        }
        print(
            f"{kind:6s} {len(record.data):6d} B  bare {best['bare']['cpu_us_per_message']:8.1f} "
            f"µs/msg  fusionrt {best['fusionrt']['cpu_us_per_message']:8.1f} µs/msg  "
            f"ratio {results[kind]['cpu_ratio']:.2f}"
        )
    report = {
        "benchmark": "ros2_receive_bench",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "eclipse-zenoh": package_version("eclipse-zenoh"),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),  # 2 shared cores
        },
        "command": "python benchmarks/ros2_receive_bench.py " + " ".join(sys.argv[1:]),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
