"""Latency recording per stage: monotonic timings, percentiles, a printable table.

Stages are named ``decode.camera``, ``preprocess.lidar``, ``infer``... Samples are kept in
nanoseconds (``time.perf_counter_ns``) in plain lists; percentiles are computed only when a
report is asked for, so recording costs two clock reads and one append.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fusionrt.runtime.text_table import format_table

PERCENTILES = (50, 90, 99)


class LatencyRecorder:
    """Collects per-stage durations; ``enabled=False`` makes recording a no-op."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._samples_ns: dict[str, list[int]] = {}

    def add(self, stage: str, duration_ns: int) -> None:
        """Record one duration of ``stage``."""
        if self.enabled:
            self._samples_ns.setdefault(stage, []).append(duration_ns)

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        """Time the body of a ``with`` block as one sample of ``stage``."""
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter_ns() - start)

    def samples_ns(self) -> dict[str, list[int]]:
        """Every recorded duration per stage, in nanoseconds (copies)."""
        return {stage: list(samples) for stage, samples in self._samples_ns.items()}

    def stages(self) -> list[str]:
        """Stage names in the order they were first recorded."""
        return list(self._samples_ns)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage: ``count``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms``."""
        report: dict[str, dict[str, float]] = {}
        for stage, samples in self._samples_ns.items():
            values_ms = np.asarray(samples, dtype=np.float64) / 1e6
            row = {"count": float(len(values_ms))}
            for q, value in zip(PERCENTILES, np.percentile(values_ms, PERCENTILES), strict=True):
                row[f"p{q}_ms"] = round(float(value), 4)
            row["max_ms"] = round(float(values_ms.max()), 4)
            report[stage] = row
        return report

    def table(self) -> str:
        """The summary as an aligned text table."""
        header = ["stage", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"]
        rows = [
            [
                stage,
                str(int(r["count"])),
                f"{r['p50_ms']:.3f}",
                f"{r['p90_ms']:.3f}",
                f"{r['p99_ms']:.3f}",
                f"{r['max_ms']:.3f}",
            ]
            for stage, r in self.summary().items()
        ]
        return format_table(header, rows, numbers_right=True)
