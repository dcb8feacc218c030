"""``argparse`` types for the counts and rates of the commands (``--workers``, ``--rate``...).

A count of 0 or a rate of ``nan`` is not a smaller run: ``--max-frames 0`` would replay nothing
and report "the drive has no ground truth", ``--workers 0`` would fall back to the file's value.
These types refuse such values while the command line is parsed, so the user reads
``argument --workers: must be an integer >= 1, got '0'`` before anything starts.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["max_gap", "positive_int", "positive_number"]


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
