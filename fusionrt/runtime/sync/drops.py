"""Why a message ends in no frame: drop reasons, drop reports, counters and stale detection.

Every message handed to a policy or to the :class:`~fusionrt.runtime.sync.Synchronizer` ends
either in exactly one emitted set/frame or in exactly one drop report. A report names the stream
(or sensor), the message's stamp on the common clock, a machine-readable reason from
:class:`DropReason` and a human-readable detail. The synchroniser forwards reports to its
``on_drop(sensor, stamp_ns, reason, detail)`` callback, which the pipeline wires to the observer
hook ``fusionrt_sensor_fault``; :class:`DropCounters` keeps the totals.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, NamedTuple

__all__ = [
    "DropCallback",
    "DropCounters",
    "DropReason",
    "DroppedMessage",
    "StaleCallback",
    "StaleDetector",
]


class DropReason:
    """The machine-readable drop reasons (plain ``str`` constants, usable as dict keys).

    ``SUPERSEDED``
        A better set (or a newer sample) was found: the message is older than the one its
        stream contributes to an emitted or candidate set, and sets never go back in time.
    ``TOO_OLD``
        Older than a frame already emitted (collector), or older than ``max_age_ns`` when it
        would have been used (latest).
    ``QUEUE_OVERFLOW``
        Its stream held more than ``queue_size`` messages; the oldest one was dropped.
    ``AFTER_OVERFLOW``
        ApproximateTime only: the stream that would have ended the set recently lost a message
        to a queue overflow, so no set starting with this (oldest) message could be proven
        optimal (message_filters' ``has_dropped_messages`` rule).
    ``OUTSIDE_INTERVAL``
        The tightest set this message could start spans more than ``max_interval_ns``
        (ApproximateTime), or no frame's tolerance window contains it (collector).
    ``DUPLICATE_STAMP``
        Same stamp as the previous message of the same stream.
    ``STAMP_BACKWARDS``
        Stamp earlier than the previous message of the same stream (out of order), by less than
        the jump threshold.
    ``IMPLAUSIBLE_STAMP``
        A stamp the timeline cannot hold: ``<= 0``, far before its stream's previous stamp or far
        from the clock, and not followed by the other streams (see
        :mod:`~fusionrt.runtime.sync.stamps`); or an impossible header stamp (nanoseconds
        ``>= 10**9``), reported by the frame assembler.
    ``RESET``
        Buffered when the synchroniser ended its timeline on a jump every stream made (a bag
        looping).
    ``END_OF_INPUT``
        Still buffered, and unusable, when ``flush()`` ended the input.
    ``UNKNOWN_SENSOR``
        The synchroniser has no route for the message's sensor.
    """

    SUPERSEDED = "superseded"
    TOO_OLD = "too_old"
    QUEUE_OVERFLOW = "queue_overflow"
    AFTER_OVERFLOW = "after_overflow"
    OUTSIDE_INTERVAL = "outside_interval"
    DUPLICATE_STAMP = "duplicate_stamp"
    STAMP_BACKWARDS = "stamp_backwards"
    IMPLAUSIBLE_STAMP = "implausible_stamp"
    RESET = "reset"
    END_OF_INPUT = "end_of_input"
    UNKNOWN_SENSOR = "unknown_sensor"

    ALL: tuple[str, ...] = (
        SUPERSEDED,
        TOO_OLD,
        QUEUE_OVERFLOW,
        AFTER_OVERFLOW,
        OUTSIDE_INTERVAL,
        DUPLICATE_STAMP,
        STAMP_BACKWARDS,
        IMPLAUSIBLE_STAMP,
        RESET,
        END_OF_INPUT,
        UNKNOWN_SENSOR,
    )


class DroppedMessage(NamedTuple):
    """One drop report of a policy: which stream, which message, and why."""

    stream: int
    stamp_ns: int
    item: Any
    reason: str
    detail: str


#: ``on_drop(stream, stamp_ns, item, reason, detail)`` of a policy used on its own.
PolicyDropCallback = Callable[[int, int, Any, str, str], None]
#: ``on_drop(sensor, stamp_ns, reason, detail)`` of the synchroniser (the
#: ``fusionrt_sensor_fault`` hook's signature).
DropCallback = Callable[[str, "int | None", str, str], None]
#: ``on_stale(sensor, last_stamp_ns, now_ns)`` (the ``fusionrt_sensor_stale`` hook's signature).
StaleCallback = Callable[[str, "int | None", int], None]


class DropCounters:
    """Counts of dropped messages per source (stream index or sensor name) and reason."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[tuple[Hashable, str], int] = {}

    def add(self, source: Hashable, reason: str, count: int = 1) -> None:
        """Count ``count`` more drops of ``source`` for ``reason``."""
        key = (source, reason)
        self.counts[key] = self.counts.get(key, 0) + count

    @property
    def total(self) -> int:
        """All drops counted so far."""
        return sum(self.counts.values())

    def by_reason(self) -> dict[str, int]:
        """Drops per reason, all sources together."""
        out: dict[str, int] = {}
        for (_, reason), count in self.counts.items():
            out[reason] = out.get(reason, 0) + count
        return out

    def by_source(self) -> dict[Hashable, int]:
        """Drops per source, all reasons together."""
        out: dict[Hashable, int] = {}
        for (source, _), count in self.counts.items():
            out[source] = out.get(source, 0) + count
        return out

    def get(self, source: Hashable, reason: str) -> int:
        """Drops of ``source`` for ``reason`` (0 if none)."""
        return self.counts.get((source, reason), 0)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """``{source: {reason: count}}`` with sources as strings, for JSON reports."""
        out: dict[str, dict[str, int]] = {}
        for (source, reason), count in sorted(self.counts.items(), key=lambda kv: str(kv[0])):
            out.setdefault(str(source), {})[reason] = count
        return out

    def clear(self) -> None:
        """Forget all counts."""
        self.counts.clear()

    def __repr__(self) -> str:
        return f"DropCounters({self.as_dict()!r})"


class StaleDetector:
    """Reports a sensor silent for longer than ``expected period × factor`` on the virtual clock.

    ``expected_periods_ns`` maps sensor names to their nominal period; sensors absent from it are
    never reported. :meth:`seen` records a message, :meth:`check` is called with the virtual
    clock (the synchroniser calls it after every message) and calls
    ``on_stale(sensor, last_stamp_ns, now_ns)`` once per silence: a sensor is reported again only
    after it has sent a message. A sensor that never sent anything is measured from the first
    clock value the detector saw, and reported with ``last_stamp_ns=None``.
    """

    def __init__(
        self,
        expected_periods_ns: dict[str, int],
        factor: float = 3.0,
        on_stale: StaleCallback | None = None,
    ) -> None:
        if factor <= 0:
            raise ValueError(f"stale factor must be > 0, got {factor}")
        self.limits_ns: dict[str, int] = {}
        for name, period in expected_periods_ns.items():
            if period <= 0:
                raise ValueError(f"expected period of {name!r} must be > 0 ns, got {period}")
            self.limits_ns[name] = int(period * factor)
        self.on_stale = on_stale
        self.last_stamp_ns: dict[str, int | None] = dict.fromkeys(self.limits_ns)
        self.stale: set[str] = set()
        self.reports: int = 0
        self._origin_ns: int | None = None
        self._next_check_ns: int | None = None

    def seen(self, sensor: str, stamp_ns: int) -> None:
        """Record a message of ``sensor`` at ``stamp_ns`` (ends its silence, if any)."""
        limit = self.limits_ns.get(sensor)
        if limit is None:
            return
        last = self.last_stamp_ns[sensor]
        if last is None or stamp_ns > last:
            self.last_stamp_ns[sensor] = stamp_ns
        if last is None or sensor in self.stale:
            # Its silence ended (or its first message came): it may now be due before the
            # next scheduled check. Otherwise its due time only moved later, and the
            # scheduled check (a lower bound) stays valid.
            self.stale.discard(sensor)
            due = stamp_ns + limit
            nxt = self._next_check_ns
            if nxt is not None and due < nxt:
                self._next_check_ns = due

    def check(self, now_ns: int) -> list[str]:
        """Report the sensors that became stale at ``now_ns``; returns their names."""
        nxt = self._next_check_ns
        if nxt is not None and now_ns <= nxt:
            return []
        if self._origin_ns is None:
            self._origin_ns = now_ns
        found: list[str] = []
        earliest: int | None = None
        for sensor, limit in self.limits_ns.items():
            if sensor in self.stale:
                continue
            last = self.last_stamp_ns[sensor]
            since = self._origin_ns if last is None else last
            if now_ns - since > limit:
                self.stale.add(sensor)
                found.append(sensor)
            else:
                due = since + limit
                earliest = due if earliest is None or due < earliest else earliest
        self._next_check_ns = earliest if earliest is not None else (1 << 62)
        for sensor in found:
            self.reports += 1
            if self.on_stale is not None:
                self.on_stale(sensor, self.last_stamp_ns[sensor], now_ns)
        return found

    def reset(self) -> None:
        """Forget every sensor's history (after a clock reset)."""
        self.last_stamp_ns = dict.fromkeys(self.limits_ns)
        self.stale.clear()
        self._origin_ns = None
        self._next_check_ns = None

    def sensors(self) -> Iterable[str]:
        """The sensors watched."""
        return self.limits_ns.keys()
