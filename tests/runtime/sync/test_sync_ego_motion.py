"""Ego-motion compensation on synthetic rotating sweeps where the exact answer is known."""

from __future__ import annotations

import numpy as np
import pytest

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
