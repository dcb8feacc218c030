"""fusionrt's data as Foxglove messages: the rules of the Foxglove schemas in one place.

The messages are foxglove-sdk's classes (``foxglove.messages``: protobuf, the published
schemas, https://docs.foxglove.dev/docs/visualization/message-schemas). What those schemas
define, and this module follows:

* ``FrameTransform`` (frame-transform): the child frame's pose in the parent frame; its
  translation is the child's origin in the parent, its rotation the child's orientation, a
  quaternion x, y, z, w. A rig's extrinsics (sensor → rig frame, ``p_rig = R p + t``) are
  exactly that, with parent = the rig frame and child = the sensor.
* ``CameraCalibration`` and ``CompressedImage`` (camera-calibration): the camera frame is
  x right, y down, z forward, fusionrt's convention too; ``K`` is the raw image's 3×3,
  ``P`` the 3×4 of the rectified one (monocular: ``[K | 0]``), ``R`` the stereo rectification
  (identity); distortion models ``plumb_bob`` (k1, k2, p1, p2, k3), ``rational_polynomial``
  (+ k4, k5, k6) and ``kannala_brandt`` (k1…k4, OpenCV's fisheye), fusionrt's ``plumb_bob``
  with 5 or 8 coefficients and ``fisheye``.
* ``ImageAnnotations`` (points-annotation): pixel coordinates whose origin is the top-left
  *corner* of the top-left pixel, where OpenCV's (fusionrt's) is that pixel's centre: +0.5.
* ``SceneUpdate`` (scene-update, scene-entity-deletion): its deletions apply before its
  entities; a deletion removes the matching entities *earlier* than its timestamp; an entity
  with a zero lifetime stays until replaced (same id) or deleted. So each frame's update
  deletes all (at the frame's stamp) and adds the frame's boxes: a box that vanishes is gone
  with the next frame, whatever the frame rate.
* ``PointCloud`` (point-cloud): ``point_stride`` bytes per point, little-endian fields at
  their offsets, numeric types uint8…float64; the bytes of a structured numpy array pass as
  they are.

Conventions of the inputs: stamps are ``int`` nanoseconds on the run's clock; boxes are N×7
(x, y, z centre, length, width, height, yaw about +z), metres and radians, in the rig frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from foxglove.messages import (
    CameraCalibration,
    Color,
    CompressedImage,
    CubePrimitive,
    FrameTransform,
    FrameTransforms,
    ImageAnnotations,
    KeyValuePair,
    PackedElementField,
    PackedElementFieldNumericType,
    Point2,
    PointCloud,
    PointsAnnotation,
    PointsAnnotationType,
    Pose,
    Quaternion,
    SceneEntity,
    SceneEntityDeletion,
    SceneEntityDeletionType,
    SceneUpdate,
    TextAnnotation,
    TextPrimitive,
    Timestamp,
    Vector3,
)

from fusionrt.plugins.sinks.projection import box_edges_in_image

__all__ = [
    "DISTORTION_MODELS",
    "PIXEL_ORIGIN_OFFSET",
    "Rgba",
    "camera_calibration",
    "compressed_image",
    "frame_transforms",
    "image_annotations",
    "point_cloud",
    "scene_update",
    "timestamp",
]

Rgba = tuple[float, float, float, float]
#: Foxglove's image annotations count pixels from the top-left pixel's corner, OpenCV from its
#: centre.
PIXEL_ORIGIN_OFFSET = 0.5
#: fusionrt camera model (and distortion length) -> Foxglove's distortion_model.
DISTORTION_MODELS = {
    ("pinhole", 0): "plumb_bob",  # with D = 0: Foxglove has no model without coefficients
    ("plumb_bob", 5): "plumb_bob",
    ("plumb_bob", 8): "rational_polynomial",
    ("fisheye", 4): "kannala_brandt",
}
_NUMERIC_TYPES = {
    np.dtype("u1"): PackedElementFieldNumericType.Uint8,
    np.dtype("i1"): PackedElementFieldNumericType.Int8,
    np.dtype("<u2"): PackedElementFieldNumericType.Uint16,
    np.dtype("<i2"): PackedElementFieldNumericType.Int16,
    np.dtype("<u4"): PackedElementFieldNumericType.Uint32,
    np.dtype("<i4"): PackedElementFieldNumericType.Int32,
    np.dtype("<f4"): PackedElementFieldNumericType.Float32,
    np.dtype("<f8"): PackedElementFieldNumericType.Float64,
}
_IDENTITY = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)


def timestamp(stamp_ns: int) -> Timestamp:
    """A Foxglove timestamp of nanoseconds."""
    return Timestamp(stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)


def _color(rgba: Rgba) -> Color:
    return Color(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])


def frame_transforms(rig: Any, stamp_ns: int) -> FrameTransforms:
    """The rig frame → every sensor of the rig, stamped ``stamp_ns``."""
    transforms = []
    for name, sensor in rig.sensors.items():
        extrinsics = sensor.extrinsics
        t = [float(v) for v in extrinsics.translation]
        w, x, y, z = (float(v) for v in extrinsics.quaternion)
        transforms.append(
            FrameTransform(
                timestamp=timestamp(stamp_ns),
                parent_frame_id=rig.frame,
                child_frame_id=name,
                translation=Vector3(x=t[0], y=t[1], z=t[2]),
                rotation=Quaternion(x=x, y=y, z=z, w=w),
            )
        )
    return FrameTransforms(transforms=transforms)


def camera_calibration(rig: Any, camera: str, stamp_ns: int) -> CameraCalibration:
    """The calibration of the rig's ``camera`` in the camera's own frame (named like it)."""
    model = rig.camera(camera)
    k = [float(v) for v in np.asarray(model.K, np.float64).reshape(9)]
    d = [float(v) for v in model.distortion]
    distortion_model = DISTORTION_MODELS[(model.model, len(d))]
    if model.model == "pinhole":
        d = [0.0] * 5
    p = np.hstack([np.asarray(model.K, np.float64), np.zeros((3, 1))]).reshape(12)
    return CameraCalibration(
        timestamp=timestamp(stamp_ns),
        frame_id=camera,
        width=int(model.width),
        height=int(model.height),
        distortion_model=distortion_model,
        D=d,
        K=k,
        R=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        P=[float(v) for v in p],
    )


def scene_update(
    boxes: np.ndarray,
    labels: Sequence[str],
    *,
    stamp_ns: int,
    frame_id: str,
    rgba: Rgba,
    namespace: str,
    scores: Sequence[float] | None = None,
) -> SceneUpdate:
    """The frame's boxes replacing every earlier entity of the topic (module docstring): one
    entity ``NAMESPACE/INDEX`` per box, a cube and its label, and its class (and score) as
    metadata Foxglove shows when the box is selected."""
    stamp = timestamp(stamp_ns)
    colour = _color(rgba)
    entities = []
    for index, box in enumerate(np.asarray(boxes, np.float64).reshape(-1, 7).tolist()):
        x, y, z, length, width, height, yaw = box
        label = labels[index]
        metadata = [KeyValuePair(key="class", value=label)]
        text = label
        if scores is not None:
            metadata.append(KeyValuePair(key="score", value=f"{scores[index]:.3f}"))
            text = f"{label} {scores[index]:.2f}"
        entities.append(
            SceneEntity(
                timestamp=stamp,
                frame_id=frame_id,
                id=f"{namespace}/{index}",
                metadata=metadata,
                cubes=[
                    CubePrimitive(
                        pose=Pose(
                            position=Vector3(x=x, y=y, z=z),
                            orientation=Quaternion(
                                x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)
                            ),
                        ),
                        size=Vector3(x=length, y=width, z=height),
                        color=colour,
                    )
                ],
                texts=[
                    TextPrimitive(
                        pose=Pose(position=Vector3(x=x, y=y, z=z + height / 2 + 0.3)),
                        billboard=True,
                        font_size=12.0,
                        scale_invariant=True,
                        color=colour,
                        text=text,
                    )
                ],
            )
        )
    deletion = SceneEntityDeletion(timestamp=stamp, type=SceneEntityDeletionType.All)
    return SceneUpdate(deletions=[deletion], entities=entities)


def _little_endian(points: np.ndarray) -> np.ndarray:
    """``points`` with every numeric field little-endian (a copy only where one is not)."""
    names = points.dtype.names or ()
    if all(points.dtype[n].byteorder != ">" for n in names):
        return points
    return points.astype(points.dtype.newbyteorder("<"))


def point_cloud(points: np.ndarray, stamp_ns: int, frame_id: str) -> PointCloud:
    """A cloud of a structured array of points (fields ``x``, ``y``, ``z`` and any others),
    in ``frame_id``: its bytes as they are, every field of a Foxglove numeric type declared
    (Foxglove colours by any of them); other fields are skipped over by the stride.

    An N×3 float array (no field names) is sent as float32 x, y, z.
    """
    if points.dtype.names is None:
        xyz = np.ascontiguousarray(np.asarray(points).reshape(-1, 3), np.float32)
        points = xyz.view(np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")])).reshape(-1)
    points = np.ascontiguousarray(_little_endian(points))
    fields = []
    for name in points.dtype.names or ():
        dtype, offset = points.dtype.fields[name][:2]  # type: ignore[index]
        numeric = _NUMERIC_TYPES.get(dtype)
        if numeric is not None and dtype.shape == ():
            fields.append(PackedElementField(name=name, offset=int(offset), type=numeric))
    return PointCloud(
        timestamp=timestamp(stamp_ns),
        frame_id=frame_id,
        pose=Pose(position=Vector3(x=0.0, y=0.0, z=0.0), orientation=_IDENTITY),
        point_stride=points.dtype.itemsize,
        fields=fields,
        data=points.tobytes(),
    )


def compressed_image(
    message: Any, stamp_ns: int, frame_id: str, jpeg_quality: int = 85
) -> CompressedImage:
    """A camera message as Foxglove's compressed image: the recorded JPEG or PNG bytes as they
    are (``meta["compressed"]``); an image recorded raw is encoded to JPEG (RGB payload)."""
    meta = message.meta
    data = meta.get("compressed")
    image_format = meta.get("encoding")
    if data is None or image_format not in ("jpeg", "png"):
        bgr = cv2.cvtColor(np.ascontiguousarray(message.payload), cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ValueError(f"cannot encode the image of {message.sensor!r} as JPEG")
        data, image_format = encoded.tobytes(), "jpeg"
    return CompressedImage(
        timestamp=timestamp(stamp_ns), frame_id=frame_id, data=bytes(data), format=image_format
    )


def image_annotations(
    groups: Sequence[tuple[Any, Sequence[str] | None, Rgba]],
    rig: Any,
    camera: str,
    stamp_ns: int,
    scale: float = 1.0,
) -> ImageAnnotations:
    """Boxes projected into ``camera``: per group (N×7 boxes, labels or ``None``, colour) one
    line list of the visible box edges and, with labels, each box's label above its highest
    visible point.

    Pixels are those of the calibrated image times ``scale`` (an image sent at another size).
    """
    stamp = timestamp(stamp_ns)
    lines, texts = [], []
    # one projection for all groups: numpy's per-call cost is most of it at a few dozen boxes
    counts = [len(np.asarray(boxes).reshape(-1, 7)) for boxes, _, _ in groups]
    every = np.concatenate(
        [np.zeros((0, 7)), *(np.asarray(b, np.float64).reshape(-1, 7) for b, _, _ in groups)]
    )
    all_segments, all_index = box_edges_in_image(every, rig, camera)
    all_pixels = (all_segments + 0.5) * scale - 0.5 + PIXEL_ORIGIN_OFFSET  # OpenCV -> Foxglove
    starts = np.cumsum([0, *counts])
    for (_, labels, rgba), first_box, end_box in zip(groups, starts[:-1], starts[1:], strict=True):
        mine = (all_index >= first_box) & (all_index < end_box)
        if not mine.any():
            continue
        pixels, box_index = all_pixels[mine], all_index[mine] - first_box
        colour = _color(rgba)
        lines.append(
            PointsAnnotation(
                timestamp=stamp,
                type=PointsAnnotationType.LineList,
                points=[Point2(x=u, y=v) for u, v in pixels.reshape(-1, 2).tolist()],
                outline_color=colour,
                thickness=2.0,
            )
        )
        if labels is None:
            continue
        ends = pixels.reshape(-1, 2)
        owner = np.repeat(box_index, 2)
        order = np.lexsort((ends[:, 1], owner))  # by box, then from the top of the image
        first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
        for index, (u, v) in zip(owner[first].tolist(), ends[first].tolist(), strict=True):
            texts.append(
                TextAnnotation(
                    timestamp=stamp,
                    position=Point2(x=u, y=max(v - 4.0, 12.0)),
                    text=labels[index],
                    font_size=12.0,
                    text_color=colour,
                    background_color=Color(r=0.0, g=0.0, b=0.0, a=0.6),
                )
            )
    return ImageAnnotations(timestamp=stamp, points=lines, texts=texts)
