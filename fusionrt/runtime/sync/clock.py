"""The clocks deadlines run on: virtual in a replay, the wall clock in a live run.

The synchroniser matches messages by their stamps in both modes, and its deadlines and
staleness run on "now" in the stamps' domain. In a replay, now is the largest stamp seen (the
synchroniser's own virtual clock), so a replay is bit-identical at any speed. In a live run,
now must move while the sensors are silent — a frame is due ``timeout`` after its reference
message *arrived*, whatever the other sensors do — so the runtime advances the synchroniser
with :meth:`WallClock.now_ns` on every message and every idle tick.

:class:`WallClock` maps a monotonic local clock into the stamps' domain. Each message gives an
offset ``arrival - stamp`` (clock offset plus transport latency); the smallest offset seen over
the last ``window_ns`` is the best estimate of the clock offset alone, and
``now = local - smallest offset``. Because that offset is at most the reference message's own,
the frame's deadline ``stamp + timeout`` is reached at most ``timeout`` after the message
arrived. The window lets the estimate follow a drifting or stepped sensor clock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["WallClock"]

#: Offsets older than this stop counting: a sensor clock that steps is followed within it.
DEFAULT_WINDOW_NS = 10_000_000_000


class WallClock:
    """Wall time in the stamps' domain (see the module docstring).

    ``local_ns`` is the monotonic local clock (``time.perf_counter_ns``, the clock the live
    inbox stamps arrivals with).
    """

    def __init__(
        self,
        local_ns: Callable[[], int] = time.perf_counter_ns,
        window_ns: int = DEFAULT_WINDOW_NS,
    ) -> None:
        if window_ns <= 0:
            raise ValueError(f"window_ns must be > 0, got {window_ns}")
        self.local_ns = local_ns
        self.window_ns = window_ns
        # (arrival, offset) with increasing offsets: the front is the smallest in the window
        self._offsets: deque[tuple[int, int]] = deque()

    def observe(self, stamp_ns: int, arrival_ns: int) -> None:
        """A message stamped ``stamp_ns`` (stamps' domain) arrived at ``arrival_ns`` (local)."""
        offset = arrival_ns - stamp_ns
        offsets = self._offsets
        while offsets and offsets[-1][1] >= offset:
            offsets.pop()  # a newer, smaller offset makes these irrelevant
        offsets.append((arrival_ns, offset))
        while offsets[0][0] < arrival_ns - self.window_ns:
            offsets.popleft()

    def reset(self) -> None:
        """Forget the offsets: the stamps' timeline changed (a recording looped, a sensor
        clock was set), so the next message defines the offset afresh."""
        self._offsets.clear()

    @property
    def offset_ns(self) -> int | None:
        """The current clock-offset estimate, ``None`` before the first message."""
        return self._offsets[0][1] if self._offsets else None

    def now_ns(self) -> int | None:
        """Now, in the stamps' domain; ``None`` until a message has been observed."""
        offset = self.offset_ns
        return None if offset is None else self.local_ns() - offset
