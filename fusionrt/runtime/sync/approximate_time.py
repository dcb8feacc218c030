"""The optimal-set ApproximateTime policy of ROS 2 ``message_filters``, reimplemented.

:class:`ApproximateTimePolicy` gives, message for message, the sets that
``message_filters::sync_policies::ApproximateTime`` (the C++ policy) publishes on the same input:
the same pivot and candidate search, the same age penalty arithmetic, ``max_interval_duration``,
per-stream inter-message lower bounds with their virtual-time optimality proof, the per-stream
queue size with its overflow handling (recover the hidden messages, drop the oldest message of
the offending stream, mark the stream as having dropped messages, destroy the candidate and
search again), and the same tie-breaking between streams with equal stamps.

What the C++ leaves implicit is made explicit here:

* every message that ends in no set is reported exactly once, with a reason from
  :class:`~fusionrt.runtime.sync.drops.DropReason`, to ``on_drop`` and to :attr:`counters`;
* :meth:`ApproximateTimePolicy.flush` says what happens when the input ends (the C++ never
  publishes again, it keeps the messages forever).

Arithmetic. Stamps are ``int`` nanoseconds and durations are exact integers, as in
``rclcpp::Time`` / ``rclcpp::Duration``. The age penalty enters through
``rclcpp::Duration::operator*(double)``, which multiplies in ``long double`` and truncates toward
zero; :func:`make_duration_scaler` reproduces that bit for bit (x86-64 80-bit ``long double``, a
64-bit significand), so even unusual penalties compare exactly as the C++ does.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from fusionrt.runtime.sync._common import SyncConfigError, as_stamp
from fusionrt.runtime.sync.drops import DropCounters, DropReason, PolicyDropCallback

__all__ = [
    "DEFAULT_MAX_INTERVAL_NS",
    "ApproximateTimePolicy",
    "make_duration_scaler",
]

log = logging.getLogger(__name__)

#: ``rclcpp::Duration(INT32_MAX, 999999999)``: the C++ default ``max_interval_duration``.
DEFAULT_MAX_INTERVAL_NS = 2_147_483_647 * 1_000_000_000 + 999_999_999

_LONG_DOUBLE_DIGITS = 64  # significand bits of the x86-64 80-bit long double
_FAST_LIMIT = float(1 << 52)
_FAST_TOLERANCE = 2.3e-16  # > 2**-52: covers the double and long double rounding of d * scale


def make_duration_scaler(scale: float) -> Callable[[int], int]:
    """``f(d)`` = ``rclcpp::Duration(d) * scale`` in nanoseconds, exactly as rclcpp computes it.

    rclcpp converts both operands to ``long double``, multiplies (one rounding to a 64-bit
    significand, ties to even) and truncates toward zero. The returned function takes a fast
    path through a ``double`` product whenever that product is provably far from an integer
    (then both roundings truncate to the same value), and falls back to exact integer
    arithmetic otherwise.
    """
    scale = float(scale)
    if not scale == scale or scale in (float("inf"), float("-inf")):  # noqa: PLR0124
        raise SyncConfigError(f"duration scale must be finite, got {scale}")
    numerator, denominator = scale.as_integer_ratio()
    shift = denominator.bit_length() - 1  # denominator is a power of two

    def exact(d: int) -> int:
        x = d * numerator
        negative = x < 0
        if negative:
            x = -x
        bits = x.bit_length()
        if bits > _LONG_DOUBLE_DIGITS:
            drop = bits - _LONG_DOUBLE_DIGITS
            kept = x >> drop
            rest = x - (kept << drop)
            half = 1 << (drop - 1)
            if rest > half or (rest == half and kept & 1):
                kept += 1
            x = kept << drop
        x >>= shift
        return -x if negative else x

    def scaled(d: int) -> int:
        if d == 0:
            return 0
        if -_FAST_LIMIT < d < _FAST_LIMIT:
            f = d * scale
            if -_FAST_LIMIT < f < _FAST_LIMIT:
                t = int(f)
                frac = f - t
                if frac < 0.0:
                    frac = -frac
                margin = (f if f > 0.0 else -f) * _FAST_TOLERANCE
                if margin < frac < 1.0 - margin:
                    return t
        return exact(d)

    scaled.exact = exact  # type: ignore[attr-defined]  # for tests
    return scaled


# A queued message: (stamp_ns, item). Tuples keep the hot loop on C-level indexing.
_Entry = tuple[int, Any]


class ApproximateTimePolicy:
    """Groups one message per stream into sets of approximately equal stamps (optimal sets).

    ``push(stream, stamp_ns, item)`` returns the sets this message completes, oldest first;
    each set is a tuple with one item per stream, ordered by stream index. A set is published
    exactly when message_filters would call its callback on the same sequence of ``add<i>``
    calls. Options mirror the C++ setters:

    * ``queue_size`` (> 0): per stream, the queued plus "past" (hidden during the candidate
      search) messages; one more and the oldest of that stream is dropped (``queue_overflow``).
    * ``max_interval_ns``: ``setMaxIntervalDuration``; ``None`` is the C++ default
      (``INT32_MAX`` s + 999999999 ns). A message whose tightest set is wider is dropped
      (``outside_interval``).
    * ``age_penalty`` (>= 0): ``setAgePenalty``; later candidates are penalised by
      ``(1 + age_penalty)``.
    * ``inter_message_lower_bounds_ns``: ``setInterMessageLowerBound`` per stream (>= 0);
      bounds that hold let sets out earlier, never change them.

    The policy trusts its input like the C++ does: per-stream stamps should be increasing (an
    out-of-order stamp is queued in arrival order and logged once per stream, as the C++ warns
    once). The :class:`~fusionrt.runtime.sync.Synchronizer` drops out-of-order and duplicate
    stamps before they get here.

    ``on_drop(stream, stamp_ns, item, reason, detail)`` is called once for every message that
    ends in no set; :attr:`counters` counts them per ``(stream, reason)``.
    """

    def __init__(
        self,
        num_streams: int,
        queue_size: int,
        max_interval_ns: int | None = None,
        age_penalty: float = 0.1,
        inter_message_lower_bounds_ns: Sequence[int] | None = None,
        *,
        on_drop: PolicyDropCallback | None = None,
    ) -> None:
        if int(num_streams) != num_streams or num_streams < 1:
            raise SyncConfigError(f"num_streams must be a positive int, got {num_streams!r}")
        if int(queue_size) != queue_size or queue_size < 1:
            raise SyncConfigError(f"queue_size must be an int > 0, got {queue_size!r}")
        if max_interval_ns is None:
            max_interval_ns = DEFAULT_MAX_INTERVAL_NS
        max_interval_ns = as_stamp(max_interval_ns, "max_interval_ns")
        if max_interval_ns < 0:
            raise SyncConfigError(f"max_interval_ns must be >= 0, got {max_interval_ns}")
        age_penalty = float(age_penalty)
        if not age_penalty >= 0.0:
            raise SyncConfigError(f"age_penalty must be >= 0, got {age_penalty}")
        n = int(num_streams)
        if inter_message_lower_bounds_ns is None:
            bounds = [0] * n
        else:
            bounds = [
                as_stamp(b, "inter_message_lower_bounds_ns") for b in inter_message_lower_bounds_ns
            ]
            if len(bounds) != n:
                raise SyncConfigError(
                    f"inter_message_lower_bounds_ns has {len(bounds)} entries for {n} streams"
                )
            if any(b < 0 for b in bounds):
                raise SyncConfigError(f"inter_message_lower_bounds_ns must be >= 0, got {bounds}")

        self.num_streams = n
        self.queue_size = int(queue_size)
        self.max_interval_ns = max_interval_ns
        self.age_penalty = age_penalty
        self.inter_message_lower_bounds_ns: tuple[int, ...] = tuple(bounds)
        self.on_drop = on_drop
        #: drops per ``(stream, reason)``
        self.counters = DropCounters()
        #: messages pushed, sets emitted
        self.pushed = 0
        self.emitted = 0

        self._scaled = make_duration_scaler(1.0 + age_penalty)
        self._lower = list(bounds)
        self._streams = range(n)
        self._queues: list[deque[_Entry]] = [deque() for _ in self._streams]
        self._past: list[list[_Entry]] = [[] for _ in self._streams]
        self._warned = [False] * n
        self._reset_search_state()

    # -- public API ------------------------------------------------------------------------

    def push(self, stream: int, stamp_ns: int, item: Any = None) -> list[tuple[Any, ...]]:
        """Add a message of ``stream``; return the sets it completes, oldest first."""
        if type(stamp_ns) is not int:
            stamp_ns = as_stamp(stamp_ns)
        if not 0 <= stream < self.num_streams:
            raise IndexError(f"stream {stream!r} out of range for {self.num_streams} streams")
        self.pushed += 1
        out: list[tuple[Any, ...]] = []
        queue = self._queues[stream]
        queue.append((stamp_ns, item))
        if len(queue) == 1:
            self._non_empty += 1
            if self._non_empty == self.num_streams:
                self._process(out)
        elif not self._warned[stream]:
            previous = queue[-2][0]
            if stamp_ns < previous or stamp_ns - previous < self._lower[stream]:
                self._check_inter_message_bound(stream)
        # During _process the queue of `stream` may have held queue_size + 1 messages.
        if len(queue) + len(self._past[stream]) > self.queue_size:
            self._overflow(stream, out)
        return out

    def flush(self, reason: str = DropReason.END_OF_INPUT) -> list[tuple[Any, ...]]:
        """End the input: publish what is provably best now, drop the rest, start afresh.

        The C++ policy never publishes without a new message; at the end of a recording its
        queued messages are simply lost. ``flush`` instead treats every stream as finished: a
        pending candidate can then no longer be beaten (any better set would need a message
        that will never come), so it is published, and the search goes on with the recovered
        messages exactly as after any publication, as long as a new candidate can be formed.
        Every message still queued afterwards is reported with ``reason`` (``end_of_input``;
        the synchroniser passes ``reset`` when a stream's clock jumps back). The policy is then
        empty, with no stream marked as having dropped messages (counters are kept), and accepts
        new input. Returns the sets published, oldest first.
        """
        out: list[tuple[Any, ...]] = []
        while self._pivot >= 0:
            self._publish(out)
            self._process(out)
        for stream in self._streams:
            queue = self._queues[stream]
            while queue:
                entry = queue.popleft()
                self._drop(
                    stream, entry, reason, "input ended before a set could be formed with it"
                )
            for entry in self._past[stream]:  # empty when there is no candidate
                self._drop(stream, entry, reason, "input ended")
            self._past[stream].clear()
        self._reset_search_state()
        return out

    @property
    def pending(self) -> int:
        """Messages held (queued or hidden by the candidate search), all streams together."""
        return sum(len(q) for q in self._queues) + sum(len(p) for p in self._past)

    def pending_stamps(self, stream: int) -> list[int]:
        """Stamps held for ``stream``, oldest first (for inspection and tests)."""
        return [e[0] for e in self._past[stream]] + [e[0] for e in self._queues[stream]]

    # -- the algorithm ---------------------------------------------------------------------

    def _reset_search_state(self) -> None:
        self._non_empty = 0
        self._pivot = -1  # stream index of the pivot; -1: no candidate
        self._pivot_time = 0
        self._candidate_start = 0
        self._candidate_end = 0
        self._candidate: list[_Entry] | None = None
        self._has_dropped = [False] * self.num_streams
        self._any_dropped = False  # True iff some _has_dropped entry is True

    def _drop(self, stream: int, entry: _Entry, reason: str, detail: str, *args: Any) -> None:
        # ``detail % args`` is only formatted when someone listens.
        key = (stream, reason)
        counts = self.counters.counts
        counts[key] = counts.get(key, 0) + 1
        if self.on_drop is not None:
            self.on_drop(stream, entry[0], entry[1], reason, detail % args if args else detail)

    def _check_inter_message_bound(self, stream: int) -> None:
        # Mirrors checkInterMessageBound: warn once per stream, nothing else changes.
        queue = self._queues[stream]
        stamp = queue[-1][0]
        previous = queue[-2][0]
        if stamp < previous:
            log.warning(
                "ApproximateTimePolicy: messages of stream %d arrived out of order (warning once)",
                stream,
            )
            self._warned[stream] = True
        elif stamp - previous < self._lower[stream]:
            log.warning(
                "ApproximateTimePolicy: messages of stream %d arrived closer (%d ns) "
                "than the lower bound (%d ns) (warning once)",
                stream,
                stamp - previous,
                self._lower[stream],
            )
            self._warned[stream] = True

    def _overflow(self, stream: int, out: list[tuple[Any, ...]]) -> None:
        # Cancel any ongoing search: put every hidden message back, then drop the oldest
        # message of the offending stream.
        queues = self._queues
        non_empty = 0
        for i in self._streams:
            past = self._past[i]
            queue = queues[i]
            if past:
                queue.extendleft(reversed(past))
                past.clear()
            if queue:
                non_empty += 1
        self._non_empty = non_empty
        entry = queues[stream].popleft()
        self._drop(
            stream,
            entry,
            DropReason.QUEUE_OVERFLOW,
            "stream %d held more than queue_size=%d messages; its oldest was dropped",
            stream,
            self.queue_size,
        )
        self._has_dropped[stream] = True
        self._any_dropped = True
        if self._pivot >= 0:
            # The candidate may have lost a member: destroy it and search again.
            self._candidate = None
            self._pivot = -1
            self._process(out)

    def _make_candidate(self, start_time: int, end_time: int) -> None:
        # The heads become the candidate; everything hidden so far is older than the heads
        # of its stream, so it can never be used (sets do not cross).
        self._candidate = [q[0] for q in self._queues]
        for stream in self._streams:
            past = self._past[stream]
            if past:
                for entry in past:
                    self._drop(
                        stream,
                        entry,
                        DropReason.SUPERSEDED,
                        "a better set [%d, %d] ns was found",
                        start_time,
                        end_time,
                    )
                past.clear()
        self._candidate_start = start_time
        self._candidate_end = end_time

    def _publish(self, out: list[tuple[Any, ...]]) -> None:
        candidate = self._candidate
        assert candidate is not None
        out.append(tuple([entry[1] for entry in candidate]))
        self.emitted += 1
        self._candidate = None
        self._pivot = -1
        # Recover the hidden messages; the oldest of each stream is the published one.
        non_empty = 0
        queues = self._queues
        for stream in self._streams:
            queue = queues[stream]
            past = self._past[stream]
            if past:
                if len(past) > 1:
                    queue.extendleft(past[:0:-1])
                past.clear()
            else:
                queue.popleft()
            if queue:
                non_empty += 1
        self._non_empty = non_empty

    def _recover(self, moves: list[int]) -> None:
        queues = self._queues
        non_empty = 0
        for stream in self._streams:
            count = moves[stream]
            queue = queues[stream]
            if count:
                past = self._past[stream]
                for _ in range(count):
                    queue.appendleft(past.pop())
            if queue:
                non_empty += 1
        self._non_empty = non_empty

    def _process(self, out: list[tuple[Any, ...]]) -> None:
        n = self.num_streams
        queues = self._queues
        past = self._past
        scaled = self._scaled
        while self._non_empty == n:
            # Earliest head (first stream on ties) and latest head (last stream on ties).
            start_index = end_index = 0
            start_time = end_time = queues[0][0][0]
            for i in range(1, n):
                t = queues[i][0][0]
                if t < start_time:
                    start_time = t
                    start_index = i
                if t >= end_time:
                    end_time = t
                    end_index = i
            if self._any_dropped:
                # Only the stream ending this interval keeps its "has dropped" mark: no dropped
                # message of another stream could have been better than the ones at hand.
                dropped = self._has_dropped
                keep = dropped[end_index]
                for i in range(n):
                    dropped[i] = False
                dropped[end_index] = keep
                self._any_dropped = keep

            if self._pivot < 0:
                if end_time - start_time > self.max_interval_ns:
                    self._delete_front(
                        start_index,
                        DropReason.OUTSIDE_INTERVAL,
                        "tightest set spans %d ns > max_interval_ns=%d",
                        end_time - start_time,
                        self.max_interval_ns,
                    )
                    continue
                if self._any_dropped:  # i.e. _has_dropped[end_index]
                    self._delete_front(
                        start_index,
                        DropReason.AFTER_OVERFLOW,
                        "stream %d, which would end the set, dropped messages on queue "
                        "overflow: no set starting here can be proven optimal",
                        end_index,
                    )
                    continue
                self._make_candidate(start_time, end_time)
                self._pivot = end_index
                self._pivot_time = end_time
            elif scaled(end_time - self._candidate_end) < start_time - self._candidate_start:
                self._make_candidate(start_time, end_time)  # better; same pivot
            # Hide the earliest head and look at the next interval.
            queue = queues[start_index]
            past[start_index].append(queue.popleft())
            if not queue:
                self._non_empty -= 1

            if start_index == self._pivot:
                # Every candidate for this pivot has been seen.
                self._publish(out)
            elif scaled(end_time - self._candidate_end) >= self._pivot_time - self._candidate_start:
                # Any later candidate contains [pivot_time, end_time]: already too wide.
                self._publish(out)
            elif self._non_empty < n:
                self._virtual_search(out)

    def _delete_front(self, stream: int, reason: str, detail: str, *args: Any) -> None:
        queue = self._queues[stream]
        entry = queue.popleft()
        if not queue:
            self._non_empty -= 1
        self._drop(stream, entry, reason, detail, *args)

    def _virtual_search(self, out: list[tuple[Any, ...]]) -> None:
        # Use the inter-message lower bounds to bound the stamps of messages not yet received
        # and try to prove the candidate optimal before they arrive.
        n = self.num_streams
        queues = self._queues
        past = self._past
        lower = self._lower
        scaled = self._scaled
        pivot_time = self._pivot_time
        candidate_start = self._candidate_start
        candidate_end = self._candidate_end
        moves = [0] * n
        while True:
            start_index = 0
            start_time = end_time = 0
            for i in range(n):
                queue = queues[i]
                if queue:
                    t = queue[0][0]
                else:
                    hidden = past[i]
                    t = hidden[-1][0] + lower[i] if hidden else pivot_time
                    if not t > pivot_time:
                        t = pivot_time
                if i == 0:
                    start_time = end_time = t
                else:
                    if t < start_time:
                        start_time = t
                        start_index = i
                    end_time = max(t, end_time)
            age = scaled(end_time - candidate_end)
            if age >= pivot_time - candidate_start:
                self._publish(out)  # proven optimal; publishing also undoes the moves
                return
            if age < start_time - candidate_start or not queues[start_index]:
                # An optimistic future candidate could still be better: wait for messages.
                # (The second test cannot hold for input the C++ accepts; it guards against
                # out-of-order stamps, where the C++ would pop an empty deque.)
                self._recover(moves)
                return
            queue = queues[start_index]
            past[start_index].append(queue.popleft())
            if not queue:
                self._non_empty -= 1
            moves[start_index] += 1

    def __repr__(self) -> str:
        return (
            f"ApproximateTimePolicy(num_streams={self.num_streams}, queue_size={self.queue_size}, "
            f"max_interval_ns={self.max_interval_ns}, age_penalty={self.age_penalty}, "
            f"inter_message_lower_bounds_ns={list(self.inter_message_lower_bounds_ns)})"
        )
