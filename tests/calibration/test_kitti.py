"""KITTI importer against the real frames 000001 and 000008 (tests/data/real/kitti)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fusionrt import CalibrationError
from fusionrt.calibration import Rig
from fusionrt.calibration.formats.kitti import load_kitti_calib

FRAMES = {"000001": "velodyne", "000008": "velodyne_reduced"}
W, H = 1242, 375


def _devkit_calib(path):
    """Parse a KITTI calib file independently of the importer (devkit style)."""
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, values = line.split(":", 1)
            out[key] = np.array([float(v) for v in values.split()])
    p2 = out["P2"].reshape(3, 4)
    r0 = np.eye(4)
    r0[:3, :3] = out["R0_rect"].reshape(3, 3)
    tr = np.eye(4)
    tr[:3] = out["Tr_velo_to_cam"].reshape(3, 4)
    return out, p2, r0, tr


def _velodyne(kitti_dir, frame):
    p = kitti_dir / "training" / FRAMES[frame] / f"{frame}.bin"
    return np.fromfile(p, np.float32).reshape(-1, 4)


@pytest.mark.parametrize("frame", list(FRAMES))
def test_projection_equals_devkit_formula(kitti_dir, frame):
    calib = kitti_dir / "training" / "calib" / f"{frame}.txt"
    rig = load_kitti_calib(calib)
    _, p2, r0, tr = _devkit_calib(calib)
    pts = _velodyne(kitti_dir, frame)[:, :3]
    homo = np.c_[pts.astype(np.float64), np.ones(len(pts))]
    img = homo @ (p2 @ r0 @ tr).T  # [u·s, v·s, s] = P2 · R0_rect · Tr_velo_to_cam · X
    s = img[:, 2]
    ref_uv = img[:, :2] / np.where(s > 0, s, 1.0)[:, None]
    ref_valid = (s > 1e-3) & (ref_uv[:, 0] >= 0) & (ref_uv[:, 0] < W)
    ref_valid &= (ref_uv[:, 1] >= 0) & (ref_uv[:, 1] < H)

    uv, depth, valid = rig.project(pts, "lidar", "cam2")
    np.testing.assert_array_equal(valid, ref_valid)
    np.testing.assert_allclose(uv[valid], ref_uv[valid], rtol=0, atol=1e-4)
    # depth along cam2's axis = s (P2's third row is [0 0 1 tz])
    np.testing.assert_allclose(depth[valid], s[valid], rtol=0, atol=1e-6)
    if frame == "000008":
        assert valid.all()  # the reduced scan is exactly the points inside image_2
    else:
        assert 0.10 < valid.mean() < 0.20  # README: 15.5 % of the full scan

    # the rig frame is on the road 1.73 m below the velodyne: the same points in "ego" project
    # to the same pixels
    uv_ego, _, valid_ego = rig.project(pts + np.array([0.0, 0.0, 1.73]), "ego", "cam2")
    np.testing.assert_allclose(uv_ego[valid], uv[valid], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(valid_ego, valid)


def test_projection_equals_mmdet3d_lidar2img(kitti_dir):
    """Independent check: mmdetection3d's stored lidar2img (float32) for 000008."""
    info = json.loads((kitti_dir / "mmdet3d_info_000008.json").read_text())["data"]
    rig = load_kitti_calib(kitti_dir / "training" / "calib" / "000008.txt")
    pts = _velodyne(kitti_dir, "000008")[:, :3].astype(np.float64)
    for cam in ("CAM0", "CAM1", "CAM2", "CAM3"):
        lidar2img = np.array(info["images"][cam]["lidar2img"])
        img = np.c_[pts, np.ones(len(pts))] @ lidar2img.T
        ref = img[:, :2] / img[:, 2:3]
        uv, _, valid = rig.project(pts, "lidar", cam.lower())
        err = np.abs(uv[valid] - ref[valid]).max()
        assert err < 0.01, (cam, err)
    lidar2cam = np.array(info["images"]["CAM2"]["lidar2cam"])  # = R0_rect · Tr_velo_to_cam
    np.testing.assert_allclose(rig.transform("lidar", "cam0").matrix, lidar2cam, atol=1e-6)


