"""Sensor-to-detection latency of ``fusionrt serve``, live over Zenoh on loopback.

Three processes, as in a car: ``fusionrt play`` publishes the sample drive (rmw_zenoh's
conventions; each sample's attachment carries the wall clock at publishing),
``fusionrt serve examples/pipelines/live.yaml`` receives it and publishes detections, and this
process subscribes to both the lidar topic and the detections. A detection's latency is the
wall time it arrives here minus the wall time its reference lidar sweep was published (the
sweep with the frame's header stamp).

* ``rates``: p50 / p90 / p99 / max at play rate 1× and 2× (aim at 1×: p50 <= 40 ms, p99 <=
  60 ms on the 2-core machine), with serve's own stage table (where the time goes);
* ``overload``: at 4× the latency stays bounded (aim: p99 at 4× <= 2 × p99 at 1×), memory flat,
  the excess dropped oldest-first and counted (serve's report);
* ``soak``: ``--loop`` for ``--soak-s`` seconds (default 600): serve's RSS and latency in the
  first and the last minute (aim: RSS growth <= 5 %).

    python benchmarks/live_bench.py [--rates 1 2] [--overload 4] [--soak-s 600] [--json OUT]

The transport's own cost per message (fusionrt's receive path vs a bare Zenoh subscriber) is
``benchmarks/ros2_receive_bench.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zenoh

REPO = Path(__file__).resolve().parents[1]
LIVE = REPO / "examples" / "pipelines" / "live.yaml"
DRIVE = REPO / "examples" / "drives" / "sample"
FUSIONRT = [sys.executable, "-m", "fusionrt.runtime.cli"]
LIDAR = "/sensors/lidar_top/points"
DETECTIONS = "/fusionrt/detections"
_STAMP = struct.Struct("<iI")  # the header stamp after the 4-byte CDR encapsulation
_ATTACHMENT = struct.Struct("<qqB16s")  # sequence, source timestamp, GID


def free_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp/127.0.0.1:{sock.getsockname()[1]}"


def header_stamp_ns(cdr: bytes) -> int:
    sec, nanosec = _STAMP.unpack_from(cdr, 4)
    return sec * 1_000_000_000 + nanosec


class Probe:
    """Subscribes the lidar and the detections; pairs them by header stamp. Zenoh peers do
    not relay for each other, so ``play`` connects to the probe as well as to ``serve``."""

    def __init__(self, serve_endpoint: str, listen: str) -> None:
        config = zenoh.Config()
        config.insert_json5("mode", '"peer"')
        config.insert_json5("connect/endpoints", json.dumps([serve_endpoint]))
        config.insert_json5("listen/endpoints", json.dumps([listen]))  # play connects here too
        config.insert_json5("scouting/multicast/enabled", "false")
        self.session = zenoh.open(config)
        self.published: dict[int, int] = {}  # lidar header stamp -> wall ns at publishing
        self.latencies: list[tuple[float, float]] = []  # (arrival wall s, latency ms)
        self.unmatched = 0
        self._lock = threading.Lock()
        self.session.declare_subscriber(f"0{LIDAR}/*/*", self._on_lidar)
        self.session.declare_subscriber(f"0{DETECTIONS}/*/*", self._on_detections)

    def _on_lidar(self, sample: zenoh.Sample) -> None:
        _, published_ns, _, _ = _ATTACHMENT.unpack(sample.attachment.to_bytes())
        with self._lock:
            self.published[header_stamp_ns(sample.payload.to_bytes())] = published_ns

    def _on_detections(self, sample: zenoh.Sample) -> None:
        arrived = time.time_ns()
        stamp = header_stamp_ns(sample.payload.to_bytes())
        with self._lock:
            published = self.published.get(stamp)
            if published is None:
                self.unmatched += 1
            else:
                self.latencies.append((arrived / 1e9, (arrived - published) / 1e6))

    def window(self, start_s: float, end_s: float) -> np.ndarray:
        with self._lock:
            return np.array([ms for t, ms in self.latencies if start_s <= t < end_s])

    def close(self) -> None:
        self.session.close()


def percentiles(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"count": 0}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "count": len(values),
        "p50_ms": round(float(p50), 2),
        "p90_ms": round(float(p90), 2),
        "p99_ms": round(float(p99), 2),
        "max_ms": round(float(values.max()), 2),
    }


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def start_serve(tmp: Path, endpoint: str) -> subprocess.Popen:
    data = yaml.safe_load(LIVE.read_text())
    data["rig"] = str(DRIVE / "rig.yaml")
    data["sensors"]["can"]["options"]["dbc_paths"] = [
        str(REPO / "fusionrt" / "sim" / "data" / "fusionrt_car.dbc")
    ]
    data["live"].update(connect=[], listen=[endpoint])
    data["sinks"] = [data["sinks"][0]]  # the ros2 sink only: what the stack receives
    pipeline = tmp / "live.yaml"
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    report = tmp / "report.json"
    return subprocess.Popen(
        [*FUSIONRT, "serve", str(pipeline), "--out", str(tmp / "out"), "--report", str(report)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def wait_serving(probe: Probe, timeout_s: float = 60.0) -> None:
    """Until serve's detections publisher token is in the graph."""
    seen = threading.Event()

    def on_token(sample: zenoh.Sample) -> None:
        if "%fusionrt%detections" in str(sample.key_expr):
            seen.set()

    probe.session.liveliness().declare_subscriber("@ros2_lv/0/**", on_token, history=True)
    if not seen.wait(timeout_s):
        raise RuntimeError("serve did not come up")


