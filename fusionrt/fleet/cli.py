"""``fusionrt fleet run`` and ``fusionrt fleet report`` (see docs/fleet.md).

``fleet run`` exits 0 when every drive is complete, 1 when any drive failed (its error is in
the summary table and printed), and reports what it skipped (complete in ``--out`` already).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

from fusionrt.runtime.arguments import add_source_kind_argument, positive_int
from fusionrt.runtime.errors import ConfigError


def _require_extra() -> None:
    """Fail with the install hint when the extra is missing (without importing Ray yet: the
    runner sets Ray's environment before it is imported)."""
    missing = [name for name in ("ray", "pyarrow") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"fusionrt fleet needs the 'ray' extra ({', '.join(missing)} missing): "
            "pip install 'fusionrt[ray]'"
        )


def _run(args: argparse.Namespace) -> int:
    _require_extra()
    from fusionrt.fleet.drives import installed_sources_open, resolve_drives  # noqa: PLC0415
    from fusionrt.fleet.runner import FleetOptions, run_fleet  # noqa: PLC0415
    from fusionrt.fleet.task import PipelineSpec  # noqa: PLC0415

    if args.gpus_per_task < 0 or args.cpus_per_task <= 0:
        raise ConfigError("--gpus-per-task must be >= 0 and --cpus-per-task > 0")
    if args.num_cpus is not None and args.num_cpus < 1:
        raise ConfigError(f"--num-cpus must be >= 1, got {args.num_cpus}", key="--num-cpus")
    spec = PipelineSpec.load(
        args.pipeline,
        backend=args.backend,
        disabled_plugins=args.disable_plugin,
        workers=args.workers,
        source_kind=args.source_kind,
    )
    drives = resolve_drives(args.drives, installed_sources_open(args.source_kind))
    options = FleetOptions(
        out_dir=args.out,
        address=args.address,
        num_cpus=args.num_cpus,
        cpus_per_task=args.cpus_per_task,
        gpus_per_task=args.gpus_per_task,
        force=args.force,
        chunk_s=args.chunk_s,
        max_retries=args.max_retries,
        progress=None if args.progress else False,
    )
    outcome = run_fleet(spec, drives, options)
    print(
        f"fleet: {len(outcome.completed)} drive(s) done, {len(outcome.failed)} failed, "
        f"{len(outcome.skipped)} skipped (complete in {args.out}); {outcome.frames} frames "
        f"in {outcome.wall_s:.1f} s"
    )
    for drive, error in outcome.failed.items():
        print(f"failed {drive}: {error}")
    return outcome.exit_code


def _report(args: argparse.Namespace) -> int:
    _require_extra()
    from fusionrt.fleet.report import (  # noqa: PLC0415
        fleet_report,
        format_fleet_report,
        plot_fleet_report,
    )

    report = fleet_report(args.results, args.baseline)
    print(format_fleet_report(report))
    png = args.png if args.png is not None else args.results / "fleet_report.png"
    print(f"plot: {plot_fleet_report(report, png)}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"report: {args.json}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt fleet run`` and ``fusionrt fleet report``."""
    fleet = subparsers.add_parser(
        "fleet",
        help="replay many drives on Ray and compare runs (extra 'ray')",
        description="Fleet-scale replay on Ray: resumable, results as Parquet.",
    )
    commands = fleet.add_subparsers(dest="fleet_command", required=True)
    run = commands.add_parser(
        "run",
        help="replay drives through a pipeline as Ray tasks",
        description="Replay every drive through the pipeline; one Ray task per drive or chunk.",
    )
    run.add_argument("pipeline", type=Path, help="pipeline YAML (see docs/pipeline.md)")
    run.add_argument(
        "--drives",
        required=True,
        help="a glob ('drives/*') or a text file listing drive paths: ROS 2 bags, KITTI or "
        "nuScenes folders, anything an installed source opens",
    )
    add_source_kind_argument(run)
    run.add_argument("--out", type=Path, required=True, help="results folder (Parquet tables)")
    run.add_argument(
        "--address",
        default=None,
        help="join this Ray cluster (auto, HOST:PORT or ray://HOST:10001); default: a local Ray",
    )
    run.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray (default: all of this machine's)",
    )
    run.add_argument("--cpus-per-task", type=float, default=1.0, help="CPUs per task (1)")
    run.add_argument("--gpus-per-task", type=float, default=0.0, help="GPUs per task (0)")
    run.add_argument("--force", action="store_true", help="redo drives that are complete")
    run.add_argument(
        "--chunk-s",
        type=float,
        default=None,
        help="split drives into chunks of S seconds of drive, one task each",
    )
    run.add_argument(
        "--max-retries", type=int, default=2, help="retries of a task that raised or died (2)"
    )
    run.add_argument("--backend", default=None, help="override the file's backend")
    run.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="preprocess threads per task (the file's)",
    )
    run.add_argument("--progress", action="store_true", help="show the fleet's progress bar")
    run.set_defaults(func=_run)

    report = commands.add_parser(
        "report",
        help="mAP per class and condition, latency percentiles, diff against a baseline",
        description="Sum up a fleet run's results; compare with a baseline run.",
    )
    report.add_argument("results", type=Path, help="the results folder of a fleet run")
    report.add_argument("--baseline", type=Path, default=None, help="another run's results")
    report.add_argument(
        "--png", type=Path, default=None, help="plot path (default RESULTS/fleet_report.png)"
    )
    report.add_argument("--json", type=Path, default=None, help="write the report JSON here")
    report.set_defaults(func=_report)
