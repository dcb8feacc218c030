"""The ``fusionrt`` command.

Each command family lives in its own module exposing ``add_commands(subparsers)``, imported
only when one of its commands runs: :data:`COMMANDS` names every command's module and help
line, so that ``fusionrt --version``, ``fusionrt --help`` and ``fusionrt plugins`` do not import
OpenCV, the simulator or the ROS type system. This module holds the global options, the
``plugins`` family and the error policy: a ``FusionError`` prints one line and exits 1 (with
``--debug``, the traceback); Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import fusionrt
from fusionrt.runtime.errors import FusionError

if TYPE_CHECKING:
    from fusionrt.runtime.registry import Registry

__all__ = ["COMMANDS", "Command", "build_parser", "main", "registry_from_args"]


class Command(NamedTuple):
    """A command: its name, the module whose ``add_commands`` defines it, its help line."""

    name: str
    module: str
    help: str


_ENGINES = "fusionrt.runtime.engines.cli"
_RUN = "fusionrt.runtime.run_cli"
#: Every command, in the order of ``fusionrt --help``, one entry each. The help line is what
#: ``--help`` lists without importing the module (a test keeps it equal to the module's own).
COMMANDS: tuple[Command, ...] = (
    Command("plugins", __name__, "list, check and create plugins"),
    Command(
        "replay-samples",
        "fusionrt.runtime.sample_replay",
        "decode and preprocess every installed sensor's sample data, with timings",
    ),
    Command("calib", "fusionrt.calibration.cli", "show a rig, check a calibration on real data"),
    Command("export", _ENGINES, "export a PyTorch model to a verified, simplified ONNX file"),
    Command(
        "trt-check",
        _ENGINES,
        "check an ONNX model against TensorRT's ONNX parser rules (no TensorRT needed)",
    ),
    Command("quantize", _ENGINES, "INT8 post-training quantisation to a TensorRT-ready Q/DQ ONNX"),
    Command("build-engine", _ENGINES, "prebuild and cache the TensorRT engine of an ONNX model"),
    Command("backends", _ENGINES, "which inference backends run here, and why"),
    Command(
        "sim", "fusionrt.sim.cli", "write a synthetic drive (ROS 2 bag, MCAP) with ground truth"
    ),
    Command("run", _RUN, "replay a drive through a pipeline (detections, MCAP, video, report)"),
    Command("bench", _RUN, "measure the hot path: overhead, pipelining, real-time factor, jitter"),
    Command(
        "serve",
        "fusionrt.runtime.serve_cli",
        "run a pipeline live: sensor streams in, detections out, until stopped",
    ),
    Command(
        "fleet", "fusionrt.fleet.cli", "replay many drives on Ray and compare runs (extra 'ray')"
    ),
    Command(
        "train",
        "fusionrt.plugins.models.reference.train.cli",
        "simulate drives, train and ship the reference model (train extra)",
    ),
    Command(
        "eval",
        "fusionrt.plugins.models.reference.eval.cli",
        "nuScenes-style mAP of the reference model on recorded drives with ground truth",
    ),
    Command(
        "mcap-recover",
        "fusionrt.plugins.sinks.mcap_recover",
        "rewrite a partial MCAP (a killed or failed run's) as a complete, indexed one",
    ),
    Command(
        "play",
        "fusionrt.plugins.ros2.play",
        "publish a recorded drive onto ROS 2 over Zenoh (like ros2 bag play)",
    ),
)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of ``argv``: the family of its command imported, every other command a
    stand-in that shows its name and help line.

    Finding the command parses ``argv`` once with stand-ins only, so ``--version``,
    ``--help`` and an unknown command are answered (and exit) there, before any import.
    """
    known, _ = _parser(None).parse_known_args(argv)
    module = next((c.module for c in COMMANDS if c.name == known.command), None)
    return _parser(module)


