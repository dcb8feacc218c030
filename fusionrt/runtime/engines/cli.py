"""Engine commands: ``export``, ``trt-check``, ``quantize``, ``build-engine``, ``backends``.

``fusionrt export`` takes either a model plugin (``--model NAME``: the hook point for model
plugins, see :func:`_model_plugin_network`) or any ``torch.nn.Module`` factory given as
``package.module:callable``. Input specs come from ``--input name=1x3x224x224[:float32]``
(repeatable) or, when absent, from ``INPUT_SPECS`` / ``OUTPUT_SPECS`` in the factory's module.
"""

from __future__ import annotations

import argparse
import importlib
import json
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.arguments import positive_int
from fusionrt.runtime.engines.int8 import CALIBRATION_METHODS
from fusionrt.runtime.errors import ConfigError, EngineError
from fusionrt.runtime.messages import TensorSpec


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the engine commands on the ``fusionrt`` parser."""
    export = subparsers.add_parser(
        "export",
        help="export a PyTorch model to a verified, simplified ONNX file",
        description="torch → ONNX (opset 17, static shapes), onnxslim, onnx.checker, "
        "and ONNX Runtime vs PyTorch verification on sample inputs.",
    )
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("factory", nargs="?", help="package.module:callable returning an nn.Module")
    target.add_argument("--model", help="name of a model plugin providing torch_module()")
    export.add_argument("-o", "--output", type=Path, required=True, help="ONNX file to write")
    export.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=DxDx..[:DTYPE]",
        help="an input spec, e.g. camera_image=1x3x160x288:float32 (repeatable)",
    )
    export.add_argument("--outputs", help="comma-separated output names")
    export.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17)")
    export.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    export.add_argument("--no-verify", action="store_true", help="skip the ORT vs torch check")
    export.add_argument("--atol", type=float, default=1e-4)
    export.add_argument("--rtol", type=float, default=1e-3)
    export.set_defaults(func=_export)

    check = subparsers.add_parser(
        "trt-check",
        help="check an ONNX model against TensorRT's ONNX parser rules (no TensorRT needed)",
    )
    check.add_argument("onnx", type=Path)
    check.add_argument(
        "--target",
        choices=("trt10.3", "trt10"),
        default="trt10.3",
        help="trt10.3: JetPack 6's TensorRT (default, stricter); trt10: current 10.x",
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_trt_check)

    quantize = subparsers.add_parser(
        "quantize",
        help="INT8 post-training quantisation to a TensorRT-ready Q/DQ ONNX",
        description="Calibrate on frames of a recorded drive (--drive with --pipeline: the "
        "pipeline's own decode, sync and preprocess) or on .npz frames (--calibration), write a "
        "symmetric-int8 Q/DQ ONNX and check it with trt-check.",
    )
    quantize.add_argument("onnx", type=Path)
    quantize.add_argument("-o", "--output", type=Path, required=True)
    frames = quantize.add_mutually_exclusive_group(required=True)
    frames.add_argument(
        "--drive", type=Path, help="recorded drive to calibrate on (needs --pipeline)"
    )
    frames.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        help=".npz files (one frame each, arrays named like the inputs) or folders of them",
    )
    quantize.add_argument(
        "--pipeline", type=Path, help="pipeline YAML whose sensors and model make the feeds"
    )
    quantize.add_argument(
        "--frames", type=positive_int, default=64, help="calibration frames taken from --drive (64)"
    )
    quantize.add_argument(
        "--stride", type=positive_int, default=3, help="take every K-th frame of --drive (3)"
    )
    quantize.add_argument(
        "--keep-float",
        action="append",
        default=[],
        metavar="NODE",
        help="node name or name prefix kept in float, e.g. /head (repeatable)",
    )
    quantize.add_argument(
        "--method",
        choices=CALIBRATION_METHODS,
        default="percentile",
        help="activation range calibration (default percentile: 99.999th)",
    )
    quantize.set_defaults(func=_quantize)

    build = subparsers.add_parser(
        "build-engine", help="prebuild and cache the TensorRT engine of an ONNX model"
    )
    build.add_argument("onnx", type=Path)
    precision = build.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="FP16 kernels where faster")
    precision.add_argument("--int8", action="store_true", help="INT8 from a Q/DQ ONNX")
    build.add_argument("--cache-dir", type=Path, help="engine cache (default ~/.cache/fusionrt)")
    build.add_argument("--workspace-mib", type=positive_int, default=1024)
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    build.set_defaults(func=_build_engine)

    backends = subparsers.add_parser("backends", help="which inference backends run here, and why")
    backends.add_argument("--json", action="store_true", help="machine-readable output")
    backends.set_defaults(func=_backends)


# -- export -------------------------------------------------------------------------------


def parse_input_spec(text: str) -> TensorSpec:
    """``name=1x3x224x224[:float32]`` → ``TensorSpec``; ``ConfigError`` naming the text."""
    name, sep, rest = text.partition("=")
    shape_text, _, dtype = rest.partition(":")
    try:
        shape = tuple(int(d) for d in shape_text.lower().split("x"))
        if not sep or not name or any(d <= 0 for d in shape):
            raise ValueError(text)
        np.dtype(dtype or "float32")
    except (ValueError, TypeError):
        raise ConfigError(
            "input spec must read NAME=DxDx..[:DTYPE] with positive dimensions",
            value=text,
        ) from None
    return TensorSpec(name, shape, dtype or "float32")


def load_factory(target: str) -> tuple[Callable[[], Any], Any]:
    """Import ``package.module:callable``; returns the callable and its module."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError("factory must read package.module:callable", value=target)
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {target}: {exc}", value=target) from exc
    if not callable(factory):
        raise ConfigError(f"{target} is not callable", value=target)
    return factory, module


