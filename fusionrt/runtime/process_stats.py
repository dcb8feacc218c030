"""This process's start time and peak memory, read from Linux ``/proc`` where it is there.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is not this process's own peak on Linux: a
child inherits its parent's high-water mark at ``fork`` (so fusionrt started by a large
Python program reported the parent's 828 MiB instead of its own 172 MiB). ``VmHWM`` in
``/proc/self/status`` belongs to the process's own address space, which ``exec`` replaces.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

__all__ = ["peak_rss_mb", "process_start_time"]


def process_start_time() -> float | None:
    """The process's start on the ``time.time()`` clock (Linux ``/proc``), else ``None``."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - uptime_s + start_ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB (``VmHWM``; ``ru_maxrss`` elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
