"""Replay modes over any source: as fast as possible, real time, or one step at a time.

:class:`Replay` wraps a :class:`~fusionrt.runtime.components.Source` and is itself an iterator
of its :class:`~fusionrt.RawRecord` s — the same objects, never altered, never dropped:

* ``fast`` (the default; evaluation): records as fast as the consumer takes them, no sleeping,
  deterministic;
* ``realtime``: each record is released when ``(stamp_ns - first stamp) / rate`` seconds of
  :func:`time.monotonic` have passed since the first (``rate=2.0``: twice as fast as recorded).
  A consumer slower than the recording is never waited for and nothing is skipped: the replay
  falls behind and catches up where the recording has gaps. A gap that would be slept for more
  than ``max_gap_s`` is slept for ``max_gap_s`` only and the rest skipped (the clock moves on
  with it), reported once per gap through ``on_gap`` and counted in :attr:`Replay.stats`: an
  hour-long pause in a recording does not hold the replay for an hour in silence. A stamp
  earlier than the previous one (after a :meth:`Replay.seek`) restarts the clock there;
* ``step``: no pacing and no read-ahead; the caller advances — ``next(replay)``,
  :meth:`Replay.step` (the next ``count`` records) or :meth:`Replay.advance` (the records of the
  next ``duration_ns`` of the drive).

:meth:`Replay.stop` (or setting the ``stop_event`` given to it, e.g. from a SIGINT handler)
ends the replay at once, also in the middle of a sleep: the next ``next()`` raises
``StopIteration``. A progress bar (tqdm, on stderr) shows records, records per second and the
drive's time; it is off when stderr is not a terminal or with ``progress=False``.
"""

from __future__ import annotations

import enum
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from fusionrt.runtime.components import Source
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.messages import RawRecord

__all__ = ["Replay", "ReplayGap", "ReplayMode", "ReplayStats"]

_POSTFIX_INTERVAL_S = 0.2


class ReplayMode(str, enum.Enum):
    """How a :class:`Replay` releases records."""

    FAST = "fast"
    REALTIME = "realtime"
    STEP = "step"


