"""``fusionrt eval``: mAP of the reference model on recorded drives, per condition, with ablation.

Example::

    fusionrt eval --drive drives/fog --drive drives/night --json eval.json
    fusionrt eval --drive drives/fog --modalities lidar,camera --backend onnxruntime --json l+c.json

OUT holds ``map`` (overall, car, pedestrian, cyclist), ``ap`` (per class and threshold),
``frames``, ``operating_point`` (the score threshold of the highest F1 at 2 m, all classes:
the model's default ``score_threshold``), ``conditions`` (the same per condition group:
clear, fog, night, rain, sensor_failure, degraded) and, without ``--modalities``,
``ablation`` (overall mAP with only some modalities kept: all, camera, lidar, radar,
lidar+camera, all-but-text, all-but-X) and ``ablation_by_condition``; with
``--decision``, ``decision_level`` (``{"wbf": mAP, "probabilistic": mAP}``: the
single-sensor models fused per frame, see :mod:`.decision`) with
``decision_level_by_condition`` and the members' own ``single_sensor_by_condition``; with
``--compare NAME=FILE.onnx``, ``compare_by_condition``; with ``--explain-plot DIR``,
``explanations`` (per drive and frame, each modality's contribution; plotted to
``DIR/DRIVE.png``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusionrt.plugins.models.reference.layout import SENSORS
from fusionrt.plugins.models.reference.model import MASKABLE, ReferenceModel, parse_modalities
from fusionrt.runtime.engines.selection import open_engine
from fusionrt.runtime.errors import ConfigError

#: The decision-level fusers evaluated (``decision_level`` in OUT).
DECISION_FUSERS = ("wbf", "probabilistic")

if TYPE_CHECKING:
    from fusionrt.runtime.evaluation import OperatingPoint


def _by_condition(reports: dict[str, Any]) -> dict[str, float | None]:
    return {g: r.map["overall"] for g, r in reports.items()}


def named_paths(items: list[str] | None, what: str) -> dict[str, Path]:
    """``NAME=PATH`` options → ``{NAME: PATH}`` (``ConfigError`` naming the option)."""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--{what} must look like NAME=FILE.onnx, got {item!r}", key=what)
        out[name] = Path(path)
    return out


def evaluate(
    drives: list[Path],
    modalities: str | None = None,
    backend: str = "auto",
    onnx_path: Path | None = None,
    quiet: bool = False,
    *,
    compare: dict[str, Path] | None = None,
    decision: bool = False,
    decision_onnx: dict[str, Path] | None = None,
    calibration: Path | None = None,
    explain_plot: Path | None = None,
) -> dict[str, object]:
    """The ``fusionrt eval`` result (see the module docstring) as a dict."""
    # the runner pulls in the simulator's drive reader: imported only when evaluating
    from fusionrt.plugins.models.reference.drives import drive_bag  # noqa: PLC0415
    from fusionrt.plugins.models.reference.eval import decision as level  # noqa: PLC0415
    from fusionrt.plugins.models.reference.eval.runner import (  # noqa: PLC0415
        ABLATION,
        EVAL_SCORE_THRESHOLD,
        Member,
        run_drives,
        summarise,
    )
    from fusionrt.runtime.evaluation import operating_point  # noqa: PLC0415

    for drive in drives:  # every drive checked before any engine opens
        if not Path(drive).is_dir():
            raise ConfigError(f"--drive {drive}: no such directory", file=str(drive))
        drive_bag(Path(drive))
    compare = compare or {}
    decision_onnx = decision_onnx or {}
    unknown = sorted(set(decision_onnx) - set(SENSORS))
    if unknown:
        raise ConfigError(
            f"--decision-onnx names {unknown}; sensors are {SENSORS}", key="decision-onnx"
        )
    main_model = ReferenceModel(onnx=None if onnx_path is None else str(onnx_path))
    kept = parse_modalities(modalities)
    variant = ",".join(m for m in kept if m in MASKABLE)
    variants = {variant: kept} if modalities is not None else dict(ABLATION)
    main = variant if modalities is not None else "all"
    start = time.perf_counter()
    log = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    with ExitStack() as stack:

        def engine_of(model: ReferenceModel) -> Any:
            return stack.enter_context(open_engine(model.network_source(), backend))

        engine = engine_of(main_model)
        onnx_args: dict[str, Any] = {"score_threshold": EVAL_SCORE_THRESHOLD}
        if onnx_path is not None:
            onnx_args["onnx"] = str(onnx_path)
        members = [
            Member(name, ReferenceModel(kept_set, **onnx_args), engine.infer)
            for name, kept_set in variants.items()
        ]
        for name, path in compare.items():
            other = ReferenceModel(onnx=str(path), score_threshold=EVAL_SCORE_THRESHOLD)
            members.append(Member(f"compare:{name}", other, engine_of(other).infer))
        fused = []
        if decision:
            cal = level.DecisionCalibration.load(calibration or level.CALIBRATION_PATH)
            sensor_models = {}
            for sensor in SENSORS:
                model = level.member_model(sensor, decision_onnx.get(sensor))
                sensor_models[sensor] = (model, engine_of(model).infer)
            members += level.decision_members(sensor_models)
            fused = level.fusions(cal, SENSORS)
        results = run_drives(drives, members, fused, progress=log)
        backend_name = engine.name
        explanations = (
            {} if explain_plot is None else _explain(drives, main_model, engine.infer, explain_plot)
        )
    reports = summarise(results)
    overall = reports[main]["overall"]
    out: dict[str, object] = {
        "model": ReferenceModel.name,
        "backend": backend_name,
        "network": str(main_model.artefacts.onnx),
        "drives": [str(d) for d in drives],
        "modalities": [m for m in kept if m in MASKABLE],
        **overall.to_dict(),
        "operating_point": _to_dict(
            operating_point([f for g in results[main].values() for f in g])
        ),
        "conditions": {g: r.to_dict() for g, r in reports[main].items() if g != "overall"},
        "wall_s": round(time.perf_counter() - start, 1),
    }
    if modalities is None:
        out["ablation"] = {name: reports[name]["overall"].map["overall"] for name in ABLATION}
        out["ablation_by_condition"] = {name: _by_condition(reports[name]) for name in ABLATION}
    if decision:
        out["decision_level"] = {f: reports[f]["overall"].map["overall"] for f in DECISION_FUSERS}
        out["decision_level_by_condition"] = {f: _by_condition(reports[f]) for f in DECISION_FUSERS}
        out["single_sensor_by_condition"] = {
            s: _by_condition(reports[f"{s}-model"]) for s in SENSORS
        }
    if explanations:
        out["explanations"] = explanations
    if compare:
        out["compare_by_condition"] = {
            name: _by_condition(reports[f"compare:{name}"]) for name in compare
        }
    return out


def _explain(
    drives: list[Path], model: ReferenceModel, infer: Any, out_dir: Path
) -> dict[str, Any]:
    """Per drive: the modality contributions of every frame, plotted to OUT_DIR/DRIVE.png."""
    from fusionrt.plugins.models.reference.eval.explain_plot import (  # noqa: PLC0415
        contributions_over_drive,
        drive_events,
        plot_contributions,
    )

    out = {}
    for drive in drives:
        series = contributions_over_drive(drive, model, infer)
        events = drive_events(drive)
        png = plot_contributions(
            series,
            events,
            out_dir / f"{Path(drive).name}.png",
            title=f"{Path(drive).name}: modality contributions",
        )
        out[str(drive)] = {**series, "plot": str(png), "announcements": events.announcements}
    return out


def _to_dict(point: OperatingPoint | None) -> dict[str, float | int] | None:
    return None if point is None else point.to_dict()


def _run(args: argparse.Namespace) -> int:
    result = evaluate(
        args.drive,
        args.modalities,
        args.backend,
        args.onnx,
        args.quiet,
        compare=named_paths(args.compare, "compare"),
        decision=args.decision,
        decision_onnx=named_paths(args.decision_onnx, "decision-onnx"),
        calibration=args.calibration,
        explain_plot=args.explain_plot,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    overall = result["map"]
    print(f"mAP {overall} over {result['frames']} frames -> {args.json}")
    print("operating point:", json.dumps(result["operating_point"]))
    for key in ("ablation", "decision_level"):
        if key in result:
            print(f"{key} (overall mAP):", json.dumps(result[key]))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt eval``."""
    p = subparsers.add_parser(
        "eval",
        help="nuScenes-style mAP of the reference model on recorded drives with ground truth",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument(
        "--drive", type=Path, action="append", required=True, help="drive directory (repeatable)"
    )
    p.add_argument(
        "--modalities",
        help=f"keep only these modalities, comma-separated ({','.join(MASKABLE)}); the rest are "
        "masked at inference. Default: all, plus the ablation table",
    )
    p.add_argument("--backend", default="auto", help="onnxruntime, torch, tensorrt or auto")
    p.add_argument(
        "--onnx", type=Path, help="evaluate this ONNX file (same specs) instead of the shipped one"
    )
    p.add_argument(
        "--compare",
        action="append",
        metavar="NAME=FILE.onnx",
        help="also evaluate this network of the reference family with every modality "
        "(repeatable; compare_by_condition in OUT)",
    )
    p.add_argument(
        "--decision",
        action="store_true",
        help="also fuse the single-sensor models per frame (wbf, probabilistic): "
        "decision_level in OUT",
    )
    p.add_argument(
        "--decision-onnx",
        action="append",
        metavar="SENSOR=FILE.onnx",
        help="the single-sensor model of SENSOR (camera, lidar, radar) for the decision-level "
        "fusion instead of the shipped one (repeatable)",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        help="the decision fusers' calibration (fusionrt train calibrate) instead of the "
        "shipped one",
    )
    p.add_argument(
        "--explain-plot",
        type=Path,
        metavar="DIR",
        help="plot each modality's contribution over every drive (drop-one attribution and "
        "fusion weights; weather, failures and the log's fault announcements marked) into "
        "DIR/DRIVE.png; 4 extra inferences per frame",
    )
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--quiet", action="store_true", help="no per-drive progress on stderr")
    p.set_defaults(func=_run)
