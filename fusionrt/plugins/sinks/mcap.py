"""``mcap`` sink: one MCAP file a user opens in Foxglove.

Channels (protobuf-encoded with the published Foxglove schemas of ``foxglove-sdk``, log time =
frame stamp):

==============================  ==========================  ===================================
topic                           schema                      content
==============================  ==========================  ===================================
``/fusionrt/detections``        ``foxglove.SceneUpdate``    one cube per detection, ego frame
``/fusionrt/ground_truth``      ``foxglove.SceneUpdate``    ground-truth boxes (when known)
``/fusionrt/lidar``             ``foxglove.PointCloud``     the lidar sweep in the ego frame
``/fusionrt/camera``            ``foxglove.CompressedImage``  the camera image, boxes drawn, JPEG
==============================  ==========================  ===================================

The messages are built with foxglove-sdk's classes and written by
:class:`~fusionrt.plugins.sinks.mcap_file.McapFile` (the ``mcap`` package's writer, small zstd
chunks flushed after every frame): a failed write raises
:class:`~fusionrt.runtime.errors.SinkError` and leaves the file readable up to the failure, a
killed run leaves it readable up to its last chunk (``fusionrt mcap-recover`` indexes it).
Options: ``path`` (default ``OUT/run.mcap``), ``jpeg_quality`` (default 85), ``chunk_kib``
(uncompressed chunk size in KiB, default 64: about one frame of the sample drive, so a killed
run loses about one frame).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from foxglove.messages import (
    Color,
    CompressedImage,
    CubePrimitive,
    Duration,
    PackedElementField,
    PackedElementFieldNumericType,
    PointCloud,
    Pose,
    Quaternion,
    SceneEntity,
    SceneUpdate,
    TextPrimitive,
    Timestamp,
    Vector3,
)

from fusionrt.plugins.sinks.mcap_file import McapFile
from fusionrt.plugins.sinks.video import (
    DETECTION_BGR,
    TRUTH_BGR,
    draw_boxes_on_image,
    first_sensor,
    image_bgr,
    points_in_ego,
)
from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import SinkError
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.sensor import Modality

TOPIC_DETECTIONS = "/fusionrt/detections"
TOPIC_TRUTH = "/fusionrt/ground_truth"
TOPIC_LIDAR = "/fusionrt/lidar"
TOPIC_CAMERA = "/fusionrt/camera"
FRAME_ID = "ego"

__all__ = ["FoxgloveMcapSink", "point_cloud", "scene_update"]


class _FoxgloveMessage(Protocol):
    """What foxglove-sdk's message classes offer: protobuf bytes and their schema."""

    def encode(self) -> bytes: ...

    @classmethod
    def get_schema(cls) -> Any: ...


_CHANNELS: tuple[tuple[str, type[_FoxgloveMessage]], ...] = (
    (TOPIC_DETECTIONS, SceneUpdate),
    (TOPIC_TRUTH, SceneUpdate),
    (TOPIC_LIDAR, PointCloud),
    (TOPIC_CAMERA, CompressedImage),
)


def _timestamp(stamp_ns: int) -> Timestamp:
    return Timestamp(stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)


