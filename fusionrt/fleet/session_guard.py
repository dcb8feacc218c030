"""A guard process that runs a command in a session of its own and takes the whole session
down when its parent goes away, however it goes (exit, crash, SIGKILL).

``python -m fusionrt.fleet.session_guard [--remove DIR] -- COMMAND...`` is started by
:func:`start_guard` with ``start_new_session=True`` (so the guard leads a new session) and a
pipe on its stdin whose write end only the parent holds. The guard:

1. makes itself the *child subreaper* of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``),
   so a process orphaned inside the session is re-parented to the guard, not to ``init``, and
   the guard reaps it (no zombies left on containers whose ``init`` does not reap);
2. runs ``COMMAND`` as its child, in its session;
3. waits until its stdin reaches end of file — the kernel closes the parent's end when the
   parent exits for any reason, SIGKILL included — or until ``COMMAND`` exits, or until it is
   sent SIGTERM;
4. sends ``COMMAND`` SIGTERM and gives it :data:`GRACE_S` to stop what it started, then
   SIGKILLs every process still in the session (:func:`kill_session`), reaps them and removes
   ``--remove DIR``. It exits 0, or 1 when ``COMMAND`` ended on its own with a failure or a
   process of the session could not be killed.

Why by hand: Ray's own fate sharing (``PR_SET_PDEATHSIG`` on the processes a node starts)
covers only direct children; the raylet's ``DashboardAgent`` and ``RuntimeEnvAgent`` outlive
it and ignore SIGTERM. A session holds every process its members start unless one calls
``setsid`` (Ray's workers only change their process group), so the session is the unit to
kill. The end-of-file signal is the one Ray's own ``ray_process_reaper`` uses; a parent-death
signal (``PR_SET_PDEATHSIG``) would fire when the parent *thread* that started the guard ends,
which is not the driver's end. Linux only (``/proc``, ``prctl``), as Ray's local clusters are
here.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

__all__ = ["GRACE_S", "kill_session", "session_members", "start_guard"]

#: Seconds ``COMMAND`` has to stop after SIGTERM before its session is killed.
GRACE_S = 10.0
#: Seconds the SIGKILLed session has to disappear (uninterruptible sleep can delay a kill).
_KILL_WAIT_S = 10.0
_PR_SET_CHILD_SUBREAPER = 36


def session_members(sid: int, *, exclude: int | None = None) -> list[int]:
    """Pids of the live (not zombie) processes of session ``sid``, from ``/proc``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, session
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry))
    return members


def kill_session(
    sid: int, *, timeout_s: float = _KILL_WAIT_S, reap: Callable[[], None] | None = None
) -> list[int]:
    """SIGKILL every process of session ``sid`` but the caller until none is left (or
    ``timeout_s`` passed); returns the pids still alive (empty when the session is gone).
    ``reap`` collects the exited children of the caller (the guard reaps its session)."""
    deadline = time.monotonic() + timeout_s
    while True:
        members = session_members(sid, exclude=os.getpid())
        if not members or time.monotonic() > deadline:
            return members
        for pid in members:
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signal.SIGKILL)
        if reap is not None:
            reap()
        time.sleep(0.05)


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def start_guard(
    command: Sequence[str],
    *,
    remove: Path | None = None,
    log: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the guard running ``command`` (see the module docstring); its stdin is the pipe
    whose closing stops it: close ``guard.stdin`` to stop it, or just exit."""
    argv = [sys.executable, "-m", "fusionrt.fleet.session_guard"]
    if remove is not None:
        argv += ["--remove", str(remove)]
    return subprocess.Popen(
        [*argv, "--", *command],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        env=env,
        start_new_session=True,
        close_fds=True,
    )


class _Children:
    """The guard's children: ``COMMAND`` and every orphan of the session re-parented to the
    guard. :meth:`reap` collects all that exited, keeping ``COMMAND``'s exit status (so no
    other wait may run: ``subprocess`` would lose it)."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self.status: int | None = None

    def reap(self) -> None:
        while True:
            try:
                pid, raw = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.command.pid:
                self.status = self.command.returncode = os.waitstatus_to_exitcode(raw)

    def stop_command(self, grace_s: float) -> None:
        """SIGTERM ``COMMAND`` (unless it ended) and wait up to ``grace_s`` for it."""
        if self.status is None:
            os.kill(self.command.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.status is None and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)


def _guard(command: Sequence[str], remove: Path | None) -> int:
    _become_subreaper()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def parent_gone() -> None:
        # a raw read: a buffered stdin's lock, held by this thread, would abort the exit
        while os.read(sys.stdin.fileno(), 65536):
            pass  # the parent never writes; anything read is ignored
        stop.set()

    threading.Thread(target=parent_gone, daemon=True).start()
    children = _Children(command)
    while not stop.wait(0.2):
        children.reap()  # orphans that exit while the command runs, and the command itself
        if children.status is not None:
            break
    ended_by_itself = children.status is not None
    children.stop_command(GRACE_S)
    left = kill_session(os.getsid(0), reap=children.reap)
    if remove is not None:
        shutil.rmtree(remove, ignore_errors=True)
    if left:
        print(f"session_guard: processes {left} did not die", file=sys.stderr)
        return 1
    return 1 if ended_by_itself and children.status != 0 else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionrt.fleet.session_guard")
    parser.add_argument("--remove", type=Path, default=None, help="folder removed at the end")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to guard")
    return _guard(command, args.remove)


if __name__ == "__main__":
    sys.exit(main())
