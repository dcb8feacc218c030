"""The shipped vision_msgs / autoware_perception_msgs definitions: hashes, registration, licence."""

from __future__ import annotations

import pytest

from fusionrt.plugins.ros_types import INTERFACES_DIR, shipped_definitions, typestore

# RIHS01 hashes of the upstream definitions (vision_msgs 4.1.1, autoware_msgs 2026-04) and of
# the rosbags-store types fusionrt publishes: a definition is right when it reproduces them.
UPSTREAM_HASHES = {
    "vision_msgs/msg/Detection3DArray": (
        "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018"
    ),
    "autoware_perception_msgs/msg/DetectedObjects": (
        "RIHS01_2facd6b15786cbd1f720cdd23d22e6d60d2e7e83b8dff8fd401330e24edb187b"
    ),
    "diagnostic_msgs/msg/DiagnosticArray": (
        "RIHS01_5a8a36efb05fb25070fa0fb3810290c0e6cd4862b54a8fb975a1ee8dc55a333e"
    ),
}


@pytest.mark.parametrize("msgtype", sorted(UPSTREAM_HASHES))
def test_the_definitions_reproduce_the_upstream_type_hashes(msgtype: str) -> None:
    assert typestore().hash_rihs01(msgtype) == UPSTREAM_HASHES[msgtype]


def test_every_shipped_definition_is_registered() -> None:
    shipped = shipped_definitions()
    assert set(shipped) == {
        "vision_msgs/msg/Detection3DArray",
        "vision_msgs/msg/Detection3D",
        "vision_msgs/msg/ObjectHypothesisWithPose",
        "vision_msgs/msg/ObjectHypothesis",
        "vision_msgs/msg/BoundingBox3D",
        "autoware_perception_msgs/msg/DetectedObjects",
        "autoware_perception_msgs/msg/DetectedObject",
        "autoware_perception_msgs/msg/DetectedObjectKinematics",
        "autoware_perception_msgs/msg/ObjectClassification",
        "autoware_perception_msgs/msg/Shape",
    }
    assert set(shipped) <= set(typestore().types)


def test_the_constants_are_autowares() -> None:
    types = typestore().types
    label = types["autoware_perception_msgs/msg/ObjectClassification"]
    assert (label.UNKNOWN, label.CAR, label.BICYCLE, label.PEDESTRIAN, label.UNDER_DRIVABLE) == (
        0,
        1,
        6,
        7,
        11,
    )
    assert types["autoware_perception_msgs/msg/Shape"].BOUNDING_BOX == 0
    assert types["autoware_perception_msgs/msg/DetectedObjectKinematics"].AVAILABLE == 2


def test_the_definitions_ship_with_their_licence() -> None:
    licence = (INTERFACES_DIR / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    notice = (INTERFACES_DIR / "NOTICE").read_text(encoding="utf-8")
    for upstream in ("vision_msgs 4.1.1", "autoware_perception_msgs", "Apache License 2.0"):
        assert upstream in notice
