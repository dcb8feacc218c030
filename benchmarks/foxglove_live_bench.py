"""Foxglove live sink benchmark: what serving a run costs per frame, with one client and with none.

    python benchmarks/foxglove_live_bench.py [--rounds 3] [--max-frames N]

Runs the sample pipeline once with a sink that keeps every frame (``sink_bench.capture``); then,
``--rounds`` times and alternating, writes those frames back to back through a fresh
``foxglove`` sink on a free port of 127.0.0.1 with

* ``none``: no client connected (a frame nobody watches is not converted);
* ``one_client``: one Foxglove WebSocket client subscribed to every channel, in a process of its
  own (this script with ``--client URL``), reading everything.

Reports the per-frame ``write`` time (wall and CPU: what the pipeline's sink thread spends) and
the whole process's CPU time per frame from the first write until the client has received the
last frame (the SDK's sending threads included: what serving costs the machine), the messages
and bytes the client received against those logged, and ``added_cpu_ms``: one client minus
none. Writes ``benchmarks/results/foxglove_live_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import cpu_name, package_version
from sink_bench import capture, git_commit
from timing import summarise

from fusionrt.plugins.sinks.foxglove_channels import FoxgloveChannels
from fusionrt.plugins.sinks.foxglove_live import FoxgloveLiveSink

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The tests' Foxglove protocol client (websockets, from the dev extra), reused rather than
# written twice.
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "sinks"))


def run_client(url: str, topics: list[str], last_log_time_ns: int) -> int:
    """``--client``: subscribe to ``topics``, read until the last frame's annotations (its last
    message) or the server closes; print what came as one JSON line."""
    from foxglove_ws_client import FoxgloveClient

    client = FoxgloveClient(url, timeout_s=60)
    client.read_advertisements(set(topics))
    client.subscribe(set(topics))
    messages = size = 0
    while (message := client.receive()) is not None:
        messages += 1
        size += len(message.data)
        if message.topic.endswith("/annotations") and message.log_time_ns >= last_log_time_ns:
            break
    print(json.dumps({"messages": messages, "bytes": size}), flush=True)
    client.close()
    return 0


def serve_once(keep: Any, with_client: bool) -> dict[str, Any]:
    """Write every kept frame through a fresh sink; timings and what the client received."""
    sink = FoxgloveLiveSink(port=0, static_period_s=3600)
    sink.start(keep.info)
    layout = FoxgloveChannels(keep.info)
    topics = [channel.topic for channel in layout.channels]
    client = None
    if with_client:
        last = str(int(keep.frames[-1][0].stamp_ns))
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", sink.url, "--last", last, "--topics", *topics],
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while sink.subscriptions < len(topics):
            if time.monotonic() > deadline or client.poll() is not None:
                raise RuntimeError("the client did not subscribe")
            time.sleep(0.01)
    wall, cpu = [], []
    cpu_start = time.process_time()
    for frame, detections, timings in keep.frames:
        t0, c0 = time.perf_counter(), time.process_time()
        sink.write(frame, detections, timings)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    received: dict[str, Any] = {}
    if client is not None:
        assert client.stdout is not None
        received = json.loads(client.stdout.readline())  # it has read the last frame
        client.wait(timeout=60)
    cpu_total_ms = (time.process_time() - cpu_start) * 1e3
    sink.close()
    logged = 2 + sum(len(layout.frame_messages(f, d)) for f, d, _ in keep.frames)
    return {
        "wall_ms": wall,
        "cpu_ms": cpu,
        "process_cpu_per_frame_ms": cpu_total_ms / len(keep.frames),
        "received": received,
        "logged_messages": logged if with_client else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pipeline", type=Path, nargs="?", default=ROOT / "examples/pipelines/sample.yaml"
    )
    parser.add_argument("--source", type=Path, default=ROOT / "examples/drives/sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--json", type=Path, default=RESULTS / "foxglove_live_bench.json")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--last", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--topics", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client is not None:
        return run_client(args.client, args.topics, args.last)

    keep = capture(args.pipeline, args.source, args.max_frames)
    cases = {"none": False, "one_client": True}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, with_client in cases.items():  # alternating: shared load hits both
            runs[name].append(serve_once(keep, with_client))
    summary = {
        name: {
            "write_per_frame_wall": summarise([v for r in done for v in r["wall_ms"]]),
            "write_per_frame_cpu": summarise([v for r in done for v in r["cpu_ms"]]),
            "write_mean_cpu_ms": round(statistics.fmean(v for r in done for v in r["cpu_ms"]), 4),
            "process_cpu_per_frame_ms": round(
                statistics.median(r["process_cpu_per_frame_ms"] for r in done), 4
            ),
            "received": [r["received"] for r in done],
            "logged_messages": done[0]["logged_messages"],
        }
        for name, done in runs.items()
    }
    added = {
        key: round(summary["one_client"][key] - summary["none"][key], 4)
        for key in ("write_mean_cpu_ms", "process_cpu_per_frame_ms")
    }
    results: dict[str, Any] = {
        "benchmark": "foxglove_live_bench",
        "command": " ".join(["python", *sys.argv]),
        "commit": git_commit(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": cpu_name(),
        "python": sys.version.split()[0],
        "packages": {name: package_version(name) for name in ("foxglove-sdk", "websockets")},
        "frames": len(keep.frames),
        "rounds": args.rounds,
        "cases": summary,
        "added_by_one_client": added,
        "aim_added_ms": 2.0,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
