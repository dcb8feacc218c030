"""The session guard on real processes (no Ray): an orphan that ignores SIGTERM and leaves its
process group, as Ray's agents and workers do, is killed when the guard's parent is SIGKILLed,
when the parent lets go, and when the guarded command dies on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from process_tree import TreeWatch

from fusionrt.fleet.session_guard import start_guard

#: The guarded command: starts an orphan (its own process group, SIGTERM ignored) whose pid
#: lands in PIDS, then sleeps, or exits with status 3 when asked to ("exit" as argument).
COMMAND = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    orphan = '''
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.setpgrp()
    pid = os.fork()
    if pid:  # the middle process exits: the grandchild is an orphan
        open(sys.argv[1], "w").write(f"{pid} {os.getpid()}")
        os._exit(0)
    time.sleep(600)
    '''
    subprocess.run([sys.executable, "-c", orphan, sys.argv[1]], check=True)
    while not os.path.getsize(sys.argv[1]):
        time.sleep(0.05)
    if sys.argv[2] == "exit":
        sys.exit(3)
    time.sleep(600)
    """
)
#: A parent that starts the guard and sleeps until it is killed.
PARENT = textwrap.dedent(
    """
    import sys, time
    from fusionrt.fleet.session_guard import start_guard
    start_guard([sys.executable, "-c", sys.argv[1], sys.argv[2], "sleep"], remove=sys.argv[3])
    time.sleep(600)
    """
)


def _orphan(pids_file: Path, timeout_s: float = 30.0) -> tuple[int, int]:
    """The orphan's pid and the pid of the middle process that left it."""
    deadline = time.monotonic() + timeout_s
    while not (pids_file.is_file() and pids_file.read_text()):
        assert time.monotonic() < deadline, "the orphan did not start"
        time.sleep(0.05)
    orphan, middle = (int(word) for word in pids_file.read_text().split())
    return orphan, middle


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_of_the_parent_kills_the_whole_session(tmp_path):
    pids_file = tmp_path / "pids"
    pids_file.touch()
    removed = tmp_path / "scratch"
    removed.mkdir()
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, COMMAND, str(pids_file), str(removed)],
        start_new_session=True,
    )
    with TreeWatch(parent.pid) as watch:
        orphan, middle = _orphan(pids_file)
        while (orphan_parent := _parent(orphan)) == middle:
            time.sleep(0.05)  # until the middle process is gone
        watch.sample()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    try:
        guards = [p for p in watch.seen.values() if "-m fusionrt.fleet.session_guard" in p.name]
        assert [g.pid for g in guards] == [orphan_parent]  # the guard adopted the orphan
        assert not watch.wait_until_gone(15.0)
        assert not _alive(orphan) and not removed.exists()
    finally:
        watch.kill_survivors()


def test_letting_go_stops_the_command_and_kills_what_ignores_sigterm(tmp_path):
    pids_file = tmp_path / "pids"
    pids_file.touch()
    guard = start_guard([sys.executable, "-c", COMMAND, str(pids_file), "sleep"])
    with TreeWatch(guard.pid) as watch:
        orphan, _ = _orphan(pids_file)
    try:
        assert guard.stdin is not None
        guard.stdin.close()
        assert guard.wait(timeout=30) == 0
        assert not _alive(orphan) and not watch.wait_until_gone(15.0)
    finally:
        watch.kill_survivors()


def test_a_command_that_dies_takes_its_session_down_and_fails_the_guard(tmp_path):
    pids_file = tmp_path / "pids"
    pids_file.touch()
    guard = start_guard([sys.executable, "-c", COMMAND, str(pids_file), "exit"])
    with TreeWatch(guard.pid) as watch:
        orphan, _ = _orphan(pids_file)
    try:
        assert guard.wait(timeout=30) == 1
        assert not _alive(orphan) and not watch.wait_until_gone(15.0)
    finally:
        watch.kill_survivors()
        if guard.stdin is not None:
            guard.stdin.close()
