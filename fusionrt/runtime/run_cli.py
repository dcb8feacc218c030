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
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime import evaluation
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.messages import CLASS_NAMES
from fusionrt.runtime.pipeline import Pipeline, RunOptions, RunResult
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.report import build_report, format_report, summarise_detections, write_report


def evaluate(result: RunResult) -> tuple[dict[str, float | None] | None, str]:
    """mAP of the run's detections against the drive's ground truth, and a note saying how.

    nuScenes-style centre-distance mAP (:mod:`fusionrt.runtime.evaluation`) over the actors
    inside the model's BEV grid and visible enough; frames without ground truth within
    ``GT_TOLERANCE_NS`` of their stamp are left out, as in ``fusionrt eval``.
    """
    if not result.ground_truth:
        return None, "the drive has no ground truth"
    if result.geometry is None:
        return None, "the model declares no geometry to evaluate on"
    stamps = np.array([g.stamp_ns for g in result.ground_truth], np.int64)
    frames = []
    for detections in result.detections:
        index = int(np.argmin(np.abs(stamps - detections.stamp_ns)))
        if abs(int(stamps[index]) - detections.stamp_ns) > evaluation.GT_TOLERANCE_NS:
            continue
        truth = result.ground_truth[index]
        keep = evaluation.detection_targets(truth.boxes, truth.visibility, result.geometry.bev)
        frames.append(
            evaluation.FrameResult(
                pred_xy=detections.boxes[:, :2],
                pred_labels=detections.labels,
                pred_scores=detections.scores,
                gt_xy=truth.boxes[keep, :2],
                gt_labels=truth.labels[keep],
            )
        )
    if not frames:
        return None, "no frame has ground truth at its stamp"
    report = evaluation.mean_average_precision(frames, result.class_names or CLASS_NAMES)
    note = f"nuScenes-style centre-distance mAP over {len(frames)} frames with ground truth"
    return dict(report.map), note


def run_pipeline(
    pipeline_path: Path, drive: Path, options: RunOptions, registry: Registry
) -> tuple[RunResult, dict[str, Any]]:
    """Build and run a pipeline; its result and report."""
    config = load_pipeline(pipeline_path)
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
        infer_workers=args.infer_workers,
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


def _bench(args: argparse.Namespace) -> int:
    from fusionrt.runtime.bench import bench  # noqa: PLC0415  (only this command needs it)
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
    run.add_argument(
        "--infer-workers",
        type=int,
        default=None,
        help="inference threads, one engine each (default: the file's)",
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