def stop_serve(process: subprocess.Popen, tmp: Path) -> dict[str, Any]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    if process.returncode != 0:
        raise RuntimeError(f"serve exited {process.returncode}: {stderr[-2000:]}")
    return json.loads((tmp / "report.json").read_text())


def one_run(rate: float, *, loop_s: float | None = None) -> dict[str, Any]:
    """serve + play at ``rate`` (looping for ``loop_s`` seconds if given); the figures."""
    endpoint, probe_endpoint = free_endpoint(), free_endpoint()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        serve = start_serve(tmp, endpoint)
        probe = Probe(endpoint, probe_endpoint)
        rss: list[tuple[float, float]] = []
        try:
            wait_serving(probe)
            time.sleep(1.0)  # let the subscriptions match before the first sweep
            play = [*FUSIONRT, "play", str(DRIVE), "--connect", endpoint]
            play += ["--connect", probe_endpoint, "--rate", str(rate)]  # peers do not relay
            started = time.time()
            if loop_s is None:
                subprocess.run(play, check=True, capture_output=True, timeout=600)
            else:
                player = subprocess.Popen([*play, "--loop"], stdout=subprocess.DEVNULL)
                while time.time() - started < loop_s:
                    time.sleep(1.0)
                    value = rss_mb(serve.pid)
                    if value is not None:
                        rss.append((time.time() - started, value))
                player.send_signal(signal.SIGTERM)
                player.wait(timeout=60)
            ended = time.time()
            time.sleep(1.0)  # the last detections
        finally:
            report = stop_serve(serve, tmp)
            probe.close()
        result: dict[str, Any] = {
            "rate": rate,
            "latency": percentiles(probe.window(started, ended + 1.0)),
            "unmatched_detections": probe.unmatched,
            "serve": {
                "frames": report["frames"],
                "dropped_by_reason": report["dropped_by_reason"],
                "inbox_drops": {
                    sensor: reasons["queue_full"]
                    for sensor, reasons in report["faults"].items()
                    if "queue_full" in reasons
                },
                "peak_rss_mb": report["peak_rss_mb"],
                "stages_p50_ms": {k: v["p50_ms"] for k, v in report["stages"].items()},
                "stages_p99_ms": {k: v["p99_ms"] for k, v in report["stages"].items()},
                "end_to_end": report["end_to_end"],
            },
        }
        if loop_s is not None:
            first = [v for t, v in rss if 55 <= t <= 65]
            last = [v for t, v in rss if t >= loop_s - 10]
            result["soak"] = {
                "seconds": loop_s,
                "rss_minute_1_mb": round(float(np.median(first)), 1) if first else None,
                "rss_last_mb": round(float(np.median(last)), 1) if last else None,
                "latency_minute_1": percentiles(probe.window(started, started + 60)),
                "latency_last_minute": percentiles(probe.window(ended - 60, ended + 1)),
            }
            if first and last:
                result["soak"]["rss_growth"] = round(float(np.median(last) / np.median(first)), 3)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--overload", type=float, default=4.0)
    parser.add_argument("--soak-s", type=float, default=600.0, help="0: no soak")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "benchmarks"))
    from machine import cpu_name, package_version

    results: dict[str, Any] = {
        "benchmark": "sensor-to-detection latency of fusionrt serve over Zenoh on loopback",
        "command": "python benchmarks/live_bench.py",
        "rates": [],
    }
    for rate in args.rates:
        results["rates"].append(one_run(rate))
        print(json.dumps(results["rates"][-1]["latency"]), flush=True)
    base = next((r for r in results["rates"] if r["rate"] == 1.0), results["rates"][0])
    overload = one_run(args.overload)
    results["overload"] = overload
    results["overload"]["p99_over_p99_at_1x"] = round(
        overload["latency"]["p99_ms"] / base["latency"]["p99_ms"], 3
    )
    print(json.dumps(overload["latency"]), flush=True)
    if args.soak_s > 0:
        results["soak"] = one_run(1.0, loop_s=args.soak_s)
    results["aims"] = {
        "p50_ms_at_1x": "<= 40",
        "p99_ms_at_1x": "<= 60",
        "p99_at_4x_over_p99_at_1x": "<= 2",
        "soak_rss_growth": "<= 1.05",
    }
    results["machine"] = {
        "cpu": cpu_name(),
        "python": sys.version.split()[0],
        "eclipse-zenoh": package_version("eclipse-zenoh"),
        "onnxruntime": package_version("onnxruntime"),
        "load_average": os.getloadavg(),
    }
    text = json.dumps(results, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
