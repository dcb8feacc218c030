"""Shared timing helpers of the benchmarks: round-robin timing and robust summaries.

Benchmarks run as scripts (``python benchmarks/NAME.py``), so this module is imported by its
plain name. Functions are timed round-robin so that load from other processes on a shared
machine hits every variant alike, which keeps the ratios between them meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def ort_session(path: Path) -> Any:
    """A single-threaded FP32 CPU ONNX Runtime session (all graph optimisations on): the
    one-core setting the model and fusion benchmarks time networks in."""
    import onnxruntime as ort  # only the benchmarks that time networks need it

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
