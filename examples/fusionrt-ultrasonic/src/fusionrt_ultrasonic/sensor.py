"""``UltrasonicSensor``: 12 bumper-mounted ultrasonic range sensors.

Frames: the ego frame of fusionrt (x forward, y left, z up, metres). Each transducer's mounting
(x, y, yaw in degrees) comes from the ``layout`` option; the default is a typical parking-assist
layout of six transducers on each bumper of a 4.7 m car whose rear axle is the origin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from fusionrt import ConfigError, DecodeError, RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.errors import brief
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor
from fusionrt_ultrasonic.wire import (
    RECORD_DTYPE,
    STATUS_OK,
    WireFormatError,
    decode_frame,
    encode_frame,
)

MSGTYPE = "fusionrt_ultrasonic/USS1"

#: transducer id -> (x m, y m, yaw deg) in the ego frame.
DEFAULT_LAYOUT: dict[int, tuple[float, float, float]] = {
    0: (3.75, 0.85, 70.0),
    1: (3.85, 0.55, 30.0),
    2: (3.90, 0.18, 5.0),
    3: (3.90, -0.18, -5.0),
    4: (3.85, -0.55, -30.0),
    5: (3.75, -0.85, -70.0),
    6: (-0.95, 0.85, 110.0),
    7: (-1.05, 0.55, 150.0),
    8: (-1.10, 0.18, 175.0),
    9: (-1.10, -0.18, -175.0),
    10: (-1.05, -0.55, -150.0),
    11: (-0.95, -0.85, -110.0),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mounts(layout: Mapping[Any, Any], instance: str) -> dict[int, tuple[float, float, float]]:
    """The ``layout`` option checked: integer ids to three finite numbers (x m, y m, yaw deg)."""
    mounts: dict[int, tuple[float, float, float]] = {}
    for key, mount in layout.items():
        if not (
            isinstance(key, int)
            and not isinstance(key, bool)
            and isinstance(mount, list | tuple)
            and len(mount) == 3
            and all(_is_number(v) for v in mount)
        ):
            raise ConfigError(
                "layout maps each transducer id to [x_m, y_m, yaw_deg], "
                f"got {brief(key)}: {brief(mount)}",
                sensor=instance,
                key="layout",
            )
        x, y, yaw = (float(v) for v in mount)
        mounts[key] = (x, y, yaw)
    return mounts


class UltrasonicSensor(Sensor):
    """Decodes ``USS1`` frames; preprocesses into a range vector and a BEV echo raster.

    Options: ``max_range_m`` (5.0: echoes at or beyond it are free space), ``layout`` (transducer
    id -> ``[x_m, y_m, yaw_deg]`` in the ego frame; default :data:`DEFAULT_LAYOUT`).
    """

    name: ClassVar[str] = "ultrasonic"
    modality: ClassVar[Modality] = Modality.OTHER
    nonfinite: ClassVar[NonFinitePolicy] = NonFinitePolicy.DROP
    option_specs: ClassVar[Mapping[str, Option]] = {
        "max_range_m": Option(5.0, float, exclusive_minimum=0),
        "layout": Option(DEFAULT_LAYOUT, dict),
    }

    def __init__(
        self, instance: str | None = None, topic: str = "/ultrasonic", **options: Any
    ) -> None:
        super().__init__(instance, topic, **options)
        self.max_range_m: float = self.options["max_range_m"]
        self.layout = _mounts(self.options["layout"], self.instance)
        ids = np.array(sorted(self.layout), dtype=np.int64)
        mounts = np.array([self.layout[i] for i in ids], dtype=np.float64)
        self._slot_of_id = {int(i): slot for slot, i in enumerate(ids)}
        self._mount_xy = mounts[:, :2]
        yaw = np.radians(mounts[:, 2])
        self._mount_dir = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)

    def decode(self, raw: RawRecord) -> SensorMessage:
        """Decode one ``USS1`` frame into a structured view (id, status, range_m)."""
        try:
            stamp_ns, records = decode_frame(raw.data)
        except WireFormatError as exc:
            raise DecodeError(
                f"invalid USS1 frame: {exc}",
                sensor=self.instance,
                topic=raw.topic,
                path=raw.path,
                offset=(raw.offset or 0) + exc.offset,
            ) from exc
        return SensorMessage(self.instance, stamp_ns, records, "ultrasonic", 0, raw.topic)

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """A normalised range per transducer and a one-channel BEV echo raster."""
        rows, cols = context.geometry.bev.shape
        return [
            TensorSpec("ultrasonic_ranges", (len(self.layout),), "float32", self.instance),
            TensorSpec("ultrasonic_bev", (1, rows, cols), "float32", self.instance),
        ]

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """Ranges / max range (1 = free) per transducer and echo points marked on the BEV grid.

        Echoes with a non-OK status, an unknown id or a non-finite range are treated as free
        space, so the outputs are always finite.
        """
        ranges_spec, bev_spec = self.tensor_specs(context)
        normalised = np.ones(ranges_spec.shape, np.float32)
        bev = bev_spec.zeros()
        if message is None:
            return {"ultrasonic_ranges": np.zeros_like(normalised), "ultrasonic_bev": bev}
        records = np.asarray(message.payload)
        ranges = records["range_m"].astype(np.float64)
        slots = np.array([self._slot_of_id.get(int(i), -1) for i in records["id"]], np.int64)
        valid = (
            (records["status"] == STATUS_OK)
            & (slots >= 0)
            & np.isfinite(ranges)
            & (ranges >= 0)
            & (ranges < self.max_range_m)
        )
        slots, ranges = slots[valid], ranges[valid]
        normalised[slots] = (ranges / self.max_range_m).astype(np.float32)
        echoes = self._mount_xy[slots] + self._mount_dir[slots] * ranges[:, None]
        grid = context.geometry.bev
        row = np.floor((echoes[:, 0] - grid.x_range[0]) / grid.resolution).astype(np.int64)
        col = np.floor((echoes[:, 1] - grid.y_range[0]) / grid.resolution).astype(np.int64)
        inside = (row >= 0) & (row < bev.shape[1]) & (col >= 0) & (col < bev.shape[2])
        bev[0, row[inside], col[inside]] = 1.0
        return {"ultrasonic_ranges": normalised, "ultrasonic_bev": bev}

    def sample_records(self) -> list[RawRecord]:
        """Three frames of a car reversing towards a wall 2.0 → 1.2 m behind it."""
        frames = []
        for step, wall_m in enumerate((2.0, 1.6, 1.2)):
            records = np.zeros(len(self.layout), RECORD_DTYPE)
            records["id"] = sorted(self.layout)
            records["status"] = 1  # no echo in front
            rear = records["id"] >= 6
            records["status"][rear] = STATUS_OK
            records["range_m"][rear] = wall_m + 0.1 * np.abs(records["id"][rear] - 8.5)
            stamp_ns = 1_000_000_000 + step * 50_000_000
            frames.append(RawRecord(self.topic, stamp_ns, encode_frame(stamp_ns, records), MSGTYPE))
        return frames
