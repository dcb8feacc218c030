"""Latency recording per stage: monotonic timings, percentiles, a printable table.

Stages are named ``decode.camera``, ``preprocess.lidar``, ``infer``... Memory is bounded
however long a run lasts (a live runtime runs for hours): per stage the recorder keeps the
count, the total and the maximum exactly, and a uniform random sample of at most
``reservoir_size`` durations (Vitter's algorithm R) for the percentiles. A run of up to
``reservoir_size`` samples per stage is therefore recorded exactly; a longer one gives
percentiles of a uniform sample of it. Each stage draws from its own generator, seeded alike,
so stages that receive the same number of samples (``end_to_end`` and ``sync_hold``, one per
frame) keep the same positions and their samples still line up pairwise.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fusionrt.runtime.text_table import format_table

PERCENTILES = (50, 90, 99)
#: Samples kept per stage for the percentiles (8 bytes each).
RESERVOIR_SIZE = 8192
_SEED = 0x5EED


class _Stage:
    """One stage's exact count, total and maximum and its reservoir of samples."""

    __slots__ = ("count", "max_ns", "random", "samples", "total_ns")

    def __init__(self, size: int) -> None:
        self.count = 0
        self.total_ns = 0
        self.max_ns = 0
        self.samples = np.empty(size, np.int64)
        self.random = random.Random(_SEED)

    def add(self, duration_ns: int) -> None:
        size = len(self.samples)
        if self.count < size:
            self.samples[self.count] = duration_ns
        else:
            slot = self.random.randrange(self.count + 1)
            if slot < size:
                self.samples[slot] = duration_ns
        self.count += 1
        self.total_ns += duration_ns
        self.max_ns = max(self.max_ns, duration_ns)

    def kept(self) -> np.ndarray:
        return self.samples[: min(self.count, len(self.samples))].copy()


class LatencyRecorder:
    """Collects per-stage durations in bounded memory; ``enabled=False`` makes it a no-op."""

    def __init__(self, enabled: bool = True, reservoir_size: int = RESERVOIR_SIZE) -> None:
        if reservoir_size < 1:
            raise ValueError(f"reservoir_size must be >= 1, got {reservoir_size}")
        self.enabled = enabled
        self.reservoir_size = reservoir_size
        self._stages: dict[str, _Stage] = {}

    def add(self, stage: str, duration_ns: int) -> None:
        """Record one duration of ``stage``."""
        if not self.enabled:
            return
        record = self._stages.get(stage)
        if record is None:
            record = self._stages[stage] = _Stage(self.reservoir_size)
        record.add(int(duration_ns))

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        """Time the body of a ``with`` block as one sample of ``stage``."""
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter_ns() - start)

    def samples_ns(self) -> dict[str, list[int]]:
        """The kept durations per stage, in nanoseconds: every one while a stage has at most
        ``reservoir_size``, else a uniform sample of that many."""
        return {stage: record.kept().tolist() for stage, record in self._stages.items()}

    def totals_ns(self) -> dict[str, int]:
        """The exact sum of every duration recorded per stage, in nanoseconds."""
        return {stage: record.total_ns for stage, record in self._stages.items()}

    def counts(self) -> dict[str, int]:
        """How many durations each stage recorded (exact)."""
        return {stage: record.count for stage, record in self._stages.items()}

    def stages(self) -> list[str]:
        """Stage names in the order they were first recorded."""
        return list(self._stages)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage: ``count`` and ``max_ms`` (exact), ``p50_ms``, ``p90_ms``, ``p99_ms``.

        Safe to call while other threads record (a sample added meanwhile may or may not be in
        it)."""
        report: dict[str, dict[str, float]] = {}
        # a copy of the items: another thread may record a new stage meanwhile (health())
        for stage, record in list(self._stages.items()):
            values_ms = record.kept().astype(np.float64) / 1e6
            row = {"count": float(record.count)}
            for q, value in zip(PERCENTILES, np.percentile(values_ms, PERCENTILES), strict=True):
                row[f"p{q}_ms"] = round(float(value), 4)
            row["max_ms"] = round(record.max_ns / 1e6, 4)
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
