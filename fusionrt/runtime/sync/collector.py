"""Bounded-latency frame collection on a virtual clock (the "concatenate and time-sync" idea).

A frame is opened by each message of a reference sensor (its stamp is the frame stamp) or, in
fixed-rate mode, by each tick ``phase_ns + k × period_ns`` the virtual clock reaches. Every other
sensor joins with its message nearest to the frame stamp within its tolerance (ties go to the
earlier message). A frame is emitted

* as soon as it is **complete**: for every sensor the choice is final, because the sensor's
  stream has moved far enough past the frame stamp that no later message can be nearer (or can
  still fall inside the tolerance window) — or, for a sensor with a ``min_period_ns`` (the least
  spacing of its stamps, a promise about the sensor), because its next message, at least that
  far after its last one, cannot be nearer: the frame need not wait for that message; or
* when its **deadline** ``stamp + timeout_ns`` is reached by the virtual clock, with the best
  message found so far for each sensor and the sensors still without one marked missing.

The virtual clock is the largest stamp seen (or given to :meth:`CollectorPolicy.advance`): it
advances only with the input, so a replay gives the same frames at any speed. A push first
moves the clock and emits every frame whose deadline it reached, then adds the message: a message
stamped at or after a frame's deadline never joins it. Frames are emitted in stamp order, each
newer than the one before; each message joins at most one frame and, per sensor, frames use
strictly newer messages than the frames before them.

Stamps are on the common clock: the :class:`~fusionrt.runtime.sync.Synchronizer` applies the
sensors' time offsets before messages get here, and drops out-of-order and duplicate stamps
(this policy drops them too, with the same reasons, when used on its own).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fusionrt.runtime.sync._common import SyncConfigError, as_stamp
from fusionrt.runtime.sync.drops import DropCounters, DropReason

__all__ = ["CollectedFrame", "CollectorPolicy", "MissingReason"]


class MissingReason:
    """Why a sensor has no message in an emitted frame (``Frame.missing`` values)."""

    #: The deadline passed before a message within tolerance arrived.
    TIMEOUT = "timeout"
    #: The sensor's stream moved past the tolerance window with no message inside it.
    NO_MATCH = "no_match_within_tolerance"
    #: The input ended (``flush``) before a message within tolerance arrived.
    END_OF_INPUT = "end_of_input"
    #: Latest policy: no sample at or before the frame stamp.
    NO_DATA = "no_data"
    #: Latest policy: the last sample is older than ``max_age_ns``.
    TOO_OLD = "too_old"


@dataclass(slots=True)
class CollectedFrame:
    """A frame emitted by :class:`CollectorPolicy`.

    ``items``/``stamps`` have one entry per sensor (``None`` when missing); ``missing`` maps the
    missing sensors to a :class:`MissingReason`; ``emitted_at_ns`` is the virtual clock when the
    frame was emitted (``<= deadline_ns`` unless the clock jumped past it in one step).
    """

    stamp_ns: int
    deadline_ns: int
    emitted_at_ns: int
    items: dict[str, Any]
    stamps: dict[str, int | None]
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every sensor has a message."""
        return not self.missing


class _Pending:
    __slots__ = ("deadline_ns", "reference_item", "stamp_ns")

    def __init__(self, stamp_ns: int, deadline_ns: int, reference_item: Any) -> None:
        self.stamp_ns = stamp_ns
        self.deadline_ns = deadline_ns
        self.reference_item = reference_item


_CollectorDropCallback = Callable[[str, int, Any, str, str], None]


