"""Splitting a long drive into time chunks that replay independently and give the same frames.

A chunk *owns* the frames whose reference stamp lies in ``[start_ns, stop_ns)`` (the first
chunk's start and the last one's stop are open, so no frame at either end of the drive is
lost). It *reads* more than it owns: from ``context_ns`` before its start (warm-up, so the
synchroniser holds the messages a frame at the chunk start pairs with, and the latest streams
their last values) to ``context_ns`` after its stop (so the last owned frame is completed or
timed out exactly as in one replay of the whole drive). Frames formed in the warm-up or the
tail belong to the neighbouring chunk and are dropped. Any boundary is therefore a safe point:
ownership by reference stamp never splits a frame, and the overlap gives each frame the same
inputs as the whole-drive replay as long as ``context_ns`` exceeds every time window of the
synchroniser (:func:`sync_context_ns`).

Times are nanoseconds on the recording's clock (log time, what the source's ``seek`` takes);
frame stamps are on the common clock, which differs from log time by the transport delay
(milliseconds), far less than the context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fusionrt.runtime.config import PipelineConfig
from fusionrt.runtime.errors import ConfigError

#: The least warm-up and tail: one second covers the sensors' periods with a wide margin.
MIN_CONTEXT_NS = 1_000_000_000


@dataclass(frozen=True)
class ChunkWindow:
    """One chunk of a drive (see the module docstring); ``None`` bounds are open."""

    index: int
    count: int
    start_ns: int | None
    stop_ns: int | None
    read_start_ns: int | None
    read_stop_ns: int | None

    def owns(self, stamp_ns: int) -> bool:
        """Whether the frame stamped ``stamp_ns`` belongs to this chunk."""
        return (self.start_ns is None or stamp_ns >= self.start_ns) and (
            self.stop_ns is None or stamp_ns < self.stop_ns
        )


WHOLE_DRIVE = ChunkWindow(0, 1, None, None, None, None)


def _durations_ns(parameters: Mapping[str, Any]) -> list[int]:
    return [int(v) for k, v in parameters.items() if k.endswith("_ns") and v is not None]


def sync_context_ns(config: PipelineConfig) -> int:
    """Warm-up and tail a chunk needs: twice the longest time window of the synchroniser
    (tolerance, timeout, interval, a latest stream's maximum age), at least one second."""
    sync = config.sync
    windows = _durations_ns(sync.parameters)
    for params in sync.latest.values():
        windows += _durations_ns(params)
    windows += [int(v) for v in sync.expected_periods_ns.values()]
    return max([MIN_CONTEXT_NS, *(2 * w for w in windows if w < 3_600_000_000_000)])


def plan_chunks(first_ns: int, last_ns: int, chunk_s: float, context_ns: int) -> list[ChunkWindow]:
    """Chunks of ``chunk_s`` seconds covering the drive ``[first_ns, last_ns]``."""
    if not chunk_s > 0:
        raise ConfigError(f"chunk length must be > 0 s, got {chunk_s!r}", key="--chunk-s")
    chunk_ns = int(chunk_s * 1e9)
    count = max(1, math.ceil((last_ns - first_ns + 1) / chunk_ns))
    if count == 1:
        return [WHOLE_DRIVE]
    windows = []
    for index in range(count):
        start = None if index == 0 else first_ns + index * chunk_ns
        stop = None if index == count - 1 else first_ns + (index + 1) * chunk_ns
        windows.append(
            ChunkWindow(
                index,
                count,
                start,
                stop,
                None if start is None else start - context_ns,
                None if stop is None else stop + context_ns,
            )
        )
    return windows
