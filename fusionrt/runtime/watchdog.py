"""Deadlines on plugin calls: daemon worker threads, hung calls abandoned, sensors quarantined.

A sensor plugin is third-party code on the hot path; one that never returns must cost its own
message or frame, not the run. Two pieces:

* :class:`DaemonPool` runs calls on a fixed number of **daemon** threads. The caller waits on
  the returned future with a deadline; a call past it is :meth:`~DaemonPool.abandon` ed: its
  thread is retired (it exits when the call returns, if ever) and a fresh one takes its place,
  so the pool keeps its size. Shutdown never joins a busy thread, and daemon threads do not
  keep the interpreter alive: a plugin stuck forever cannot stop the process from exiting.
* :class:`PluginHealth` counts each sensor's timeouts and quarantines the sensor after
  ``quarantine_after`` of them: its plugin is no longer called for the rest of the run.

Why threads and not a process per plugin: a process boundary could kill a hung call, but it
costs a copy of every message in and every tensor out (megabytes per frame for cameras and
lidar) and a serialisation of both, on every frame. Threads cost nothing per call beyond the
hand-off the pipeline already pays. Their price: an abandoned call keeps running until it
returns (holding its memory and, in pure-Python loops, a share of the GIL), and a plugin stuck
inside a C call that holds the GIL would stall every thread — no Python runtime can interrupt
that; only the process boundary could.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["DaemonPool", "PluginHealth"]

logger = logging.getLogger("fusionrt.watchdog")

_T = TypeVar("_T")
_STOP = None  # a worker that takes this from the queue exits


class DaemonPool:
    """A fixed-size pool of daemon threads whose hung calls can be abandoned.

    ``submit(fn, *args)`` returns a :class:`~concurrent.futures.Future`; ``abandon(future)``
    replaces the thread running it. ``shutdown()`` asks idle threads to exit and returns at
    once.
    """

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.name = name
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[Future[Any], threading.Thread] = {}
        self._retired: set[threading.Thread] = set()
        self._threads: list[threading.Thread] = []
        self._started = 0
        self._closed = False
        for _ in range(workers):
            self._start_worker()

    @property
    def abandoned(self) -> int:
        """Threads retired because their call overran (some may still be running it)."""
        return len(self._retired)

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Queue ``fn(*args)``; its future."""
        future: Future[_T] = Future()
        self._tasks.put((future, fn, args))
        return future

    def abandon(self, future: Future[Any]) -> None:
        """Give up on ``future``: cancel it if not started, else retire its thread and start a
        replacement. The call's eventual result is discarded."""
        if future.cancel():
            return
        with self._lock:
            thread = self._running.pop(future, None)
            if thread is None or thread in self._retired:
                return  # it finished meanwhile, or was already abandoned
            self._retired.add(thread)
            self._threads.remove(thread)
            if not self._closed:
                self._start_worker()
        logger.debug("%s: abandoned a call on %s", self.name, thread.name)

    def shutdown(self) -> None:
        """Stop the idle workers; never waits for a busy one (they are daemons)."""
        with self._lock:
            self._closed = True
            count = len(self._threads)
        for _ in range(count):
            self._tasks.put(_STOP)
        while True:  # queued calls never run: their callers are told so
            try:
                task = self._tasks.get_nowait()
            except queue.Empty:
                break
            if task is _STOP:
                self._tasks.put(_STOP)
                break
            task[0].cancel()

    def _start_worker(self) -> None:
        self._started += 1
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{self._started}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self._running[future] = me
            try:
                result = fn(*args)
            except BaseException as exc:
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            with self._lock:
                self._running.pop(future, None)
                retired = me in self._retired
            if retired:
                return  # abandoned: the caller moved on and the result means nothing now
            if outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])


class PluginHealth:
    """Timeouts per sensor and the quarantine that follows repeated ones (thread-safe)."""

    def __init__(self, quarantine_after: int) -> None:
        if quarantine_after < 1:
            raise ValueError(f"quarantine_after must be >= 1, got {quarantine_after}")
        self.quarantine_after = quarantine_after
        self.timeouts: Counter[str] = Counter()
        self.quarantined: set[str] = set()
        self._lock = threading.Lock()

    def timed_out(self, sensor: str) -> bool:
        """Count one timeout of ``sensor``; ``True`` when this one quarantines it."""
        with self._lock:
            self.timeouts[sensor] += 1
            if sensor in self.quarantined or self.timeouts[sensor] < self.quarantine_after:
                return False
            self.quarantined.add(sensor)
            return True

    def is_quarantined(self, sensor: str) -> bool:
        """Whether ``sensor``'s plugin is no longer called."""
        return sensor in self.quarantined
