"""What the storage readers of :class:`~fusionrt.plugins.sources.RosbagSource` share.

A storage reader (:mod:`.rosbag_mcap`, :mod:`.rosbag_sqlite3`) opens one storage file of a bag,
says which topics it declares (:class:`Connection`) and yields its messages as :data:`Entry`
tuples; what it finds broken it reports as :class:`~fusionrt.plugins.sources.BadRecord` s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fusionrt.plugins.sources import BadRecord

__all__ = [
    "DEFINITION_ENCODINGS",
    "STEP_TOLERANCE_NS",
    "Connection",
    "Entry",
    "LogTimeSteps",
    "Report",
    "StorageUnreadable",
]

Report = Callable[[BadRecord], None]

#: Schema encodings whose text is a ROS 2 message definition.
DEFINITION_ENCODINGS = ("ros2msg", "ros2idl")

#: How far a topic's log time may step back from one message to the next before the file is
#: taken to have been recorded across a clock step (see :class:`LogTimeSteps`).
STEP_TOLERANCE_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Connection:
    """A topic as one storage file declares it."""

    id: int
    topic: str
    msgtype: str
    encoding: str
    #: The type's ``ros2msg`` / ``ros2idl`` text as the file stores it; ``""`` is the
    #: definition of a message without fields (``std_msgs/msg/Empty``), ``None`` says the
    #: file has none (rosbag2 writes an unknown type's with the encoding ``unknown``).
    definition: str | None


#: A message as a storage yields it: (stamp_ns, file index, offset, index, connection, data).
#: The first four fields are unique within a bag, so tuples order without comparing the rest.
Entry = tuple[int, int, int, int, Connection, bytes]


class StorageUnreadable(Exception):
    """A storage file that cannot be read at all."""


class LogTimeSteps:
    """Where a storage file's log time steps back, found topic by topic in write order.

    rosbag2 writes messages in the order they arrive and stamps each with the recorder's
    clock. When that clock steps back (an NTP correction), the messages after the step carry
    log times of messages written long before; merged by log time, the two stretches of the
    drive interleave. Such a step shows as a topic whose log time drops by more than
    ``tolerance_ns`` from one message to the next; a file written topic after topic shows
    none (each topic's own log times still rise), nor does delivery jitter (far below a
    second). Feed each topic's log times in write order; ``first`` is then the first step.
    """

    def __init__(self, tolerance_ns: int = STEP_TOLERANCE_NS) -> None:
        self.tolerance_ns = tolerance_ns
        #: The earliest step: (size in ns, channel id, where (offset), log time after it).
        self.first: tuple[int, int, int, int] | None = None
        #: Steps seen, over all topics.
        self.count = 0
        self._first_at: tuple[int, int] | None = None  # (where, position in it) of ``first``
        self._last: dict[int, int] = {}

    def feed(
        self,
        channel_id: int,
        log_times: npt.NDArray[np.int64],
        where: int | npt.NDArray[np.int64],
        within: npt.NDArray[np.int64] | None = None,
    ) -> None:
        """Log times of one topic in the order they were written, and where they are: one
        offset for all (an MCAP chunk, with each message's position ``within`` it) or one
        each (sqlite3 row ids)."""
        if not len(log_times):
            return
        times = np.asarray(log_times, np.int64)
        previous = self._last.get(channel_id, int(times[0]))
        back = np.concatenate(([previous], times[:-1])) - times
        steps = np.flatnonzero(back > self.tolerance_ns)
        if len(steps):
            i = int(steps[0])
            at = where if isinstance(where, int) else int(where[i])
            position = 0 if within is None else int(within[i])
            self.note(
                int(back[i]), channel_id, at, int(times[i]), count=len(steps), within=position
            )
        self._last[channel_id] = int(times[-1])

    def note(
        self,
        size_ns: int,
        channel_id: int,
        where: int,
        stamp_ns: int,
        *,
        count: int = 1,
        within: int = 0,
    ) -> None:
        """``count`` steps, the first ``size_ns`` back at ``where`` (fed, or found in SQL)."""
        if self._first_at is None or (where, within) < self._first_at:
            self.first = (size_ns, channel_id, where, stamp_ns)
            self._first_at = (where, within)
        self.count += count

    def report(self, path: str, topics: dict[int, str], report: Report) -> None:
        """Report the first step, if any, as one ``log_time_step`` :class:`BadRecord`.

        The report names no topic: the step is the recorder's, every topic after it has it.
        """
        if self.first is None:
            return
        size, channel_id, where, stamp = self.first
        more = f", {self.count} steps over all topics" if self.count > 1 else ""
        report(
            BadRecord(
                "log_time_step",
                f"the log time steps back {size / 1e9:.3f} s (first on "
                f"{topics.get(channel_id, f'channel {channel_id}')}{more}): the recorder's "
                "clock stepped; the file is replayed in write order, not by log time",
                path=path,
                offset=where,
                stamp_ns=stamp,
            )
        )
