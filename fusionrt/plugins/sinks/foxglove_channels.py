"""A run's Foxglove channels: which topic carries what, and each frame's messages on them.

One layout for the ``mcap`` file sink and a live Foxglove server, so that a recording and a
live view look the same (messages built by :mod:`.foxglove_messages`):

====================================  ============================  ==============================
topic                                 schema                        content
====================================  ============================  ==============================
``/fusionrt/transforms``              ``foxglove.FrameTransforms``  rig frame → every rig sensor
``/fusionrt/detections``              ``foxglove.SceneUpdate``      the frame's detections
``/fusionrt/ground_truth``            ``foxglove.SceneUpdate``      the ground truth near it
``/fusionrt/lidar/NAME``              ``foxglove.PointCloud``       each lidar's sweep
``/fusionrt/radar/NAME``              ``foxglove.PointCloud``       each radar's points
``/fusionrt/camera/NAME/image``       ``foxglove.CompressedImage``  the recorded JPEG/PNG
``/fusionrt/camera/NAME/annotations`` ``foxglove.ImageAnnotations`` boxes projected into it
``/fusionrt/camera/NAME/calibration`` ``foxglove.CameraCalibration`` K, D, size (rig cameras)
====================================  ============================  ==============================

Frame ids are the rig's: boxes are in the rig frame (``rig.frame``), each sensor's data in the
frame named like the sensor, placed by the transforms. Points stay in their sensor's frame
(not moved into the rig frame per sweep): the transforms place them, the bytes pass as
recorded, and a user can pick any frame as the 3D panel's display frame. A sensor the rig
does not calibrate (or a run without a rig) is taken to be in the rig frame already, as the
lidar sensor takes it.

The transforms and calibrations are static (:meth:`FoxgloveChannels.static_messages`): a
writer sends them once, before the first frame's messages, stamped with
:func:`earliest_stamp` of that frame (Foxglove looks transforms up by time: one stamped after
an image would not place it), and again to a live client that connects later. Each frame's
scene updates replace the previous frame's boxes; the ground-truth topic is written from the
first frame that has ground truth on, emptied when a frame has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from foxglove.messages import (
    CameraCalibration,
    CompressedImage,
    FrameTransforms,
    ImageAnnotations,
    PointCloud,
    SceneUpdate,
)

from fusionrt.plugins.sinks.foxglove_messages import (
    Rgba,
    camera_calibration,
    compressed_image,
    frame_transforms,
    image_annotations,
    point_cloud,
    scene_update,
)
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.sensor import Modality

__all__ = [
    "DETECTION_RGBA",
    "TOPIC_DETECTIONS",
    "TOPIC_TRANSFORMS",
    "TOPIC_TRUTH",
    "Channel",
    "FoxgloveChannels",
    "camera_topic",
    "earliest_stamp",
    "points_topic",
]

TOPIC_TRANSFORMS = "/fusionrt/transforms"
TOPIC_DETECTIONS = "/fusionrt/detections"
TOPIC_TRUTH = "/fusionrt/ground_truth"
DETECTION_RGBA: Rgba = (0.2, 0.9, 0.2, 0.5)
TRUTH_RGBA: Rgba = (0.9, 0.2, 0.2, 0.3)
_POINT_MODALITIES = {Modality.LIDAR: "lidar", Modality.RADAR: "radar"}


def points_topic(modality: Modality, sensor: str) -> str:
    """The point-cloud topic of a lidar or radar."""
    return f"/fusionrt/{_POINT_MODALITIES[modality]}/{sensor}"


def camera_topic(camera: str, kind: str) -> str:
    """A camera's topic of ``kind``: ``image``, ``annotations`` or ``calibration``."""
    return f"/fusionrt/camera/{camera}/{kind}"


@dataclass(frozen=True)
class Channel:
    """A topic and the foxglove-sdk message class (its schema) it carries."""

    topic: str
    schema: type