def _label_objects(path):
    objs = []
    for line in path.read_text().splitlines():
        f = line.split()
        objs.append(
            {
                "type": f[0],
                "truncated": float(f[1]),
                "occluded": int(f[2]),
                "bbox": np.array([float(v) for v in f[4:8]]),
                "hwl": np.array([float(v) for v in f[8:11]]),
                "xyz": np.array([float(v) for v in f[11:14]]),
                "ry": float(f[14]),
            }
        )
    return objs


def _box_corners_cam(obj):
    """The 8 corners of a KITTI label box in rectified camera-0 coordinates (devkit)."""
    h, w, length = obj["hwl"]
    x = length / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])  # bottom centre; y points down
    z = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    c, s = np.cos(obj["ry"]), np.sin(obj["ry"])
    rot_y = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (rot_y @ np.stack([x, y, z])).T + obj["xyz"]


def _polygon_area(poly):
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def _rect(x1, y1, x2, y2):
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)


@pytest.mark.parametrize("frame", list(FRAMES))
def test_labelled_cars_project_onto_their_2d_boxes(kitti_dir, frame):
    rig = load_kitti_calib(kitti_dir / "training" / "calib" / f"{frame}.txt")
    cars = [
        o
        for o in _label_objects(kitti_dir / "training" / "label_2" / f"{frame}.txt")
        if o["type"] == "Car" and o["occluded"] == 0 and o["truncated"] == 0
    ]
    assert cars, "the sample has unoccluded, untruncated cars"
    image = _rect(0, 0, W, H)
    for car in cars:
        # label boxes live in rectified camera-0 coordinates: the rig's "cam0"
        uv, depth, _ = rig.project(_box_corners_cam(car), "cam0", "cam2")
        assert np.all(depth > 0)
        hull = cv2.convexHull(uv.astype(np.float32)).reshape(-1, 2)
        area, clipped = cv2.intersectConvexConvex(hull, image)
        assert area > 0
        box = _rect(*car["bbox"])
        inter, _ = cv2.intersectConvexConvex(clipped.reshape(-1, 2), box)
        union = area + _polygon_area(box) - inter
        iou = inter / union
        assert iou > 0.7, (frame, car, iou)
        # and the axis-aligned extent of the hull agrees to a few pixels
        lo, hi = clipped.reshape(-1, 2).min(0), clipped.reshape(-1, 2).max(0)
        np.testing.assert_allclose(np.r_[lo, hi], car["bbox"], atol=6.0)


def test_box_centres_match_mmdet3d_center_2d(kitti_dir):
    info = json.loads((kitti_dir / "mmdet3d_info_000008.json").read_text())["data"]
    rig = load_kitti_calib(kitti_dir / "training" / "calib" / "000008.txt")
    for inst in info["instances"]:
        if inst["bbox_label"] < 0:
            continue
        x, y, z, _, h, _, _ = inst["bbox_3d"]  # camera frame, bottom centre, (l, h, w)
        centre = np.array([[x, y - h / 2, z]])  # gravity centre
        uv, depth, _ = rig.project(centre, "cam0", "cam2")
        np.testing.assert_allclose(uv[0], inst["center_2d"], atol=2e-3)
        assert depth[0] == pytest.approx(inst["depth"], abs=1e-5)


