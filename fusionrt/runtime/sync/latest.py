"""The value of slow or continuous streams at a frame stamp: hold or interpolate, with a max age.

CAN signals, text logs and ego odometry do not need a message "matched" to each frame; they
need their value *at* the frame stamp. :class:`LatestPolicy` keeps a short history per sensor
and answers :meth:`LatestPolicy.sample` with

* ``hold``: the last message at or before the stamp;
* ``linear``: the interpolation between the last message at or before the stamp and the next
  one, when that one has arrived (otherwise the held value): linear for scalars and vectors,
  spherical (slerp) for the quaternions named by ``quaternion_indices``; non-float payloads
  (text, integer enums) are held;
* or a user function ``interpolate(item0, stamp0_ns, item1, stamp1_ns, stamp_ns) -> item``.

A value whose last sample is more than ``max_age_ns`` older than the stamp is reported missing
(``too_old``); nothing at or before the stamp is ``no_data``. Items that are
:class:`~fusionrt.runtime.messages.SensorMessage` are interpolated on their payload and come back
as a new message stamped at the frame stamp (``meta["interpolated_from"] = (stamp0, stamp1)``).

Frames query in stamp order; a query discards the samples older than the one it holds from, so
each message is either used by a frame or reported once (``superseded``, ``too_old``,
``queue_overflow`` when the history overflows, ``end_of_input`` at :meth:`LatestPolicy.flush`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from fusionrt.calibration.transforms import slerp
from fusionrt.runtime.messages import SensorMessage
from fusionrt.runtime.sync._common import SyncConfigError, as_stamp
from fusionrt.runtime.sync.collector import MissingReason
from fusionrt.runtime.sync.drops import DropCounters, DropReason

__all__ = ["LatestPolicy", "LatestSample", "LatestSpec", "interpolate_value"]

Interpolator = Callable[[Any, int, Any, int, int], Any]


@dataclass(frozen=True)
class LatestSpec:
    """How one sensor is sampled (see the module docstring)."""

    max_age_ns: int | None = None
    interpolation: str | Interpolator = "hold"
    quaternion_indices: tuple[int, ...] = ()
    history: int = 256

    def __post_init__(self) -> None:
        if self.max_age_ns is not None and self.max_age_ns < 0:
            raise SyncConfigError(f"max_age_ns must be >= 0, got {self.max_age_ns}")
        if not callable(self.interpolation) and self.interpolation not in ("hold", "linear"):
            raise SyncConfigError(
                f"interpolation must be 'hold', 'linear' or a function, got {self.interpolation!r}"
            )
        if self.history < 2:
            raise SyncConfigError(f"history must be >= 2, got {self.history}")


class LatestSample(NamedTuple):
    """A value at a stamp: the item (``None`` if missing), its stamp, age and missing reason."""

    item: Any
    stamp_ns: int | None
    age_ns: int | None
    reason: str | None


def _interpolable(v0: Any, v1: Any) -> bool:
    if isinstance(v0, bool) or isinstance(v1, bool):
        return False
    if isinstance(v0, (int, float)) and isinstance(v1, (int, float)):
        return True
    return (
        isinstance(v0, np.ndarray)
        and isinstance(v1, np.ndarray)
        and v0.shape == v1.shape
        and np.issubdtype(v0.dtype, np.floating)
    )


def interpolate_value(
    v0: Any, v1: Any, alpha: float, quaternion_indices: Iterable[int] = ()
) -> Any:
    """``v0 + alpha (v1 - v0)``; (w, x, y, z) quaternions starting at ``quaternion_indices``
    (last axis) are slerped (shortest path). Python numbers give floats; float arrays keep their
    dtype; anything else (text, integer arrays, mismatched shapes) is held: ``v0`` comes back."""
    if not _interpolable(v0, v1):
        return v0
    if not isinstance(v0, np.ndarray):
        return float(v0) + alpha * (float(v1) - float(v0))
    a = v0.astype(np.float64)
    b = v1.astype(np.float64)
    out = a + alpha * (b - a)
    for start in quaternion_indices:
        q0 = a[..., start : start + 4].reshape(-1, 4)
        q1 = b[..., start : start + 4].reshape(-1, 4)
        q = slerp(q0, q1, np.full(q0.shape[0], alpha))
        out[..., start : start + 4] = q.reshape(out[..., start : start + 4].shape)
    return out.astype(v0.dtype, copy=False)


class _Sample:
    __slots__ = ("item", "reason", "stamp", "used")

    def __init__(self, stamp: int, item: Any) -> None:
        self.stamp = stamp
        self.item = item
        self.used = False
        self.reason: str | None = None


class LatestPolicy:
    """Per-sensor history of slow/continuous streams, sampled at frame stamps.

    ``sensors`` maps names to :class:`LatestSpec` (or is a list of names, all using
    ``default``). ``push(sensor, stamp_ns, item)`` stores a message (out-of-order and duplicate
    stamps are dropped with ``stamp_backwards`` / ``duplicate_stamp``);
    ``sample(sensor, stamp_ns)`` returns a :class:`LatestSample`; ``sample_all(stamp_ns)`` all
    of them. ``on_drop(sensor, stamp_ns, item, reason, detail)`` as for the other policies.
    """

    def __init__(
        self,
        sensors: Mapping[str, LatestSpec] | Iterable[str],
        default: LatestSpec | None = None,
        on_drop: Callable[[str, int, Any, str, str], None] | None = None,
    ) -> None:
        default = default or LatestSpec()
        if isinstance(sensors, Mapping):
            self.specs: dict[str, LatestSpec] = dict(sensors)
        else:
            self.specs = dict.fromkeys(sensors, default)
        if not self.specs:
            raise SyncConfigError("LatestPolicy needs at least one sensor")
        self.sensors: tuple[str, ...] = tuple(self.specs)
        self.on_drop = on_drop
        self.counters = DropCounters()
        self._history: dict[str, deque[_Sample]] = {s: deque() for s in self.sensors}

    def push(self, sensor: str, stamp_ns: int, item: Any = None) -> None:
        """Store a message of ``sensor``."""
        if type(stamp_ns) is not int:
            stamp_ns = as_stamp(stamp_ns)
        history = self._history.get(sensor)
        if history is None:
            raise KeyError(f"unknown sensor {sensor!r}; this policy has {self.sensors!r}")
        if history and stamp_ns <= history[-1].stamp:
            last = history[-1].stamp
            reason = DropReason.DUPLICATE_STAMP if stamp_ns == last else DropReason.STAMP_BACKWARDS
            self._drop(
                sensor, stamp_ns, item, reason, f"stamp {stamp_ns} after {last} on the same sensor"
            )
            return
        history.append(_Sample(stamp_ns, item))
        if len(history) > self.specs[sensor].history:
            old = history.popleft()
            if not old.used:
                self._drop(
                    sensor,
                    old.stamp,
                    old.item,
                    DropReason.QUEUE_OVERFLOW,
                    f"history of {self.specs[sensor].history} samples full",
                )

    def sample(self, sensor: str, stamp_ns: int) -> LatestSample:
        """The value of ``sensor`` at ``stamp_ns`` (see the module docstring)."""
        spec = self.specs[sensor]
        history = self._history[sensor]
        index = len(history) - 1
        while index >= 0 and history[index].stamp > stamp_ns:
            index -= 1
        if index < 0:
            return LatestSample(None, None, None, MissingReason.NO_DATA)
        # Samples before the one held can serve no later frame.
        for _ in range(index):
            old = history.popleft()
            if not old.used:
                self._drop(
                    sensor,
                    old.stamp,
                    old.item,
                    old.reason or DropReason.SUPERSEDED,
                    "a newer sample was held at %d",
                    stamp_ns,
                )
        base = history[0]
        age = stamp_ns - base.stamp
        if spec.max_age_ns is not None and age > spec.max_age_ns:
            base.reason = DropReason.TOO_OLD
            return LatestSample(None, base.stamp, age, MissingReason.TOO_OLD)
        base.used = True
        if age == 0 or len(history) < 2 or spec.interpolation == "hold":
            return LatestSample(base.item, base.stamp, age, None)
        after = history[1]
        if callable(spec.interpolation):
            item = spec.interpolation(base.item, base.stamp, after.item, after.stamp, stamp_ns)
        else:
            item = _interpolate_item(base, after, stamp_ns, spec.quaternion_indices)
            if item is None:  # not interpolable (text, integers): held
                return LatestSample(base.item, base.stamp, age, None)
        after.used = True
        return LatestSample(item, stamp_ns, 0, None)

    def sample_all(self, stamp_ns: int) -> dict[str, LatestSample]:
        """:meth:`sample` of every sensor."""
        return {sensor: self.sample(sensor, stamp_ns) for sensor in self.sensors}

    def flush(self, reason: str = DropReason.END_OF_INPUT) -> None:
        """End the input: report every sample no frame used, and forget them all."""
        for sensor, history in self._history.items():
            while history:
                old = history.popleft()
                if not old.used:
                    self._drop(sensor, old.stamp, old.item, reason, "no frame used this sample")

    def _drop(
        self, sensor: str, stamp: int, item: Any, reason: str, detail: str, *args: Any
    ) -> None:
        # ``detail % args`` is only formatted when someone listens.
        counts = self.counters.counts
        key = (sensor, reason)
        counts[key] = counts.get(key, 0) + 1
        if self.on_drop is not None:
            self.on_drop(sensor, stamp, item, reason, detail % args if args else detail)


def _interpolate_item(
    base: _Sample, after: _Sample, stamp_ns: int, quaternion_indices: tuple[int, ...]
) -> Any:
    """The interpolated item, or ``None`` when its value cannot be interpolated."""
    alpha = (stamp_ns - base.stamp) / (after.stamp - base.stamp)
    m0, m1 = base.item, after.item
    if isinstance(m0, SensorMessage) and isinstance(m1, SensorMessage):
        if not _interpolable(m0.payload, m1.payload):
            return None
        payload = interpolate_value(m0.payload, m1.payload, alpha, quaternion_indices)
        meta = dict(m0.meta)
        meta["interpolated_from"] = (m0.stamp_ns, m1.stamp_ns)
        return SensorMessage(
            sensor=m0.sensor,
            stamp_ns=stamp_ns,
            payload=payload,
            frame_id=m0.frame_id,
            seq=m0.seq,
            topic=m0.topic,
            meta=meta,
        )
    if not _interpolable(m0, m1):
        return None
    return interpolate_value(m0, m1, alpha, quaternion_indices)
