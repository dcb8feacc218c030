"""Stopping a run on SIGINT or SIGTERM: the first asks it to finish, a second insists.

systemd, Docker, Kubernetes and Ray stop a process with SIGTERM; a person at a terminal with
Ctrl-C (SIGINT). A run treats both alike: the first signal sets :attr:`StopSignals.event`, the
run finishes the frames in flight, closes every sink (so the MCAP, MP4 and JSONL files are
complete) and writes its report; the command then exits with the conventional status
``128 + signal number`` (130 for SIGINT, 143 for SIGTERM). A second signal raises
:class:`KeyboardInterrupt` at once, for a run that does not stop quickly enough.

Handlers can only be installed from the main thread; elsewhere (a run inside a worker thread
of another program) :class:`StopSignals` installs nothing and the caller's own handling stays.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopSignals", "exit_status"]

logger = logging.getLogger("fusionrt.signals")

#: The signals that stop a run.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """The shell's convention for a process ended by ``signum``: 128 + its number."""
    return 128 + int(signum)


class StopSignals:
    """A context manager that turns SIGINT / SIGTERM into a stop request (see the module).

    ``event`` may be shared with the caller (e.g. a replay that must stop sleeping); ``received``
    is the first signal's number, ``None`` while none came.
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event if event is not None else threading.Event()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set() and self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        logger.warning(
            "%s: finishing the frames in flight and closing the sinks (again to abort)",
            signal.Signals(signum).name,
        )
        self.event.set()
