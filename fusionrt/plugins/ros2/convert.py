"""fusionrt's detections as ROS 2 messages: vision_msgs and autoware_perception_msgs.

Conventions: boxes are in the rig frame (``frame_id``; x forward, y left, z up), metres and
radians; a box's yaw is a rotation about +z, so its orientation quaternion (ROS order x, y, z,
w) is ``(0, 0, sin(yaw/2), cos(yaw/2))``; sizes are length along the box's x, width along y,
height along z. A header stamp is the frame's stamp on fusionrt's common clock.

* ``vision_msgs/msg/Detection3DArray``: per detection one hypothesis (``class_id`` = the
  class name, ``score``) whose pose is the box centre, ``bbox.center`` / ``bbox.size``, and an
  empty ``id`` (fusionrt does not track).
* ``autoware_perception_msgs/msg/DetectedObjects``: ``existence_probability`` = score, one
  classification (the class name mapped to Autoware's label constant, ``UNKNOWN`` for a name
  Autoware has no label for), a ``BOUNDING_BOX`` shape, the pose with its orientation
  ``AVAILABLE`` and, when the model predicts velocities, the twist in the object's own frame
  (x along its heading), as Autoware's kinematics carry it. Covariances are not estimated:
  zero, with ``has_*_covariance`` false.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.messages import Detections

__all__ = [
    "AUTOWARE_LABELS",
    "DETECTED_OBJECTS",
    "DETECTION3D_ARRAY",
    "detected_objects",
    "detection3d_array",
    "header",
    "serialize",
]

DETECTION3D_ARRAY = "vision_msgs/msg/Detection3DArray"
DETECTED_OBJECTS = "autoware_perception_msgs/msg/DetectedObjects"

#: Class names → ``autoware_perception_msgs/msg/ObjectClassification`` labels.
AUTOWARE_LABELS: dict[str, int] = {
    "car": 1,
    "truck": 2,
    "bus": 3,
    "trailer": 4,
    "motorcycle": 5,
    "bicycle": 6,
    "cyclist": 6,
    "pedestrian": 7,
    "animal": 8,
}
_AUTOWARE_UNKNOWN = 0
_SHAPE_BOUNDING_BOX = 0
_ORIENTATION_AVAILABLE = 2


def _t(name: str) -> Any:
    return typestore().types[name]


def header(stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/msg/Header`` at ``stamp_ns`` (ns since the epoch)."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    time_ = _t("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)
    return _t("std_msgs/msg/Header")(stamp=time_, frame_id=frame_id)


def serialize(message: Any) -> bytes:
    """The CDR bytes (encapsulation header included) of a typestore message."""
    return bytes(typestore().serialize_cdr(message, message.__msgtype__))


def _class_names(detections: Detections) -> list[str]:
    names = detections.class_names
    return [
        names[label] if 0 <= label < len(names) else str(label)
        for label in detections.labels.tolist()
    ]


def _poses(detections: Detections) -> list[Any]:
    """One ``geometry_msgs/msg/Pose`` per box (centre and yaw)."""
    point, quaternion, pose = (
        _t("geometry_msgs/msg/Point"),
        _t("geometry_msgs/msg/Quaternion"),
        _t("geometry_msgs/msg/Pose"),
    )
    boxes = detections.boxes.astype(np.float64)
    half_yaw = boxes[:, 6] / 2.0
    qz, qw = np.sin(half_yaw).tolist(), np.cos(half_yaw).tolist()
    return [
        pose(
            position=point(x=x, y=y, z=z),
            orientation=quaternion(x=0.0, y=0.0, z=sz, w=cw),
        )
        for (x, y, z), sz, cw in zip(boxes[:, :3].tolist(), qz, qw, strict=True)
    ]


def _sizes(detections: Detections) -> list[Any]:
    vector3 = _t("geometry_msgs/msg/Vector3")
    sizes = detections.boxes[:, 3:6].astype(float).tolist()
    return [vector3(x=length, y=width, z=height) for length, width, height in sizes]


def detection3d_array(detections: Detections, stamp_ns: int, frame_id: str) -> Any:
    """The detections as a ``vision_msgs/msg/Detection3DArray`` (see the module docstring)."""
    head = header(stamp_ns, frame_id)
    hypothesis, with_pose = (
        _t("vision_msgs/msg/ObjectHypothesis"),
        _t("vision_msgs/msg/ObjectHypothesisWithPose"),
    )
    covariance_pose = _t("geometry_msgs/msg/PoseWithCovariance")
    box, detection = _t("vision_msgs/msg/BoundingBox3D"), _t("vision_msgs/msg/Detection3D")
    zeros = np.zeros(36, np.float64)
    items = [
        detection(
            header=head,
            results=[
                with_pose(
                    hypothesis=hypothesis(class_id=name, score=score),
                    pose=covariance_pose(pose=pose, covariance=zeros),
                )
            ],
            bbox=box(center=pose, size=size),
            id="",
        )
        for name, score, pose, size in zip(
            _class_names(detections),
            detections.scores.astype(float).tolist(),
            _poses(detections),
            _sizes(detections),
            strict=True,
        )
    ]
    return _t(DETECTION3D_ARRAY)(header=head, detections=items)


def _object_twists(detections: Detections) -> list[Any] | None:
    """Velocities rotated from the rig frame into each object's frame (``None``: none)."""
    if detections.velocities is None:
        return None
    vector3, twist = _t("geometry_msgs/msg/Vector3"), _t("geometry_msgs/msg/Twist")
    yaw = detections.boxes[:, 6].astype(np.float64)
    vx, vy = detections.velocities.astype(np.float64).T
    cos, sin = np.cos(yaw), np.sin(yaw)
    forward, left = (cos * vx + sin * vy).tolist(), (-sin * vx + cos * vy).tolist()
    return [
        twist(linear=vector3(x=f, y=s, z=0.0), angular=vector3(x=0.0, y=0.0, z=0.0))
        for f, s in zip(forward, left, strict=True)
    ]


