"""``fusionrt run`` (replay a drive through a pipeline) and ``fusionrt bench`` (hot-path figures).

``fusionrt run PIPELINE.yaml --source DRIVE`` builds the pipeline of the file, replays the drive
(as fast as possible, or ``--realtime`` at ``--rate``), writes the sinks into ``--out``, prints
the detections summary, the mAP (when the drive has ground truth and an evaluator is installed)
and the latency table, and with ``--report`` writes the report JSON
(:mod:`fusionrt.runtime.report`). Ctrl-C finishes the frames in flight, closes the sinks and
exits 130.

``fusionrt bench PIPELINE.yaml --source DRIVE`` measures, in one process: (a) the pipeline's
per-frame cost against the sum of the bare stage calls, (b) pipelined against serial throughput,
(c) the real-time factor of the whole replay and (d) the end-to-end jitter (p99 / p50).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.messages import CLASS_NAMES
from fusionrt.runtime.pipeline import Pipeline, RunOptions, RunResult
from fusionrt.runtime.registry import PluginInfo, Registry
from fusionrt.runtime.report import build_report, format_report, summarise_detections, write_report

#: Built-in plugin modules the run needs, registered here if the registry lacks them (until
#: they are in ``BUILTIN_PLUGINS``; then this does nothing).
_RUN_PLUGINS = (
    ("source", "rosbag", "fusionrt.plugins.sources"),
    ("sink", "jsonl", "fusionrt.plugins.sinks"),
    ("model", "reference", "fusionrt.plugins.models.reference.model"),
)
#: The nuScenes-style mAP of the reference model's evaluation (centre distance 0.5-4 m).
EVALUATOR_MODULE = "fusionrt.plugins.models.reference.eval.metrics"
#: The reference model's drive conventions: ground-truth tolerance and target rule.
DRIVES_MODULE = "fusionrt.plugins.models.reference.drives"


def ensure_run_plugins(registry: Registry) -> None:
    """Register the built-in sources and sinks unless the registry already has them."""
    for kind, name, module_name in _RUN_PLUGINS:
        if any(c.name == name for c in registry.components(kind)):
            continue
        if module_name in {p.name for p in registry.plugins()}:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # a model being developed may not import yet; others still run
            continue
        if registry.pm.is_registered(module):
            continue
        registry.register(module, PluginInfo(module_name, "fusionrt", "", None, module_name))


def evaluate(result: RunResult) -> tuple[dict[str, float] | None, str]:
    """mAP of the run's detections against the drive's ground truth, and a note saying how.

    Uses the reference model's evaluation (nuScenes-style centre-distance mAP) and its target
    rule (inside the BEV grid, visible enough); frames without ground truth within
    ``GT_TOLERANCE_NS`` of their stamp are left out, as in ``fusionrt eval``.
    """
    if not result.ground_truth:
        return None, "the drive has no ground truth"
    try:
        metrics = importlib.import_module(EVALUATOR_MODULE)
        drives = importlib.import_module(DRIVES_MODULE)
    except ImportError:
        return None, f"no evaluator installed ({EVALUATOR_MODULE})"
    stamps = np.array([g.stamp_ns for g in result.ground_truth], np.int64)
    frames = []
    for detections in result.detections:
        index = int(np.argmin(np.abs(stamps - detections.stamp_ns)))
        if abs(int(stamps[index]) - detections.stamp_ns) > drives.GT_TOLERANCE_NS:
            continue
        truth = result.ground_truth[index]
        keep = drives.detectable(truth.boxes, truth.visibility)
        frames.append(
            metrics.FrameResult(
                pred_xy=detections.boxes[:, :2],
                pred_labels=detections.labels,
                pred_scores=detections.scores,
                gt_xy=truth.boxes[keep, :2],
                gt_labels=truth.labels[keep],
            )
        )
    if not frames:
        return None, "no frame has ground truth at its stamp"
    report = metrics.mean_average_precision(frames, result.class_names or CLASS_NAMES)
    note = f"nuScenes-style centre-distance mAP over {len(frames)} frames with ground truth"
    return dict(report.map), note


def run_pipeline(
    pipeline_path: Path, drive: Path, options: RunOptions, registry: Registry
) -> tuple[RunResult, dict[str, Any]]:
    """Build and run a pipeline; its result and report."""
    config = load_pipeline(pipeline_path)
    ensure_run_plugins(registry)
    result = Pipeline(config, drive, registry, options).run()
    map_values, note = evaluate(result)
    return result, build_report(result, map_values, note)


def _run(args: argparse.Namespace) -> int:
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415

    options = RunOptions(
        backend=args.backend,
        realtime=args.realtime,
        rate=args.rate,
        max_frames=args.max_frames,
        workers=args.workers,
        out_dir=args.out,
        progress=None if args.progress else False,
    )
    result, report = run_pipeline(args.pipeline, args.source, options, registry_from_args(args))
    print(format_report(report, summarise_detections(result)))
    if args.report is not None:
        write_report(report, args.report)
        print(f"report: {args.report}")
    if result.interrupted:
        print("fusionrt: interrupted; sinks flushed", file=sys.stderr)
        return 130
    return 0


# -- bench --------------------------------------------------------------------------------


def _percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(samples_ms, np.float64)
    p50, p90, p99 = np.percentile(values, (50, 90, 99))
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(values.max()),
    }


def bare_stage_costs(
    pipeline_path: Path, drive: Path, registry: Registry, max_frames: int | None
) -> dict[str, float]:
    """Serial, unthreaded: the summed time of the bare stage calls, per frame, in ms.

    The same components the pipeline builds, called one after another in this thread with
    nothing around them: decode, synchronise, every preprocess group, the feed, infer and
    postprocess. ``total_ms`` per frame is the floor the pipeline's own overhead is measured
    against; ``wall_s`` is the serial run's wall time (source reading included).
    """
    config = load_pipeline(pipeline_path)
    pipeline = Pipeline(config, drive, registry, RunOptions(max_frames=max_frames), sinks=[])
    assembler, engine, model = pipeline.assembler, pipeline.engine, pipeline.model
    frames = 0
    stage_ns = 0
    clock = time.perf_counter_ns
    wall = time.perf_counter()
    try:
        for record in pipeline.source.records():
            if record.topic == config.ground_truth_topic:
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
    finally:
        engine.close()
        pipeline.source.close()
    return {"frames": frames, "per_frame_ms": stage_ns / 1e6 / max(frames, 1), "wall_s": wall_s}


def bench(
    pipeline_path: Path,
    drive: Path,
    registry: Registry,
    *,
    workers: int = 2,
    max_frames: int | None = None,
    rate: float = 1.0,
) -> dict[str, Any]:
    """The four hot-path figures of the module docstring, measured in one process."""
    ensure_run_plugins(registry)
    config = load_pipeline(pipeline_path)
    bare_stage_costs(pipeline_path, drive, registry, max_frames)  # warm caches, lift tables, ORT
    bare = bare_stage_costs(pipeline_path, drive, registry, max_frames)
    piped = Pipeline(
        config, drive, registry, RunOptions(workers=workers, max_frames=max_frames), sinks=[]
    ).run()
    realtime = Pipeline(
        config,
        drive,
        registry,
        RunOptions(workers=workers, max_frames=max_frames, realtime=True, rate=rate),
        sinks=[],
    ).run()
    frames = max(piped.frames, 1)
    pipelined_per_frame_ms = piped.wall_s * 1e3 / frames
    e2e = realtime.recorder.summary().get("end_to_end", {})
    jitter = e2e["p99_ms"] / e2e["p50_ms"] if e2e.get("p50_ms") else float("nan")
    stage_sum_ms = _pipeline_stage_sum_ms(piped)
    return {
        "frames": piped.frames,
        "workers": workers,
        "backend": piped.backend,
        "a_overhead": {
            "pipeline_stage_sum_per_frame_ms": round(stage_sum_ms, 3),
            "bare_stage_sum_per_frame_ms": round(bare["per_frame_ms"], 3),
            "ratio": round(stage_sum_ms / bare["per_frame_ms"], 3),
            "aim": "<= 1.10",
        },
        "b_pipelined_vs_serial": {
            "serial_wall_s": round(bare["wall_s"], 3),
            "pipelined_wall_s": round(piped.wall_s, 3),
            "pipelined_per_frame_ms": round(pipelined_per_frame_ms, 3),
            "speedup": round(bare["wall_s"] / piped.wall_s, 3),
            "aim": ">= 1.5 on 2 cores",
        },
        "c_realtime_factor": {
            "drive_s": round(piped.drive_s, 3),
            "wall_s": round(piped.wall_s, 3),
            "factor": round(piped.drive_s / piped.wall_s, 3),
            "aim": ">= 5",
        },
        "d_jitter": {
            "mode": f"real time at rate {rate}",
            "end_to_end": {k: round(float(v), 3) for k, v in e2e.items()},
            "p99_over_p50": round(jitter, 3),
            "dropped": int(sum(realtime.dropped.values())),
            "aim": "<= 1.5",
        },
        "stages": {
            k: {q: round(float(v), 3) for q, v in row.items()}
            for k, row in piped.recorder.summary().items()
        },
        "samples_ms": {
            stage: [round(ns / 1e6, 4) for ns in samples]
            for stage, samples in piped.recorder._samples_ns.items()
        },
        "realtime_samples_ms": {
            "end_to_end": [
                round(ns / 1e6, 4) for ns in realtime.recorder._samples_ns.get("end_to_end", [])
            ]
        },
    }


def _pipeline_stage_sum_ms(result: RunResult) -> float:
    """Mean per frame of the stage times the pipeline measured (the same calls as the bare run).

    Decode and sync are per message, so their totals are spread over the frames.
    """
    totals: Mapping[str, list[int]] = result.recorder._samples_ns
    skip = {"end_to_end", "sync_wait", "sink"}
    total_ns = sum(sum(samples) for stage, samples in totals.items() if stage not in skip)
    return total_ns / 1e6 / max(result.frames, 1)


def _bench(args: argparse.Namespace) -> int:
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415

    results = bench(
        args.pipeline,
        args.source,
        registry_from_args(args),
        workers=args.workers,
        max_frames=args.max_frames,
        rate=args.rate,
    )
    shown = {
        k: v for k, v in results.items() if k not in ("samples_ms", "realtime_samples_ms", "stages")
    }
    print(json.dumps(shown, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt run`` and ``fusionrt bench``."""
    run = subparsers.add_parser(
        "run",
        help="replay a drive through a pipeline (detections, MCAP, video, report)",
        description="Replay a recorded drive through the pipeline of a YAML file.",
    )
    run.add_argument("pipeline", type=Path, help="pipeline YAML (see docs/pipeline.md)")
    run.add_argument("--source", type=Path, required=True, help="the drive: a bag folder or file")
    run.add_argument(
        "--backend", default=None, help="auto|onnxruntime|torch|tensorrt (default: the file's)"
    )
    run.add_argument(
        "--realtime", action="store_true", help="pace the replay in real time, drop late frames"
    )
    run.add_argument("--rate", type=float, default=1.0, help="real-time rate (2 = twice as fast)")
    run.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    run.add_argument(
        "--workers", type=int, default=None, help="preprocess threads (default: the file's)"
    )
    run.add_argument("--report", type=Path, default=None, help="write the report JSON here")
    run.add_argument(
        "--out", type=Path, default=Path("out"), help="folder of the sinks' files (out)"
    )
    run.add_argument("--progress", action="store_true", help="show a progress bar")
    run.set_defaults(func=_run)

    bench_parser = subparsers.add_parser(
        "bench",
        help="measure the hot path: overhead, pipelining, real-time factor, jitter",
        description="Benchmark the pipeline on a drive (see docs/pipeline.md).",
    )
    bench_parser.add_argument("pipeline", type=Path, help="pipeline YAML")
    bench_parser.add_argument("--source", type=Path, required=True, help="the drive")
    bench_parser.add_argument("--workers", type=int, default=2, help="preprocess threads (2)")
    bench_parser.add_argument("--max-frames", type=int, default=None, help="frames per measurement")
    bench_parser.add_argument(
        "--rate", type=float, default=1.0, help="real-time rate for the jitter run"
    )
    bench_parser.add_argument("--json", type=Path, default=None, help="write the results JSON here")
    bench_parser.set_defaults(func=_bench)
