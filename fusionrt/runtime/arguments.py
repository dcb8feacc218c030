"""``argparse`` types for the counts and rates of the commands (``--workers``, ``--rate``...),
and the drive arguments (``--source``, ``--source-kind``) the replaying commands share.

A count of 0 or a rate of ``nan`` is not a smaller run: ``--max-frames 0`` would replay nothing
and report "the drive has no ground truth", ``--workers 0`` would fall back to the file's value.
These types refuse such values while the command line is parsed, so the user reads
``argument --workers: must be an integer >= 1, got '0'`` before anything starts.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = [
    "add_source_arguments",
    "add_source_kind_argument",
    "max_gap",
    "positive_int",
    "positive_number",
]


def positive_int(text: str) -> int:
    """An integer >= 1 (threads, frames, strides)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def positive_number(text: str) -> float:
    """A finite number > 0 (rates, tolerances)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def max_gap(text: str) -> float | None:
    """Seconds > 0, or ``none`` (no limit): the longest sleep through one recording gap."""
    if text.strip().lower() == "none":
        return None
    return positive_number(text)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--source PATH`` and ``--source-kind NAME``, as run, bench and fleet run take them."""
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="the drive: a ROS 2 bag (folder, .mcap or .db3 file, or a folder holding bag/), a "
        "KITTI or nuScenes folder, or anything an installed source opens",
    )
    add_source_kind_argument(parser)


def add_source_kind_argument(parser: argparse.ArgumentParser) -> None:
    """``--source-kind NAME``: the source that opens the drive (default: the one that can)."""
    parser.add_argument(
        "--source-kind",
        default=None,
        metavar="NAME",
        help="open the drive with this source (rosbag, kitti, nuscenes, a plugin's; see "
        "'fusionrt plugins'); default: the one installed source that can open it",
    )
