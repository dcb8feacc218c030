"""NuScenesSource on the real nuScenes sample (scene-0061, first key frame)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrt.calibration import Transform
from fusionrt.plugins.sources import BadRecord
from fusionrt.plugins.sources.nuscenes import (
    CAMERA_MSGTYPE,
    LIDAR_MSGTYPE,
    NuScenesSource,
    sensor_of_topic,
)
from fusionrt.runtime.errors import ConfigError

SCENE_FILE = "scene-0061_ca9a282c9e77460f8360f564131a8af5.json"
CAMERAS = {
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
}


@pytest.fixture
def nuscenes(real_data: Path) -> Path:
    return real_data / "nuscenes"


@pytest.fixture
def scene(nuscenes: Path) -> dict[str, Any]:
    return json.loads((nuscenes / SCENE_FILE).read_text())


def test_six_cameras_and_the_lidar_with_their_real_timestamps(
    nuscenes: Path, scene: dict[str, Any]
) -> None:
    source = NuScenesSource(nuscenes)
    assert source.layout == "scene_file" and source.scene == "scene-0061"
    records = list(source.records())
    expected = sorted(
        (s["timestamp_us"] * 1000, channel, s["file"]) for channel, s in scene["sensors"].items()
    )
    assert [
        (r.stamp_ns, r.topic, Path(r.path).relative_to(nuscenes).as_posix()) for r in records
    ] == expected
    assert {r.topic for r in records} == CAMERAS | {"LIDAR_TOP"}  # the radar of another log is not
    assert [r.stamp_ns for r in records] == sorted(r.stamp_ns for r in records)
    assert records[-1].stamp_ns == 1_532_402_927_647_951_000
    assert all(
        r.msgtype == (LIDAR_MSGTYPE if r.topic == "LIDAR_TOP" else CAMERA_MSGTYPE) for r in records
    )
    assert all(bytes(r.data) == Path(r.path).read_bytes() for r in records)
    assert source.message_count == 7 and not source.bad_records


def test_sensors_decode_the_records(nuscenes: Path) -> None:
    lidar = pytest.importorskip("fusionrt.plugins.sensors.lidar")
    camera = pytest.importorskip("fusionrt.plugins.sensors.camera")
    records = {r.topic: r for r in NuScenesSource(nuscenes).records()}
    cloud = lidar.LidarSensor("lidar_top").decode(records["LIDAR_TOP"])
    assert len(cloud.payload) == 34_688
    image = camera.CameraSensor("cam_front").decode(records["CAM_FRONT"])
    assert image.payload.shape == (900, 1600, 3)


def test_rig_and_ego_poses_reproduce_the_devkit_lidar_to_camera(
    nuscenes: Path, scene: dict[str, Any]
) -> None:
    source = NuScenesSource(nuscenes)
    rig = source.rig()
    assert rig is not None
    assert sorted(rig.names()) == sorted(sensor_of_topic(c) for c in CAMERAS | {"LIDAR_TOP"})
    poses = source.ego_poses()
    assert poses is not None and len(poses) == 7
    assert list(poses.stamps_ns) == sorted(
        s["timestamp_us"] * 1000 for s in scene["sensors"].values()
    )
    lidar = scene["sensors"]["LIDAR_TOP"]
    exact = Transform.from_quaternion(
        lidar["ego_pose"]["rotation"], lidar["ego_pose"]["translation"]
    )
    np.testing.assert_allclose(poses.poses[-1], exact.matrix)
    stamp_index = {int(s): i for i, s in enumerate(poses.stamps_ns)}
    for channel in CAMERAS:
        camera = scene["sensors"][channel]
        ego_lidar = poses.poses[stamp_index[lidar["timestamp_us"] * 1000]]
        ego_camera = poses.poses[stamp_index[camera["timestamp_us"] * 1000]]
        # lidar -> ego(t_lidar) -> global -> ego(t_camera) -> camera, as mmdetection3d computes it
        moved = (
            rig.transform(rig.frame, sensor_of_topic(channel)).matrix
            @ np.linalg.inv(ego_camera)
            @ ego_lidar
            @ rig.transform("lidar_top", rig.frame).matrix
        )
        np.testing.assert_allclose(moved, camera["pkl_lidar2cam_4x4"], atol=2e-3)
    static = rig.transform("lidar_top", "cam_front_left").matrix
    assert np.abs(static - scene["sensors"]["CAM_FRONT_LEFT"]["pkl_lidar2cam_4x4"]).max() > 0.1


def test_topic_filter_and_seek(nuscenes: Path) -> None:
    source = NuScenesSource(nuscenes, topics=["LIDAR_TOP", "CAM_FRONT", "RADAR_FRONT"])
    assert [r.topic for r in source.records()] == ["CAM_FRONT", "LIDAR_TOP"]
    assert source.missing_topics == ("RADAR_FRONT",)
    source.seek(1_532_402_927_620_000_000)
    assert [r.topic for r in source.records()] == ["LIDAR_TOP"]


def test_files_only_layout(nuscenes: Path, tmp_path: Path) -> None:
    shutil.copytree(nuscenes / "samples", tmp_path / "samples")
    with pytest.raises(ConfigError, match="2 logs"):
        NuScenesSource(tmp_path)
    source = NuScenesSource(tmp_path, log="n015-2018-07-24-11-22-45+0800")
    assert source.layout == "files" and source.rig() is None and source.ego_poses() is None
    assert len(list(source.records())) == 7
    radar = NuScenesSource(tmp_path, log="n015-2018-07-25-16-15-50+0800")
    (record,) = radar.records()
    assert (record.topic, record.msgtype, record.stamp_ns) == (
        "RADAR_BACK_LEFT",
        "fusionrt/pcd",
        1_532_506_682_462_345_000,
    )
    radar_sensor = pytest.importorskip("fusionrt.plugins.sensors.radar")
    assert len(radar_sensor.RadarSensor("radar_back_left").decode(record).payload) == 125


def _devkit_tables(nuscenes: Path, scene: dict[str, Any], root: Path) -> Path:
    """nuScenes devkit tables (v1.0-mini layout) for the sample, plus one missing sweep."""
    shutil.copytree(nuscenes / "samples", root / "samples")
    tables = root / "v1.0-mini"
    tables.mkdir()
    sample = "ca9a282c9e77460f8360f564131a8af5"
    rows: dict[str, list[dict[str, Any]]] = {
        "scene": [{"token": "s0", "name": "scene-0061", "log_token": "l0"}],
        "log": [{"token": "l0", "logfile": scene["log"]}],
        "sample": [{"token": sample, "scene_token": "s0"}],
        "sensor": [],
        "calibrated_sensor": [],
        "ego_pose": [],
        "sample_data": [],
    }
    for i, (channel, sensor) in enumerate(scene["sensors"].items()):
        rows["sensor"].append({"token": f"sensor{i}", "channel": channel})
        rows["calibrated_sensor"].append(
            {**sensor["calibrated_sensor"], "token": f"cs{i}", "sensor_token": f"sensor{i}"}
        )
        pose = sensor.get("ego_pose") or sensor["ego_pose_derived"]
        rows["ego_pose"].append({**pose, "token": f"ep{i}", "timestamp": sensor["timestamp_us"]})
        rows["sample_data"].append(
            {
                "token": f"sd{i}",
                "sample_token": sample,
                "ego_pose_token": f"ep{i}",
                "calibrated_sensor_token": f"cs{i}",
                "timestamp": sensor["timestamp_us"],
                "is_key_frame": True,
                "filename": sensor["file"],
                "width": sensor.get("width", 0),
                "height": sensor.get("height", 0),
            }
        )
    lidar = scene["sensors"]["LIDAR_TOP"]
    sweep = f"sweeps/LIDAR_TOP/{scene['log']}__LIDAR_TOP__{lidar['timestamp_us'] + 50_000}.pcd.bin"
    rows["sample_data"].append(
        {
            **rows["sample_data"][0],
            "token": "sweep",
            "timestamp": lidar["timestamp_us"] + 50_000,
            "is_key_frame": False,
            "filename": sweep,
        }
    )
    for name, content in rows.items():
        (tables / f"{name}.json").write_text(json.dumps(content))
    return root


def test_devkit_tables_layout(nuscenes: Path, scene: dict[str, Any], tmp_path: Path) -> None:
    root = _devkit_tables(nuscenes, scene, tmp_path)
    reports: list[BadRecord] = []
    source = NuScenesSource(root, on_bad_record=reports.append)
    assert source.layout == "tables" and source.log == scene["log"]
    records = list(source.records())
    expected = sorted((s["timestamp_us"] * 1000, c) for c, s in scene["sensors"].items())
    assert [(r.stamp_ns, r.topic) for r in records] == expected
    (bad,) = reports  # the sweep whose file is missing: reported, the replay went on
    assert bad.reason == "unreadable" and bad.topic == "LIDAR_TOP"
    assert bad.stamp_ns == (scene["sensors"]["LIDAR_TOP"]["timestamp_us"] + 50_000) * 1000
    key_frames = NuScenesSource(root, sweeps=False)
    assert len(list(key_frames.records())) == 7 and not key_frames.bad_records
    rig, reference = source.rig(), NuScenesSource(nuscenes).rig()
    assert rig is not None and reference is not None
    np.testing.assert_allclose(
        rig.transform("lidar_top", "cam_back").matrix,
        reference.transform("lidar_top", "cam_back").matrix,
    )
    assert len(source.ego_poses() or ()) == 7
    with pytest.raises(ConfigError, match="no scene"):
        NuScenesSource(root, scene="scene-0103")
