"""A run's health as ROS 2 diagnostics: ``diagnostic_msgs/msg/DiagnosticArray``.

:class:`~fusionrt.runtime.health.RunHealth` snapshots hold cumulative counts; the levels and
rates here are this module's policy, derived from two successive snapshots (the interval
between them, about a second):

* per sensor (``<node>: sensor <name>``, hardware id = the sensor name):
  **ERROR** when its plugin is quarantined or messages failed to decode in the interval
  (``decode_error``, ``implausible_stamp``, ``plugin_raised``); else **STALE** when the run
  reports it stale (silent longer than its expected period × k); else **WARN** when messages
  were lost late in the interval for any other reason (``too_old``: arrived after their frame
  was emitted, ``queue_full``, ``plugin_timeout``...); else **OK**. Key-values: messages,
  rate_hz, last_stamp_ns, stale, quarantined and ``faults.<reason>`` (cumulative) with
  ``fault_rate_hz``;
* the pipeline (``<node>: pipeline``): **WARN** when frames were dropped in the interval, else
  **OK**. Key-values: frames, frame_rate_hz, ``dropped.<reason>`` (cumulative),
  end_to_end_p50_ms, end_to_end_p99_ms, uptime_s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fusionrt.plugins.ros2.convert import header
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.health import RunHealth, SensorHealth

__all__ = [
    "DECODE_FAULTS",
    "DIAGNOSTIC_ARRAY",
    "ERROR",
    "OK",
    "STALE",
    "WARN",
    "diagnostic_array",
    "pipeline_status",
    "sensor_status",
]

DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"

#: ``diagnostic_msgs/msg/DiagnosticStatus`` levels.
OK, WARN, ERROR, STALE = 0, 1, 2, 3

#: Fault reasons that mean the sensor's data is broken rather than late or lost.
DECODE_FAULTS = frozenset({"decode_error", "implausible_stamp", "plugin_raised"})

Status = tuple[int, str, dict[str, str]]
"""A status before it becomes a message: level, message, key-values."""


def _delta(current: Mapping[str, int], previous: Mapping[str, int] | None) -> dict[str, int]:
    """Counts added since ``previous`` (every key of ``current``; new keys count in full)."""
    before = previous or {}
    return {k: v - before.get(k, 0) for k, v in current.items() if v - before.get(k, 0) > 0}


def _rate(count: int, interval_s: float) -> str:
    return f"{count / interval_s:.2f}" if interval_s > 0 else "0.00"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def sensor_status(
    current: SensorHealth, previous: SensorHealth | None, interval_s: float
) -> Status:
    """One sensor's level, message and key-values over the interval (module docstring)."""
    new_messages = current.messages - (previous.messages if previous else 0)
    new_faults = _delta(current.faults, previous.faults if previous else None)
    decode = {k: v for k, v in new_faults.items() if k in DECODE_FAULTS}
    lost = {k: v for k, v in new_faults.items() if k not in DECODE_FAULTS}
    if current.quarantined:
        level, message = ERROR, "quarantined: its plugin is no longer called"
    elif decode:
        level, message = ERROR, f"decode faults in the last {interval_s:.1f} s ({_counts(decode)})"
    elif current.stale:
        level, message = STALE, "stale: silent for longer than its expected period allows"
    elif lost:
        level, message = WARN, f"late or lost in the last {interval_s:.1f} s ({_counts(lost)})"
    else:
        level, message = OK, "ok"
    values = {
        "messages": str(current.messages),
        "rate_hz": _rate(new_messages, interval_s),
        "last_stamp_ns": "" if current.last_stamp_ns is None else str(current.last_stamp_ns),
        "stale": str(current.stale).lower(),
        "quarantined": str(current.quarantined).lower(),
        "fault_rate_hz": _rate(sum(new_faults.values()), interval_s),
    }
    values.update({f"faults.{k}": str(v) for k, v in sorted(current.faults.items())})
    return level, message, values


def pipeline_status(current: RunHealth, previous: RunHealth | None) -> Status:
    """The pipeline's level, message and key-values over the interval (module docstring)."""
    interval_s = _interval(current, previous)
    new_frames = current.frames - (previous.frames if previous else 0)
    new_drops = _delta(current.dropped, previous.dropped if previous else None)
    if new_drops:
        level, message = (
            WARN,
            f"frames dropped in the last {interval_s:.1f} s ({_counts(new_drops)})",
        )
    else:
        level, message = OK, "ok"

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    values = {
        "frames": str(current.frames),
        "frame_rate_hz": _rate(new_frames, interval_s),
        "end_to_end_p50_ms": ms(current.end_to_end_p50_ms),
        "end_to_end_p99_ms": ms(current.end_to_end_p99_ms),
        "uptime_s": f"{current.uptime_s:.1f}",
    }
    values.update({f"dropped.{k}": str(v) for k, v in sorted(current.dropped.items())})
    return level, message, values


def _interval(current: RunHealth, previous: RunHealth | None) -> float:
    """Seconds the deltas cover: since the previous snapshot, else since the run started."""
    return current.monotonic_s - previous.monotonic_s if previous else current.uptime_s


def diagnostic_array(
    current: RunHealth, previous: RunHealth | None, stamp_ns: int, node_name: str
) -> Any:
    """The ``diagnostic_msgs/msg/DiagnosticArray`` of a snapshot (and the one before it)."""
    types = typestore().types
    status_type, key_value = (
        types["diagnostic_msgs/msg/DiagnosticStatus"],
        types["diagnostic_msgs/msg/KeyValue"],
    )
    interval_s = _interval(current, previous)

    def status(name: str, hardware_id: str, result: Status) -> Any:
        level, message, values = result
        return status_type(
            level=level,
            name=name,
            message=message,
            hardware_id=hardware_id,
            values=[key_value(key=k, value=v) for k, v in values.items()],
        )

    statuses = [status(f"{node_name}: pipeline", "", pipeline_status(current, previous))]
    for name, sensor in current.sensors.items():
        before = previous.sensors.get(name) if previous else None
        result = sensor_status(sensor, before, interval_s)
        statuses.append(status(f"{node_name}: sensor {name}", name, result))
    return types[DIAGNOSTIC_ARRAY](header=header(stamp_ns, ""), status=statuses)