def _model_plugin_network(args: argparse.Namespace) -> tuple[Any, list[TensorSpec], list[Any]]:
    """Hook point for model plugins: ``Model.torch_module()`` + the model's specs.

    A model plugin that can be exported implements ``torch_module() -> torch.nn.Module``
    (inputs positional in ``input_specs()`` order, outputs in ``output_specs()`` order) and may
    implement ``sample_feeds() -> list[dict]`` (real frames used to verify the export).
    """
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415

    model = registry_from_args(args).component("model", args.model).cls()
    if not hasattr(model, "torch_module"):
        raise EngineError(
            f"model {args.model!r} has no torch_module() method; it cannot be exported "
            "(ship its ONNX file instead)"
        )
    samples = model.sample_feeds() if hasattr(model, "sample_feeds") else None
    return model.torch_module(), list(model.input_specs()), [list(model.output_specs()), samples]


def _export(args: argparse.Namespace) -> int:
    from fusionrt.runtime.engines.export import export_onnx  # noqa: PLC0415

    samples = None
    if args.model:
        module, input_specs, (outputs, samples) = _model_plugin_network(args)
    else:
        factory, factory_module = load_factory(args.factory)
        input_specs = [parse_input_spec(text) for text in args.input]
        outputs = args.outputs.split(",") if args.outputs else []
        if not input_specs:
            input_specs = list(getattr(factory_module, "INPUT_SPECS", ()))
            outputs = outputs or list(getattr(factory_module, "OUTPUT_SPECS", ()))
        if not input_specs:
            raise ConfigError("give the inputs: --input NAME=DxDx..[:DTYPE] (repeatable)")
        if not outputs:
            raise ConfigError("give the output names: --outputs a,b,c")
        module = factory()
    report = export_onnx(
        module,
        input_specs,
        outputs,
        args.output,
        opset=args.opset,
        simplify=not args.no_simplify,
        verify=not args.no_verify,
        samples=samples,
        atol=args.atol,
        rtol=args.rtol,
    )
    print(
        f"wrote {report.path} (opset {report.opset}, {report.nodes_exported} nodes exported, "
        f"{report.nodes_simplified} after onnxslim; onnx.checker passed)"
    )
    for spec in (*report.input_specs, *report.output_specs):
        print(f"  {spec.name}: {'x'.join(map(str, spec.shape))} {spec.dtype}")
    if report.verification is not None:
        print(f"verified against PyTorch: {report.verification.summary()}")
    return 0


# -- trt-check, quantize, build-engine, backends --------------------------------------------


