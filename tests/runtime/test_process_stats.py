"""The report's peak RSS is this process's own, whatever started it."""

from __future__ import annotations

import subprocess
import sys

CHILD = (
    "import resource; from fusionrt.runtime.process_stats import peak_rss_mb; "
    "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
)


def test_peak_rss_is_this_process_not_the_parent():
    ballast = bytearray(600 * 1024 * 1024)  # the parent's high-water mark: 600+ MiB, touched
    ballast[::4096] = b"x" * len(ballast[::4096])
    done = subprocess.run(
        [sys.executable, "-c", CHILD], check=True, capture_output=True, text=True, timeout=60
    )
    ours, inherited = map(float, done.stdout.split())
    assert ours < 300  # a Python interpreter with numpy's import is far below the parent
    assert inherited > 600  # what ru_maxrss says in a child forked from a large process
    del ballast
