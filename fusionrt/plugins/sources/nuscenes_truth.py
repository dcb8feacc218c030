"""nuScenes annotations as ground truth in the road-level ego frame.

Conventions (https://www.nuscenes.org/nuscenes#data-format): a ``sample_annotation`` is a box
in the **global** frame — ``translation`` its centre, ``size`` its **width, length, height**,
``rotation`` a quaternion w, x, y, z — of the sample whose key-frame ``LIDAR_TOP`` sample_data
gives the time and the ``ego_pose`` (ego → global) it is compared at; the category comes
through its ``instance``. ``num_lidar_pts`` / ``num_radar_pts`` count the returns inside the
box (the benchmark drops a box with none); ``visibility_token`` "1"…"4" bins the visible
fraction (0-40 %, 40-60 %, 60-80 %, 80-100 %). The scene file of the repository's sample holds
the same boxes in the ``LIDAR_TOP`` frame instead (``bbox_3d_lidar``: centre, length, width,
height, yaw about the lidar's z; ``valid``: any point in it). Boxes come out as
``[x, y, z, length, width, height, yaw]`` (the :class:`~fusionrt.Detections` convention).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.calibration.formats.nuscenes import pose_from_record
from fusionrt.calibration.transforms import Transform
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.truth import GroundTruthBoxes

__all__ = [
    "NUSCENES_CLASSES",
    "REFERENCE_CHANNEL",
    "Box",
    "annotations_in_ego",
    "boxes_of",
    "fusionrt_class",
    "instances_in_ego",
]

#: The channel whose key-frame timestamp and ego pose the annotations of a sample belong to.
REFERENCE_CHANNEL = "LIDAR_TOP"
#: fusionrt class of a nuScenes category (devkit ``category.name``, matched by prefix) or of
#: an mmdetection3d class name (scene files); others are left out. A ``vehicle.bicycle`` box
#: holds the bicycle and its rider, if any: nuScenes has no separate cyclist box.
NUSCENES_CLASSES: dict[str, str] = {
    "vehicle.car": "car",
    "human.pedestrian": "pedestrian",
    "vehicle.bicycle": "cyclist",
    "car": "car",
    "pedestrian": "pedestrian",
    "bicycle": "cyclist",
}
#: The middle of each visibility bin: the visible fraction ``GroundTruthBoxes`` holds.
_VISIBILITY = {"1": 0.2, "2": 0.5, "3": 0.7, "4": 0.9}

#: One box: its fusionrt class (``None``: not one), ``[x, y, z, l, w, h, yaw]``, visibility.
Box = tuple[str | None, list[float], float]


def fusionrt_class(category: str) -> str | None:
    """The fusionrt class of a nuScenes category or mmdetection3d class name."""
    for prefix, name in NUSCENES_CLASSES.items():
        if category == prefix or category.startswith(prefix + "."):
            return name
    return None


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read nuScenes JSON: {exc}", path=str(path)) from None


def annotations_in_ego(
    tables: Path, key_frames: Mapping[str, tuple[int, Mapping[str, Any]]]
) -> dict[str, list[Box]]:
    """The ``sample_annotation`` rows of the samples in ``key_frames`` (sample token →
    (stamp, LIDAR_TOP ``ego_pose``)) moved into the ego frame, by sample token."""
    categories = {c["token"]: c["name"] for c in _load(tables / "category.json")}
    instances = {
        i["token"]: categories.get(i["category_token"], "") for i in _load(tables / "instance.json")
    }
    to_ego = {
        token: pose_from_record(pose, REFERENCE_CHANNEL, "ego_pose").inverse()
        for token, (_, pose) in key_frames.items()
    }
    out: dict[str, list[Box]] = {}
    for row in _load(tables / "sample_annotation.json"):
        token = row.get("sample_token")
        if token not in to_ego:
            continue  # another scene's
        box = to_ego[token] @ pose_from_record(row, str(row.get("token")), "sample_annotation")
        width, length, height = row["size"]
        heading = box.rotation[:, 0]  # the box's x axis (its length), in the ego frame
        yaw = float(np.arctan2(heading[1], heading[0]))
        hit = row.get("num_lidar_pts", 1) + row.get("num_radar_pts", 0) > 0
        visibility = _VISIBILITY.get(str(row.get("visibility_token")), 1.0) if hit else 0.0
        out.setdefault(token, []).append(
            (
                fusionrt_class(instances.get(row.get("instance_token"), "")),
                [*box.translation.tolist(), length, width, height, yaw],
                visibility,
            )
        )
    return out


def instances_in_ego(instances: Iterable[Mapping[str, Any]], lidar_to_ego: Transform) -> list[Box]:
    """A scene file's ``instances`` (``bbox_3d_lidar``, LIDAR_TOP frame) in the ego frame."""
    out = []
    for instance in instances:
        x, y, z, length, width, height, yaw = instance["bbox_3d_lidar"]
        centre = lidar_to_ego.apply(np.array([[x, y, z]], np.float64))[0]
        heading = lidar_to_ego.rotation @ np.array([np.cos(yaw), np.sin(yaw), 0.0])
        out.append(
            (
                fusionrt_class(str(instance.get("class") or "")),
                [
                    *centre.tolist(),
                    length,
                    width,
                    height,
                    float(np.arctan2(heading[1], heading[0])),
                ],
                1.0 if instance.get("valid", True) else 0.0,
            )
        )
    return out


def boxes_of(stamp_ns: int, boxes: Iterable[Box], class_names: tuple[str, ...]) -> GroundTruthBoxes:
    """The boxes of the classes in ``class_names``, labelled by their index in it."""
    kept = [(class_names.index(c), b, v) for c, b, v in boxes if c is not None and c in class_names]
    return GroundTruthBoxes.from_lists(
        stamp_ns, [b for _, b, _ in kept], [c for c, _, _ in kept], [v for _, _, v in kept]
    )
