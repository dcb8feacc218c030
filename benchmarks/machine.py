"""What a benchmark result was measured on: the CPU model and the versions of packages.

Imported by its plain name, like ``timing`` (benchmarks run as scripts).
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, ``None`` when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
