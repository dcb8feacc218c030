"""``fusionrt bench``: the hot path's figures on a recorded drive, measured in one process.

(a) the pipeline's per-frame stage cost against the sum of the bare stage calls made serially
(the runtime's own overhead), (b) pipelined against serial wall time, (c) the real-time factor
of the whole replay, (d) p99 / p50 of end-to-end latency in real-time mode, (e) the replay
writing the pipeline's sinks (the main job, ``make demo``) against the same replay without.
Used by the ``fusionrt bench`` command and by ``benchmarks/pipeline_bench.py``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.config import PipelineConfig, load_pipeline
from fusionrt.runtime.pipeline import Pipeline, RunOptions, RunResult
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.truth import StreamedGroundTruth


def bare_stage_costs(
    config: PipelineConfig,
    drive: Path,
    registry: Registry,
    max_frames: int | None,
    source_kind: str | None = None,
) -> dict[str, float]:
    """Serial, unthreaded: the summed time of the bare stage calls, per frame, in ms.

    The same components the pipeline builds, called one after another in this thread with
    nothing around them: decode, synchronise, every preprocess group, the feed, infer and
    postprocess. ``per_frame_ms`` is the floor the pipeline's stage times are compared with;
    ``wall_s`` and ``cpu_s`` are the serial run's wall and process CPU time (source reading
    included), the baseline of the pipelined run's.
    """
    options = RunOptions(max_frames=max_frames, infer_workers=1, source_kind=source_kind)
    pipeline = Pipeline(config, drive, registry, options, sinks=[])
    assembler, engine, model = pipeline.assembler, pipeline.engine, pipeline.model
    truth = pipeline.ground_truth
    truth_topics = truth.topics if isinstance(truth, StreamedGroundTruth) else ()
    frames = 0
    stage_ns = 0
    clock = time.perf_counter_ns
    wall = time.perf_counter()
    cpu = time.process_time()
    try:
        for record in pipeline.source.records():
            if record.topic in truth_topics:
                continue
            start = clock()
            message = assembler.decode(record)
            ready = assembler.synchronise(message) if message is not None else []
            stage_ns += clock() - start
            for frame in ready:
                start = clock()
                assembled = assembler.preprocess(frame)
                model.postprocess(engine.infer(assembled.feed), frame.stamp_ns)
                stage_ns += clock() - start
                frames += 1
            if max_frames is not None and frames >= max_frames:
                break
        wall_s = time.perf_counter() - wall
        cpu_s = time.process_time() - cpu
    finally:
        engine.close()
        pipeline.source.close()
    return {
        "frames": frames,
        "per_frame_ms": stage_ns / 1e6 / max(frames, 1),
        "wall_s": wall_s,
        "cpu_s": cpu_s,
    }


def bench(
    pipeline_path: Path,
    drive: Path,
    registry: Registry,
    *,
    workers: int = 2,
    max_frames: int | None = None,
    rate: float = 1.0,
    source_kind: str | None = None,
) -> dict[str, Any]:
    """The four hot-path figures of the module docstring, measured in one process."""
    config = load_pipeline(pipeline_path)
    kind = source_kind
    bare_stage_costs(config, drive, registry, max_frames, kind)  # warm caches, lift tables, ORT
    bare = bare_stage_costs(config, drive, registry, max_frames, kind)
    # the loop a user would write first: the backend with its default options (no per_backend)
    plain = replace(config, backend=replace(config.backend, per_backend={}))
    bare_plain = bare_stage_costs(plain, drive, registry, max_frames, kind)
    options = RunOptions(workers=workers, max_frames=max_frames, source_kind=kind)
    pipeline = Pipeline(config, drive, registry, options, sinks=[])
    cpu = time.process_time()  # the run only, like the serial measurement
    piped = pipeline.run()
    piped_cpu_s = time.process_time() - cpu
    realtime = Pipeline(
        config,
        drive,
        registry,
        replace(options, realtime=True, rate=rate),
        sinks=[],
    ).run()
    with tempfile.TemporaryDirectory() as out:  # the main job as `make demo` runs it
        with_sinks = Pipeline(
            config,
            drive,
            registry,
            RunOptions(workers=workers, max_frames=max_frames, out_dir=Path(out)),
        ).run()
    frames = max(piped.frames, 1)
    pipelined_per_frame_ms = piped.wall_s * 1e3 / frames
    e2e = realtime.recorder.summary().get("end_to_end", {})
    jitter = e2e["p99_ms"] / e2e["p50_ms"] if e2e.get("p50_ms") else float("nan")
    processing = _processing_ms(realtime)
    stage_sum_ms = _pipeline_stage_sum_ms(piped)
    return {
        "frames": piped.frames,
        "workers": workers,
        "backend": piped.backend,
        "a_overhead": {
            # the runtime's own cost: process CPU per frame, pipelined run vs serial bare calls
            "pipeline_cpu_per_frame_ms": round(piped_cpu_s * 1e3 / frames, 3),
            "bare_cpu_per_frame_ms": round(bare["cpu_s"] * 1e3 / max(bare["frames"], 1), 3),
            "ratio": round(piped_cpu_s / frames / (bare["cpu_s"] / max(bare["frames"], 1)), 3),
            # wall-clock stage times as the pipeline records them: concurrent stages share the
            # cores, so these grow with overlap even when no work is added
            "pipeline_stage_sum_per_frame_ms": round(stage_sum_ms, 3),
            "bare_stage_sum_per_frame_ms": round(bare["per_frame_ms"], 3),
            "stage_time_ratio": round(stage_sum_ms / bare["per_frame_ms"], 3),
            "aim": "ratio <= 1.10",
        },
        "b_pipelined_vs_serial": {
            "serial_wall_s": round(bare["wall_s"], 3),
            "pipelined_wall_s": round(piped.wall_s, 3),
            "pipelined_per_frame_ms": round(pipelined_per_frame_ms, 3),
            "speedup": round(bare["wall_s"] / piped.wall_s, 3),
            "aim": ">= 1.5 on 2 cores",
            # against the serial loop with the backend's default options (e.g. ONNX Runtime
            # using every core for one frame) instead of the pipeline's per_backend ones
            "serial_backend_defaults_wall_s": round(bare_plain["wall_s"], 3),
            "speedup_vs_serial_backend_defaults": round(bare_plain["wall_s"] / piped.wall_s, 3),
        },
        "c_realtime_factor": {
            "drive_s": round(piped.drive_s, 3),
            "wall_s": round(piped.wall_s, 3),
            "factor": round(piped.drive_s / piped.wall_s, 3),
            "aim": ">= 5",
        },
        "e_sinks": {
            # the same replay writing the file's sinks (the demo's JSONL, MCAP and video)
            "sinks": [sc.name for sc in config.sinks],
            "wall_s": round(with_sinks.wall_s, 3),
            "realtime_factor": round(with_sinks.drive_s / with_sinks.wall_s, 3),
            "realtime_factor_no_sinks": round(piped.drive_s / piped.wall_s, 3),
            "slowdown": round(with_sinks.wall_s / piped.wall_s, 3),
            "aim": "realtime_factor >= 8 and slowdown <= 1.3",
        },
        "d_jitter": {
            "mode": f"real time at rate {rate}",
            "end_to_end": {k: round(float(v), 3) for k, v in e2e.items()},
            "p99_over_p50": round(jitter, 3),
            "dropped": int(sum(realtime.dropped.values())),
            "aim": "<= 1.5",
            # end to end less sync_hold: from the frame's completion to detections out
            "processing": {k: round(float(v), 3) for k, v in processing.items()},
            "processing_p99_over_p50": round(processing["p99_ms"] / processing["p50_ms"], 3),
        },
        "stages": {
            k: {q: round(float(v), 3) for q, v in row.items()}
            for k, row in piped.recorder.summary().items()
        },
        "samples_ms": {
            stage: [round(ns / 1e6, 4) for ns in samples]
            for stage, samples in piped.recorder.samples_ns().items()
        },
        "realtime_samples_ms": {
            "end_to_end": [
                round(ns / 1e6, 4) for ns in realtime.recorder.samples_ns().get("end_to_end", [])
            ]
        },
    }


def _processing_ms(result: RunResult) -> dict[str, float]:
    """Percentiles of end-to-end latency less the synchroniser's hold, per frame (the two are
    recorded together for every frame written, so their samples line up)."""
    samples = result.recorder.samples_ns()
    e2e = np.asarray(samples.get("end_to_end", []), np.float64)
    hold = np.asarray(samples.get("sync_hold", []), np.float64)
    if not len(e2e) or len(e2e) != len(hold):
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    values = (e2e - hold) / 1e6
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": values.max()}


def _pipeline_stage_sum_ms(result: RunResult) -> float:
    """Mean per frame of the stage times the pipeline measured (the same calls as the bare run).

    Decode and sync are per message, so their totals are spread over the frames.
    """
    totals: Mapping[str, int] = result.recorder.totals_ns()
    skip = {"end_to_end", "sync_wait", "sync_hold", "sink"}
    total_ns = sum(total for stage, total in totals.items() if stage not in skip)
    return total_ns / 1e6 / max(result.frames, 1)
