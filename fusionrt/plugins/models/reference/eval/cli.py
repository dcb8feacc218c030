"""``fusionrt eval``: mAP of the reference model on recorded drives, per condition, with ablation.

Example::

    fusionrt eval --drive drives/fog --drive drives/night --json eval.json
    fusionrt eval --drive drives/fog --modalities lidar,camera --backend onnxruntime --json l+c.json

OUT holds ``map`` (overall, car, pedestrian, cyclist), ``ap`` (per class and threshold),
``frames``, ``operating_point`` (the score threshold of the highest F1 at 2 m, all classes:
the model's default ``score_threshold``), ``conditions`` (the same per condition group:
clear, fog, night, rain, sensor_failure) and, without ``--modalities``, ``ablation``
(overall mAP with only some modalities kept: all, camera, lidar, radar, lidar+camera,
all-but-text) and ``ablation_by_condition``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fusionrt.plugins.models.reference.model import MASKABLE, ReferenceModel, parse_modalities
from fusionrt.runtime.engines.base import NetworkSource
from fusionrt.runtime.engines.selection import open_engine
from fusionrt.runtime.errors import ConfigError

if TYPE_CHECKING:
    from fusionrt.runtime.evaluation import OperatingPoint


def evaluate(
    drives: list[Path],
    modalities: str | None = None,
    backend: str = "auto",
    onnx_path: Path | None = None,
    quiet: bool = False,
) -> dict[str, object]:
    """The ``fusionrt eval`` result (see the module docstring) as a dict."""
    # the runner pulls in the simulator's drive reader: imported only when evaluating
    from fusionrt.plugins.models.reference.eval.runner import (  # noqa: PLC0415
        ABLATION,
        run_drives,
        summarise,
    )
    from fusionrt.runtime.evaluation import operating_point  # noqa: PLC0415

    for drive in drives:
        if not Path(drive).is_dir():
            raise ConfigError(f"--drive {drive}: no such directory", file=str(drive))
    model = ReferenceModel()
    source = model.network_source()
    if onnx_path is not None:
        source = NetworkSource(source.input_specs, source.output_specs, Path(onnx_path))
    kept = parse_modalities(modalities)
    variant = ",".join(m for m in kept if m in MASKABLE)
    variants = {variant: kept} if modalities is not None else dict(ABLATION)
    main = variant if modalities is not None else "all"
    start = time.perf_counter()
    with open_engine(source, backend) as engine:
        log = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        results = run_drives(drives, engine.infer, variants, progress=log)
        backend_name = engine.name
    reports = summarise(results)
    overall = reports[main]["overall"]
    out: dict[str, object] = {
        "model": ReferenceModel.name,
        "backend": backend_name,
        "network": str(source.onnx_path),
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
        out["ablation_by_condition"] = {
            name: {g: r.map["overall"] for g, r in reports[name].items()} for name in ABLATION
        }
    return out


def _to_dict(point: OperatingPoint | None) -> dict[str, float | int] | None:
    return None if point is None else point.to_dict()


def _run(args: argparse.Namespace) -> int:
    result = evaluate(args.drive, args.modalities, args.backend, args.onnx, args.quiet)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    overall = result["map"]
    print(f"mAP {overall} over {result['frames']} frames -> {args.json}")
    print("operating point:", json.dumps(result["operating_point"]))
    if "ablation" in result:
        print("ablation (overall mAP):", json.dumps(result["ablation"]))
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
    p.add_argument("--json", type=Path, required=True, help="write the results here")
    p.add_argument("--quiet", action="store_true", help="no per-drive progress on stderr")
    p.set_defaults(func=_run)