def _parser(family: str | None) -> argparse.ArgumentParser:
    """The global options, then every command: those of ``family`` defined by its module."""
    parser = argparse.ArgumentParser(
        prog="fusionrt",
        description="Plugin-based sensor fusion runtime for autonomous perception.",
    )
    parser.add_argument("--version", action="version", version=f"fusionrt {fusionrt.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load this plugin (entry-point or built-in module name); repeatable",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    loaded = False
    for command in COMMANDS:
        if command.module != family:
            # a stand-in that takes any arguments: enough to find the command and list it
            subparsers.add_parser(command.name, help=command.help, add_help=False)
        elif not loaded:  # the family's commands, where its first one is listed
            module = (
                sys.modules[__name__] if family == __name__ else importlib.import_module(family)
            )
            module.add_commands(subparsers)
            loaded = True
    return parser


def registry_from_args(args: argparse.Namespace) -> Registry:
    """The plugin registry, honouring ``--disable-plugin``."""
    from fusionrt.runtime.registry import Registry  # noqa: PLC0415  (not for --version)

    return Registry.create(disabled=args.disable_plugin)


# -- fusionrt plugins ---------------------------------------------------------------------


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt plugins`` (list, ``check``, ``new``)."""
    plugins = subparsers.add_parser(
        "plugins", help="list, check and create plugins", description="List installed plugins."
    )
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(func=_list_plugins)
    actions = plugins.add_subparsers(dest="plugins_command", metavar="ACTION")

    check = actions.add_parser("check", help="run the conformance kit on an installed sensor")
    check.add_argument("name", help="sensor component name, e.g. camera")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_check_plugin)

    new = actions.add_parser("new", help="write a ready-to-install plugin package")
    new.add_argument("name", help="component name, e.g. thermal (package fusionrt-thermal)")
    new.add_argument("--kind", choices=("sensor",), default="sensor", help="component kind")
    new.add_argument("--dir", type=Path, default=Path("."), help="parent directory")
    new.set_defaults(func=_new_plugin)


def _list_plugins(args: argparse.Namespace) -> int:
    from fusionrt.runtime.text_table import format_table  # noqa: PLC0415

    registry = registry_from_args(args)
    components = [c.to_dict() for c in registry.components()]
    if args.json:
        plugins = [
            {
                "name": p.name,
                "distribution": p.distribution,
                "version": p.version,
                "entry_point": p.entry_point,
            }
            for p in registry.plugins()
        ]
        print(json.dumps({"plugins": plugins, "components": components}, indent=2))
        return 0
    columns = ("kind", "name", "plugin", "distribution", "version")
    rows = [[str(c[k] or "") for k in columns] for c in components]
    print(format_table(columns, rows))
    disabled = sorted(registry.disabled)
    if disabled:
        print(f"disabled: {', '.join(disabled)}")
    return 0


def _check_plugin(args: argparse.Namespace) -> int:
    from fusionrt.runtime.testing import check_sensor_plugin  # noqa: PLC0415  (only here)
    from fusionrt.runtime.text_table import format_table  # noqa: PLC0415

    info = registry_from_args(args).component("sensor", args.name)
    sensor = info.cls()
    report = check_sensor_plugin(sensor)
    if args.json:
        results = [
            {"check": r.name, "status": r.status, "detail": r.detail, "contract": r.contract}
            for r in report.results
        ]
        print(json.dumps({"sensor": args.name, "passed": report.passed, "checks": results}))
    else:
        rows = [[r.name, r.status, r.detail or r.contract] for r in report.results]
        print(f"sensor {args.name!r} from {info.plugin.distribution} ({info.plugin.name})")
        print(format_table(("check", "status", "detail"), rows))
        print("PASSED" if report.passed else f"FAILED: {len(report.failures())} check(s)")
    return 0 if report.passed else 1


def _new_plugin(args: argparse.Namespace) -> int:
    from fusionrt.runtime.scaffold import write_sensor_plugin  # noqa: PLC0415  (only here)

    root = write_sensor_plugin(args.name, args.dir)
    print(f"wrote {root}")
    print(f"next: pip install -e {root} && fusionrt plugins check {args.name}")
    return 0


# -- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fusionrt`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    if hasattr(signal, "SIGXFSZ"):
        # past a file-size limit (ulimit -f) a write then fails with EFBIG, which the sinks
        # report, instead of the signal killing the process with its files unfinished
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return int(args.func(args))
    except FusionError as exc:
        if args.debug:
            raise
        print(f"fusionrt: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fusionrt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
