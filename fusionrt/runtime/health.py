"""A running pipeline's health, as a snapshot a sink or a monitor can read at any time.

A live runtime reports how it is doing to the rest of the stack (ROS 2 ``/diagnostics``, a
dashboard) while it runs, not only in the report at the end. :class:`RunHealth` is a frozen
snapshot of cumulative counts — per sensor: messages decoded, faults by reason, staleness,
quarantine; for the pipeline: frames written, frames dropped by reason, end-to-end latency
percentiles — that the pipeline hands out through ``RunInfo.health()``. Rates and levels
(OK / late / stale / error) are for the reader to derive from two snapshots: what "late" means
is a policy of the reader (ROS 2's diagnostic aggregator, an operator's dashboard), not of the
runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RunHealth", "SensorHealth"]


@dataclass(frozen=True)
class SensorHealth:
    """One sensor's cumulative counts at the snapshot.

    ``messages``: decoded and handed to the synchroniser; ``faults``: lost messages and frames
    by reason (``decode_error``, ``queue_full``, ``plugin_timeout``, ``too_old``...);
    ``last_stamp_ns``: the newest stamp decoded (common clock); ``stale``: silent for longer
    than its expected period × k; ``quarantined``: its plugin is no longer called.
    """

    name: str
    messages: int = 0
    faults: Mapping[str, int] = field(default_factory=dict)
    last_stamp_ns: int | None = None
    stale: bool = False
    quarantined: bool = False


@dataclass(frozen=True)
class RunHealth:
    """The pipeline's cumulative counts at the snapshot (``monotonic_s``: when it was taken,
    ``time.monotonic()``; ``uptime_s``: since the run started)."""

    monotonic_s: float
    uptime_s: float
    frames: int
    dropped: Mapping[str, int]
    end_to_end_p50_ms: float | None
    end_to_end_p99_ms: float | None
    sensors: Mapping[str, SensorHealth]
