"""The ``fusionrt`` command.

Each command family lives in its own module exposing ``add_commands(subparsers)``; this module
holds the global options, the ``plugins`` family and the error policy: a ``FusionError`` prints
one line and exits 1 (with ``--debug``, the traceback); Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import fusionrt
from fusionrt.runtime.errors import FusionError
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.text_table import format_table

#: Modules that contribute command families (``add_commands(subparsers)``).
COMMAND_MODULES: tuple[str, ...] = (
    "fusionrt.runtime.sample_replay",
    "fusionrt.calibration.cli",
    "fusionrt.runtime.engines.cli",
    "fusionrt.sim.cli",
    "fusionrt.runtime.run_cli",
    "fusionrt.runtime.serve_cli",
    "fusionrt.fleet.cli",
    "fusionrt.plugins.models.reference.train.cli",
    "fusionrt.plugins.models.reference.eval.cli",
    "fusionrt.plugins.sinks.mcap_recover",
    "fusionrt.plugins.ros2.play",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
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
    _add_plugin_commands(subparsers)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(subparsers)
    return parser


def registry_from_args(args: argparse.Namespace) -> Registry:
    """The plugin registry, honouring ``--disable-plugin``."""
    return Registry.create(disabled=args.disable_plugin)


# -- fusionrt plugins ---------------------------------------------------------------------


def _add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
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
    parser = build_parser()
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
