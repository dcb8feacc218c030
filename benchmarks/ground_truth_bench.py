"""Cost of "the ground truth nearest this stamp" on a one-hour drive (one core).

A run asks it twice per frame (the sinks draw it, the evaluator scores against it). Cases, each
over the 36 000 ground-truth stamps of an hour at 10 Hz, queried at every frame stamp in drive
order (frames 3 ms after their ground truth):

* ``scan``: a linear scan for the nearest stamp, the way ``ground_truth_near`` once worked
  (the baseline: 4.3 ms per call was measured on a 1-hour drive);
* ``indexed``: :class:`~fusionrt.runtime.truth.IndexedGroundTruth` (ground truth at rest, KITTI /
  nuScenes): bisection over the sorted stamps, the frame loaded once (cached);
* ``streamed``: :class:`~fusionrt.runtime.truth.StreamedGroundTruth` (a bag's topic) fed as the
  replay reaches each record, so its 10 s window holds ~200 stamps (the figure includes keeping
  and forgetting each record, shared by its two calls).

Microseconds per call: median and p90 of ``--repeat`` rounds (round-robin, ``timing``). The
JSON result goes to ``benchmarks/results/ground_truth_bench.json``.

    python benchmarks/ground_truth_bench.py [--repeat 5] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from machine import cpu_name
from timing import time_interleaved

from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.truth import GroundTruthBoxes, IndexedGroundTruth, StreamedGroundTruth

HOUR_STAMPS = 36_000
PERIOD_NS = 100_000_000
TOLERANCE_NS = 50_000_000
FRAME_LAG_NS = 3_000_000


def _boxes(stamp_ns: int) -> GroundTruthBoxes:
    return GroundTruthBoxes(
        stamp_ns, np.zeros((20, 7), np.float32), np.zeros(20, np.int64), np.ones(20, np.float32)
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "ground_truth_bench.json"
    )
    args = parser.parse_args(argv)
    stamps = [i * PERIOD_NS for i in range(HOUR_STAMPS)]
    frames = [s + FRAME_LAG_NS for s in stamps]
    table = {s: _boxes(s) for s in stamps}

    def indexed() -> None:
        truth = IndexedGroundTruth(stamps, table.__getitem__)
        for frame in frames:
            assert truth.near(frame, TOLERANCE_NS) is not None
            assert truth.near(frame, TOLERANCE_NS) is not None  # the sinks, then the evaluator

    records = [RawRecord("/gt", s, b"", "test/gt") for s in stamps]

    def streamed() -> None:
        truth = StreamedGroundTruth(["/gt"], lambda r: table[r.stamp_ns])
        for record, frame in zip(records, frames, strict=True):
            truth.keep(truth.decode(record))
            truth.forget()
            assert truth.near(frame, TOLERANCE_NS) is not None
            assert truth.near(frame, TOLERANCE_NS) is not None

    # the scan is slow: time it on a sample of 360 frames spread over the hour, per call
    sample = frames[:: len(frames) // 360]

    def scan_sample() -> None:
        for frame in sample:
            min(stamps, key=lambda s: abs(s - frame))

    timings = time_interleaved(
        {"scan": scan_sample, "indexed": indexed, "streamed": streamed},
        repeat=args.repeat,
        warmup=1,
    )
    calls = {"scan": len(sample), "indexed": 2 * len(frames), "streamed": 2 * len(frames)}
    results = {
        name: {
            "calls": calls[name],
            "us_per_call_median": round(t["median_ms"] * 1e3 / calls[name], 3),
            "us_per_call_p90": round(t["p90_ms"] * 1e3 / calls[name], 3),
        }
        for name, t in timings.items()
    }
    report = {
        "benchmark": "ground_truth_bench",
        "command": "python benchmarks/ground_truth_bench.py " + " ".join(argv or sys.argv[1:]),
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "drive": {"stamps": HOUR_STAMPS, "period_ms": PERIOD_NS / 1e6, "hours": 1.0},
        "results": results,
        "speedup_indexed_vs_scan": round(
            results["scan"]["us_per_call_median"] / results["indexed"]["us_per_call_median"], 1
        ),
        "speedup_streamed_vs_scan": round(
            results["scan"]["us_per_call_median"] / results["streamed"]["us_per_call_median"], 1
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