def detected_objects(detections: Detections, stamp_ns: int, frame_id: str) -> Any:
    """The detections as an ``autoware_perception_msgs/msg/DetectedObjects``."""
    zeros = np.zeros(36, np.float64)
    classification = _t("autoware_perception_msgs/msg/ObjectClassification")
    kinematics, shape = (
        _t("autoware_perception_msgs/msg/DetectedObjectKinematics"),
        _t("autoware_perception_msgs/msg/Shape"),
    )
    obj, polygon = (
        _t("autoware_perception_msgs/msg/DetectedObject"),
        _t("geometry_msgs/msg/Polygon"),
    )
    pose_cov, twist_cov = (
        _t("geometry_msgs/msg/PoseWithCovariance"),
        _t("geometry_msgs/msg/TwistWithCovariance"),
    )
    twists = _object_twists(detections)
    still = _t("geometry_msgs/msg/Twist")(
        linear=_t("geometry_msgs/msg/Vector3")(x=0.0, y=0.0, z=0.0),
        angular=_t("geometry_msgs/msg/Vector3")(x=0.0, y=0.0, z=0.0),
    )
    objects = []
    for i, (name, score, pose, size) in enumerate(
        zip(
            _class_names(detections),
            detections.scores.astype(float).tolist(),
            _poses(detections),
            _sizes(detections),
            strict=True,
        )
    ):
        objects.append(
            obj(
                existence_probability=score,
                classification=[
                    classification(
                        label=AUTOWARE_LABELS.get(name, _AUTOWARE_UNKNOWN), probability=score
                    )
                ],
                kinematics=kinematics(
                    pose_with_covariance=pose_cov(pose=pose, covariance=zeros),
                    has_position_covariance=False,
                    orientation_availability=_ORIENTATION_AVAILABLE,
                    twist_with_covariance=twist_cov(
                        twist=still if twists is None else twists[i], covariance=zeros
                    ),
                    has_twist=twists is not None,
                    has_twist_covariance=False,
                ),
                shape=shape(
                    type=_SHAPE_BOUNDING_BOX, footprint=polygon(points=[]), dimensions=size
                ),
            )
        )
    return _t(DETECTED_OBJECTS)(header=header(stamp_ns, frame_id), objects=objects)
