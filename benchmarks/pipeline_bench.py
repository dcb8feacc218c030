"""Pipeline benchmark: the hot path of ``fusionrt run`` on a recorded drive, in one process.

    python benchmarks/pipeline_bench.py [PIPELINE.yaml] [--source DRIVE] [--workers 2]

Measures (see ``fusionrt.runtime.bench.bench``): (a) the pipeline's per-frame stage cost
against the sum of the bare stage calls made serially, (b) pipelined against serial wall time,
(c) the real-time factor of the whole replay, (d) p99 / p50 of end-to-end latency in real-time
mode. Writes ``benchmarks/results/pipeline_bench.json`` and a latency histogram per stage,
``benchmarks/results/pipeline_latency_hist.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fusionrt.runtime.bench import bench
from fusionrt.runtime.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def plot(results: dict, path: Path) -> None:
    """One histogram per stage (fast replay) plus end-to-end in real-time mode."""
    samples = {k: v for k, v in results["samples_ms"].items() if v}
    samples["end_to_end (real time)"] = results["realtime_samples_ms"]["end_to_end"]
    columns = 4
    rows = (len(samples) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    for ax, (stage, values) in zip(axes.flat, samples.items(), strict=False):
        ax.hist(values, bins=40, color="#3b7dd8")
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(samples) :]:
        ax.axis("off")
    fig.suptitle(
        f"fusionrt pipeline stage latency ({results['frames']} frames, {results['backend']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pipeline", type=Path, nargs="?", default=ROOT / "examples/pipelines/sample.yaml"
    )
    parser.add_argument("--source", type=Path, default=ROOT / "examples/drives/sample")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()
    registry = Registry.create()
    results = bench(
        args.pipeline,
        args.source,
        registry,
        workers=args.workers,
        max_frames=args.max_frames,
        rate=args.rate,
    )
    results["command"] = " ".join(["python", *sys.argv])
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS / "pipeline_latency_hist.png")
    (RESULTS / "pipeline_bench.json").write_text(json.dumps(results, indent=1) + "\n")
    shown = {
        k: v for k, v in results.items() if k not in ("samples_ms", "realtime_samples_ms", "stages")
    }
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
