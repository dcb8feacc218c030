"""Peak memory of a replay against its length: does anything accumulate per frame?

A live runtime runs for hours, so what a run keeps must not grow with the drive. This replays
the bundled 20 s sample drive looped into drives of 1 minute and 1 hour (each lap's log times
and header stamps shifted by the drive's length, so the timeline is continuous, as a long
recording's is) through ``examples/pipelines/sample.yaml`` with the JSONL sink, each length in
a fresh process, and reports each process's peak RSS (``VmHWM``) and the ratio of the longest
to the shortest. Aim: within 10 % (issue "Nothing lost, nothing silent").

    python benchmarks/memory_bench.py [--seconds 60 3600] [--json OUT.json]

The sinks that write media (MCAP, video) are left out on purpose: an hour of them is gigabytes
of disk, and what they keep in memory is their own file index (measured separately by the
sink benchmarks), not the runtime's.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "examples" / "pipelines" / "sample.yaml"
DRIVE = REPO / "examples" / "drives" / "sample"
_STAMP = struct.Struct("<iI")  # builtin_interfaces/Time after the 4-byte CDR header


@dataclass(frozen=True)
class _Stats:
    drive_s: float


class _Looped:
    """The source's records, lap after lap, stamps shifted by one drive length per lap."""

    def __init__(self, source: Any, seconds: float) -> None:
        self.source = source
        self.seconds = seconds
        self._last = 0

    def __iter__(self) -> Iterator[Any]:
        first = self.source.first_stamp_ns
        lap_ns = self.source.last_stamp_ns - first + 100_000_000
        end = first + int(self.seconds * 1e9)
        for lap in range(int(self.seconds * 1e9 // lap_ns) + 1):
            shift = lap * lap_ns
            for record in self.source.records():
                stamp = record.stamp_ns + shift
                if stamp >= end:
                    return
                self._last = stamp - first
                yield replace(record, stamp_ns=stamp, data=_shift_header(record.data, shift))

    @property
    def stats(self) -> _Stats:
        return _Stats(self._last / 1e9)

    def close(self) -> None:
        pass


def _shift_header(data: bytes | memoryview, shift_ns: int) -> bytes:
    """CDR (little endian) whose first field is a stamp, that stamp moved by ``shift_ns``."""
    raw = bytearray(data)
    if shift_ns and raw[:2] == b"\x00\x01":
        sec, nanosec = _STAMP.unpack_from(raw, 4)
        total = sec * 1_000_000_000 + nanosec + shift_ns
        _STAMP.pack_into(raw, 4, total // 1_000_000_000, total % 1_000_000_000)
    return bytes(raw)


def child(seconds: float) -> dict[str, float]:
    """One replay of ``seconds`` of looped drive in this process; its figures."""
    from fusionrt.runtime.config import load_pipeline
    from fusionrt.runtime.pipeline import Pipeline, RunOptions
    from fusionrt.runtime.process_stats import peak_rss_mb
    from fusionrt.runtime.registry import Registry

    class LoopedPipeline(Pipeline):
        def _records(self) -> Any:
            return _Looped(self.source, seconds)

    config = load_pipeline(PIPELINE)
    config = replace(config, sinks=tuple(s for s in config.sinks if s.name == "jsonl"))
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        pipeline = LoopedPipeline(
            config, DRIVE, Registry.create(entry_points=False), RunOptions(out_dir=Path(out))
        )
        result = pipeline.run()
        wall_s = time.perf_counter() - started
    return {
        "drive_s": round(result.drive_s, 1),
        "frames": result.frames,
        "wall_s": round(wall_s, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0, 3600.0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    from machine import cpu_name, package_version

    runs = []
    for seconds in args.seconds:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(seconds)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append({"seconds": seconds, **json.loads(done.stdout.strip().splitlines()[-1])})
        print(json.dumps(runs[-1]), flush=True)
    ratio = runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"]
    results = {
        "benchmark": "peak RSS of a replay against its length (looped sample drive, jsonl sink)",
        "command": "python benchmarks/memory_bench.py",
        "runs": runs,
        "longest_over_shortest": round(ratio, 3),
        "aim": "<= 1.10",
        "machine": {
            "cpu": cpu_name(),
            "python": sys.version.split()[0],
            "numpy": package_version("numpy"),
            "onnxruntime": package_version("onnxruntime"),
        },
    }
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
