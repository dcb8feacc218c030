"""A ROS 2 subscriber written against rmw_zenoh's rules alone, for the tests.

A plain Zenoh peer: it splits keys and unpacks attachments by hand and deserialises with a
typestore of its own, holding vision_msgs / autoware_perception_msgs as the upstream layouts
give them (not fusionrt's shipped ``.msg`` files) — so a test that reads fusionrt's output with
it checks fusionrt against the rules, not against itself.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass, field
from typing import Any

import zenoh
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

LAYOUTS = {
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/BoundingBox3D": "geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n",
    "vision_msgs/msg/Detection3D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox3D bbox\nstring id\n"
    ),
    "vision_msgs/msg/Detection3DArray": (
        "std_msgs/Header header\nvision_msgs/Detection3D[] detections\n"
    ),
    "autoware_perception_msgs/msg/ObjectClassification": "uint8 label\nfloat32 probability\n",
    "autoware_perception_msgs/msg/Shape": (
        "uint8 type\ngeometry_msgs/Polygon footprint\ngeometry_msgs/Vector3 dimensions\n"
    ),
    "autoware_perception_msgs/msg/DetectedObjectKinematics": (
        "geometry_msgs/PoseWithCovariance pose_with_covariance\nbool has_position_covariance\n"
        "uint8 orientation_availability\ngeometry_msgs/TwistWithCovariance twist_with_covariance\n"
        "bool has_twist\nbool has_twist_covariance\n"
    ),
    "autoware_perception_msgs/msg/DetectedObject": (
        "float32 existence_probability\n"
        "autoware_perception_msgs/ObjectClassification[] classification\n"
        "autoware_perception_msgs/DetectedObjectKinematics kinematics\n"
        "autoware_perception_msgs/Shape shape\n"
    ),
    "autoware_perception_msgs/msg/DetectedObjects": (
        "std_msgs/Header header\nautoware_perception_msgs/DetectedObject[] objects\n"
    ),
}
TYPES = {
    "vision_msgs::msg::dds_::Detection3DArray_": (
        "vision_msgs/msg/Detection3DArray",
        "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018",
    ),
    "autoware_perception_msgs::msg::dds_::DetectedObjects_": (
        "autoware_perception_msgs/msg/DetectedObjects",
        "RIHS01_2facd6b15786cbd1f720cdd23d22e6d60d2e7e83b8dff8fd401330e24edb187b",
    ),
    "diagnostic_msgs::msg::dds_::DiagnosticArray_": (
        "diagnostic_msgs/msg/DiagnosticArray",
        "RIHS01_5a8a36efb05fb25070fa0fb3810290c0e6cd4862b54a8fb975a1ee8dc55a333e",
    ),
}


def subscriber_typestore() -> Any:
    store = get_typestore(Stores.ROS2_HUMBLE)
    for name, text in LAYOUTS.items():
        store.register(get_types_from_msg(text, name))
    return store


@dataclass
class Received:
    """One sample as the hand-written subscriber decodes it."""

    topic: str
    sequence: int
    stamp_ns: int
    gid: bytes
    message: Any


@dataclass
class Subscriber:
    """Subscribes ``0/<topic>/*/*`` and decodes samples by rmw_zenoh's rules alone."""

    session: zenoh.Session
    topic: str
    store: Any = field(default_factory=subscriber_typestore)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.session.declare_subscriber(f"0{self.topic}/*/*", self._on)

    def _on(self, sample: zenoh.Sample) -> None:  # on Zenoh's thread
        key = str(sample.key_expr).split("/")
        assert key[0] == "0" and "/" + "/".join(key[1:-2]) == self.topic
        msgtype, type_hash = TYPES[key[-2]]
        assert key[-1] == type_hash
        sequence, stamp, gid_size, gid = struct.unpack("<qqB16s", sample.attachment.to_bytes())
        assert gid_size == 16
        payload = sample.payload.to_bytes()
        assert payload[:4] == b"\x00\x01\x00\x00"  # plain CDR, little-endian
        message = self.store.deserialize_cdr(payload, msgtype)
        with self.lock:
            self.received.append(Received(self.topic, sequence, stamp, gid, message))