def scene_update(
    boxes: np.ndarray,
    labels: list[str],
    stamp_ns: int,
    rgba: tuple[float, float, float, float],
    prefix: str,
) -> SceneUpdate:
    """One entity per N×7 ego-frame box (cube + label), living 0.2 s."""
    entities = []
    timestamp = _timestamp(stamp_ns)
    for index, (box, label) in enumerate(zip(np.asarray(boxes, np.float64), labels, strict=True)):
        half = 0.5 * float(box[6])
        pose = Pose(
            position=Vector3(x=float(box[0]), y=float(box[1]), z=float(box[2])),
            orientation=Quaternion(x=0.0, y=0.0, z=math.sin(half), w=math.cos(half)),
        )
        above = Pose(
            position=Vector3(x=float(box[0]), y=float(box[1]), z=float(box[2] + box[5] / 2 + 0.3)),
            orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
        )
        colour = Color(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
        entities.append(
            SceneEntity(
                timestamp=timestamp,
                frame_id=FRAME_ID,
                id=f"{prefix}{index}",
                lifetime=Duration(0, 200_000_000),
                cubes=[
                    CubePrimitive(
                        pose=pose,
                        size=Vector3(x=float(box[3]), y=float(box[4]), z=float(box[5])),
                        color=colour,
                    )
                ],
                texts=[
                    TextPrimitive(
                        pose=above,
                        billboard=True,
                        font_size=12.0,
                        scale_invariant=True,
                        color=colour,
                        text=label,
                    )
                ],
            )
        )
    return SceneUpdate(entities=entities)


def point_cloud(xyz: np.ndarray, stamp_ns: int) -> PointCloud:
    """An ego-frame ``foxglove.PointCloud`` of N×3 points (float32 x, y, z)."""
    data = np.ascontiguousarray(xyz, dtype=np.float32)
    fields = [
        PackedElementField(name=axis, offset=4 * i, type=PackedElementFieldNumericType.Float32)
        for i, axis in enumerate("xyz")
    ]
    return PointCloud(
        timestamp=_timestamp(stamp_ns),
        frame_id=FRAME_ID,
        pose=Pose(position=Vector3(), orientation=Quaternion(w=1.0)),
        point_stride=12,
        fields=fields,
        data=data.tobytes(),
    )


def _register_channels(file: McapFile) -> dict[str, int]:
    """Register the four channels and their schemas (once each); topic -> channel id."""
    schema_ids: dict[str, int] = {}
    channels: dict[str, int] = {}
    for topic, cls in _CHANNELS:
        schema = cls.get_schema()
        if schema.name not in schema_ids:
            schema_ids[schema.name] = file.add_schema(
                schema.name, schema.encoding, bytes(schema.data)
            )
        channels[topic] = file.add_channel(topic, schema.encoding, schema_ids[schema.name])
    return channels


class FoxgloveMcapSink(Sink):
    """Writes detections, ground truth, lidar and the annotated camera to one MCAP file."""

    name = "mcap"

    def __init__(
        self,
        out_dir: Path = Path("out"),
        *,
        path: str | None = None,
        jpeg_quality: int = 85,
        chunk_kib: int = 64,
    ):
        self.path = Path(path) if path is not None else Path(out_dir) / "run.mcap"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jpeg_quality = int(jpeg_quality)
        self._file: McapFile | None = McapFile(self.path, self.name, int(chunk_kib) * 1024)
        self._channels = _register_channels(self._file)
        self._info: Any = None

    def start(self, info: Any) -> None:
        """Choose the lidar and camera written; keep the rig and the ground-truth lookup."""
        self._info = info
        self._lidar_name = first_sensor(info.sensors, Modality.LIDAR)
        self._camera_name = first_sensor(info.sensors, Modality.CAMERA, info.rig)

    def _log(self, topic: str, message: _FoxgloveMessage, stamp_ns: int) -> None:
        assert self._file is not None
        self._file.add_message(self._channels[topic], stamp_ns, message.encode())

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Log the frame's messages on the four channels and flush the chunks completed.

        A failed write raises :class:`~fusionrt.runtime.errors.SinkError`.
        """
        if self._file is None:
            raise SinkError("write after close", sink=self.name, file=str(self.path))
        self._log_frame(frame, detections)
        self._file.flush()

    def _log_frame(self, frame: Frame, detections: Detections) -> None:
        stamp = int(frame.stamp_ns)
        names = detections.class_names
        labels = [
            f"{names[int(label)] if 0 <= int(label) < len(names) else int(label)} {score:.2f}"
            for label, score in zip(detections.labels, detections.scores, strict=True)
        ]
        self._log(
            TOPIC_DETECTIONS,
            scene_update(detections.boxes, labels, stamp, (0.2, 0.9, 0.2, 0.5), "det"),
            stamp,
        )
        info = self._info
        truth = info.ground_truth(stamp) if info is not None else None
        truth_boxes = np.zeros((0, 7), np.float32)
        if truth is not None:
            truth_boxes = truth.boxes
            truth_labels = [
                names[int(i)] if 0 <= int(i) < len(names) else str(i) for i in truth.labels
            ]
            self._log(
                TOPIC_TRUTH,
                scene_update(truth.boxes, truth_labels, stamp, (0.9, 0.2, 0.2, 0.3), "gt"),
                stamp,
            )
        if info is None:
            return
        lidar = frame.messages.get(self._lidar_name) if self._lidar_name else None
        if lidar is not None:
            self._log(TOPIC_LIDAR, point_cloud(points_in_ego(lidar, info.rig), stamp), stamp)
        camera = frame.messages.get(self._camera_name) if self._camera_name else None
        if camera is not None:
            image = image_bgr(camera)
            draw_boxes_on_image(image, truth_boxes, info.rig, str(self._camera_name), TRUTH_BGR)
            draw_boxes_on_image(
                image, detections.boxes, info.rig, str(self._camera_name), DETECTION_BGR
            )
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if ok:
                message = CompressedImage(
                    timestamp=_timestamp(stamp),
                    frame_id=str(self._camera_name),
                    data=jpeg.tobytes(),
                    format="jpeg",
                )
                self._log(TOPIC_CAMERA, message, stamp)

    def close(self) -> None:
        """Finish the MCAP file (summary, index; after a failed write, readable up to it);
        idempotent. A write that fails here raises SinkError."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
