"""Message types of the data path: raw records, sensor messages, frames, detections, specs.

Conventions: every timestamp is an ``int`` of nanoseconds on the one common clock
(``stamp_ns``); boxes are in the ego frame (x forward, y left, z up, ISO 8855), metres and
radians; payloads are numpy arrays, views of the recorded bytes wherever the format allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Payload = np.ndarray | str


@dataclass(slots=True)
class RawRecord:
    """One recorded message as a source yields it, before any sensor has decoded it.

    ``data`` is the serialized message (CDR bytes for ROS 2, file bytes for folder datasets);
    ``msgtype`` says how to read it (``sensor_msgs/msg/PointCloud2``, ``kitti/velodyne_bin``...).
    ``path`` and ``offset`` locate the bytes for error messages. Records are not to be changed
    once made (use :func:`dataclasses.replace`); the class is not frozen only because a frozen
    dataclass costs a microsecond more to build, once per message on the live path.
    """

    topic: str
    stamp_ns: int
    data: bytes | bytearray | memoryview
    msgtype: str = ""
    path: str | None = None
    offset: int | None = None


@dataclass(slots=True)
class SensorMessage:
    """A decoded, time-stamped message of one sensor on the common clock."""

    sensor: str
    stamp_ns: int
    payload: Payload
    frame_id: str = ""
    seq: int = 0
    topic: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A model input or output: name, static shape, dtype and the sensor that produces it."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    sensor: str | None = None

    def matches(self, array: np.ndarray) -> bool:
        """Whether ``array`` has exactly this spec's shape and dtype."""
        return tuple(array.shape) == tuple(self.shape) and array.dtype == np.dtype(self.dtype)

    def zeros(self) -> np.ndarray:
        """An all-zero array of this spec (what a missing sensor contributes)."""
        return np.zeros(self.shape, dtype=self.dtype)


@dataclass(slots=True)
class Frame:
    """One fused frame: per sensor, its message or ``None`` with the reason it is missing.

    ``ages_ns[sensor]`` is ``stamp_ns - message.stamp_ns`` (positive: the message is older
    than the reference stamp). ``ego_pose`` is the 4×4 ego → world pose at ``stamp_ns`` when known.
    """

    stamp_ns: int
    messages: dict[str, SensorMessage | None]
    missing: dict[str, str] = field(default_factory=dict)
    ages_ns: dict[str, int] = field(default_factory=dict)
    ego_pose: npt.NDArray[np.float64] | None = None
    seq: int = 0

    def present(self) -> list[str]:
        """Names of the sensors that have a message in this frame."""
        return [name for name, message in self.messages.items() if message is not None]


CLASS_NAMES: tuple[str, ...] = ("car", "pedestrian", "cyclist")


@dataclass(slots=True)
class Detections:
    """3D detections of one frame in the ego frame.

    ``boxes`` is N×7: centre x, y, z, length, width, height, yaw (about +z); ``labels`` index
    ``class_names``; ``velocities`` is N×2 (vx, vy) in m/s when the model predicts it.
    """

    stamp_ns: int
    boxes: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    class_names: tuple[str, ...] = CLASS_NAMES
    velocities: npt.NDArray[np.float32] | None = None
    frame_id: str = "ego"
    #: How much each modality contributed to the frame, per measure (the model's
    #: :meth:`~fusionrt.runtime.components.Model.explain`): ``{"drop_one": {"lidar": 0.4,
    #: ...}}``; with several models each measure is prefixed ``INSTANCE/``. Empty: none.
    explanations: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        count = len(self.scores)
        if self.boxes.shape != (count, 7) or self.labels.shape != (count,):
            raise ValueError(
                f"Detections: boxes {self.boxes.shape}, scores {self.scores.shape} and labels "
                f"{self.labels.shape} disagree (expected N×7, N, N)"
            )
        if self.velocities is not None and self.velocities.shape != (count, 2):
            raise ValueError(f"Detections: velocities {self.velocities.shape} is not N×2")

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, stamp_ns: int, class_names: tuple[str, ...] = CLASS_NAMES) -> Detections:
        """No detections at ``stamp_ns``."""
        return cls(
            stamp_ns=stamp_ns,
            boxes=np.zeros((0, 7), np.float32),
            scores=np.zeros((0,), np.float32),
            labels=np.zeros((0,), np.int64),
            class_names=class_names,
        )
