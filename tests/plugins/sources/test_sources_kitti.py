"""KittiSource on the real KITTI sample (frames 000001 and 000008) and a raw-layout drive."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fusionrt.calibration.formats.kitti import read_kitti_calib
from fusionrt.plugins.sources import BadRecord
from fusionrt.plugins.sources.kitti import (
    FRAME_PERIOD_NS,
    LIDAR_MSGTYPE,
    PNG_MSGTYPE,
    KittiSource,
    parse_raw_timestamp,
)
from fusionrt.runtime.errors import ConfigError


@pytest.fixture
def kitti(real_data: Path) -> Path:
    return real_data / "kitti"


def test_records_of_the_object_layout(kitti: Path) -> None:
    source = KittiSource(kitti)
    records = list(source.records())
    assert [(r.topic, r.stamp_ns, r.msgtype) for r in records] == [
        ("velodyne", 1 * FRAME_PERIOD_NS, LIDAR_MSGTYPE),
        ("image_2", 1 * FRAME_PERIOD_NS, PNG_MSGTYPE),
        ("velodyne", 8 * FRAME_PERIOD_NS, LIDAR_MSGTYPE),  # from velodyne_reduced/
        ("image_2", 8 * FRAME_PERIOD_NS, PNG_MSGTYPE),
    ]
    training = kitti / "training"
    files = [
        training / "velodyne/000001.bin",
        training / "image_2/000001.png",
        training / "velodyne_reduced/000008.bin",
        training / "image_2/000008.png",
    ]
    assert [r.path for r in records] == [str(f) for f in files]
    assert all(
        bytes(r.data) == f.read_bytes() and r.offset == 0
        for r, f in zip(records, files, strict=True)
    )
    assert source.frames == ["000001", "000008"]
    assert {t: i.count for t, i in source.topics().items()} == {"image_2": 2, "velodyne": 2}
    assert (source.first_stamp_ns, source.last_stamp_ns) == (FRAME_PERIOD_NS, 8 * FRAME_PERIOD_NS)
    assert not source.bad_records


def test_lidar_and_camera_sensors_decode_the_records(kitti: Path) -> None:
    records = list(KittiSource(kitti).records())
    try:
        from fusionrt.plugins.sensors.camera import CameraSensor
        from fusionrt.plugins.sensors.lidar import LidarSensor
    except ImportError:  # pragma: no cover - the sensors are written in parallel
        points = [np.frombuffer(r.data, np.float32).reshape(-1, 4) for r in records[::2]]
        images = [cv2.imdecode(np.frombuffer(r.data, np.uint8), 1) for r in records[1::2]]
        assert [len(p) for p in points] == [120_268, 17_238]
        assert [i.shape for i in images] == [(375, 1242, 3)] * 2
        return
    lidar, camera = LidarSensor("lidar"), CameraSensor("cam2")
    clouds = [lidar.decode(r) for r in records if r.topic == "velodyne"]
    assert [len(m.payload) for m in clouds] == [120_268, 17_238]
    assert [m.stamp_ns for m in clouds] == [FRAME_PERIOD_NS, 8 * FRAME_PERIOD_NS]
    images = [camera.decode(r) for r in records if r.topic == "image_2"]
    assert [m.payload.shape for m in images] == [(375, 1242, 3)] * 2


def test_lidar_folder_choice_frames_and_bounds(kitti: Path, tmp_path: Path) -> None:
    def lidar_paths(**options: object) -> list[str]:
        source = KittiSource(kitti, **options)  # type: ignore[arg-type]
        return [Path(r.path).parent.name for r in source.records() if r.topic == "velodyne"]

    assert lidar_paths(lidar="velodyne") == ["velodyne"]
    assert lidar_paths(lidar="velodyne_reduced") == ["velodyne_reduced"]
    assert lidar_paths(lidar=None) == []
    assert KittiSource(kitti, frames=[8]).frames == ["000008"]
    imagesets = tmp_path / "val.txt"
    imagesets.write_text("000001\n")
    assert KittiSource(kitti, frames=imagesets).frames == ["000001"]
    late = KittiSource(kitti, start_ns=5 * FRAME_PERIOD_NS, topics=["image_2"])
    assert [(r.topic, r.stamp_ns) for r in late.records()] == [("image_2", 8 * FRAME_PERIOD_NS)]
    shifted = KittiSource(kitti, epoch_ns=10**18)
    assert shifted.stamp_of(8) == 10**18 + 8 * FRAME_PERIOD_NS
    with pytest.raises(ConfigError, match="lidar must be"):
        KittiSource(kitti, lidar="lidar")
    with pytest.raises(ConfigError, match="not a KITTI folder"):
        KittiSource(tmp_path)


def test_rig_projects_like_the_devkit(kitti: Path) -> None:
    source = KittiSource(kitti)
    rig = source.rig(8)
    assert rig is not None and rig.camera("cam2").width == 1242
    m = read_kitti_calib(kitti / "training/calib/000008.txt")
    r0, tr = np.eye(4), np.eye(4)
    r0[:3, :3], tr[:3] = m["R0_rect"], m["Tr_velo_to_cam"]
    for frame, inside_share in (("000008", 1.0), ("000001", 0.155)):
        (record,) = [r for r in source.records() if r.topic == "velodyne" and frame in r.path]
        xyz = np.frombuffer(record.data, np.float32).reshape(-1, 4)[:, :3].astype(np.float64)
        uv, _, valid = rig.project(xyz, "lidar", "cam2")
        # The devkit's P2 · R0_rect · Tr_velo_to_cam · X:
        h = (m["P2"] @ r0 @ tr @ np.c_[xyz, np.ones(len(xyz))].T).T
        front = h[:, 2] > 0.5  # (near-zero depths blow rounding up)
        np.testing.assert_allclose(uv[front], h[front, :2] / h[front, 2:], rtol=1e-6, atol=1e-3)
        inside = valid & (uv[:, 0] >= 0) & (uv[:, 0] < 1242) & (uv[:, 1] >= 0) & (uv[:, 1] < 375)
        assert inside.mean() == pytest.approx(inside_share, abs=0.005)
    info = json.loads((kitti / "mmdet3d_info_000008.json").read_text())["data"]
    lidar2img = np.array(info["images"]["CAM2"]["lidar2img"])
    xyz = np.array([[10.0, 1.0, -1.0], [30.0, -5.0, 0.5]])
    h = (lidar2img @ np.c_[xyz, np.ones(2)].T).T
    uv, _, _ = rig.project(xyz, "lidar", "cam2")
    np.testing.assert_allclose(uv, h[:, :2] / h[:, 2:3], atol=0.05)  # the pkl is float32


def test_ground_truth_boxes_match_mmdet3d(kitti: Path) -> None:
    """Box centres project where mmdetection3d projected them; the boxes hold the car points."""
    source = KittiSource(kitti)
    gt = source.frame_ground_truth(8)
    assert gt is not None and gt.stamp_ns == 8 * FRAME_PERIOD_NS
    assert gt.classes == ("car",) * 6 and gt.boxes.shape == (6, 7)
    labels = source.labels(8)
    assert labels is not None and sum(label.type == "DontCare" for label in labels) == 4
    info = json.loads((kitti / "mmdet3d_info_000008.json").read_text())["data"]
    cars = [i for i in info["instances"] if i["bbox_label_3d"] >= 0]
    rig = source.rig(8)
    assert rig is not None
    uv, depth, _ = rig.project(gt.boxes[:, :3], "ego", "cam2")
    np.testing.assert_allclose(uv, [c["center_2d"] for c in cars], atol=0.02)
    np.testing.assert_allclose(depth, [c["depth"] for c in cars], atol=1e-3)
    np.testing.assert_allclose(gt.boxes[:, 3:6], [np.take(c["bbox_3d"], [3, 5, 4]) for c in cars])
    points = np.fromfile(kitti / "training/velodyne_reduced/000008.bin", np.float32)
    xyz = rig.transform("lidar", "ego").apply(points.reshape(-1, 4)[:, :3].astype(np.float64))
    for box, car in zip(gt.boxes, cars, strict=True):
        x, y, z, length, width, height, yaw = box
        c, s = np.cos(yaw), np.sin(yaw)
        d = xyz - (x, y, z)
        along, across = d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c
        inside = (
            (np.abs(along) <= length / 2)
            & (np.abs(across) <= width / 2)
            & (np.abs(d[:, 2]) <= height / 2)
        )
        # mmdet3d's own count differs by up to 8 % (its box corners and bounds); a box yawed
        # the wrong way holds 30-90 % fewer points.
        assert int(inside.sum()) == pytest.approx(car["num_lidar_pts"], rel=0.1, abs=3)
    frame1 = source.frame_ground_truth("000001")
    assert frame1 is not None and frame1.classes == (None, "car", "cyclist")  # Truck, Car, Cyclist
    assert [label.type for label in frame1.labels] == ["Truck", "Car", "Cyclist"]


def test_unreadable_file_is_reported_and_the_replay_goes_on(kitti: Path, tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    shutil.copytree(kitti / "training", root / "training")
    (root / "training/velodyne/000003.bin").symlink_to(tmp_path / "missing.bin")
    reports: list[BadRecord] = []
    source = KittiSource(root, on_bad_record=reports.append)
    records = list(source.records())
    assert len(records) == 4
    (bad,) = reports
    assert bad.reason == "unreadable" and bad.topic == "velodyne"
    assert bad.path is not None and bad.path.endswith("000003.bin")
    assert bad.stamp_ns == 3 * FRAME_PERIOD_NS


def _raw_drive(kitti: Path, root: Path) -> Path:
    """A KITTI raw-layout drive built from the object sample (2 scans, 2 images)."""
    date = root / "2011_09_26"
    drive = date / "2011_09_26_drive_0001_sync"
    velo, cam = drive / "velodyne_points", drive / "image_02"
    for folder in (velo / "data", cam / "data"):
        folder.mkdir(parents=True)
    for i, frame in enumerate(("000001", "000001")):
        shutil.copy(kitti / f"training/velodyne/{frame}.bin", velo / f"data/{i:010d}.bin")
        shutil.copy(kitti / f"training/image_2/{frame}.png", cam / f"data/{i:010d}.png")
    (velo / "timestamps.txt").write_text(
        "2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.067541123\n"
    )
    (cam / "timestamps.txt").write_text(
        "2011-09-26 13:02:25.951199337\n2011-09-26 13:02:26.054801000\n"
    )
    m = read_kitti_calib(kitti / "training/calib/000001.txt")

    def row(a: np.ndarray) -> str:
        return " ".join(f"{v:.12e}" for v in np.ravel(a))

    (date / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        + "".join(f"P_rect_0{i}: {row(m[f'P{i}'])}\n" for i in range(4))
        + f"R_rect_00: {row(m['R0_rect'])}\nS_rect_02: 1.242000e+03 3.750000e+02\n"
    )
    tr = m["Tr_velo_to_cam"]
    (date / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {row(tr[:, :3])}\nT: {row(tr[:, 3])}\n"
    )
    return drive


def test_raw_layout_real_timestamps_and_rig(kitti: Path, tmp_path: Path) -> None:
    drive = _raw_drive(kitti, tmp_path)
    source = KittiSource(drive)
    assert source.layout == "raw"
    records = list(source.records())
    t = parse_raw_timestamp
    assert [(r.topic, r.stamp_ns) for r in records] == [
        ("image_2", t("2011-09-26 13:02:25.951199337")),
        ("velodyne", t("2011-09-26 13:02:25.964389445")),
        ("image_2", t("2011-09-26 13:02:26.054801000")),
        ("velodyne", t("2011-09-26 13:02:26.067541123")),
    ]
    assert t("2011-09-26 13:02:25.964389445") % 10**9 == 964_389_445
    raw_rig, object_rig = source.rig(), KittiSource(kitti).rig(1)
    assert raw_rig is not None and object_rig is not None
    xyz = np.array([[10.0, 1.0, -1.0], [30.0, -5.0, 0.5]])
    np.testing.assert_allclose(
        raw_rig.project(xyz, "lidar", "cam2")[0], object_rig.project(xyz, "lidar", "cam2")[0]
    )
