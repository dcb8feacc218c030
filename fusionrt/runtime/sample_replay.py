"""``fusionrt replay-samples``: run every installed sensor's own samples through its hot path.

Decodes each sensor's shipped sample records and preprocesses them for the sensor's default
geometry, timing both stages. It is the quickest way to see that a plugin installs, decodes and
feeds tensors of the right shape, and what each stage costs, without a model or a recording.
"""

from __future__ import annotations

import argparse

from fusionrt.runtime.errors import FusionError
from fusionrt.runtime.metrics import LatencyRecorder
from fusionrt.runtime.registry import Registry


def replay_samples(
    registry: Registry, repeats: int = 20
) -> tuple[list[list[str]], LatencyRecorder]:
    """Decode and preprocess every sensor's samples ``repeats`` times.

    Returns one row per sensor (name, distribution, records, tensors) and the stage timings.
    A sensor that fails is reported in its row; the others still run.
    """
    recorder = LatencyRecorder()
    rows: list[list[str]] = []
    for info in registry.components("sensor"):
        try:
            sensor = info.cls()
            records = sensor.sample_records()
            context = sensor.default_context()
            shapes: dict[str, tuple[int, ...]] = {}
            for _ in range(repeats):
                for record in records:
                    with recorder.time(f"decode.{info.name}"):
                        message = sensor.decode(record)
                    with recorder.time(f"preprocess.{info.name}"):
                        tensors = sensor.preprocess(message, context)
                    shapes = {name: array.shape for name, array in tensors.items()}
        except FusionError as exc:
            rows.append([info.name, info.plugin.distribution, "-", f"ERROR {exc}"])
            continue
        described = ", ".join(f"{name} {'x'.join(map(str, s))}" for name, s in shapes.items())
        rows.append([info.name, info.plugin.distribution, str(len(records)), described])
    return rows, recorder


def _run(args: argparse.Namespace) -> int:
    from fusionrt.runtime.cli import registry_from_args  # noqa: PLC0415
    from fusionrt.runtime.text_table import format_table  # noqa: PLC0415

    rows, recorder = replay_samples(registry_from_args(args), args.repeats)
    print(format_table(("sensor", "distribution", "records", "tensors"), rows))
    print()
    print(recorder.table())
    return 1 if any(row[3].startswith("ERROR") for row in rows) else 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt replay-samples``."""
    parser = subparsers.add_parser(
        "replay-samples",
        help="decode and preprocess every installed sensor's sample data, with timings",
    )
    parser.add_argument("--repeats", type=int, default=20, help="passes over the samples")
    parser.set_defaults(func=_run)
