"""nuScenes importer against the real scene-0061 keyframe (tests/data/real/nuscenes)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fusionrt import CalibrationError
from fusionrt.calibration import Rig
from fusionrt.calibration.formats.nuscenes import nuscenes_rig
from fusionrt.calibration.transforms import Transform, quat_to_matrix

from .conftest import NUSCENES_JSON

CAMERAS = [
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
]
# README: lidar points inside each image (depth > 1 m) with the mmdet3d lidar2img
POINTS_IN_IMAGE = {
    "CAM_FRONT": 3067,
    "CAM_FRONT_RIGHT": 3079,
    "CAM_FRONT_LEFT": 3704,
    "CAM_BACK": 4826,
    "CAM_BACK_LEFT": 4097,
    "CAM_BACK_RIGHT": 3379,
}


@pytest.fixture(scope="module")
def sample(nuscenes_dir):
    return json.loads(NUSCENES_JSON.read_text())


@pytest.fixture(scope="module")
def points(nuscenes_dir, sample):
    path = nuscenes_dir / sample["sensors"]["LIDAR_TOP"]["file"]
    return np.fromfile(path, np.float32).reshape(-1, 5)[:, :3].astype(np.float64)


def _calibrated(sample):
    return {ch: s["calibrated_sensor"] for ch, s in sample["sensors"].items()}


def _ego_poses(sample):
    poses = {"LIDAR_TOP": sample["sensors"]["LIDAR_TOP"]["ego_pose"]}
    for ch in CAMERAS:
        poses[ch] = sample["sensors"][ch]["ego_pose_derived"]
    return poses


def _matrix(record):
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(record["rotation"])
    m[:3, 3] = record["translation"]
    return m


def test_static_rig_matches_calibrated_sensor_records(sample):
    rig = nuscenes_rig(_calibrated(sample))
    assert rig.frame == "ego"
    assert list(rig.sensors) == ["lidar_top", *[c.lower() for c in CAMERAS]]
    assert rig.names("camera") == [c.lower() for c in CAMERAS]
    for ch, s in sample["sensors"].items():
        # the pkl's 4×4 (float32) sensor -> ego matrices agree with the exact records
        pkl = s.get("pkl_cam2ego_4x4") or s.get("pkl_lidar2ego_4x4")
        np.testing.assert_allclose(rig.transform(ch.lower(), "ego").matrix, pkl, atol=1e-6)
        if ch != "LIDAR_TOP":
            cam = rig.camera(ch.lower())
            np.testing.assert_array_equal(cam.K, s["calibrated_sensor"]["camera_intrinsic"])
            assert (cam.model, cam.width, cam.height) == ("pinhole", 1600, 900)
    # rotation kept verbatim for the rig file
    d = rig.to_dict()["sensors"]["cam_front"]["extrinsics"]
    assert d["rotation"] == {
        "quaternion_wxyz": sample["sensors"]["CAM_FRONT"]["calibrated_sensor"]["rotation"]
    }
    # LIDAR_TOP is mounted x right, y forward: its +y axis is ego +x
    np.testing.assert_allclose(
        rig.transform("lidar_top", "ego").rotate([0, 1, 0]), [1, 0, 0], atol=0.03
    )


def test_lidar_ego_camera_chain(sample):
    """Static chain lidar -> ego -> camera, against the pkl matrices, with explicit tolerances."""
    rig = nuscenes_rig(_calibrated(sample))
    lidar2ego = np.array(sample["sensors"]["LIDAR_TOP"]["pkl_lidar2ego_4x4"])
    for ch in CAMERAS:
        s = sample["sensors"][ch]
        static = np.linalg.inv(np.array(s["pkl_cam2ego_4x4"])) @ lidar2ego
        got = rig.transform("lidar_top", ch.lower()).matrix
        np.testing.assert_allclose(got, static, atol=2e-6)
        np.testing.assert_allclose(
            got,
            (rig.transform("ego", ch.lower()) @ rig.transform("lidar_top", "ego")).matrix,
            atol=1e-12,
        )
        # mmdet3d's lidar2cam includes the ego motion between the two timestamps (up to 43 ms
        # at ≈ 9 m/s): the static chain is off from it by at most 0.35 m and 0.01 rad here.
        moving = np.array(s["pkl_lidar2cam_4x4"])
        assert np.abs(got[:3, 3] - moving[:3, 3]).max() < 0.35
        assert np.abs(got[:3, :3] - moving[:3, :3]).max() < 0.01


def test_rig_of_one_sample_reproduces_ego_motion_chain(sample, points):
    rig = nuscenes_rig(_calibrated(sample), ego_pose=_ego_poses(sample))
    lidar = sample["sensors"]["LIDAR_TOP"]
    for ch in CAMERAS:
        s = sample["sensors"][ch]
        # independently: inv(cam2ego) · inv(ego2global(t_cam)) · ego2global(t_lidar) · lidar2ego
        chain = (
            np.linalg.inv(_matrix(s["calibrated_sensor"]))
            @ np.linalg.inv(_matrix(s["ego_pose_derived"]))
            @ _matrix(lidar["ego_pose"])
            @ _matrix(lidar["calibrated_sensor"])
        )
        got = rig.transform("lidar_top", ch.lower()).matrix
        np.testing.assert_allclose(got, chain, atol=1e-9)
        np.testing.assert_allclose(got, s["pkl_lidar2cam_4x4"], atol=2e-4)  # float32 + derived pose
        # projections equal mmdet3d's lidar2img
        lidar2img = np.array(s["lidar2img_4x4"])
        img = np.c_[points, np.ones(len(points))] @ lidar2img.T
        depth_ref = img[:, 2]
        ref = img[:, :2] / np.where(depth_ref > 0, depth_ref, 1)[:, None]
        uv, depth, valid = rig.project(points, "lidar_top", ch.lower())
        keep = valid & (depth > 1.0)
        ref_keep = (depth_ref > 1.0) & np.all((ref >= 0) & (ref < [1600, 900]), axis=1)
        assert abs(int(keep.sum()) - POINTS_IN_IMAGE[ch]) <= 2, (ch, keep.sum())
        both = keep & ref_keep
        assert both.sum() >= POINTS_IN_IMAGE[ch] - 2
        assert np.abs(uv[both] - ref[both]).max() < 0.5
    # the lidar itself is the reference: its extrinsics are the static calibration
    static = nuscenes_rig(_calibrated(sample))
    assert rig.transform("lidar_top", "ego").allclose(static.transform("lidar_top", "ego"), atol=0)


def _box_corners_lidar(box, global_from_lidar):
    """Corners (8×3, lidar frame) of an annotation [x, y, z, l, w, h, yaw] given in the lidar frame.

    nuScenes boxes are upright in the global frame; the lidar-frame yaw drops the small tilt of
    the lidar (≈ 1.4° roll), so the box is rebuilt upright in the global frame first.
    """
    x, y, z, length, w, h, yaw = box
    centre = global_from_lidar.apply([x, y, z])
    heading = global_from_lidar.rotate([np.cos(yaw), np.sin(yaw), 0.0])
    gyaw = np.arctan2(heading[1], heading[0])
    cx = length / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    cy = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    cz = h / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    c, s = np.cos(gyaw), np.sin(gyaw)
    corners = np.c_[c * cx - s * cy, s * cx + c * cy, cz] + centre
    return global_from_lidar.inverse().apply(corners)


@pytest.mark.parametrize("channel", CAMERAS)
def test_3d_boxes_project_where_the_annotations_say(sample, channel):
    rig = nuscenes_rig(_calibrated(sample), ego_pose=_ego_poses(sample))
    static = nuscenes_rig(_calibrated(sample))
    lidar = sample["sensors"]["LIDAR_TOP"]
    global_from_lidar = Transform.from_matrix(
        _matrix(lidar["ego_pose"]) @ _matrix(lidar["calibrated_sensor"])
    )
    cam = channel.lower()
    fx = rig.camera(cam).fx
    boxes = [inst["bbox_3d_lidar"] for inst in sample["instances"]]
    centres = np.array([b[:3] for b in boxes])
    uv, depth, valid = rig.project(centres, "lidar_top", cam)
    uv_static, _, _ = static.project(centres, "lidar_top", cam)
    image = np.array([[0, 0], [1600, 0], [1600, 900], [0, 900]], np.float32)
    checked = 0
    for inst in sample["cam_instances"][channel]:
        # the annotation whose centre projects onto this camera instance's centre_2d
        dist = np.hypot(*(uv - inst["center_2d"]).T) + 1e3 * (np.abs(depth - inst["depth"]) > 0.5)
        i = int(np.argmin(dist))
        assert dist[i] < 1.0, (channel, inst["class"], dist[i])
        assert abs(depth[i] - inst["depth"]) < 0.05
        # the static chain ignores up to 0.35 m and 0.01 rad of ego motion (see the chain
        # test): explicit tolerance f·(0.35 m / depth + 0.01 rad)
        assert np.hypot(*(uv_static[i] - inst["center_2d"])) < fx * (0.35 / depth[i] + 0.01)
        corners = _box_corners_lidar(boxes[i], global_from_lidar)
        cuv, cdepth, _ = rig.project(corners, "lidar_top", cam)
        if np.all(cdepth > 0.1):
            hull = cv2.convexHull(cuv.astype(np.float32)).reshape(-1, 2)
            _, clipped = cv2.intersectConvexConvex(hull, image)
            c = clipped.reshape(-1, 2)
            got = np.r_[c.min(0), c.max(0)]
            np.testing.assert_allclose(got, inst["bbox_2d_xyxy"], atol=1.0)
        checked += 1
        if valid[i]:
            x1, y1, x2, y2 = inst["bbox_2d_xyxy"]
            assert x1 - 1 <= uv[i, 0] <= x2 + 1 and y1 - 1 <= uv[i, 1] <= y2 + 1
    assert checked == len(sample["cam_instances"][channel]) > 0


def test_example_rig_file_is_the_importer_output(sample, points):
    from .conftest import REAL

    path = REAL.parents[2] / "examples" / "rigs" / "nuscenes_n015.yaml"
    rig = Rig.load(path)
    imported = nuscenes_rig(_calibrated(sample)).to_dict()
    assert rig.to_dict()["sensors"] == imported["sensors"]
    # the vehicle box holds the ego returns of the sample scan (roof, bonnet, zero returns at
    # the lidar origin) and no ground point
    lo, hi = rig.vehicle_box
    ego = rig.transform("lidar_top", "ego").apply(points)
    inside = np.all((ego > lo) & (ego < hi), axis=1)
    near = np.hypot(points[:, 0], points[:, 1]) < 3.0  # all returns within 3 m are the car's
    np.testing.assert_array_equal(inside, near)
    assert not np.any(inside & (ego[:, 2] < 0.3))


def test_radars_uppercase_names_and_errors(sample, tmp_path):
    records = _calibrated(sample)
    # a radar record shaped like nuScenes' (values for the test only: 3.4 m ahead, yawed 0.2°)
    records["RADAR_FRONT"] = {
        "translation": [3.412, 0.0, 0.5],
        "rotation": [0.9999984769132877, 0.0, 0.0, 0.0017453283658983088],
        "camera_intrinsic": [],
    }
    rig = nuscenes_rig(records, lowercase=False)
    assert rig.sensor("RADAR_FRONT").kind == "radar"
    assert rig.sensor("RADAR_FRONT").camera is None
    np.testing.assert_allclose(
        np.degrees(rig.sensor("RADAR_FRONT").extrinsics.rpy), [0, 0, 0.2], atol=1e-9
    )
    rig.save(tmp_path / "r.yaml")
    assert Rig.load(tmp_path / "r.yaml").to_dict() == rig.to_dict()

    with pytest.raises(CalibrationError, match="cannot tell the sensor kind") as e:
        nuscenes_rig({"GPS": records["LIDAR_TOP"]})
    assert e.value.context["sensor"] == "GPS"
    bad = dict(records)
    bad["CAM_FRONT"] = dict(records["CAM_FRONT"], rotation=[1.0, 0.5, 0.0, 0.0])
    with pytest.raises(CalibrationError, match=r"quaternion norm is 1\.11803") as e:
        nuscenes_rig(bad)
    assert e.value.context == {
        "sensor": "CAM_FRONT",
        "field": "calibrated_sensor.rotation.quaternion_wxyz",
    }
    bad["CAM_FRONT"] = dict(records["CAM_FRONT"], camera_intrinsic=[])
    with pytest.raises(CalibrationError, match="needs a 3×3 camera_intrinsic"):
        nuscenes_rig(bad)
    with pytest.raises(CalibrationError, match="not be a single record"):
        nuscenes_rig(records, ego_pose=sample["sensors"]["LIDAR_TOP"]["ego_pose"])
    with pytest.raises(CalibrationError, match="no record for the reference channel 'LIDAR_TOP'"):
        nuscenes_rig(records, ego_pose={"CAM_FRONT": sample["sensors"]["LIDAR_TOP"]["ego_pose"]})
    assert isinstance(rig.transform("RADAR_FRONT", "CAM_FRONT"), Transform)
