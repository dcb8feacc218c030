"""``fusionrt sim``: write a synthetic drive (ROS 2 bag, MCAP storage) with its rig.

Example::

    fusionrt sim --out drives/fog --duration 30 --seed 7 --condition fog \\
        --fail radar@10s-15s --fail-mode garbage
    fusionrt sim --out drives/dirty --duration 20 --seed 8 --fail lidar@4s-16s \\
        --fail-mode degraded --announce-delay 1-3 --announce-miss 0.1 --false-alarms 20
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fusionrt.runtime.errors import ConfigError
from fusionrt.sim.conditions import CONDITIONS, FAILURE_MODES, parse_failure
from fusionrt.sim.config import DiagnosticsConfig, SimConfig
from fusionrt.sim.rig import SENSOR_ALIASES

__all__ = ["add_commands", "config_from_args"]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` command."""
    p = subparsers.add_parser(
        "sim",
        help="write a synthetic drive (ROS 2 bag, MCAP) with ground truth",
        description=(
            "Simulate a drive through a seeded road scene and record a ROS 2 bag (MCAP storage): "
            "front camera (JPEG), top lidar and front radar (PointCloud2), CAN frames, text log, "
            "ground-truth boxes and ego poses; the rig YAML and a candump log are written beside "
            "it. The same options give the same bytes."
        ),
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of driving (default 30)")
    p.add_argument("--seed", type=int, default=7, help="scene and noise seed (default 7)")
    p.add_argument(
        "--condition", choices=tuple(CONDITIONS), default="clear", help="weather / light"
    )
    p.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="SENSOR@STARTs-ENDs",
        help="a sensor failing for an interval, e.g. radar@10s-15s (camera, lidar, radar, can, "
        "log or a rig sensor name); repeatable",
    )
    p.add_argument(
        "--fail-mode",
        choices=FAILURE_MODES,
        default="silent",
        help="silent: no messages; garbage: messages with random payload; corrupt: undecodable "
        "message bytes; degraded: plausible but wrong data (camera, lidar, radar), announced "
        "late by the car's self-diagnostics (default silent)",
    )
    p.add_argument(
        "--diagnostics",
        action="store_true",
        help="the car's sensor self-diagnostics (DTCs on the log and CAN, false alarms); on by "
        "default with --fail-mode degraded",
    )
    defaults = DiagnosticsConfig()
    p.add_argument(
        "--announce-delay",
        default="{}-{}".format(*defaults.delay_s),
        metavar="LO-HI",
        help="seconds from a degraded sensor's fault to its announcement, uniform "
        "(default %(default)s)",
    )
    p.add_argument(
        "--announce-miss",
        type=float,
        default=defaults.miss_probability,
        help="probability that a fault is never announced (default %(default)s)",
    )
    p.add_argument(
        "--false-alarms",
        type=float,
        default=defaults.false_alarms_per_hour,
        help="false announcements per hour and sensor (default %(default)s)",
    )
    p.add_argument(
        "--camera-size", default="960x540", metavar="WxH", help="camera resolution (960x540)"
    )
    p.add_argument("--camera-rate", type=float, default=15.0, help="camera Hz, 12-30 (15)")
    p.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality 1-100 (85)")
    p.add_argument("--lidar-beams", type=int, choices=(16, 32, 64), default=32, help="(32)")
    p.add_argument(
        "--lidar-columns", type=int, default=1024, help="lidar firings per revolution (1024)"
    )
    p.add_argument("--radar-rate", type=float, default=16.0, help="radar Hz, 13-20 (16)")
    p.add_argument("--no-compress", action="store_true", help="store MCAP chunks uncompressed")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier drive in --out")
    p.set_defaults(func=_run_sim)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The :class:`SimConfig` of parsed ``fusionrt sim`` arguments (``ConfigError`` if bad)."""
    try:
        width, height = (int(v) for v in str(args.camera_size).lower().split("x"))
    except ValueError:
        raise ConfigError(
            f"--camera-size must look like 960x540, got {args.camera_size!r}", key="camera-size"
        ) from None
    aliases = {**SENSOR_ALIASES}
    try:
        failures = tuple(parse_failure(f, args.fail_mode, aliases) for f in args.fail)
        diagnostics = None
        if args.diagnostics or args.fail_mode == "degraded":
            diagnostics = DiagnosticsConfig(
                delay_s=_interval(args.announce_delay),
                miss_probability=args.announce_miss,
                false_alarms_per_hour=args.false_alarms,
            )
        return SimConfig(
            duration_s=args.duration,
            seed=args.seed,
            condition=args.condition,
            failures=failures,
            diagnostics=diagnostics,
            camera_width=width,
            camera_height=height,
            camera_rate_hz=args.camera_rate,
            jpeg_quality=args.jpeg_quality,
            lidar_beams=args.lidar_beams,
            lidar_columns=args.lidar_columns,
            radar_rate_hz=args.radar_rate,
            compress=not args.no_compress,
        )
    except ValueError as e:
        raise ConfigError(str(e), key="sim") from None


def _interval(text: str) -> tuple[float, float]:
    """``"1-3"`` → ``(1.0, 3.0)``; ``ValueError`` naming the option otherwise."""
    try:
        lo, hi = (float(v) for v in str(text).split("-"))
    except ValueError:
        raise ValueError(f"--announce-delay must look like 1-3 (seconds), got {text!r}") from None
    return lo, hi


def _run_sim(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    start = time.perf_counter()
    from fusionrt.sim.recorder import record_drive  # noqa: PLC0415  (heavy: only this command)

    summary = record_drive(config, args.out, overwrite=args.overwrite, workers=args.workers)
    elapsed = time.perf_counter() - start
    print(f"wrote {summary.bag} ({summary.bag_bytes / 1e6:.1f} MB) in {elapsed:.1f} s")
    width = max(len(t) for t in summary.counts)
    for topic in sorted(summary.counts):
        print(f"  {topic.ljust(width)}  {summary.counts[topic]:6d} messages")
    print(f"rig: {summary.out / 'rig.yaml'}")
    return 0