class FoxgloveChannels:
    """The channels of one run (from its :class:`~fusionrt.runtime.pipeline.RunInfo`: rig,
    sensors, ground truth) and the messages of each frame on them; module docstring.

    ``jpeg_quality`` is used only for cameras recorded raw (encoded once each).
    """

    def __init__(self, info: Any, jpeg_quality: int = 85) -> None:
        self._info = info
        self._rig = info.rig
        self._jpeg_quality = int(jpeg_quality)
        self.frame_id: str = self._rig.frame if self._rig is not None else "ego"
        sensors = info.sensors
        self._points = [
            (name, points_topic(s.modality, name))
            for name, s in sensors.items()
            if s.modality in _POINT_MODALITIES
        ]
        self._cameras = [name for name, s in sensors.items() if s.modality is Modality.CAMERA]
        self._calibrated = [c for c in self._cameras if self._calibrates(c, camera=True)]
        self._has_truth = False

    def _calibrates(self, sensor: str, *, camera: bool = False) -> bool:
        rig = self._rig
        if rig is None or sensor not in rig.sensors:
            return False
        return not camera or rig.sensors[sensor].camera is not None

    @property
    def channels(self) -> list[Channel]:
        """Every channel this run may write, in a fixed order (advertise or register them)."""
        channels = [
            Channel(TOPIC_DETECTIONS, SceneUpdate),
            Channel(TOPIC_TRUTH, SceneUpdate),
        ]
        if self._rig is not None:
            channels.append(Channel(TOPIC_TRANSFORMS, FrameTransforms))
        channels += [Channel(topic, PointCloud) for _, topic in self._points]
        for camera in self._cameras:
            channels.append(Channel(camera_topic(camera, "image"), CompressedImage))
            if camera in self._calibrated:
                channels.append(Channel(camera_topic(camera, "annotations"), ImageAnnotations))
                channels.append(Channel(camera_topic(camera, "calibration"), CameraCalibration))
        return channels

    def static_messages(self, stamp_ns: int) -> list[tuple[str, Any]]:
        """The rig's transforms and the camera calibrations, stamped ``stamp_ns``."""
        if self._rig is None:
            return []
        messages: list[tuple[str, Any]] = [
            (TOPIC_TRANSFORMS, frame_transforms(self._rig, stamp_ns))
        ]
        for camera in self._calibrated:
            messages.append(
                (
                    camera_topic(camera, "calibration"),
                    camera_calibration(self._rig, camera, stamp_ns),
                )
            )
        return messages

    def frame_messages(self, frame: Frame, detections: Detections) -> list[tuple[str, Any]]:
        """The frame's messages (topic, message): scene updates, point clouds, images and their
        annotations."""
        return list(self._frame_messages(frame, detections))

    def _frame_messages(self, frame: Frame, detections: Detections) -> Iterator[tuple[str, Any]]:
        stamp = int(frame.stamp_ns)
        names = detections.class_names
        labels = [_class_name(names, i) for i in detections.labels.tolist()]
        scores = detections.scores.tolist()
        yield (
            TOPIC_DETECTIONS,
            scene_update(
                detections.boxes,
                labels,
                stamp_ns=stamp,
                frame_id=self.frame_id,
                rgba=DETECTION_RGBA,
                namespace="detection",
                scores=scores,
            ),
        )
        truth = self._info.ground_truth(stamp)
        truth_boxes = np.zeros((0, 7))
        truth_labels: list[str] = []
        if truth is not None:
            self._has_truth = True
            truth_boxes = np.asarray(truth.boxes)
            truth_labels = [_class_name(names, i) for i in np.asarray(truth.labels).tolist()]
        if self._has_truth:
            yield (
                TOPIC_TRUTH,
                scene_update(
                    truth_boxes,
                    truth_labels,
                    stamp_ns=stamp,
                    frame_id=self.frame_id,
                    rgba=TRUTH_RGBA,
                    namespace="ground_truth",
                ),
            )
        for name, topic in self._points:
            message = frame.messages.get(name)
            if message is not None and isinstance(message.payload, np.ndarray):
                yield topic, point_cloud(message.payload, message.stamp_ns, self._frame_of(name))
        groups = [
            (truth_boxes, None, TRUTH_RGBA),  # red boxes; their labels are in the 3D scene
            (detections.boxes, [f"{n} {s:.2f}" for n, s in zip(labels, scores, strict=True)],
             DETECTION_RGBA),
        ]  # fmt: skip
        for camera in self._cameras:
            message = frame.messages.get(camera)
            if message is None:
                continue
            image = compressed_image(
                message, message.stamp_ns, self._frame_of(camera), self._jpeg_quality
            )
            yield camera_topic(camera, "image"), image
            if camera in self._calibrated:
                scale = _sent_scale(message, self._rig.camera(camera).width)
                yield (
                    camera_topic(camera, "annotations"),
                    image_annotations(groups, self._rig, camera, message.stamp_ns, scale),
                )

    def _frame_of(self, sensor: str) -> str:
        return sensor if self._calibrates(sensor) else self.frame_id


def earliest_stamp(frame: Frame) -> int:
    """The earliest stamp of a frame: its own or one of its messages'."""
    stamps = [m.stamp_ns for m in frame.messages.values() if m is not None]
    return int(min([frame.stamp_ns, *stamps]))


def _class_name(names: tuple[str, ...], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


def _sent_scale(message: Any, calibrated_width: int) -> float:
    """Width of the image sent over the calibrated width: 1 for the recorded file (the camera
    sensor checks it has the calibrated size), the payload's for an image encoded here."""
    if message.meta.get("compressed") is not None:
        return 1.0
    return float(message.payload.shape[1]) / float(calibrated_width)
