"""Which stamps the synchroniser believes: per-stream plausibility and timeline jumps.

One message with a lying stamp (0, negative, an hour ahead, from another clock) must cost that
message only; a recording whose every stream jumps (a bag looping, a replay restarting, a
recording paused for an hour) must start a new timeline. :class:`StampGuard` tells the two apart
per message, on the common clock (offsets applied), against the synchroniser's clock ``now``
(the largest accepted stamp):

* a stamp ``<= 0`` is dropped at once (``implausible_stamp``): no drive is stamped in 1970;
* **a timeline starts** when ``confirm_messages`` messages of the primary streams, or one of
  each, lie within ``jump_forward_ns`` of each other: until then messages are held, then those
  near the start are replayed in arrival order (a clean drive gives the same frames) and the
  others are dropped (``implausible_stamp``), so a lying first message cannot define the
  timeline;
* in a timeline, a stamp ``jump_backward_ns`` or more before its stream's previous accepted
  one, more than ``jump_forward_ns`` after ``now``, or (a stream's first message in the
  timeline) more than ``jump_forward_ns`` before ``now`` does not fit. It is **held**, not used:
  it is a lie or the start of a jump, and the stream's next messages say which. When the
  stream goes on in the timeline, its held messages are dropped as ``implausible_stamp``, the
  detail saying by how much and against what;
* **a jump is confirmed** when every active primary stream (one with a stamp within
  ``jump_forward_ns`` of ``now``) has sent ``confirm_messages`` held messages that follow each
  other, all landing within ``jump_forward_ns`` of each other. The synchroniser then ends the
  timeline, reports the jump once, and replays the held messages that made it, in arrival
  order, into the new timeline: a looping bag loses nothing. An active stream that has sent
  nothing since the jump began stops counting once the held stamps span ``jump_backward_ns``
  (a sensor that died at the loop point cannot block it). The latest streams (CAN, logs)
  follow a jump but never decide one, so a CAN bus with a broken clock cannot move the frames;
* a small step back (less than ``jump_backward_ns``) is ``stamp_backwards`` and an equal stamp
  ``duplicate_stamp``, as before: the stream is unchanged.

At most ``max_held`` messages are held per stream (a stream that lies for minutes), and as many
in all before a timeline starts; older ones are dropped as ``implausible_stamp``. Held messages
are not seen by the policies, the clock or the staleness watch, so the frames of a drive with a
liar equal those of the drive without it.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fusionrt.runtime.sync.drops import DropReason

__all__ = ["GuardDrop", "HeldMessage", "StampGuard", "TimelineJump", "Verdict"]

_NS_PER_S = 1e9


class Verdict(enum.Enum):
    """What the synchroniser does with a message after :meth:`StampGuard.check`."""

    #: In the timeline: use it (the guard has recorded its stamp).
    ACCEPT = "accept"
    #: Reported through ``drop`` (implausible, duplicate or backwards): nothing more to do.
    DROPPED = "dropped"
    #: Held until its stream (or the other streams) show what it is: nothing to do yet.
    HELD = "held"


_ACCEPT = Verdict.ACCEPT  # a module constant: an enum attribute lookup costs on the hot path


class HeldMessage(NamedTuple):
    """A message held by the guard: arrival number, sensor, stamp on the common clock, why."""

    arrival: int
    sensor: str
    stamp_ns: int
    item: Any
    why: str


class TimelineJump(NamedTuple):
    """A timeline that starts: ``messages`` (held, in arrival order) are its first.

    ``from_ns`` is the clock of the timeline that ends, ``None`` when none did (the first
    timeline of the input); ``to_ns`` is where the streams landed (the median of their first
    held stamps); ``sensors`` are the primary streams that made the jump.
    """

    from_ns: int | None
    to_ns: int
    sensors: tuple[str, ...]
    messages: tuple[HeldMessage, ...]

    @property
    def jump_ns(self) -> int:
        """How far the clock jumped (negative for a bag looping); 0 for a first timeline."""
        return 0 if self.from_ns is None else self.to_ns - self.from_ns

    def describe(self) -> str:
        """One line for a log: the size, the clocks and the streams."""
        return (
            f"timeline reset: every stream jumped by {self.jump_ns / _NS_PER_S:+.3f} s "
            f"(clock {self.from_ns} -> {self.to_ns}; {', '.join(self.sensors)})"
        )


#: ``drop(sensor, stamp_ns, reason, detail)``: the synchroniser's own drop report.
GuardDrop = Callable[[str, int, str, str], None]


@dataclass(slots=True)
class _Pending:
    """One stream's held messages in a timeline: they follow each other."""

    first_stamp: int
    first_arrival: int
    held: deque[HeldMessage] = field(default_factory=deque)
    count: int = 0  # held since the pending began (max_held may have dropped some)

    @property
    def last_stamp(self) -> int:
        return self.held[-1].stamp_ns


