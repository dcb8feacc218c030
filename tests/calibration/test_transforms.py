"""Transforms: rotation conversions, SE(3) algebra, slerp and pose interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fusionrt.calibration.transforms import (
    Transform,
    interpolate_poses,
    matrix_to_quat,
    matrix_to_rpy,
    quat_to_matrix,
    rpy_to_matrix,
    slerp,
)

finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)
quats = arrays(np.float64, 4, elements=finite).filter(lambda q: np.linalg.norm(q) > 1e-3)
translations = arrays(np.float64, 3, elements=st.floats(-100.0, 100.0))


def _canonical(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q)
    return -q if q[0] < 0 else q


def _assert_rotation(r: np.ndarray) -> None:
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(quats)
def test_quaternion_matrix_round_trip(q):
    r = quat_to_matrix(q)
    _assert_rotation(r)
    back = matrix_to_quat(r)
    assert back[0] >= 0.0
    expected = _canonical(q)
    if abs(expected[0]) < 1e-9:  # w = 0: q and -q both have w >= 0
        assert min(np.abs(back - expected).max(), np.abs(back + expected).max()) < 1e-9
    else:
        np.testing.assert_allclose(back, expected, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(quats)
def test_matrix_rpy_round_trip(q):
    r = quat_to_matrix(q)
    rpy = matrix_to_rpy(r)
    assert -np.pi / 2 - 1e-12 <= rpy[1] <= np.pi / 2 + 1e-12
    np.testing.assert_allclose(rpy_to_matrix(rpy), r, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-np.pi + 1e-6, np.pi),
    st.floats(-np.pi / 2 + 1e-3, np.pi / 2 - 1e-3),
    st.floats(-np.pi + 1e-6, np.pi),
)
def test_rpy_matrix_rpy_round_trip(roll, pitch, yaw):
    rpy = np.array([roll, pitch, yaw])
    np.testing.assert_allclose(matrix_to_rpy(rpy_to_matrix(rpy)), rpy, atol=1e-7)


@pytest.mark.parametrize("pitch", [np.pi / 2, -np.pi / 2])
def test_rpy_gimbal_lock_still_round_trips(pitch):
    r = rpy_to_matrix([0.3, pitch, -1.1])
    np.testing.assert_allclose(rpy_to_matrix(matrix_to_rpy(r)), r, atol=1e-12)


def test_rpy_convention_is_z_y_x():
    # yaw +90°: x axis goes to y (left); pitch +90°: x goes to -z; roll +90°: y goes to z.
    np.testing.assert_allclose(rpy_to_matrix([0, 0, np.pi / 2]) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(rpy_to_matrix([0, np.pi / 2, 0]) @ [1, 0, 0], [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(rpy_to_matrix([np.pi / 2, 0, 0]) @ [0, 1, 0], [0, 0, 1], atol=1e-15)
    r, p, y = 0.1, -0.2, 0.3
    rx = rpy_to_matrix([r, 0, 0])
    ry = rpy_to_matrix([0, p, 0])
    rz = rpy_to_matrix([0, 0, y])
    np.testing.assert_allclose(rpy_to_matrix([r, p, y]), rz @ ry @ rx, atol=1e-15)


def test_quaternion_is_hamilton_wxyz():
    # 90° about z: (w, x, y, z) = (cos 45°, 0, 0, sin 45°) maps x to y.
    q = [np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)]
    np.testing.assert_allclose(quat_to_matrix(q) @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    # Hamilton product composes like matrices: q(a) * q(b) <-> R(a) @ R(b).
    a, b = np.array([0.9, 0.1, -0.3, 0.2]), np.array([0.5, -0.5, 0.4, 0.1])
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    ab = [
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ]
    np.testing.assert_allclose(
        quat_to_matrix(ab), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-15
    )


def test_conversions_are_vectorised():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 7, 4))
    r = quat_to_matrix(q)
    assert r.shape == (5, 7, 3, 3)
    assert matrix_to_quat(r).shape == (5, 7, 4)
    assert matrix_to_rpy(r).shape == (5, 7, 3)
    np.testing.assert_allclose(rpy_to_matrix(matrix_to_rpy(r)), r, atol=1e-9)
    np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(r)), r, atol=1e-12)


def test_half_turns_convert_accurately():
    for axis in np.eye(3):
        r = 2.0 * np.outer(axis, axis) - np.eye(3)  # 180° about the axis
        q = matrix_to_quat(r)
        np.testing.assert_allclose(quat_to_matrix(q), r, atol=1e-15)


def test_zero_quaternion_rejected():
    with pytest.raises(ValueError, match="zero"):
        quat_to_matrix([0, 0, 0, 0])


@settings(max_examples=200, deadline=None)
@given(quats, translations, quats, translations)
def test_transform_algebra(qa, ta, qb, tb):
    a = Transform.from_quaternion(qa, ta)
    b = Transform.from_quaternion(qb, tb)
    np.testing.assert_allclose((a @ a.inverse()).matrix, np.eye(4), atol=1e-9)
    np.testing.assert_allclose((a.inverse() @ a).matrix, np.eye(4), atol=1e-9)
    pts = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 10.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose((a @ b).apply(pts), a.apply(b.apply(pts)), atol=1e-9)
    np.testing.assert_allclose((a @ b).matrix, a.matrix @ b.matrix, atol=1e-9)
    homo = np.c_[pts, np.ones(3)] @ a.matrix.T
    np.testing.assert_allclose(a.apply(pts), homo[:, :3], atol=1e-9)
    np.testing.assert_allclose(Transform.from_matrix(a.matrix).matrix, a.matrix, atol=0)


def test_transform_basics():
    t = Transform.from_rpy([0, 0, np.pi / 2], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(t.apply([1.0, 0.0, 0.0]), [1.0, 3.0, 3.0], atol=1e-15)
    np.testing.assert_allclose(t.rotate([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-15)
    assert t.apply(np.zeros((0, 3))).shape == (0, 3)
    assert t.apply(np.ones((2, 5, 3), np.float32)).dtype == np.float64
    np.testing.assert_allclose(Transform.identity().matrix, np.eye(4))
    np.testing.assert_allclose(np.degrees(t.rpy), [0, 0, 90], atol=1e-12)
    np.testing.assert_allclose(t.quaternion, [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-15)
    assert "Transform(" in repr(t)
    assert Transform.from_matrix(t.matrix[:3]).allclose(t)


def test_transform_is_immutable():
    t = Transform.identity()
    with pytest.raises(AttributeError):
        t.translation = np.ones(3)
    with pytest.raises(ValueError):
        t.translation[0] = 5.0
    with pytest.raises(ValueError):
        t.matrix[0, 0] = 5.0


def test_transform_rejects_bad_shapes():
    with pytest.raises(ValueError):
        Transform(np.eye(2))
    with pytest.raises(ValueError):
        Transform(np.eye(3), [1, 2])
    with pytest.raises(ValueError, match="last row"):
        Transform.from_matrix(np.ones((4, 4)))
    with pytest.raises(ValueError):
        Transform.identity().apply(np.ones((4, 2)))


def test_transform_pickles():
    import pickle

    t = Transform.from_rpy([0.1, 0.2, 0.3], [4, 5, 6])
    assert pickle.loads(pickle.dumps(t)).allclose(t, atol=0)


# -- slerp / interpolation -----------------------------------------------------------------


def test_slerp_endpoints_midpoint_and_shortest_path():
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    q1 = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # 90° about z
    out = slerp(q0, q1, np.array([0.0, 0.5, 1.0]))
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out[0], q0, atol=1e-15)
    np.testing.assert_allclose(out[2], q1, atol=1e-15)
    np.testing.assert_allclose(out[1], [np.cos(np.pi / 8), 0, 0, np.sin(np.pi / 8)], atol=1e-15)
    # -q1 is the same rotation: the path must not go the long way round.
    np.testing.assert_allclose(slerp(q0, -q1, [0.5])[0], out[1], atol=1e-15)
    # Constant angular rate.
    angles = [2 * np.arccos(q[0]) for q in slerp(q0, q1, np.linspace(0, 1, 5))]
    np.testing.assert_allclose(angles, np.linspace(0, np.pi / 2, 5), atol=1e-12)
    # Identical quaternions: no division by zero.
    np.testing.assert_allclose(slerp(q1, q1, [0.3]), [q1], atol=1e-15)


@settings(max_examples=100, deadline=None)
@given(quats, quats, st.floats(0.0, 1.0))
def test_slerp_matches_geodesic(qa, qb, t):
    ra, rb = quat_to_matrix(qa), quat_to_matrix(qb)
    rt = quat_to_matrix(slerp(qa, qb, [t])[0])
    # The relative rotation from ra to rt is a fraction t of the one from ra to rb.
    total = np.arccos(np.clip((np.trace(ra.T @ rb) - 1) / 2, -1, 1))
    part = np.arccos(np.clip((np.trace(ra.T @ rt) - 1) / 2, -1, 1))
    assert part == pytest.approx(t * total, abs=1e-6)


def _pose(yaw: float, xyz) -> np.ndarray:
    return Transform.from_rpy([0, 0, yaw], xyz).matrix


def test_interpolate_poses_endpoints_midpoints_and_clamping():
    base = 1_532_402_927_647_951_000  # large absolute stamps must not lose precision
    stamps = np.array([base, base + 100_000_000, base + 300_000_000], np.int64)
    poses = np.stack(
        [_pose(0.0, [0, 0, 0]), _pose(np.pi / 2, [10, 0, 0]), _pose(np.pi / 2, [10, 20, 2])]
    )
    query = np.array(
        [
            base - 5,
            base,
            base + 50_000_000,
            base + 100_000_000,
            base + 200_000_000,
            base + 300_000_000,
            base + 10**12,
        ],
        np.int64,
    )
    out = interpolate_poses(stamps, poses, query)
    assert out.shape == (7, 4, 4)
    np.testing.assert_array_equal(out[0], poses[0])  # clamped before the start
    np.testing.assert_array_equal(out[1], poses[0])  # exact at a stamp
    np.testing.assert_allclose(out[2], _pose(np.pi / 4, [5, 0, 0]), atol=1e-12)
    np.testing.assert_array_equal(out[3], poses[1])
    np.testing.assert_allclose(out[4], _pose(np.pi / 2, [10, 10, 1]), atol=1e-12)
    np.testing.assert_array_equal(out[5], poses[2])
    np.testing.assert_array_equal(out[6], poses[2])  # clamped after the end
    one_ns = interpolate_poses(stamps, poses, np.array([base + 1], np.int64))[0]
    assert one_ns[0, 3] == pytest.approx(1e-7, rel=1e-6)


def test_interpolate_poses_single_pose_and_errors():
    pose = _pose(0.3, [1, 2, 3])
    out = interpolate_poses(np.array([5], np.int64), pose[None], np.array([0, 5, 9], np.int64))
    np.testing.assert_array_equal(out, np.repeat(pose[None], 3, axis=0))
    with pytest.raises(ValueError, match="sorted"):
        interpolate_poses(np.array([2, 1], np.int64), np.stack([pose, pose]), np.array([1]))
    with pytest.raises(ValueError, match="match"):
        interpolate_poses(np.array([1, 2], np.int64), pose[None], np.array([1]))
    with pytest.raises(ValueError, match="integer"):
        interpolate_poses(np.array([1.0, 2.0]), np.stack([pose, pose]), np.array([1]))


def test_interpolate_poses_duplicate_stamps():
    stamps = np.array([0, 10, 10, 20], np.int64)
    poses = np.stack(
        [_pose(0, [0, 0, 0]), _pose(0, [1, 0, 0]), _pose(0, [2, 0, 0]), _pose(0, [3, 0, 0])]
    )
    out = interpolate_poses(stamps, poses, np.array([5, 10, 15], np.int64))
    assert np.all(np.isfinite(out))
    assert out[0, 0, 3] == pytest.approx(0.5)
    assert out[2, 0, 3] == pytest.approx(2.5)
