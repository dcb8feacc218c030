"""``fusionrt run`` (replay a drive through a pipeline) and ``fusionrt bench`` (hot-path figures).

``fusionrt run PIPELINE.yaml --source DRIVE`` builds the pipeline of the file, opens the drive
with the installed source that can read it (a ROS 2 bag, a KITTI or nuScenes folder, a
third-party source's; ``--source-kind NAME`` chooses one), replays the drive
(as fast as possible, or ``--realtime`` at ``--rate``), writes the sinks into ``--out``, prints
the detections summary, the mAP (when the drive has ground truth and an evaluator is installed)
and the latency table, and with ``--report`` writes the report JSON
(:mod:`fusionrt.runtime.report`). SIGINT (Ctrl-C) or SIGTERM finishes the frames in flight,
closes the sinks, writes the report (``interrupted: true``) and exits 130 or 143. A run that
fails (a sink that cannot write, an engine error) closes what it can, still writes the report
(with its ``error``) and exits 1 with a one-line error; the output paths are checked before
anything runs. A recording found damaged (messages lost, reported in the faults; the rest
replayed) exits 3.

``fusionrt bench PIPELINE.yaml --source DRIVE`` measures, in one process: (a) the pipeline's
per-frame cost against the sum of the bare stage calls, (b) pipelined against serial throughput,
(c) the real-time factor of the whole replay and (d) the end-to-end jitter (p99 / p50).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fusionrt.runtime.arguments import (
    add_source_arguments,
    max_gap,
    positive_int,
    positive_number,
)
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.errors import ConfigError, SinkError
from fusionrt.runtime.messages import CLASS_NAMES
from fusionrt.runtime.pipeline import Pipeline, RunOptions, RunResult
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.report import build_report, format_report, summarise_detections, write_report
from fusionrt.runtime.signals import exit_status
from fusionrt.runtime.truth import IndexedGroundTruth, RunEvaluator

#: Exit status of a run that replayed a damaged recording: done, but messages were lost.
EXIT_DAMAGED = 3


def evaluate(result: RunResult) -> tuple[dict[str, float | None] | None, str]:
    """mAP of a run's kept detections against its kept ground truth, and a note saying how.

    For a result run with ``RunOptions.keep_results`` (the fleet's chunks): nuScenes-style
    centre-distance mAP (:mod:`fusionrt.runtime.evaluation`) over the actors inside the
    model's BEV grid and visible enough; frames without ground truth within
    ``GT_TOLERANCE_NS`` of their stamp are left out, as in ``fusionrt eval``. A pipeline scores
    its own frames as it writes them (``RunResult.map_report``).
    """
    if not result.ground_truth:
        return None, "the drive has no ground truth"
    if result.geometry is None:
        return None, "the model declares no geometry to evaluate on"
    by_stamp = {truth.stamp_ns: truth for truth in result.ground_truth}
    truth = IndexedGroundTruth(by_stamp, by_stamp.__getitem__, cache_size=1)
    evaluator = RunEvaluator(truth, result.geometry.bev, result.class_names or CLASS_NAMES)
    for detections in result.detections:
        evaluator.add_frame(detections)
    report = evaluator.finish()
    if report is None:
        return None, "no frame has ground truth at its stamp"
    note = f"nuScenes-style centre-distance mAP over {report.frames} frames with ground truth"
    return dict(report.map), note


def check_output_paths(out_dir: Path | None, report: Path | None) -> None:
    """Refuse, before anything runs, an output folder or report path that cannot be written."""
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigError("--out names a file, not a folder", path=str(out_dir))
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the output folder: {exc.strerror or exc}", path=str(out_dir)
            ) from None
        if not os.access(out_dir, os.W_OK | os.X_OK):
            raise ConfigError("the output folder is not writable", path=str(out_dir))
    if report is not None:
        if report.is_dir():
            raise ConfigError("--report names a folder; give a file path", path=str(report))
        parent = report.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the report's folder: {exc.strerror or exc}", path=str(parent)
            ) from None
        writable = os.access(report, os.W_OK) if report.exists() else os.access(parent, os.W_OK)
        if not writable:
            raise ConfigError("the report path is not writable", path=str(report))


def run_pipeline(
    pipeline_path: Path, drive: Path, options: RunOptions, registry: Registry
) -> tuple[RunResult, dict[str, Any]]:
    """Build and run a pipeline; its result and report.

    A run that fails after it started raises :class:`RunFailed`, which carries the partial
    result and its report (so the caller can still write the report).
    """
    config = load_pipeline(pipeline_path)
    pipeline = Pipeline(config, drive, registry, options)
    try:
        result = pipeline.run()
    except BaseException as exc:
        if pipeline.result is None:
            raise
        raise RunFailed(exc, pipeline.result, report_of(pipeline.result)) from exc
    return result, report_of(result)


def report_of(result: RunResult) -> dict[str, Any]:
    """The report document of a finished (or failed) run."""
    report = result.map_report
    map_values = None if report is None else dict(report.map)
    return build_report(result, map_values, result.map_note)


class RunFailed(Exception):
    """A run that stopped on an error; ``error`` is the cause, ``result`` / ``report`` what it
    had done by then."""

    def __init__(self, error: BaseException, result: RunResult, report: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error = error
        self.result = result
        self.report = report


def _run(args: argparse.Namespace) -> int:
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415

    check_output_paths(args.out, args.report)
    options = RunOptions(
        backend=args.backend,
        realtime=args.realtime,
        rate=args.rate,
        max_gap_s=args.max_gap,
        max_frames=args.max_frames,
        explain=args.explain,
        workers=args.workers,
        infer_workers=args.infer_workers,
        out_dir=args.out,
        progress=None if args.progress else False,
        source_kind=args.source_kind,
    )
    try:
        result, report = run_pipeline(args.pipeline, args.source, options, registry_from_args(args))
    except RunFailed as failed:
        write_report_or_fail(failed.report, args.report)
        raise failed.error from None
    print(format_report(report, summarise_detections(result)))
    write_report_or_fail(report, args.report)
    if result.interrupted:
        print("fusionrt: interrupted; sinks flushed", file=sys.stderr)
        return exit_status(result.signal or signal.SIGINT)
    if result.source_damage:
        print(
            f"fusionrt: the recording is damaged: {result.source_damage} report(s) of lost "
            "messages (see faults); the rest was replayed",
            file=sys.stderr,
        )
        return EXIT_DAMAGED
    return 0


def write_report_or_fail(report: dict[str, Any], path: Path | None) -> None:
    """Write the report to ``path`` (if given); a failure is a one-line SinkError."""
    if path is None:
        return
    try:
        write_report(report, path)
    except OSError as exc:
        raise SinkError(f"cannot write the report: {exc.strerror or exc}", file=str(path)) from None
    print(f"report: {path}")


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
        source_kind=args.source_kind,
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
    add_source_arguments(run)
    run.add_argument(
        "--backend", default=None, help="auto|onnxruntime|torch|tensorrt (default: the file's)"
    )
    run.add_argument(
        "--realtime", action="store_true", help="pace the replay in real time, drop late frames"
    )
    run.add_argument(
        "--rate", type=positive_number, default=1.0, help="real-time rate (2 = twice as fast)"
    )
    run.add_argument(
        "--max-gap",
        type=max_gap,
        default=5.0,
        metavar="SECONDS",
        help="--realtime: sleep at most this long through one gap in the recording, skip the "
        "rest and report it (default 5; 'none': sleep through every gap)",
    )
    run.add_argument("--max-frames", type=positive_int, default=None, help="stop after N frames")
    run.add_argument(
        "--explain",
        action="store_true",
        help="per frame, how much each modality contributed: the model runs again with each "
        "present modality masked (one extra inference each); written to the JSONL, the MCAP "
        "(/fusionrt/explanations) and the report",
    )
    run.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="preprocess threads (default: the file's)",
    )
    run.add_argument(
        "--infer-workers",
        type=positive_int,
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
    add_source_arguments(bench_parser)
    bench_parser.add_argument(
        "--workers", type=positive_int, default=2, help="preprocess threads (2)"
    )
    bench_parser.add_argument(
        "--max-frames", type=positive_int, default=None, help="frames per measurement"
    )
    bench_parser.add_argument(
        "--rate", type=positive_number, default=1.0, help="real-time rate for the jitter run"
    )
    bench_parser.add_argument("--json", type=Path, default=None, help="write the results JSON here")
    bench_parser.set_defaults(func=_bench)