class StampGuard:
    """The stamp rules of the module docstring, for one synchroniser.

    ``primary`` names the streams that drive frames (they decide where a timeline is); ``drop``
    is called once for every message the guard drops.
    """

    def __init__(
        self,
        primary: Iterable[str],
        drop: GuardDrop,
        *,
        jump_backward_ns: int,
        jump_forward_ns: int,
        confirm_messages: int,
        max_held: int,
    ) -> None:
        self.primary = frozenset(primary)
        self.jump_backward_ns = jump_backward_ns
        self.jump_forward_ns = jump_forward_ns
        self.confirm_messages = confirm_messages
        self.max_held = max_held
        self._drop = drop
        self._started = False  # a timeline is running (else: messages wait in _start)
        self._start: list[HeldMessage] = []  # held before the first timeline starts
        self._last: dict[str, int] = {}  # last accepted stamp per stream, this timeline
        self._origin: int | None = None  # first accepted stamp of this timeline
        self._pending: dict[str, _Pending] = {}
        self._arrivals = itertools.count()
        self._last_arrival: dict[str, int] = {}

    @property
    def held(self) -> int:
        """Messages held now."""
        return len(self._start) + sum(len(p.held) for p in self._pending.values())

    def check(self, sensor: str, stamp: int, item: Any, now: int | None) -> Verdict | TimelineJump:
        """Judge one message of ``sensor`` stamped ``stamp`` (common clock) at clock ``now``.

        A :class:`TimelineJump` means: end the timeline if ``from_ns`` is set, then replay its
        messages (through :meth:`check` again).
        """
        last = self._last.get(sensor)
        if (
            last is not None
            and last < stamp
            and now is not None
            and stamp - now <= self.jump_forward_ns
        ):  # the common case, kept short: in order and in the timeline
            if self._pending:  # arrivals only matter while a jump may be under way
                self._last_arrival[sensor] = next(self._arrivals)
                if sensor in self._pending:  # the stream went on: those were lies
                    self._drop_pending(sensor, f"; the stream went on at {stamp}")
            self._last[sensor] = stamp
            return _ACCEPT
        arrival = next(self._arrivals)
        self._last_arrival[sensor] = arrival
        if stamp <= 0:
            self._drop(
                sensor, stamp, DropReason.IMPLAUSIBLE_STAMP, f"stamp {stamp} ns is not after 1970"
            )
            return Verdict.DROPPED
        if not self._started:
            return self._hold_start(HeldMessage(arrival, sensor, stamp, item, ""))
        why = None if now is None else self._misfit(sensor, stamp, now)
        if why is not None:
            assert now is not None
            return self._hold(HeldMessage(arrival, sensor, stamp, item, why), now)
        if sensor in self._pending:  # the stream went on in the timeline: those were lies
            self._drop_pending(sensor, f"; the stream went on at {stamp}")
        if last is not None and stamp <= last:
            if stamp == last:
                self._drop(
                    sensor,
                    stamp,
                    DropReason.DUPLICATE_STAMP,
                    f"same stamp as the previous {sensor!r} message",
                )
            else:
                self._drop(
                    sensor,
                    stamp,
                    DropReason.STAMP_BACKWARDS,
                    f"stamp {stamp} is {last - stamp} ns before the previous {sensor!r} message",
                )
            return Verdict.DROPPED
        self._last[sensor] = stamp
        if self._origin is None:
            self._origin = stamp
        return Verdict.ACCEPT

    def settle(self) -> TimelineJump | None:
        """At the end of the input: start the timeline with what is held, if none started."""
        if self._started or not self._start:
            return None
        return self._begin(self._best_start_anchor())

    def end(self, *, restart: bool) -> None:
        """End the timeline. ``restart``: a jump's messages start the next one at once;
        otherwise (the input ended) the next one starts as the first did."""
        self._last.clear()
        self._origin = None
        self._started = restart

    def drop_held(self, why: str) -> None:
        """Drop every message held in the timeline, ``why`` appended to each detail."""
        for sensor in list(self._pending):
            self._drop_pending(sensor, why)

    # -- the first timeline ----------------------------------------------------------------

    def _hold_start(self, message: HeldMessage) -> Verdict | TimelineJump:
        start = self._start
        start.append(message)
        near = [
            m.sensor
            for m in start
            if m.sensor in self.primary
            and abs(m.stamp_ns - message.stamp_ns) <= self.jump_forward_ns
        ]
        if len(near) >= self.confirm_messages or len(set(near)) == len(self.primary):
            return self._begin(message)
        if len(start) >= self.max_held:
            return self._begin(self._best_start_anchor())
        return Verdict.HELD

    def _best_start_anchor(self) -> HeldMessage:
        """The held message with the most primary (then any) messages near it; the earliest."""

        def support(anchor: HeldMessage) -> tuple[int, int, int]:
            near = [
                m for m in self._start if abs(m.stamp_ns - anchor.stamp_ns) <= self.jump_forward_ns
            ]
            return sum(m.sensor in self.primary for m in near), len(near), -anchor.arrival

        return max(self._start, key=support)

    def _begin(self, anchor: HeldMessage) -> TimelineJump:
        """Start the first timeline around ``anchor``: the messages near it, the rest dropped."""
        members: list[HeldMessage] = []
        for message in self._start:
            distance = message.stamp_ns - anchor.stamp_ns
            if abs(distance) <= self.jump_forward_ns:
                members.append(message)
            else:
                self._drop(
                    message.sensor,
                    message.stamp_ns,
                    DropReason.IMPLAUSIBLE_STAMP,
                    f"stamp {message.stamp_ns} is {distance / _NS_PER_S:+.3f} s from the "
                    f"messages that started the timeline at {anchor.stamp_ns}",
                )
        self._start = []
        self._started = True
        sensors = tuple(sorted({m.sensor for m in members if m.sensor in self.primary}))
        return TimelineJump(None, anchor.stamp_ns, sensors, tuple(members))

    # -- in a timeline ---------------------------------------------------------------------

    def _misfit(self, sensor: str, stamp: int, now: int) -> str | None:
        """Why ``stamp`` does not fit the timeline, or ``None`` when it does."""
        last = self._last.get(sensor)
        if stamp - now > self.jump_forward_ns:
            return f"{(stamp - now) / _NS_PER_S:.3f} s after the clock {now}"
        if last is not None:
            if last - stamp < self.jump_backward_ns:
                return None
            why = f"{(last - stamp) / _NS_PER_S:.3f} s before the stream's previous stamp {last}"
        elif now - stamp > self.jump_forward_ns:
            why = f"{(now - stamp) / _NS_PER_S:.3f} s before the clock {now}"
        else:
            return None
        if self._origin is not None and stamp < self._origin:
            why += f", before the timeline's first stamp {self._origin}"
        return why

    def _hold(self, message: HeldMessage, now: int) -> Verdict | TimelineJump:
        sensor, stamp = message.sensor, message.stamp_ns
        pending = self._pending.get(sensor)
        if pending is not None and not (
            -self.jump_backward_ns < stamp - pending.last_stamp <= self.jump_forward_ns
        ):
            self._drop_pending(sensor, f"; the stream then jumped to {stamp}")
            pending = None
        if pending is None:
            pending = self._pending[sensor] = _Pending(stamp, message.arrival)
        pending.held.append(message)
        pending.count += 1
        if len(pending.held) > self.max_held:
            old = pending.held.popleft()
            self._drop(
                sensor,
                old.stamp_ns,
                DropReason.IMPLAUSIBLE_STAMP,
                f"{old.why}; more than {self.max_held} {sensor!r} messages held",
            )
        return self._confirmed(now) or Verdict.HELD

    def _confirmed(self, now: int) -> TimelineJump | None:
        """The jump, when every active primary stream made it; ``None`` while it is unproven."""
        pendings = self._pending
        recent = now - self.jump_forward_ns
        began = min(p.first_arrival for p in pendings.values())
        span = max(p.last_stamp for p in pendings.values()) - min(
            p.first_stamp for p in pendings.values()
        )
        voters: list[str] = []
        for sensor in sorted(self.primary):
            if self._last.get(sensor, recent - 1) < recent:
                continue  # not active in this timeline
            pending = pendings.get(sensor)
            if pending is None:
                silent = self._last_arrival.get(sensor, -1) < began
                if silent and span >= self.jump_backward_ns:
                    continue  # said nothing since the jump began: a sensor that stopped
                return None
            if pending.count < self.confirm_messages:
                return None
            voters.append(sensor)
        if not voters:  # no active primary stream left: the primary streams that jumped decide
            voters = [
                s
                for s, p in sorted(pendings.items())
                if s in self.primary and p.count >= self.confirm_messages
            ]
            if not voters:
                return None
        targets = sorted(pendings[s].first_stamp for s in voters)
        if targets[-1] - targets[0] > self.jump_forward_ns:
            return None
        target = targets[len(targets) // 2]
        replay: list[HeldMessage] = []
        for sensor, pending in list(pendings.items()):
            if abs(pending.first_stamp - target) <= self.jump_forward_ns:
                replay.extend(pending.held)
                del pendings[sensor]
            else:
                self._drop_pending(sensor, "; not where the other streams jumped")
        replay.sort(key=lambda held: held.arrival)
        return TimelineJump(now, target, tuple(voters), tuple(replay))

    def _drop_pending(self, sensor: str, why: str) -> None:
        pending = self._pending.pop(sensor)
        for held in pending.held:
            self._drop(held.sensor, held.stamp_ns, DropReason.IMPLAUSIBLE_STAMP, held.why + why)
