"""Shared timing helpers of the benchmarks: round-robin timing and robust summaries.

Benchmarks run as scripts (``python benchmarks/NAME.py``), so this module is imported by its
plain name. Functions are timed round-robin so that load from other processes on a shared
machine hits every variant alike, which keeps the ratios between them meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def summarise(samples_ms: list[float]) -> dict[str, float]:
    """Median, p90 and minimum of millisecond samples."""
    ordered = sorted(samples_ms)
    return {
        "median_ms": round(statistics.median(ordered), 4),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
        "min_ms": round(ordered[0], 4),
    }


def time_interleaved(
    funcs: dict[str, Callable[[], object]], repeat: int, warmup: int = 5
) -> dict[str, dict[str, float]]:
    """Time every function ``repeat`` times, round-robin, after ``warmup`` untimed calls each."""
    for func in funcs.values():
        for _ in range(warmup):
            func()
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: summarise(values) for name, values in samples.items()}
