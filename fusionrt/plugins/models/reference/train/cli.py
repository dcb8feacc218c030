"""``fusionrt train``: simulate and cache drives, train the reference network, ship it.

Examples::

    fusionrt train data --drives 40                   # simulate + cache training drives
    fusionrt train fit --out runs/fused.pt --steps 3000 --threads 1
    fusionrt train fit --out runs/lidar.pt --modalities lidar --steps 800
    fusionrt train data --degraded --drives 16        # degraded-sensor drives, announced
    fusionrt train fit --out runs/text.pt --steps 2400 --degraded-drives 16
    fusionrt train export runs/lidar.pt --onnx runs/lidar.onnx   # evaluate with eval --onnx
    fusionrt train ship runs/fused.pt --eval-json benchmarks/results/model_eval.json
    fusionrt train calibrate --out variants/decision_calibration.json   # decision fusers

The cache (``--cache``, default ``$FUSIONRT_CACHE`` or ``~/.cache/fusionrt``) holds the
drives (``drives/``) and one ``.npz`` of model inputs and ground truth per drive (``frames/``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fusionrt.runtime.errors import ConfigError


def _data(args: argparse.Namespace) -> int:
    from fusionrt.plugins.models.reference.train import data  # noqa: PLC0415

    if args.degraded:
        plans = (
            data.degraded_evaluation_plans()
            if args.evaluation
            else data.degraded_training_plans(args.drives)
        )
    else:
        plans = data.evaluation_plans() if args.evaluation else data.training_plans(args.drives)
    data.prepare(plans, args.cache, workers=args.workers)
    return 0


def _fit(args: argparse.Namespace) -> int:
    from fusionrt.plugins.models.reference.model import parse_modalities  # noqa: PLC0415
    from fusionrt.plugins.models.reference.network import NetworkConfig  # noqa: PLC0415
    from fusionrt.plugins.models.reference.train.data import (  # noqa: PLC0415
        degraded_training_plans,
        training_plans,
    )
    from fusionrt.plugins.models.reference.train.dataset import FrameBank  # noqa: PLC0415
    from fusionrt.plugins.models.reference.train.trainer import TrainConfig, train  # noqa: PLC0415

    plans = training_plans(args.drives) + degraded_training_plans(args.degraded_drives)
    files = [args.cache / "frames" / f"{plan.name}.npz" for plan in plans]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ConfigError(
            f"{len(missing)} training drives are not cached (run `fusionrt train data`), "
            f"e.g. {missing[:3]}"
        )
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        modalities=parse_modalities(args.modalities),
        contrastive_weight=args.contrastive_weight,
        network=NetworkConfig(fusion=args.fusion, width=args.width),
    )
    if args.modalities is not None:  # a single-sensor baseline has nothing to drop
        config.sensor_dropout = 0.0
    bank = FrameBank.load(files)
    print(
        f"{len(bank)} frames from {len(files)} drives; config {json.dumps(config.to_dict())}",
        flush=True,
    )
    summary = train(bank, config, args.out)
    print(f"trained {summary['steps']} steps in {summary['wall_s']} s -> {args.out}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from contextlib import ExitStack  # noqa: PLC0415

    from fusionrt.plugins.models.reference.eval.cli import named_paths  # noqa: PLC0415
    from fusionrt.plugins.models.reference.eval.decision import calibrate, member_model  # noqa: PLC0415
    from fusionrt.plugins.models.reference.layout import SENSORS  # noqa: PLC0415
    from fusionrt.plugins.models.reference.train.data import training_plans  # noqa: PLC0415
    from fusionrt.runtime.engines.selection import open_engine  # noqa: PLC0415

    onnx = named_paths(args.onnx, "onnx")
    files = [args.cache / "frames" / f"{plan.name}.npz" for plan in training_plans(args.drives)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ConfigError(f"{len(missing)} training drives are not cached, e.g. {missing[:3]}")
    with ExitStack() as stack:
        models = {}
        for sensor in SENSORS:
            model = member_model(sensor, onnx.get(sensor))
            engine = stack.enter_context(open_engine(model.network_source(), "onnxruntime"))
            models[sensor] = (model, engine.infer)
        result = calibrate(files, models, progress=lambda line: print(line, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    print(f"wbf weights (training mAP) {json.dumps(result.weights)} -> {args.out}")
    return 0


def _ship(args: argparse.Namespace) -> int:
    from fusionrt.plugins.models.reference.train.ship import ship  # noqa: PLC0415

    card = ship(
        args.checkpoint,
        args.eval_json,
        args.bench_json,
        variant=args.variant,
        sample_drive=args.sample_drive,
        sample_index=args.sample_index,
    )
    print(json.dumps({k: card[k] for k in ("params", "flops", "onnx_bytes")}))
    return 0


def _export(args: argparse.Namespace) -> int:
    from fusionrt.plugins.models.reference.train.ship import export_checkpoint  # noqa: PLC0415

    cost = export_checkpoint(args.checkpoint, args.onnx)
    print(json.dumps({"onnx": str(args.onnx), **cost}))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt train data|fit|ship``."""
    from fusionrt.plugins.models.reference.train.data import DEFAULT_CACHE  # noqa: PLC0415

    p = subparsers.add_parser(
        "train", help="simulate drives, train and ship the reference model (train extra)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )  # fmt: skip
    actions = p.add_subparsers(dest="train_action", required=True)
    data = actions.add_parser("data", help="simulate and cache the training (or evaluation) drives")
    data.add_argument("--drives", type=int, default=40, help="training drives (40)")
    data.add_argument(
        "--evaluation", action="store_true", help="the held-out evaluation drives instead"
    )
    data.add_argument(
        "--degraded",
        action="store_true",
        help="drives with one degraded sensor announced by the self-diagnostics instead "
        "(training: --drives of them; with --evaluation: the held-out ones)",
    )
    data.add_argument("--workers", type=int, default=1, help="simulator worker processes (1)")
    fit = actions.add_parser("fit", help="train a network on the cached training drives")
    fit.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    fit.add_argument("--drives", type=int, default=40, help="training drives to use (40)")
    fit.add_argument(
        "--degraded-drives",
        type=int,
        default=0,
        help="degraded-sensor training drives to add (`train data --degraded`; default 0)",
    )
    fit.add_argument("--steps", type=int, default=3000)
    fit.add_argument("--batch-size", type=int, default=8)
    fit.add_argument("--lr", type=float, default=2e-3)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    fit.add_argument("--modalities", help="train with only these (a single-sensor baseline)")
    fit.add_argument("--fusion", choices=("concat", "gated", "attention"), default="concat")
    fit.add_argument("--width", type=float, default=1.0, help="channel multiplier (2.0: 2x model)")
    fit.add_argument("--contrastive-weight", type=float, default=0.1)
    ship = actions.add_parser("ship", help="write the package's weights, ONNX and model card")
    ship.add_argument("checkpoint", type=Path)
    ship.add_argument("--eval-json", type=Path, help="fusionrt eval output to record")
    ship.add_argument("--bench-json", type=Path, help="benchmarks/model_bench.py output to record")
    ship.add_argument(
        "--variant",
        choices=("fused", "lidar", "camera", "radar"),
        default="fused",
        help="which shipped network to replace: the fused model or a single-sensor one",
    )
    ship.add_argument(
        "--sample-drive",
        type=Path,
        help="store a frame of this drive as the sample frame the export is verified on "
        "(default: keep the shipped one)",
    )
    ship.add_argument("--sample-index", type=int, default=100, help="that frame's index (100)")
    export = actions.add_parser("export", help="export a checkpoint to ONNX (verified)")
    export.add_argument("checkpoint", type=Path)
    export.add_argument("--onnx", type=Path, required=True, help="ONNX file to write")
    export.set_defaults(func=_export)
    calib = actions.add_parser(
        "calibrate",
        help="calibrate the decision-level fusers on the training drives (single-sensor models)",
    )
    calib.add_argument("--out", type=Path, required=True, help="calibration JSON to write")
    calib.add_argument("--drives", type=int, default=40, help="training drives to use (40)")
    calib.add_argument(
        "--onnx",
        action="append",
        metavar="SENSOR=FILE.onnx",
        help="a single-sensor model instead of the shipped variant (repeatable)",
    )
    calib.set_defaults(func=_calibrate)
    for sub in (data, fit, calib):
        sub.add_argument(
            "--cache", type=Path, default=DEFAULT_CACHE, help=f"cache directory ({DEFAULT_CACHE})"
        )
    data.set_defaults(func=_data)
    fit.set_defaults(func=_fit)
    ship.set_defaults(func=_ship)
