"""Camera models: projection equals OpenCV's, undistortion maps are cached and correct."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fusionrt.calibration import CameraModel, Rig

K = np.array([[800.0, 0.0, 640.3], [0.0, 805.0, 360.7], [0.0, 0.0, 1.0]])
PLUMB_BOB = CameraModel(K, [-0.28, 0.09, 0.0012, -0.0007, -0.012], "plumb_bob", 1280, 720)
RATIONAL = CameraModel(
    K, [0.4, -0.05, 0.0008, 0.0004, 0.002, 0.75, 0.01, 0.003], "plumb_bob", 1280, 720
)
FISHEYE = CameraModel(
    np.array([[800.0, 0.0, 960.5], [0.0, 801.0, 540.2], [0.0, 0.0, 1.0]]),
    [0.021, -0.007, 0.0011, -0.0002],
    "fisheye",
    1920,
    1080,
)
PINHOLE = CameraModel(K, [], "pinhole", 1280, 720)


def _points_in_view(cam: CameraModel, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Random camera-frame points whose rays lie inside (roughly) the image."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform([0, 0], [cam.width, cam.height], size=(n, 2))
    rays = cam.undistort_points(uv)
    z = rng.uniform(0.5, 80.0, size=n)
    return np.c_[rays * z[:, None], z]


@pytest.mark.parametrize(
    "cam", [PLUMB_BOB, RATIONAL, PINHOLE], ids=["plumb_bob", "rational", "pinhole"]
)
def test_projection_equals_cv2_projectPoints(cam):
    pts = _points_in_view(cam)
    uv, depth, valid = cam.project(pts)
    dist = cam.distortion if cam.distortion.size else None
    ref, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), cam.K, dist)
    np.testing.assert_allclose(uv, ref.reshape(-1, 2), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(depth, pts[:, 2])
    assert valid.mean() > 0.95  # round-trip of border pixels may land just outside


def test_fisheye_projection_equals_cv2_fisheye_projectPoints():
    cam = FISHEYE
    pts = _points_in_view(cam)
    uv, _, valid = cam.project(pts)
    ref, _ = cv2.fisheye.projectPoints(
        pts.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), cam.K, cam.distortion
    )
    np.testing.assert_allclose(uv, ref.reshape(-1, 2), rtol=0, atol=1e-6)
    assert valid.mean() > 0.95
    # wide angles (up to ~85° off axis) too
    rng = np.random.default_rng(1)
    ang = rng.uniform(0, np.radians(85), 500)
    az = rng.uniform(-np.pi, np.pi, 500)
    wide = np.c_[np.sin(ang) * np.cos(az), np.sin(ang) * np.sin(az), np.cos(ang)] * 7.0
    ref, _ = cv2.fisheye.projectPoints(
        wide.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), cam.K, cam.distortion
    )
    np.testing.assert_allclose(cam.project(wide)[0], ref.reshape(-1, 2), rtol=0, atol=1e-6)


def test_validity_mask():
    cam = PLUMB_BOB
    pts = np.array(
        [
            [0.0, 0.0, 10.0],  # on axis: valid
            [0.0, 0.0, -10.0],  # behind
            [0.0, 0.0, 0.0],  # at the centre of projection
            [100.0, 0.0, 1.0],  # far outside the field of view (would fold back in)
            [np.nan, 0.0, 5.0],  # not finite
            [8.0, 0.0, 5.0],  # 58° right: outside the 1280 px image
        ]
    )
    uv, _, valid = cam.project(pts)
    assert valid.tolist() == [True, False, False, False, False, False]
    assert np.all(np.isfinite(uv))
    assert cam.project(np.zeros((0, 3)))[2].shape == (0,)
    with pytest.raises(ValueError):
        cam.project(np.zeros((3, 2)))


def test_fold_back_is_rejected():
    # strong barrel distortion: r_d(r) peaks then decreases; a point beyond the peak whose
    # distorted radius falls back into the image must not be valid.
    cam = CameraModel(K, [-0.45, 0.05, 0.0, 0.0, 0.0], "plumb_bob", 1280, 720)
    r = np.linspace(0.01, 1.99, 2000)  # r_d has a local maximum, then returns to 0 at r = 2
    rd = r * (1 - 0.45 * r**2 + 0.05 * r**4)
    beyond = r[(r > r[np.argmax(rd)]) & (np.abs(rd) < 0.3)][0]
    uv, _, valid = cam.project(np.array([[beyond, 0.0, 1.0]]))
    assert 0 <= uv[0, 0] < cam.width  # lands inside the image...
    assert not valid[0]  # ...but is rejected


@pytest.mark.parametrize(
    "cam",
    [PLUMB_BOB, RATIONAL, FISHEYE, PINHOLE],
    ids=["plumb_bob", "rational", "fisheye", "pinhole"],
)
def test_undistort_maps_are_cached_and_correct(cam):
    rig = Rig("ego", [])
    map_x, map_y = cam.undistort_maps()
    assert map_x.shape == (cam.height, cam.width) and map_x.dtype == np.float32
    again = cam.undistort_maps()
    assert again[0] is map_x and again[1] is map_y  # same objects: built once
    assert not map_x.flags.writeable
    new_k = cam.K.copy()
    new_k[:2, :2] *= 0.6  # zoom out so the output covers the whole distorted image
    other = cam.undistort_maps(new_K=new_k, size=(800, 450))
    assert other[0] is not map_x and other[0].shape == (450, 800)
    assert cam.undistort_maps(new_K=new_k, size=(800, 450))[0] is other[0]
    del rig

    # a point projected with distortion lands (through the map) where the pinhole
    # projection with new_K puts it
    pinhole = CameraModel(new_k, [], "pinhole", 800, 450)
    pts = _points_in_view(pinhole, n=400, seed=3)
    uv_d, _, ok_d = cam.project(pts)
    uv_p, _, ok_p = pinhole.project(pts)
    ok = ok_d & ok_p & (uv_p[:, 0] < 799) & (uv_p[:, 1] < 449)
    assert ok.sum() > 100
    mx = cv2.remap(
        other[0],
        np.float32(uv_p[ok, 0])[:, None],
        np.float32(uv_p[ok, 1])[:, None],
        cv2.INTER_LINEAR,
    )
    my = cv2.remap(
        other[1],
        np.float32(uv_p[ok, 0])[:, None],
        np.float32(uv_p[ok, 1])[:, None],
        cv2.INTER_LINEAR,
    )
    err = np.hypot(mx[:, 0] - uv_d[ok, 0], my[:, 0] - uv_d[ok, 1])
    assert err.max() < 1.0, err.max()


def test_rig_undistort_maps_delegate_and_cache():
    rig = Rig.from_dict(
        {
            "frame": "ego",
            "sensors": {
                "cam": {
                    "kind": "camera",
                    "model": "plumb_bob",
                    "width": 1280,
                    "height": 720,
                    "K": K.tolist(),
                    "distortion": PLUMB_BOB.distortion.tolist(),
                    "extrinsics": {
                        "translation": [0, 0, 0],
                        "rotation": {"rpy_deg": [-90, 0, -90]},
                    },
                }
            },
        }
    )
    a = rig.undistort_maps("cam")
    b = rig.undistort_maps("cam")
    assert a[0] is b[0] and a[1] is b[1]
    # undistorting an image: a straight line distorted by the lens comes out straight
    img = np.zeros((720, 1280), np.uint8)
    xs = np.linspace(50, 1230, 400)
    line = np.c_[xs, np.full_like(xs, 150.0)]  # a horizontal line in the pinhole image
    rays = np.c_[(line - [K[0, 2], K[1, 2]]) / [K[0, 0], K[1, 1]], np.ones(len(xs))]
    uv_d, _, ok = rig.project(rays, "cam", "cam")
    for u, v in uv_d[ok]:
        cv2.circle(img, (round(u), round(v)), 2, 255, -1)
    out = cv2.remap(img, a[0], a[1], cv2.INTER_LINEAR)
    rows = np.nonzero(out[:, 100:1180].max(axis=1) > 128)[0]
    assert rows.min() >= 146 and rows.max() <= 154, (rows.min(), rows.max())


def test_resized_camera_matches_cv2_resize():
    cam = PINHOLE
    small = cam.resized(640, 360)
    assert small.size == (640, 360)
    pts = _points_in_view(cam, n=50)
    uv, _, _ = cam.project(pts)
    uv_small, _, _ = small.project(pts)
    np.testing.assert_allclose(uv_small, (uv + 0.5) * 0.5 - 0.5, atol=1e-9)


def test_undistort_points_inverts_projection():
    for cam in (PLUMB_BOB, FISHEYE):
        pts = _points_in_view(cam, n=200, seed=5)
        uv, _, ok = cam.project(pts)
        rays = cam.undistort_points(uv[ok])
        np.testing.assert_allclose(rays, pts[ok, :2] / pts[ok, 2:], rtol=1e-6, atol=1e-9)


def test_camera_model_validation():
    with pytest.raises(ValueError, match="takes 4 distortion"):
        CameraModel(K, [0.1] * 5, "fisheye", 10, 10)
    with pytest.raises(ValueError, match="unknown camera model"):
        CameraModel(K, [], "orthographic", 10, 10)
    with pytest.raises(ValueError):
        PINHOLE.K[0, 0] = 1.0