class CollectorPolicy:
    """Reference-driven (or fixed-rate) frame collection with a deadline on the virtual clock.

    ``sensors``: every sensor of the frame, the reference included. Exactly one of
    ``reference`` (a sensor name) and ``period_ns`` (fixed rate, ticks at
    ``phase_ns + k × period_ns``) opens frames. ``tolerance_ns``: one value or one per
    non-reference sensor (a message joins a frame stamped ``T`` only if its stamp is within
    ``[T - tol, T + tol]``). ``timeout_ns``: the deadline is ``T + timeout_ns``; with
    ``timeout_ns <= tolerance`` the late side of the window is cut at the deadline.
    ``queue_size``: messages buffered per sensor (the oldest is dropped beyond it).
    ``emit_empty`` (fixed rate): also emit frames in which every sensor is missing.
    ``min_period_ns``: per non-reference sensor, the least spacing of its stamps; a sensor that
    breaks the promise may have a nearer message arrive after its frame was emitted (that
    message then serves later frames or is dropped as too old).

    ``push(sensor, stamp_ns, item)`` and ``advance(now_ns)`` return the frames emitted, oldest
    first; ``flush()`` ends the input. ``on_drop(sensor, stamp_ns, item, reason, detail)`` is
    called once per message that joins no frame.
    """

    def __init__(
        self,
        sensors: Iterable[str],
        *,
        reference: str | None = None,
        period_ns: int | None = None,
        phase_ns: int = 0,
        tolerance_ns: int | Mapping[str, int] = 50_000_000,
        timeout_ns: int = 100_000_000,
        queue_size: int = 64,
        emit_empty: bool = False,
        min_period_ns: Mapping[str, int] | None = None,
        on_drop: _CollectorDropCallback | None = None,
    ) -> None:
        self.sensors: tuple[str, ...] = tuple(sensors)
        if not self.sensors or len(set(self.sensors)) != len(self.sensors):
            raise SyncConfigError(f"sensors must be distinct names, got {self.sensors!r}")
        if (reference is None) == (period_ns is None):
            raise SyncConfigError("give exactly one of reference= and period_ns=")
        if reference is not None and reference not in self.sensors:
            raise SyncConfigError(f"reference {reference!r} is not one of {self.sensors!r}")
        if period_ns is not None and as_stamp(period_ns, "period_ns") <= 0:
            raise SyncConfigError(f"period_ns must be > 0, got {period_ns}")
        timeout_ns = as_stamp(timeout_ns, "timeout_ns")
        if timeout_ns < 0:
            raise SyncConfigError(f"timeout_ns must be >= 0, got {timeout_ns}")
        if queue_size < 1:
            raise SyncConfigError(f"queue_size must be > 0, got {queue_size}")
        self.reference = reference
        self.period_ns = None if period_ns is None else as_stamp(period_ns)
        self.phase_ns = as_stamp(phase_ns, "phase_ns")
        self.timeout_ns = timeout_ns
        self.queue_size = int(queue_size)
        self.emit_empty = bool(emit_empty)
        self.others: tuple[str, ...] = tuple(s for s in self.sensors if s != reference)
        if isinstance(tolerance_ns, Mapping):
            unknown = set(tolerance_ns) - set(self.sensors)
            if unknown:
                raise SyncConfigError(f"tolerance_ns names unknown sensors {sorted(unknown)}")
            missing = [s for s in self.others if s not in tolerance_ns]
            if missing:
                raise SyncConfigError(f"tolerance_ns has no value for {missing}")
            tolerances = {s: as_stamp(tolerance_ns[s], "tolerance_ns") for s in self.others}
        else:
            tol = as_stamp(tolerance_ns, "tolerance_ns")
            tolerances = dict.fromkeys(self.others, tol)
        if any(t < 0 for t in tolerances.values()):
            raise SyncConfigError(f"tolerances must be >= 0, got {tolerances}")
        self.tolerance_ns: dict[str, int] = tolerances
        periods = dict(min_period_ns or {})
        unknown = set(periods) - set(self.others)
        if unknown:
            raise SyncConfigError(
                f"min_period_ns names sensors that are not non-reference sensors: {sorted(unknown)}"
            )
        if any(as_stamp(v, "min_period_ns") < 0 for v in periods.values()):
            raise SyncConfigError(f"min_period_ns must be >= 0, got {periods}")
        self._min_period_ns: dict[str, int] = {s: int(periods.get(s, 0)) for s in self.others}
        self._max_tolerance = max(tolerances.values(), default=0)
        self.on_drop = on_drop
        self.counters = DropCounters()
        self.emitted = 0
        self._reset()

    # -- public API ------------------------------------------------------------------------

    @property
    def now_ns(self) -> int | None:
        """The virtual clock: the largest stamp seen (``None`` before any input)."""
        return self._now

    @property
    def pending_frames(self) -> list[tuple[int, int]]:
        """``(stamp_ns, deadline_ns)`` of the frames opened and not yet emitted."""
        return [(p.stamp_ns, p.deadline_ns) for p in self._pending]

    @property
    def last_emitted_ns(self) -> int | None:
        """Stamp of the last frame emitted."""
        return self._last_emitted

    def push(self, sensor: str, stamp_ns: int, item: Any = None) -> list[CollectedFrame]:
        """Add a message; return the frames emitted because of it, oldest first."""
        if type(stamp_ns) is not int:
            stamp_ns = as_stamp(stamp_ns)
        last = self._last_seen.get(sensor, _UNKNOWN)
        if last is _UNKNOWN:
            raise KeyError(f"unknown sensor {sensor!r}; this collector has {self.sensors!r}")
        if last is not None and stamp_ns <= last:
            reason = DropReason.DUPLICATE_STAMP if stamp_ns == last else DropReason.STAMP_BACKWARDS
            self._drop(
                sensor, stamp_ns, item, reason, f"stamp {stamp_ns} after {last} on the same sensor"
            )
            return []
        self._last_seen[sensor] = stamp_ns
        out: list[CollectedFrame] = []
        if self._now is None or stamp_ns > self._now:
            self._advance_clock(stamp_ns, out)
        if sensor == self.reference:
            self._open_reference(stamp_ns, item)
        else:
            self._buffer(sensor, stamp_ns, item)
        self._emit_ready(out)
        return out

    def advance(self, now_ns: int) -> list[CollectedFrame]:
        """Move the virtual clock to ``now_ns`` without a message (a heartbeat of the source)."""
        if type(now_ns) is not int:
            now_ns = as_stamp(now_ns, "now_ns")
        out: list[CollectedFrame] = []
        if self._now is None or now_ns > self._now:
            self._advance_clock(now_ns, out)
            if out and self._pending:
                # Frames held behind the expired ones may be complete already. (A clock
                # advance alone completes nothing: completeness depends on the sensors.)
                self._emit_ready(out)
        return out

    def flush(self, reason: str = DropReason.END_OF_INPUT) -> list[CollectedFrame]:
        """End the input: emit every open frame with what it has, drop the rest, start afresh.

        Sensors still without a message are marked ``end_of_input``; buffered messages that
        joined no frame are reported with ``reason``.
        """
        out: list[CollectedFrame] = []
        while self._pending:
            self._emit(self._pending.popleft(), out, MissingReason.END_OF_INPUT)
        for sensor, buffer in self._buffers.items():
            while buffer:
                stamp, item = buffer.popleft()
                self._drop(sensor, stamp, item, reason, "input ended before a frame used it")
        self._reset()
        return out

    # -- internals -------------------------------------------------------------------------

    def _reset(self) -> None:
        self._now: int | None = None
        self._pending: deque[_Pending] = deque()
        self._buffers: dict[str, deque[tuple[int, Any]]] = {s: deque() for s in self.others}
        self._last_seen: dict[str, int | None] = dict.fromkeys(self.sensors)
        self._last_used: dict[str, int | None] = dict.fromkeys(self.others)
        self._last_opened: int | None = None
        self._last_emitted: int | None = None
        self._next_tick: int | None = None

    def _drop(
        self, sensor: str, stamp: int, item: Any, reason: str, detail: str, *args: Any
    ) -> None:
        # ``detail % args`` is only formatted when someone listens.
        counts = self.counters.counts
        key = (sensor, reason)
        counts[key] = counts.get(key, 0) + 1
        if self.on_drop is not None:
            self.on_drop(sensor, stamp, item, reason, detail % args if args else detail)

    def _advance_clock(self, now: int, out: list[CollectedFrame]) -> None:
        self._now = now
        if self.period_ns is not None:
            self._open_ticks(now, out)
        pending = self._pending
        while pending and pending[0].deadline_ns <= now:
            self._emit(pending.popleft(), out, MissingReason.TIMEOUT)

    def _open_ticks(self, now: int, out: list[CollectedFrame]) -> None:
        period = self.period_ns
        assert period is not None
        phase = self.phase_ns
        nxt = self._next_tick
        if nxt is None:
            # First tick whose window can hold the first message, and after 0: no frame is
            # stamped at or before 1970, whatever the phase and the first stamps.
            start = now - self._max_tolerance
            nxt = phase + -((phase - start) // period) * period
            nxt = max(nxt, phase + (-phase // period + 1) * period)
        if nxt > now:
            self._next_tick = nxt
            return
        if not self.emit_empty:
            # Skip, in O(1), ticks that would be emitted at once with no message at all.
            expired_until = now - self.timeout_ns  # ticks <= this are past their deadline
            earliest = min((b[0][0] for b in self._buffers.values() if b), default=None)
            if earliest is None:
                first_useful = expired_until + 1
            else:
                first_useful = min(earliest - self._max_tolerance, expired_until + 1)
            if first_useful > nxt:
                nxt = phase + -((phase - first_useful) // period) * period
        while nxt <= now:
            self._pending.append(_Pending(nxt, nxt + self.timeout_ns, None))
            self._last_opened = nxt
            nxt += period
        self._next_tick = nxt

    def _open_reference(self, stamp: int, item: Any) -> None:
        floor = self._last_opened
        if floor is not None and stamp <= floor:
            self._drop(
                self.reference or "",
                stamp,
                item,
                DropReason.TOO_OLD,
                f"reference stamp {stamp} is not newer than frame {floor}",
            )
            return
        self._pending.append(_Pending(stamp, stamp + self.timeout_ns, item))
        self._last_opened = stamp

    def _frame_floor(self) -> int | None:
        # Stamp below which no open or future frame can lie.
        if self._pending:
            return self._pending[0].stamp_ns
        if self.period_ns is not None:
            return self._next_tick
        if self._last_opened is None:
            return None
        return self._last_opened + 1

    def _buffer(self, sensor: str, stamp: int, item: Any) -> None:
        used = self._last_used[sensor]
        if used is not None and stamp <= used:
            self._drop(
                sensor,
                stamp,
                item,
                DropReason.TOO_OLD,
                f"older than message {used} already used in a frame",
            )
            return
        floor = self._frame_floor()
        if floor is not None and stamp < floor - self.tolerance_ns[sensor]:
            self._drop(
                sensor,
                stamp,
                item,
                DropReason.TOO_OLD,
                f"arrived after every frame within tolerance of it (frames now start at {floor})",
            )
            return
        buffer = self._buffers[sensor]
        buffer.append((stamp, item))
        if len(buffer) > self.queue_size:
            old_stamp, old_item = buffer.popleft()
            self._drop(
                sensor,
                old_stamp,
                old_item,
                DropReason.QUEUE_OVERFLOW,
                f"more than queue_size={self.queue_size} messages buffered",
            )

    def _choose(self, sensor: str, frame_stamp: int, deadline: int) -> tuple[int, bool]:
        """Index of the nearest buffered message in the window (-1: none), and finality."""
        buffer = self._buffers[sensor]
        tol = self.tolerance_ns[sensor]
        low = frame_stamp - tol
        while buffer and buffer[0][0] < low:
            stamp, item = buffer.popleft()
            self._drop(
                sensor,
                stamp,
                item,
                DropReason.OUTSIDE_INTERVAL,
                "no frame within %d ns of it (next frame at %d)",
                tol,
                frame_stamp,
            )
        high = frame_stamp + tol
        best = -1
        best_distance = 0
        for index, (stamp, _) in enumerate(buffer):
            if stamp > high or stamp >= deadline:
                break
            distance = stamp - frame_stamp if stamp >= frame_stamp else frame_stamp - stamp
            if best < 0 or distance < best_distance:
                best = index
                best_distance = distance
            elif stamp >= frame_stamp:
                break  # distances only grow from here
        last = self._last_seen[sensor]
        reach = frame_stamp + (best_distance if best >= 0 else tol)
        if last is None:
            return best, False
        if last >= reach:
            return best, True
        # The next message comes min_period or more after the last one. From ``reach`` on it is
        # no nearer than the best (ties go to the earlier); with no best, one at exactly
        # ``frame_stamp + tol`` would still be inside the window.
        period = self._min_period_ns[sensor]
        return best, period > 0 and last + period >= reach + (best < 0)

    def _emit_ready(self, out: list[CollectedFrame]) -> None:
        pending = self._pending
        now = self._now
        while pending:
            frame = pending[0]
            if now is None or frame.deadline_ns > now:
                for sensor in self.others:
                    if not self._choose(sensor, frame.stamp_ns, frame.deadline_ns)[1]:
                        return
            # Complete, or opened by a reference message that arrived after its deadline.
            pending.popleft()
            self._emit(frame, out, MissingReason.TIMEOUT)

    def _emit(self, frame: _Pending, out: list[CollectedFrame], missing_reason: str) -> None:
        items: dict[str, Any] = {}
        stamps: dict[str, int | None] = {}
        missing: dict[str, str] = {}
        if self.reference is not None:
            items[self.reference] = frame.reference_item
            stamps[self.reference] = frame.stamp_ns
        present = 0
        for sensor in self.others:
            index, final = self._choose(sensor, frame.stamp_ns, frame.deadline_ns)
            if index < 0:
                items[sensor] = None
                stamps[sensor] = None
                missing[sensor] = MissingReason.NO_MATCH if final else missing_reason
                continue
            buffer = self._buffers[sensor]
            for _ in range(index):
                stamp, item = buffer.popleft()
                self._drop(
                    sensor,
                    stamp,
                    item,
                    DropReason.SUPERSEDED,
                    "a message nearer to frame %d was used",
                    frame.stamp_ns,
                )
            stamp, item = buffer.popleft()
            items[sensor] = item
            stamps[sensor] = stamp
            self._last_used[sensor] = stamp
            present += 1
        if self.reference is None and present == 0 and not self.emit_empty:
            return
        items = {s: items[s] for s in self.sensors}
        stamps = {s: stamps[s] for s in self.sensors}
        self._last_emitted = frame.stamp_ns
        self.emitted += 1
        now = self._now if self._now is not None else frame.stamp_ns
        out.append(CollectedFrame(frame.stamp_ns, frame.deadline_ns, now, items, stamps, missing))


_UNKNOWN: Any = object()