def test_rig_structure_and_frames(kitti_dir, tmp_path):
    calib = kitti_dir / "training" / "calib" / "000001.txt"
    rig = load_kitti_calib(calib)
    raw, *_ = _devkit_calib(calib)
    assert rig.frame == "ego"
    assert list(rig.sensors) == ["lidar", "imu", "cam0", "cam1", "cam2", "cam3"]
    assert [rig.sensor(n).kind for n in rig.sensors] == ["lidar", "imu"] + ["camera"] * 4
    # ego is on the road (ISO 8855, declared) 1.73 m below the velodyne, axes unchanged
    assert rig.ego_height_m == 0.0 and rig.road_level is True
    np.testing.assert_allclose(rig.transform("lidar", "ego").matrix[:3, 3], [0, 0, 1.73])
    np.testing.assert_allclose(rig.transform("lidar", "ego").rotation, np.eye(3), atol=0)
    velodyne = load_kitti_calib(calib, lidar_height_m=None)  # the old frame, declared as such
    assert velodyne.ego_height_m == 1.73 and velodyne.road_level is False
    assert velodyne.transform("lidar", "ego").allclose(rig.transform("ego", "ego"), atol=0)
    assert velodyne.transform("lidar", "cam2").allclose(rig.transform("lidar", "cam2"))
    imu = np.eye(4)
    imu[:3] = raw["Tr_imu_to_velo"].reshape(3, 4)
    np.testing.assert_allclose(rig.transform("imu", "lidar").matrix, imu, atol=1e-6)
    # camera origins in the velodyne frame: ~0.27 m ahead, ~8 cm below; cam1 0.54 m right of
    # cam0, cam2 6 cm left of cam0, cam3 0.47 m right (KITTI setup drawing)
    pos = {n: rig.transform(n, "lidar").translation for n in ("cam0", "cam1", "cam2", "cam3")}
    assert pos["cam0"][0] == pytest.approx(0.27, abs=0.01)
    assert pos["cam0"][2] == pytest.approx(-0.08, abs=0.01)
    assert pos["cam1"][1] - pos["cam0"][1] == pytest.approx(-0.537, abs=0.005)
    assert pos["cam2"][1] - pos["cam0"][1] == pytest.approx(0.06, abs=0.005)
    assert pos["cam3"][1] - pos["cam0"][1] == pytest.approx(-0.47, abs=0.01)
    # every camera looks forward: optical axis ≈ ego +x, image right ≈ ego -y, down ≈ -z
    for n in pos:
        r = rig.sensor(n).extrinsics.rotation
        np.testing.assert_allclose(r, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=0.02)
    cam = rig.camera("cam2")
    assert (cam.model, cam.width, cam.height) == ("pinhole", W, H)
    assert cam.fx == 721.5377 and cam.cx == 609.5593

    # save -> load round trip keeps the geometry
    rig.save(tmp_path / "kitti.yaml")
    again = Rig.load(tmp_path / "kitti.yaml")
    assert again.to_dict() == rig.to_dict()
    for a, b in [("lidar", "cam2"), ("imu", "cam3"), ("cam0", "cam1")]:
        assert again.transform(a, b).allclose(rig.transform(a, b), atol=1e-12)


def test_image_size_and_errors(kitti_dir, tmp_path):
    calib = kitti_dir / "training" / "calib" / "000001.txt"
    assert load_kitti_calib(calib, image_size=(1241, 376)).camera("cam2").size == (1241, 376)
    # tracking-benchmark spelling: no colon after R_rect / Tr_velo_cam / Tr_imu_velo
    text = calib.read_text()
    text = text.replace("R0_rect:", "R_rect").replace("Tr_velo_to_cam:", "Tr_velo_cam")
    text = text.replace("Tr_imu_to_velo:", "Tr_imu_velo")
    (tmp_path / "tracking.txt").write_text(text)
    a = load_kitti_calib(tmp_path / "tracking.txt")
    assert a.transform("lidar", "cam2").allclose(load_kitti_calib(calib).transform("lidar", "cam2"))

    (tmp_path / "short.txt").write_text(text.replace("P3:", "X3:"))
    with pytest.raises(CalibrationError, match="lacks P3"):
        load_kitti_calib(tmp_path / "short.txt")
    (tmp_path / "bad.txt").write_text(calib.read_text().replace("P2: 7.2", "P2: oops 7.2"))
    with pytest.raises(CalibrationError, match="line 3: values are not numbers") as e:
        load_kitti_calib(tmp_path / "bad.txt")
    assert e.value.context["field"] == "P2"
    (tmp_path / "n.txt").write_text(
        calib.read_text().replace("R0_rect: 9.999239000000e-01 ", "R0_rect: ")
    )
    with pytest.raises(CalibrationError, match="R0_rect needs 9 values, got 8"):
        load_kitti_calib(tmp_path / "n.txt")
    with pytest.raises(CalibrationError, match="cannot read KITTI calib file"):
        load_kitti_calib(tmp_path / "missing.txt")


@pytest.mark.parametrize("frame", list(FRAMES))
def test_example_rig_file_is_the_importer_output(kitti_dir, frame):
    from .conftest import REAL

    rig = Rig.load(REAL.parents[2] / "examples" / "rigs" / "kitti_2011_09_26.yaml")
    # both frames were recorded on 2011_09_26 and share this calibration
    assert (
        rig.to_dict()
        == load_kitti_calib(kitti_dir / "training" / "calib" / f"{frame}.txt").to_dict()
    )
