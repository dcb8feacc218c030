"""``mcap`` sink: one MCAP file a user opens in Foxglove, written with the ``foxglove-sdk``.

Channels (protobuf-encoded with the published Foxglove schemas, log time = frame stamp):

==============================  ==========================  ===================================
topic                           schema                      content
==============================  ==========================  ===================================
``/fusionrt/detections``        ``foxglove.SceneUpdate``    one cube per detection, ego frame
``/fusionrt/ground_truth``      ``foxglove.SceneUpdate``    ground-truth boxes (when known)
``/fusionrt/lidar``             ``foxglove.PointCloud``     the lidar sweep in the ego frame
``/fusionrt/camera``            ``foxglove.CompressedImage``  the camera image, boxes drawn, JPEG
==============================  ==========================  ===================================

Options: ``path`` (default ``OUT/run.mcap``), ``jpeg_quality`` (default 85). Each sink has its
own foxglove ``Context``, so several sinks (or tests) never share channels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import foxglove
import numpy as np
from foxglove.channels import CompressedImageChannel, PointCloudChannel, SceneUpdateChannel
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

from fusionrt.plugins.sinks.video import (
    DETECTION_BGR,
    TRUTH_BGR,
    draw_boxes_on_image,
    first_sensor,
    image_bgr,
    points_in_ego,
)
from fusionrt.runtime.components import Sink
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.sensor import Modality

TOPIC_DETECTIONS = "/fusionrt/detections"
TOPIC_TRUTH = "/fusionrt/ground_truth"
TOPIC_LIDAR = "/fusionrt/lidar"
TOPIC_CAMERA = "/fusionrt/camera"
FRAME_ID = "ego"


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


class FoxgloveMcapSink(Sink):
    """Writes detections, ground truth, lidar and the annotated camera to one MCAP file."""

    name = "mcap"

    def __init__(
        self, out_dir: Path = Path("out"), *, path: str | None = None, jpeg_quality: int = 85
    ):
        self.path = Path(path) if path is not None else Path(out_dir) / "run.mcap"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jpeg_quality = int(jpeg_quality)
        self._context = foxglove.Context()
        self._writer: Any = foxglove.open_mcap(
            self.path, allow_overwrite=True, context=self._context
        )
        self._detections = SceneUpdateChannel(TOPIC_DETECTIONS, context=self._context)
        self._truth = SceneUpdateChannel(TOPIC_TRUTH, context=self._context)
        self._lidar = PointCloudChannel(TOPIC_LIDAR, context=self._context)
        self._camera = CompressedImageChannel(TOPIC_CAMERA, context=self._context)
        self._info: Any = None

    def start(self, info: Any) -> None:
        """Choose the lidar and camera written; keep the rig and the ground-truth lookup."""
        self._info = info
        self._lidar_name = first_sensor(info.sensors, Modality.LIDAR)
        self._camera_name = first_sensor(info.sensors, Modality.CAMERA, info.rig)

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Log the frame's messages on the four channels."""
        stamp = int(frame.stamp_ns)
        names = detections.class_names
        labels = [
            f"{names[int(label)] if 0 <= int(label) < len(names) else int(label)} {score:.2f}"
            for label, score in zip(detections.labels, detections.scores, strict=True)
        ]
        self._detections.log(
            scene_update(detections.boxes, labels, stamp, (0.2, 0.9, 0.2, 0.5), "det"),
            log_time=stamp,
        )
        info = self._info
        truth = info.ground_truth(stamp) if info is not None else None
        truth_boxes = np.zeros((0, 7), np.float32)
        if truth is not None:
            truth_boxes = truth.boxes
            truth_labels = [
                names[int(i)] if 0 <= int(i) < len(names) else str(i) for i in truth.labels
            ]
            self._truth.log(
                scene_update(truth.boxes, truth_labels, stamp, (0.9, 0.2, 0.2, 0.3), "gt"),
                log_time=stamp,
            )
        if info is None:
            return
        lidar = frame.messages.get(self._lidar_name) if self._lidar_name else None
        if lidar is not None:
            self._lidar.log(point_cloud(points_in_ego(lidar, info.rig), stamp), log_time=stamp)
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
                self._camera.log(message, log_time=stamp)

    def close(self) -> None:
        """Finish the MCAP file (summary, index); idempotent."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
