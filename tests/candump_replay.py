"""A car's node on python-can's virtual bus, for live tests: a drive's candump log sent at its
recorded pace with its recorded stamps (python-can's ``MessageSync`` paces a log too, but from
its own first frame and with no way to stop it, and these tests align it to other sensors)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import can

from fusionrt.plugins.sensors.can import CanFrame


def replay_candump(
    channel: str,
    frames: Iterable[CanFrame],
    *,
    t0_ns: int,
    stop: threading.Event,
    speed: float = 1.0,
) -> None:
    """Send FRAMES (``read_candump``'s) on the virtual bus CHANNEL: the frame stamped ``t0_ns``
    now, the rest at their recorded spacing divided by SPEED, until they end or STOP is set."""
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    started = time.monotonic()
    try:
        for frame in frames:
            delay = started + (frame.t_ns - t0_ns) / 1e9 / speed - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            bus.send(can_message(frame))
    finally:
        bus.shutdown()


def can_message(frame: CanFrame) -> can.Message:
    """FRAME as python-can's message, with its recorded stamp."""
    return can.Message(
        timestamp=frame.t_ns / 1e9,
        arbitration_id=frame.arbitration_id,
        is_extended_id=frame.is_extended,
        data=frame.data,
    )