@dataclass(frozen=True, slots=True)
class ReplayGap:
    """A gap in the recording that real-time pacing skipped: between the records stamped
    ``before_ns`` and ``after_ns``, ``skipped_s`` seconds of waiting were not slept."""

    before_ns: int
    after_ns: int
    skipped_s: float

    @property
    def gap_s(self) -> float:
        """The gap in the recording, in drive seconds."""
        return (self.after_ns - self.before_ns) / 1e9

    def describe(self) -> str:
        """One line for a log."""
        return (
            f"replay skipped {self.skipped_s:.3f} s of a {self.gap_s:.3f} s gap in the recording "
            f"(stamps {self.before_ns} -> {self.after_ns})"
        )


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What a replay has done so far (``gaps`` skipped, ``skipped_s`` not slept in them)."""

    records: int
    wall_s: float
    drive_s: float
    slept_s: float
    gaps: int = 0
    skipped_s: float = 0.0


class Replay(Iterator[RawRecord]):
    """An iterator over ``source.records()`` in one of the :class:`ReplayMode` s.

    ``rate`` (> 0) scales real time. ``max_gap_s`` (> 0, or ``None``: no limit) is the longest
    sleep for one gap in real time; ``on_gap(ReplayGap)`` hears of each gap skipped.
    ``stop_event`` (default: a new one) ends the replay when set; :meth:`stop` sets it.
    ``progress``: ``None`` shows the bar when stderr is a terminal, ``True`` / ``False`` force
    it. ``clock`` defaults to :func:`time.monotonic`; ``sleep`` to waiting on ``stop_event``
    (a ``sleep`` given instead cannot be cut short by :meth:`stop`). Close it (or use
    ``with``) to close the bar; closing the replay does not close the source.
    """

    def __init__(
        self,
        source: Source,
        mode: ReplayMode | str = ReplayMode.FAST,
        *,
        rate: float = 1.0,
        max_gap_s: float | None = 5.0,
        on_gap: Callable[[ReplayGap], Any] | None = None,
        stop_event: threading.Event | None = None,
        progress: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
        stream: TextIO | None = None,
    ) -> None:
        try:
            self.mode = ReplayMode(mode)
        except ValueError:
            raise ConfigError(
                f"unknown replay mode {mode!r} (known: {', '.join(m.value for m in ReplayMode)})",
                key="mode",
            ) from None
        if not rate > 0:  # also rejects NaN
            raise ConfigError(f"replay rate must be > 0, got {rate!r}", key="rate")
        if max_gap_s is not None and not max_gap_s > 0:
            raise ConfigError(f"max_gap_s must be > 0 or None, got {max_gap_s!r}", key="max_gap_s")
        self.source = source
        self.rate = float(rate)
        self.max_gap_s = None if max_gap_s is None else float(max_gap_s)
        self.on_gap = on_gap
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._clock = clock
        self._sleep = sleep if sleep is not None else self.stop_event.wait
        self._records = source.records()
        self._pending: RawRecord | None = None  # read ahead by advance()
        self._step_end: int | None = None  # where the last advance() stopped
        self._anchor: tuple[float, int] | None = None  # (wall time, stamp) of the clock's origin
        self._count = 0
        self._first_stamp: int | None = None
        self._last_stamp: int | None = None
        self._slept_s = 0.0
        self._gaps = 0
        self._skipped_s = 0.0
        self._started: float | None = None
        self._bar = self._progress_bar(progress, stream if stream is not None else sys.stderr)
        self._postfix_at = 0.0

    # progress ------------------------------------------------------------------------------

    def _progress_bar(self, progress: bool | None, stream: TextIO) -> tqdm[Any] | None:
        if progress is None:
            isatty = getattr(stream, "isatty", None)
            progress = bool(isatty and isatty())
        if not progress:
            return None
        total = getattr(self.source, "message_count", None)
        return tqdm(
            total=total if isinstance(total, int) else None,
            desc=f"replay {getattr(self.source, 'name', 'source')} ({self.mode.value})",
            unit="rec",
            file=stream,
            dynamic_ncols=True,
        )

    def _drive_s(self, stamp_ns: int) -> float:
        start = getattr(self.source, "first_stamp_ns", None)
        if not isinstance(start, int):
            start = self._first_stamp if self._first_stamp is not None else stamp_ns
        return (stamp_ns - start) / 1e9

    def _update_bar(self, bar: tqdm[Any], stamp_ns: int) -> None:
        bar.update(1)
        now = self._clock()
        if now - self._postfix_at >= _POSTFIX_INTERVAL_S:
            self._postfix_at = now
            end = getattr(self.source, "last_stamp_ns", None)
            drive = f"drive {self._drive_s(stamp_ns):.2f}"
            if isinstance(end, int):
                drive += f"/{self._drive_s(end):.2f}"
            bar.set_postfix_str(drive + " s", refresh=False)

    # iteration -----------------------------------------------------------------------------

    def __iter__(self) -> Replay:
        return self

    def __next__(self) -> RawRecord:
        if self.stop_event.is_set():
            raise StopIteration
        if self._pending is not None:
            record, self._pending = self._pending, None
        else:
            record = next(self._records)
        if self._started is None:
            self._started = self._clock()
        if self.mode is ReplayMode.REALTIME:
            self._pace(record.stamp_ns)
            if self.stop_event.is_set():  # stopped while it waited: not released
                raise StopIteration
        self._count += 1
        if self._first_stamp is None:
            self._first_stamp = record.stamp_ns
        self._last_stamp = record.stamp_ns
        if self._bar is not None:
            self._update_bar(self._bar, record.stamp_ns)
        return record

    def _pace(self, stamp_ns: int) -> None:
        if self._anchor is None or stamp_ns < self._anchor[1]:
            self._anchor = (self._clock(), stamp_ns)
            return
        wall0, stamp0 = self._anchor
        delay = wall0 + (stamp_ns - stamp0) / 1e9 / self.rate - self._clock()
        if self.max_gap_s is not None and delay > self.max_gap_s:
            skipped = delay - self.max_gap_s
            self._anchor = (wall0 - skipped, stamp0)  # later records keep pace after the gap
            delay = self.max_gap_s
            self._gaps += 1
            self._skipped_s += skipped
            if self.on_gap is not None:
                before = self._last_stamp if self._last_stamp is not None else stamp0
                self.on_gap(ReplayGap(before, stamp_ns, skipped))
        if delay > 0:
            self._sleep(delay)
            self._slept_s += delay

    def step(self, count: int = 1) -> list[RawRecord]:
        """The next ``count`` records (fewer at the end of the drive), paced as the mode says."""
        out: list[RawRecord] = []
        for _ in range(count):
            record = next(self, None)
            if record is None:
                break
            out.append(record)
        return out

    def advance(self, duration_ns: int) -> list[RawRecord]:
        """The records of the next ``duration_ns`` of the drive.

        That is, those with a stamp before ``first + duration_ns``, where ``first`` is the next
        record's stamp (or, after a previous ``advance``, where it stopped). Reads one record
        ahead to know where the step ends; that record starts the next step.
        """
        first = self._peek()
        if first is None:
            return []
        end = (self._step_end if self._step_end is not None else first.stamp_ns) + duration_ns
        out: list[RawRecord] = []
        while (pending := self._peek()) is not None and pending.stamp_ns < end:
            out.append(next(self))
        self._step_end = end
        return out

    def _peek(self) -> RawRecord | None:
        if self._pending is None:
            self._pending = next(self._records, None)
        return self._pending

    def stop(self) -> None:
        """End the replay now, also from another thread or a signal handler: a sleep in
        progress returns at once and ``next()`` raises ``StopIteration`` from then on."""
        self.stop_event.set()

    def seek(self, start_ns: int) -> None:
        """Jump to ``start_ns`` (sources with a ``seek`` method); real-time pacing restarts."""
        seek = getattr(self.source, "seek", None)
        if seek is None:
            raise ConfigError(f"source {self.source.name!r} cannot seek", key="seek")
        seek(start_ns)
        self._pending = None
        self._anchor = None
        self._step_end = None

    # reporting -----------------------------------------------------------------------------

    @property
    def stats(self) -> ReplayStats:
        """Records released, wall time since the first, drive time covered, time slept, gaps
        skipped and the time not slept in them."""
        wall = 0.0 if self._started is None else self._clock() - self._started
        drive = 0.0
        if self._first_stamp is not None and self._last_stamp is not None:
            drive = (self._last_stamp - self._first_stamp) / 1e9
        return ReplayStats(self._count, wall, drive, self._slept_s, self._gaps, self._skipped_s)

    def close(self) -> None:
        """Close the progress bar (the source stays open)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Replay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
