"""Ground truth through the source: a bag's simulator topic (a bag written by rosbags' writer),
KITTI's label_2 and nuScenes' annotations (the real samples), as boxes in the road-level ego
frame with labels indexing the model's classes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag_helpers import POINTCLOUD2, Written, pointcloud2, write_bag
from test_sources_nuscenes import SCENE_FILE, _devkit_tables

from fusionrt.calibration.formats.kitti import read_kitti_calib
from fusionrt.calibration.transforms import Transform
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sources import KittiSource, NuScenesSource, RosbagSource
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.messages import CLASS_NAMES, RawRecord
from fusionrt.runtime.truth import IndexedGroundTruth, RunEvaluator, StreamedGroundTruth

ACTORS = "fusionrt_msgs/msg/ActorArray"
START_NS = 1_700_000_000_000_000_000


def _actors(stamp_ns: int, actors: list[tuple[str, tuple[float, float]]]) -> bytes:
    store = typestore()
    t = store.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
        frame_id="ego",
    )
    msg = t[ACTORS](
        header=header,
        actors=[
            t["fusionrt_msgs/msg/Actor"](
                track_id=i,
                class_id=0,
                class_name=name,
                center=t["geometry_msgs/msg/Point"](x=x, y=y, z=0.8),
                size=t["geometry_msgs/msg/Vector3"](x=4.2, y=1.8, z=1.5),
                yaw=0.25,
                velocity=t["geometry_msgs/msg/Vector3"](x=1.0, y=0.0, z=0.0),
                visibility=0.75,
                num_lidar_points=40,
            )
            for i, (name, (x, y)) in enumerate(actors)
        ],
    )
    return bytes(store.serialize_cdr(msg, ACTORS))


def _bag(path: Path, gt_topics: tuple[str, ...] = ("/ground_truth/actors",)) -> Path:
    messages = []
    for i in range(5):
        t = START_NS + i * 100_000_000
        messages.append(Written("/lidar", POINTCLOUD2, t, pointcloud2(t, np.zeros((4, 4)))))
        for topic in gt_topics:
            actors = [("car", (10.0 + i, 2.0)), ("tram", (20.0, 0.0)), ("pedestrian", (5.0, 1.0))]
            messages.append(Written(topic, ACTORS, t + 1_000, _actors(t, actors)))
    return write_bag(path, messages)


def test_a_bags_ground_truth_topic_is_streamed_and_decoded_by_the_source(tmp_path: Path) -> None:
    source = RosbagSource(_bag(tmp_path / "bag"), topics=["/lidar"])
    assert {r.topic for r in source.records()} == {"/lidar"}
    truth = source.ground_truth(("pedestrian", "car"))  # a model with its own class order
    assert isinstance(truth, StreamedGroundTruth) and truth.topics == ("/ground_truth/actors",)
    records = [r for r in source.records() if r.topic in truth.topics]
    assert len(records) == 5  # the topic now joins the replay
    boxes = truth.decode(records[2])
    assert boxes.stamp_ns == START_NS + 200_000_000  # the header stamp, not the log time
    np.testing.assert_allclose(
        boxes.boxes, [[12.0, 2.0, 0.8, 4.2, 1.8, 1.5, 0.25], [5.0, 1.0, 0.8, 4.2, 1.8, 1.5, 0.25]]
    )
    assert boxes.labels.tolist() == [1, 0] and boxes.visibility.tolist() == [0.75, 0.75]
    broken = RawRecord("/ground_truth/actors", 5, b"\x00\x01\x00\x00\x07", ACTORS, "bag.mcap", 99)
    with pytest.raises(DecodeError, match="not a fusionrt_msgs/msg/ActorArray") as error:
        truth.decode(broken)
    assert error.value.context["offset"] == 99


def test_the_pipelines_ground_truth_topic_is_checked_against_the_bag(tmp_path: Path) -> None:
    source = RosbagSource(_bag(tmp_path / "bag", ("/gt/actors", "/gt/actors_raw")))
    with pytest.raises(ConfigError, match="several ground-truth topics") as error:
        source.ground_truth(CLASS_NAMES)
    assert error.value.context["key"] == "ground_truth.topic"
    with pytest.raises(ConfigError, match=r"no topic '/gt/actor'; did you mean '/gt/actors'"):
        source.ground_truth(CLASS_NAMES, topic="/gt/actor")
    with pytest.raises(ConfigError, match="holds sensor_msgs/msg/PointCloud2, not ground truth"):
        source.ground_truth(CLASS_NAMES, topic="/lidar")
    truth = source.ground_truth(CLASS_NAMES, topic="/gt/actors_raw")
    assert truth is not None and truth.topics == ("/gt/actors_raw",)
    assert RosbagSource(_bag(tmp_path / "plain", ())).ground_truth(CLASS_NAMES) is None


# -- KITTI ------------------------------------------------------------------------------------


def _label_boxes(kitti: Path, frame: str) -> list[tuple[str, np.ndarray]]:
    """label_2 boxes in a road-level frame, by the devkit's matrices alone: the bottom centre
    in rectified camera 0 → Velodyne (inverse of R0_rect · Tr_velo_to_cam) → 1.73 m up."""
    m = read_kitti_calib(kitti / f"training/calib/{frame}.txt")
    r0, tr = np.eye(4), np.eye(4)
    r0[:3, :3], tr[:3] = m["R0_rect"], m["Tr_velo_to_cam"]
    cam_to_velo = np.linalg.inv(r0 @ tr)
    out = []
    for line in (kitti / f"training/label_2/{frame}.txt").read_text().splitlines():
        f = line.split()
        if f[0] == "DontCare":
            continue
        h, w, length, x, y, z, ry = map(float, f[8:15])
        centre = (cam_to_velo @ [x, y - h / 2, z, 1.0])[:3] + np.array([0.0, 0.0, 1.73])
        forward = cam_to_velo[:3, :3] @ [math.cos(ry), 0.0, -math.sin(ry)]
        yaw = math.atan2(forward[1], forward[0])
        out.append((f[0], np.array([*centre, length, w, h, yaw])))
    return out


def test_kitti_labels_are_ground_truth_on_the_road(real_data: Path) -> None:
    kitti = real_data / "kitti"
    source = KittiSource(kitti)
    truth = source.ground_truth(CLASS_NAMES)
    assert isinstance(truth, IndexedGroundTruth) and truth.stamps_ns == [100_000_000, 800_000_000]
    frame8 = truth.near(800_000_000, 0)
    assert frame8 is not None and frame8.labels.tolist() == [0] * 6  # 6 cars, 4 DontCare left out
    expected = np.stack([box for _, box in _label_boxes(kitti, "000008")])
    np.testing.assert_allclose(frame8.boxes, expected, atol=1e-4)
    # on the road: each car's bottom lies on the ground the lidar sees around it
    points = np.fromfile(kitti / "training/velodyne_reduced/000008.bin", np.float32)
    xyz = points.reshape(-1, 4)[:, :3] + (0.0, 0.0, 1.73)  # the rig's ego is 1.73 m below
    for box in frame8.boxes:
        ring = np.hypot(*(xyz[:, :2] - box[:2]).T)
        ground = xyz[(ring > box[3] / 2 + 0.5) & (ring < box[3] / 2 + 3.0), 2]
        ground_z = np.percentile(ground, 10)
        assert abs(ground_z) < 0.25  # the road around the car is at ego z = 0
        assert box[2] - box[5] / 2 == pytest.approx(ground_z, abs=0.25)
    frame1 = truth.near(100_000_000, 0)
    assert frame1 is not None  # Truck (not a model class) left out, Car and Cyclist kept
    assert frame1.labels.tolist() == [0, 2]
    types = [t for t, _ in _label_boxes(kitti, "000001")]
    assert types == ["Truck", "Car", "Cyclist"]
    only_cars = source.ground_truth(("car",)).near(100_000_000, 0)  # type: ignore[union-attr]
    assert only_cars is not None and only_cars.labels.tolist() == [0]


# -- nuScenes ---------------------------------------------------------------------------------


@pytest.fixture
def scene(real_data: Path) -> dict[str, Any]:
    return json.loads((real_data / "nuscenes" / SCENE_FILE).read_text())


def test_nuscenes_annotations_hold_their_lidar_points_in_the_ego_frame(
    real_data: Path, scene: dict[str, Any]
) -> None:
    source = NuScenesSource(real_data / "nuscenes")
    truth = source.ground_truth(CLASS_NAMES)
    assert isinstance(truth, IndexedGroundTruth)
    stamp = scene["sensors"]["LIDAR_TOP"]["timestamp_us"] * 1000
    boxes = truth.near(stamp, 0)
    assert boxes is not None
    # 8 cars, 30 pedestrians, 1 bicycle (cyclist); barriers, cones, trucks... left out
    assert np.bincount(boxes.labels, minlength=3).tolist() == [8, 30, 1]
    kept = [i for i in scene["instances"] if i["class"] in ("car", "pedestrian", "bicycle")]
    assert boxes.visibility.tolist() == [1.0 if i["valid"] else 0.0 for i in kept]
    rig = source.rig()
    assert rig is not None and rig.road_level
    cloud = np.fromfile(
        real_data / "nuscenes" / scene["sensors"]["LIDAR_TOP"]["file"], np.float32
    ).reshape(-1, 5)[:, :3]
    ego = rig.transform("lidar_top", "ego").apply(cloud.astype(np.float64))
    for box, instance in zip(boxes.boxes, kept, strict=True):
        x, y, z, length, width, height, yaw = box
        d = ego - (x, y, z)
        along = d[:, 0] * np.cos(yaw) + d[:, 1] * np.sin(yaw)
        across = -d[:, 0] * np.sin(yaw) + d[:, 1] * np.cos(yaw)
        inside = (
            (np.abs(along) <= length / 2)
            & (np.abs(across) <= width / 2)
            & (np.abs(d[:, 2]) <= height / 2)
        )
        # nuScenes counted these points in the box (its own bounds rounding: ±1 or a few %)
        assert int(inside.sum()) == pytest.approx(instance["num_lidar_pts"], rel=0.1, abs=1)


def _with_annotations(tables: Path, scene: dict[str, Any]) -> None:
    """Add sample_annotation, instance and category tables: the scene file's instances moved
    from the LIDAR_TOP frame to the global frame, as the devkit stores them."""
    lidar = scene["sensors"]["LIDAR_TOP"]
    to_global = Transform.from_quaternion(
        lidar["ego_pose"]["rotation"], lidar["ego_pose"]["translation"]
    ) @ Transform.from_quaternion(
        lidar["calibrated_sensor"]["rotation"], lidar["calibrated_sensor"]["translation"]
    )
    names = {"car": "vehicle.car", "pedestrian": "human.pedestrian.adult"}
    names |= {"bicycle": "vehicle.bicycle", "barrier": "movable_object.barrier"}
    categories = [{"token": f"c-{n}", "name": n} for n in names.values()]
    instances, annotations = [], []
    for i, instance in enumerate(scene["instances"]):
        x, y, z, length, width, height, yaw = instance["bbox_3d_lidar"]
        pose = to_global @ Transform.from_quaternion(
            [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)], [x, y, z]
        )
        category = names.get(instance["class"] or "", "static_object.bicycle_rack")
        instances.append({"token": f"i{i}", "category_token": f"c-{category}"})
        annotations.append(
            {
                "token": f"a{i}",
                "sample_token": "ca9a282c9e77460f8360f564131a8af5",
                "instance_token": f"i{i}",
                "translation": pose.translation.tolist(),
                "size": [width, length, height],  # nuScenes order
                "rotation": pose.quaternion.tolist(),
                "num_lidar_pts": instance["num_lidar_pts"],
                "num_radar_pts": instance["num_radar_pts"],
                "visibility_token": "4",
            }
        )
    annotations.append({**annotations[0], "token": "other", "sample_token": "another-scene"})
    for name, rows in (
        ("category", categories),
        ("instance", instances),
        ("sample_annotation", annotations),
    ):
        (tables / f"{name}.json").write_text(json.dumps(rows))


def test_nuscenes_devkit_annotations_move_from_global_to_ego(
    real_data: Path, scene: dict[str, Any], tmp_path: Path
) -> None:
    root = _devkit_tables(real_data / "nuscenes", scene, tmp_path)
    tables_source = NuScenesSource(root)
    assert tables_source.ground_truth(CLASS_NAMES) is None  # no sample_annotation table yet
    _with_annotations(root / "v1.0-mini", scene)
    truth = tables_source.ground_truth(CLASS_NAMES)
    stamp = scene["sensors"]["LIDAR_TOP"]["timestamp_us"] * 1000
    assert isinstance(truth, IndexedGroundTruth) and truth.stamps_ns == [stamp]
    from_tables = truth.near(stamp, 0)
    from_scene = NuScenesSource(real_data / "nuscenes").ground_truth(CLASS_NAMES)
    assert from_tables is not None and from_scene is not None
    reference = from_scene.near(stamp, 0)
    assert reference is not None
    assert from_tables.labels.tolist() == reference.labels.tolist()
    np.testing.assert_allclose(from_tables.boxes, reference.boxes, atol=1e-4)
    valid = [
        i["valid"] for i in scene["instances"] if i["class"] in ("car", "pedestrian", "bicycle")
    ]
    assert from_tables.visibility.tolist() == pytest.approx([0.9 if v else 0.0 for v in valid])


def test_a_broken_label_file_costs_its_frame_only(real_data: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "kitti"
    shutil.copytree(real_data / "kitti" / "training", root / "training")
    (root / "training/label_2/000008.txt").write_text("Car 0.0 0 oops\n")
    truth = KittiSource(root).ground_truth(CLASS_NAMES)
    assert truth is not None
    errors: list[tuple[int, Exception]] = []
    from fusionrt.plugins.models.reference.layout import GEOMETRY
    from fusionrt.runtime.messages import Detections

    evaluator = RunEvaluator(
        truth, GEOMETRY.bev, CLASS_NAMES, on_error=lambda s, e: errors.append((s, e))
    )
    for stamp in (100_000_000, 800_000_000):
        evaluator.add_frame(Detections.empty(stamp))
    report = evaluator.finish()
    assert report is not None and report.frames == 1  # frame 1 scored, frame 8 left out
    ((stamp, error),) = errors
    assert stamp == 800_000_000 and isinstance(error, ConfigError)
    assert "000008.txt" in str(error)
