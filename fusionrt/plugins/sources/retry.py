"""Reconnecting with exponential back-off, for live sources whose device or stream can vanish.

A CAN adapter unplugged, a camera rebooting, an RTSP server restarting: the source reports the
outage once and tries again, first at once (a hiccup costs nothing), then after
``initial_s``, doubling up to ``max_s`` so a device that stays away costs a few attempts a
minute, not a busy loop. Success resets the delay. Waiting is on the source's stop event, so
closing the source ends the wait at once.
"""

from __future__ import annotations

import threading

__all__ = ["Backoff"]


class Backoff:
    """The delays between attempts: 0, ``initial_s``, 2·``initial_s``, … capped at ``max_s``.

    ``attempts`` counts the failures since the last :meth:`reset`.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        if not 0 < initial_s <= max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s} and {max_s}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.attempts = 0

    def next_delay_s(self) -> float:
        """The wait before the next attempt (and count this failure)."""
        self.attempts += 1
        if self.attempts == 1:
            return 0.0
        return min(self.max_s, self.initial_s * 2.0 ** (self.attempts - 2))

    def wait(self, stop: threading.Event) -> bool:
        """Wait :meth:`next_delay_s`; ``False`` when ``stop`` was set (give up)."""
        return not stop.wait(self.next_delay_s())

    def reset(self) -> None:
        """The device is back: the next failure retries at once again."""
        self.attempts = 0
