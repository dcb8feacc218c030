"""Sink benchmark: the per-frame cost of the built-in sinks on the sample drive's real frames.

    python benchmarks/sink_bench.py [--rounds 3] [--max-frames N] [--baseline BEFORE.json]

Runs the sample pipeline once with a sink that keeps every frame, its detections and the
``RunInfo``; then, ``--rounds`` times, writes those frames through a fresh instance of each
sink (``jsonl``, ``mcap``, ``video`` as the sample pipeline configures it, ``video`` without
PNGs) into a temporary folder, timing every ``write`` and the ``close``. Reports the median,
p90 and minimum of the per-frame write time, in wall time and in process CPU time (all
threads: a writer may compress on its own; CPU time is what other processes' load on a shared
machine disturbs least), the median close time and the output size; and ``demo``: the sample
pipeline's three sinks (jsonl, mcap, video with a PNG every 10 frames) together, mean CPU time
per frame, beside the median inference time per frame of the captured run.
``--baseline`` embeds the JSON of an earlier run (e.g. the same script on older code) so the
result file carries the comparison. Writes ``benchmarks/results/sink_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import cpu_name, package_version
from timing import summarise

from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: name -> (sink component, options): the sample pipeline's sinks, and the video without PNGs
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "jsonl": ("jsonl", {}),
    "mcap": ("mcap", {}),
    "video": ("video", {"png_every": 10}),
    "video_no_png": ("video", {"png": False}),
}


class _Keep:
    """A sink that keeps what the pipeline gives it."""

    name = "keep"

    def __init__(self) -> None:
        self.info: Any = None
        self.frames: list[tuple[Frame, Detections, dict[str, float]]] = []

    def start(self, info: Any) -> None:
        self.info = info

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        self.frames.append((frame, detections, dict(timings_ms)))

    def close(self) -> None:
        pass


def capture(pipeline: Path, drive: Path, max_frames: int | None) -> _Keep:
    """The frames of one run of ``pipeline`` over ``drive``."""
    keep = _Keep()
    config = load_pipeline(pipeline)
    options = RunOptions(max_frames=max_frames, out_dir=Path(tempfile.mkdtemp()))
    Pipeline(config, drive, Registry.create(), options, sinks=[keep]).run()  # type: ignore[list-item]
    return keep


def time_sink(cls: type, options: dict[str, Any], keep: _Keep, out: Path) -> dict[str, Any]:
    """Per-frame write times (ms), the close time (ms) and the bytes written by one sink."""
    sink = cls(out_dir=out, **options)
    start = getattr(sink, "start", None)
    if start is not None:
        start(keep.info)
    wall, cpu = [], []
    for frame, detections, timings in keep.frames:
        t0, c0 = time.perf_counter(), time.process_time()
        sink.write(frame, detections, timings)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    t0 = time.perf_counter()
    sink.close()
    close_ms = (time.perf_counter() - t0) * 1e3
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"wall_ms": wall, "cpu_ms": cpu, "close_ms": close_ms, "bytes": size}


def git_commit() -> str:
    """The commit of the fusionrt code measured (the tree this script imports from)."""
    import fusionrt

    done = subprocess.run(
        ["git", "-C", str(Path(fusionrt.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pipeline", type=Path, nargs="?", default=ROOT / "examples/pipelines/sample.yaml"
    )
    parser.add_argument("--source", type=Path, default=ROOT / "examples/drives/sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--baseline", type=Path, default=None, help="an earlier result to embed")
    parser.add_argument("--json", type=Path, default=RESULTS / "sink_bench.json")
    args = parser.parse_args()

    keep = capture(args.pipeline, args.source, args.max_frames)
    registry = Registry.create()
    wall: dict[str, list[float]] = {name: [] for name in CASES}
    cpu: dict[str, list[float]] = {name: [] for name in CASES}
    closes: dict[str, list[float]] = {name: [] for name in CASES}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, (component, options) in CASES.items():  # round-robin: shared load hits all
            cls = registry.component("sink", component).cls
            with tempfile.TemporaryDirectory() as folder:
                result = time_sink(cls, options, keep, Path(folder))
            wall[name] += result["wall_ms"]
            cpu[name] += result["cpu_ms"]
            closes[name].append(result["close_ms"])
            sizes[name] = result["bytes"]
    results: dict[str, Any] = {
        "benchmark": "sink_bench",
        "command": " ".join(["python", *sys.argv]),
        "commit": git_commit(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": cpu_name(),
        "python": sys.version.split()[0],
        "packages": {
            name: package_version(name)
            for name in ("mcap", "foxglove-sdk", "opencv-python-headless", "av", "zstandard")
        },
        "frames": len(keep.frames),
        "rounds": args.rounds,
        "sinks": {
            name: {
                "write_per_frame_wall": summarise(wall[name]),
                "write_per_frame_cpu": summarise(cpu[name]),
                "write_mean_cpu_ms": round(statistics.fmean(cpu[name]), 4),
                "close_median_ms": round(statistics.median(closes[name]), 3),
                "output_bytes": sizes[name],
            }
            for name in CASES
        },
    }
    demo_cpu_ms = sum(statistics.fmean(cpu[name]) for name in ("jsonl", "mcap", "video"))
    infer_ms = [timings["infer"] for _, _, timings in keep.frames if "infer" in timings]
    results["demo"] = {
        "sinks": ["jsonl", "mcap", "video"],
        "write_mean_cpu_ms": round(demo_cpu_ms, 3),
        "infer_median_ms": round(statistics.median(infer_ms), 3) if infer_ms else None,
    }
    if args.baseline is not None:
        results["baseline"] = json.loads(args.baseline.read_text())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "baseline"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