def _trt_check(args: argparse.Namespace) -> int:
    from fusionrt.runtime.engines.trt_support import check_onnx, format_report  # noqa: PLC0415

    report = check_onnx(args.onnx, target=args.target)
    if args.json:
        print(
            json.dumps(
                {
                    "path": report.path,
                    "target": report.target,
                    "opset": report.opset,
                    "ok": report.ok,
                    "ops": [row.__dict__ for row in report.rows],
                    "findings": [finding.__dict__ for finding in report.findings],
                    "offending_nodes": report.offending_nodes,
                },
                default=list,
            )
        )
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def load_calibration_feeds(paths: list[Path]) -> list[dict[str, np.ndarray]]:
    """Frames from ``.npz`` files (or folders of them), sorted by name."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.npz")) if path.is_dir() else [path])
    if not files:
        raise ConfigError("no .npz calibration frames found", paths=[str(p) for p in paths])
    return [_read_npz(file) for file in files]


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    """The arrays of one ``.npz`` frame; a damaged file or a bare ``.npy`` is a ConfigError."""
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("an .npy array, not an .npz archive of named inputs")
        with loaded:
            return {name: loaded[name] for name in loaded.files}
    # numpy passes on zipfile's and zlib's errors for a damaged archive, EOFError for an empty one
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ConfigError(f"cannot read calibration frame: {reason}", file=str(file)) from None


def _calibration_frames(args: argparse.Namespace) -> list[dict[str, np.ndarray]]:
    """The frames of ``--drive`` through ``--pipeline``, or of ``--calibration``."""
    if args.calibration is not None:
        if args.pipeline is not None:
            raise ConfigError("--pipeline goes with --drive, not with --calibration")
        return load_calibration_feeds(args.calibration)
    if args.pipeline is None:
        raise ConfigError("--drive needs --pipeline PIPELINE.yaml (its sensors and model)")
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415
    from fusionrt.runtime.engines.calibration_feeds import feeds_from_drive  # noqa: PLC0415

    return feeds_from_drive(
        args.pipeline, args.drive, registry_from_args(args), args.frames, args.stride
    )


def _quantize(args: argparse.Namespace) -> int:
    from fusionrt.runtime.engines.int8 import quantize_int8  # noqa: PLC0415
    from fusionrt.runtime.engines.trt_support import check_onnx  # noqa: PLC0415

    feeds = _calibration_frames(args)
    report = quantize_int8(
        args.onnx, args.output, feeds, keep_float=args.keep_float, method=args.method
    )
    print(
        f"wrote {report.path}: {report.qdq_pairs} Q/DQ pairs, {report.quantized_nodes} int8 "
        f"compute nodes, {len(report.float_nodes)} kept in float, "
        f"{report.calibration_frames} calibration frames ({report.method})"
    )
    support = check_onnx(report.path)
    print("trt-check: " + ("PASSED" if support.ok else "FAILED " + str(support.offending_nodes)))
    return 0 if support.ok else 1


def _build_engine(args: argparse.Namespace) -> int:
    from fusionrt.runtime.engines.cache import BuildOptions, Precision  # noqa: PLC0415
    from fusionrt.runtime.engines.tensorrt import (  # noqa: PLC0415
        TensorRTEngine,
        prebuild_engine,
    )

    available, reason = TensorRTEngine.availability()
    if not available:
        raise EngineError(f"cannot build a TensorRT engine here: {reason}", file=str(args.onnx))
    if not args.onnx.is_file():
        raise EngineError("ONNX file not found", file=str(args.onnx))
    precision: Precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    options = BuildOptions(precision=precision, workspace_mib=args.workspace_mib)
    path, status = prebuild_engine(args.onnx, options, cache_dir=args.cache_dir, force=args.force)
    print(f"{status}: {path}")
    return 0


def _backends(args: argparse.Namespace) -> int:
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415
    from fusionrt.runtime.engines.selection import backend_report  # noqa: PLC0415
    from fusionrt.runtime.text_table import format_table  # noqa: PLC0415

    rows, choice = backend_report(registry_from_args(args))
    if args.json:
        print(
            json.dumps(
                {
                    "backends": [row.__dict__ for row in rows],
                    "auto": {"backend": choice.backend.name, "reason": choice.reason},
                }
            )
        )
        return 0
    table = [[r.name, "yes" if r.available else "no", r.reason, r.plugin] for r in rows]
    print(format_table(("backend", "available", "why", "plugin"), table))
    print(f"--backend auto → {choice.backend.name} ({choice.reason})")
    return 0
