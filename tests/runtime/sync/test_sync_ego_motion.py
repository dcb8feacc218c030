"""Ego-motion compensation on synthetic rotating sweeps where the exact answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.calibration.transforms import interpolate_poses, quat_to_matrix
from fusionrt.runtime.sync import compensate_points, poses_from_speed_yaw_rate

MS = 1_000_000


def pose(yaw: float, x: float, y: float, z: float = 0.0) -> np.ndarray:
    m = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    m[:2, :2] = [[c, -s], [s, c]]
    m[:3, 3] = [x, y, z]
    return m


def sweep(world: np.ndarray, stamps_ns: np.ndarray, pose_at) -> np.ndarray:
    """Each world point as the sensor measures it: in the ego frame at its own stamp."""
    out = np.empty_like(world)
    for i, (p, t) in enumerate(zip(world, stamps_ns, strict=True)):
        m = pose_at(int(t))
        out[i] = m[:3, :3].T @ (p - m[:3, 3])
    return out


def rotating_sweep_stamps(
    count: int, start_ns: int, period_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """A spinning lidar: azimuth grows linearly with time over one revolution."""
    fraction = np.arange(count) / count
    azimuth = 2 * np.pi * fraction
    stamps = start_ns + np.round(fraction * period_ns).astype(np.int64)
    return azimuth, stamps


def test_rotating_sweep_on_a_moving_ego_is_exact() -> None:
    # Ego translating at constant velocity and yawing at a constant rate: slerp + linear
    # translation between pose samples is then exact, so compensation must be too.
    v = np.array([12.0, 1.5, 0.1])  # m/s
    yaw_rate = 0.6  # rad/s

    def pose_at(t_ns: int) -> np.ndarray:
        t = t_ns * 1e-9
        return pose(yaw_rate * t, *(v * t))

    rng = np.random.default_rng(0)
    azimuth, stamps = rotating_sweep_stamps(2000, 1_000 * MS, 100 * MS)
    rng_dist = rng.uniform(2, 60, azimuth.size)
    world_at_start = np.stack(
        [rng_dist * np.cos(azimuth), rng_dist * np.sin(azimuth), rng.uniform(-2, 3, azimuth.size)],
        axis=1,
    )
    world = (pose_at(1_000 * MS)[:3, :3] @ world_at_start.T).T + pose_at(1_000 * MS)[:3, 3]
    measured = sweep(world, stamps, pose_at)

    pose_stamps = np.arange(900 * MS, 1_200 * MS + 1, 10 * MS, dtype=np.int64)
    poses = np.stack([pose_at(int(t)) for t in pose_stamps])
    reference = 1_050 * MS
    out = compensate_points(measured, stamps, reference, pose_stamps, poses)

    ref = pose_at(reference)
    expected = (ref[:3, :3].T @ (world - ref[:3, 3]).T).T
    np.testing.assert_allclose(out, expected, atol=1e-9)
    # without compensation the error is metres (60 m range × 0.06 rad of yaw)
    assert np.abs(measured - expected).max() > 1.0


def test_arc_motion_from_can_speed_and_yaw_rate() -> None:
    # Constant-turn motion integrated from CAN at 100 Hz; interpolating between poses 10 ms
    # apart replaces the arc by its chord: error <= v·dt·(ω·dt)/8 ≈ 0.1 mm here.
    speed, yaw_rate = 15.0, 0.5
    can_stamps = np.arange(0, 400 * MS + 1, 10 * MS, dtype=np.int64)
    poses = poses_from_speed_yaw_rate(can_stamps, speed, yaw_rate)

    def pose_at(t_ns: int) -> np.ndarray:
        t = t_ns * 1e-9
        yaw = yaw_rate * t
        return pose(yaw, speed / yaw_rate * np.sin(yaw), speed / yaw_rate * (1 - np.cos(yaw)))

    azimuth, stamps = rotating_sweep_stamps(720, 150 * MS, 100 * MS)
    world = np.stack([30 * np.cos(azimuth), 30 * np.sin(azimuth), np.ones_like(azimuth)], axis=1)
    measured = sweep(world, stamps, pose_at)
    reference = 200 * MS
    out = compensate_points(measured, stamps, reference, can_stamps, poses)
    ref = pose_at(reference)
    expected = (ref[:3, :3].T @ (world - ref[:3, 3]).T).T
    assert np.abs(out - expected).max() < 2e-4


def test_poses_from_constant_speed_and_yaw_rate_match_the_closed_form() -> None:
    speed, yaw_rate = 8.0, -0.3
    stamps = np.array([0, 7 * MS, 100 * MS, 2_000 * MS, 2_001 * MS, 5_000 * MS], dtype=np.int64)
    poses = poses_from_speed_yaw_rate(stamps, np.full(6, speed), np.full(6, yaw_rate))
    for t_ns, m in zip(stamps, poses, strict=True):
        t = t_ns * 1e-9
        yaw = yaw_rate * t
        want = pose(yaw, speed / yaw_rate * np.sin(yaw), speed / yaw_rate * (1 - np.cos(yaw)))
        np.testing.assert_allclose(m, want, atol=1e-9)


def test_poses_straight_line_and_initial_pose() -> None:
    stamps = np.array([0, 500 * MS, 1_000 * MS], dtype=np.int64)
    poses = poses_from_speed_yaw_rate(stamps, [0.0, 2.0, 4.0], 0.0)  # constant acceleration
    np.testing.assert_allclose(poses[:, 0, 3], [0.0, 0.5, 2.0])  # trapezoid = exact here
    start = pose(np.pi / 2, 10.0, 0.0)
    moved = poses_from_speed_yaw_rate(stamps, 2.0, 0.0, initial_pose=start)
    np.testing.assert_allclose(moved[-1][:3, 3], [10.0, 2.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError):
        poses_from_speed_yaw_rate(stamps[::-1], 1.0, 0.0)


def test_compensation_keeps_dtype_and_extra_columns() -> None:
    points = np.array([[1.0, 2.0, 3.0, 0.5], [4.0, 5.0, 6.0, 0.7]], dtype=np.float32)
    stamps = np.array([0, 100], dtype=np.int64)
    poses = np.stack([np.eye(4), np.eye(4)])
    out = compensate_points(points, stamps, 50, np.array([0, 100]), poses)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    np.testing.assert_array_equal(out, points)
    assert out is not points
    empty = compensate_points(np.zeros((0, 3)), np.zeros(0, np.int64), 0, [0], np.eye(4)[None])
    assert empty.shape == (0, 3)


def test_compensation_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        compensate_points(np.zeros((3, 2)), np.zeros(3, np.int64), 0, [0], np.eye(4)[None])
    with pytest.raises(ValueError):
        compensate_points(np.zeros((3, 3)), np.zeros(2, np.int64), 0, [0], np.eye(4)[None])
    with pytest.raises(ValueError):
        compensate_points(np.zeros((3, 3)), np.zeros(3), 0, [0], np.eye(4)[None])


# -- the fast implementation against the plain one --------------------------------------------


def _reference_compensation(
    points: np.ndarray,
    stamps: np.ndarray,
    reference: int,
    pose_stamps: np.ndarray,
    poses: np.ndarray,
    *,
    resolution_ns: int,
    sensor_to_ego: np.ndarray | None,
) -> np.ndarray:
    """The implementation before the speed-up: rounding, ``np.unique``, one 3×3 per point."""
    xyz = points[:, :3].astype(np.float64)
    if sensor_to_ego is not None:
        xyz = xyz @ sensor_to_ego[:3, :3].T + sensor_to_ego[:3, 3]
    stamps = (stamps + resolution_ns // 2) // resolution_ns * resolution_ns
    unique, inverse = np.unique(stamps, return_inverse=True)
    at_points = interpolate_poses(pose_stamps, poses, unique)
    at_reference = interpolate_poses(pose_stamps, poses, np.array([reference]))[0]
    r_ref_t = at_reference[:3, :3].T
    rotations = r_ref_t @ at_points[:, :3, :3]
    translations = (at_points[:, :3, 3] - at_reference[:3, 3]) @ r_ref_t.T
    inverse = inverse.reshape(-1)
    out = points.astype(np.float64)
    out[:, :3] = np.einsum("nij,nj->ni", rotations[inverse], xyz) + translations[inverse]
    return out


def _random_pose(rng: np.random.Generator, scale: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(rng.normal(size=4))
    m[:3, 3] = rng.normal(size=3) * scale
    return m


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 5000),
    sweep_ns=st.sampled_from([1, 1_000, 100 * MS, 10**12]),
    resolution_ns=st.sampled_from([1, 7, 1 * MS, 3 * MS]),
    columns=st.integers(3, 5),
    dtype=st.sampled_from([np.float32, np.float64]),
    mounted=st.booleans(),
    poses_count=st.integers(1, 40),
)
def test_compensation_matches_the_plain_per_point_implementation(
    *,
    seed: int,
    count: int,
    sweep_ns: int,
    resolution_ns: int,
    columns: int,
    dtype: type,
    mounted: bool,
    poses_count: int,
) -> None:
    # Random sweeps, random pose tracks (arbitrary rotations) and mounts; narrow and wide
    # stamp spans (a bin per step, or per distinct stamp); the result must be the plain
    # computation's to float tolerance, in the input's dtype, extra columns untouched.
    rng = np.random.default_rng(seed)
    start = int(rng.integers(0, 2 * 10**18))
    stamps = start + rng.integers(0, sweep_ns, count, endpoint=True)
    points = (rng.normal(size=(count, columns)) * 40).astype(dtype)
    # 1 to 40 poses, before, in and after the sweep (duplicate stamps too, at 1 ns sweeps)
    pose_stamps = np.sort(start + rng.integers(-sweep_ns, 2 * sweep_ns, poses_count))
    poses = np.stack([_random_pose(rng, 30.0) for _ in pose_stamps])
    reference = int(start + rng.integers(0, sweep_ns, endpoint=True))
    mount = _random_pose(rng, 2.0) if mounted else None

    out = compensate_points(
        points,
        stamps,
        reference,
        pose_stamps,
        poses,
        time_resolution_ns=resolution_ns,
        sensor_to_ego=mount,
    )
    want = _reference_compensation(
        points,
        stamps,
        reference,
        pose_stamps,
        poses,
        resolution_ns=resolution_ns,
        sensor_to_ego=mount,
    )
    assert out.dtype == dtype and out.shape == points.shape
    # float64: the same sums in another order; float32: the float64 result rounded once
    scale = 1.0 + np.abs(want).max()
    tolerance = 1e-12 * scale if dtype == np.float64 else np.finfo(np.float32).eps * scale
    np.testing.assert_allclose(out, want, rtol=0, atol=tolerance)
    np.testing.assert_array_equal(out[:, 3:], points[:, 3:])


def test_compensation_rejects_a_bad_resolution_or_mount() -> None:
    points, stamps = np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(ValueError, match="time_resolution_ns"):
        compensate_points(points, stamps, 0, [0], np.eye(4)[None], time_resolution_ns=0)
    with pytest.raises(ValueError, match="sensor_to_ego"):
        compensate_points(points, stamps, 0, [0], np.eye(4)[None], sensor_to_ego=np.eye(3))
