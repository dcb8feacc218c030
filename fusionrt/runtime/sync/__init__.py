"""Time alignment: which camera image, lidar sweep, radar scan and log line make one frame.

* :class:`ApproximateTimePolicy` — message_filters' optimal-set ApproximateTime, identical
  output on identical input.
* :class:`CollectorPolicy` — bounded latency: a reference sensor (or a fixed rate) opens frames,
  emitted when complete or at their deadline on the virtual clock.
* :class:`LatestPolicy` — slow/continuous streams held or interpolated at the frame stamp.
* :class:`Synchronizer` — time offsets, per-stream guards, virtual clock, staleness, drop
  reports, :class:`~fusionrt.runtime.messages.Frame` building.
* :class:`StampGuard` — the stamp rules: implausible stamps dropped per message, a jump every
  stream makes (:class:`TimelineJump`) resets the timeline.
* :func:`compensate_points`, :func:`poses_from_speed_yaw_rate` — ego-motion compensation.

Stamps are ``int`` nanoseconds on the common clock; nothing here reads the wall clock. The names
are imported from their modules on first use (PEP 562, through ``lazy_loader``), so that a
sensor plugin importing :func:`compensate_points` does not import the synchroniser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from fusionrt.runtime.sync._common import SyncConfigError
    from fusionrt.runtime.sync.approximate_time import (
        DEFAULT_MAX_INTERVAL_NS,
        ApproximateTimePolicy,
        make_duration_scaler,
    )
    from fusionrt.runtime.sync.collector import CollectedFrame, CollectorPolicy, MissingReason
    from fusionrt.runtime.sync.drops import (
        DropCallback,
        DropCounters,
        DroppedMessage,
        DropReason,
        StaleCallback,
        StaleDetector,
    )
    from fusionrt.runtime.sync.ego_motion import compensate_points, poses_from_speed_yaw_rate
    from fusionrt.runtime.sync.latest import (
        LatestPolicy,
        LatestSample,
        LatestSpec,
        interpolate_value,
    )
    from fusionrt.runtime.sync.stamps import HeldMessage, StampGuard, TimelineJump, Verdict
    from fusionrt.runtime.sync.synchronizer import (
        UNKNOWN_SENSOR,
        Synchronizer,
        TimelineResetCallback,
    )

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_common": ["SyncConfigError"],
        "approximate_time": [
            "DEFAULT_MAX_INTERVAL_NS",
            "ApproximateTimePolicy",
            "make_duration_scaler",
        ],
        "collector": ["CollectedFrame", "CollectorPolicy", "MissingReason"],
        "drops": [
            "DropCallback",
            "DropCounters",
            "DroppedMessage",
            "DropReason",
            "StaleCallback",
            "StaleDetector",
        ],
        "ego_motion": ["compensate_points", "poses_from_speed_yaw_rate"],
        "latest": ["LatestPolicy", "LatestSample", "LatestSpec", "interpolate_value"],
        "stamps": ["HeldMessage", "StampGuard", "TimelineJump", "Verdict"],
        "synchronizer": ["UNKNOWN_SENSOR", "Synchronizer", "TimelineResetCallback"],
    },
)

__all__ = [
    "DEFAULT_MAX_INTERVAL_NS",
    "UNKNOWN_SENSOR",
    "ApproximateTimePolicy",
    "CollectedFrame",
    "CollectorPolicy",
    "DropCallback",
    "DropCounters",
    "DropReason",
    "DroppedMessage",
    "HeldMessage",
    "LatestPolicy",
    "LatestSample",
    "LatestSpec",
    "MissingReason",
    "StaleCallback",
    "StaleDetector",
    "StampGuard",
    "SyncConfigError",
    "Synchronizer",
    "TimelineJump",
    "TimelineResetCallback",
    "Verdict",
    "compensate_points",
    "interpolate_value",
    "make_duration_scaler",
    "poses_from_speed_yaw_rate",
]
