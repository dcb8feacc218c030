"""Ego-motion compensation of sweeps, and ego poses from CAN speed and yaw rate.

Conventions (those of :mod:`fusionrt.calibration.transforms`): a pose is a 4×4 rigid transform
**ego -> world** (``p_world = R @ p_ego + t``); the ego frame is x forward, y left, z up;
stamps are ``int64`` nanoseconds on the common clock; metres, radians, seconds.

A lidar sweep takes ~100 ms: each point is measured in the ego frame *at its own time*. To fuse
it with a camera image taken at the frame's reference stamp, :func:`compensate_points` moves
every point into the ego frame at that stamp:
``p_ref = pose(t_ref)^-1 @ pose(t_point) @ p``, with the poses interpolated (slerp + linear) by
:func:`fusionrt.calibration.transforms.interpolate_poses` (clamped outside the pose track).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fusionrt.calibration.transforms import interpolate_poses

__all__ = ["compensate_points", "poses_from_speed_yaw_rate"]


def _int_stamps(values: ArrayLike, what: str) -> np.ndarray:
    stamps = np.asarray(values)
    if stamps.size and not np.issubdtype(stamps.dtype, np.integer):
        raise ValueError(f"{what} must be integer nanoseconds, got dtype {stamps.dtype}")
    return stamps.astype(np.int64, copy=False)


def compensate_points(
    points: ArrayLike,
    point_stamps_ns: ArrayLike,
    reference_stamp_ns: int,
    pose_stamps_ns: ArrayLike,
    poses: ArrayLike,
) -> np.ndarray:
    """Move each point from the ego frame at its own stamp into the ego frame at the reference.

    ``points`` is N×3 (or N×D, D > 3: the first three columns are the coordinates, the others
    are carried over unchanged); ``point_stamps_ns`` ``(N,)`` int64; ``pose_stamps_ns`` ``(K,)``
    sorted int64 and ``poses`` ``(K, 4, 4)`` ego -> world. Returns the compensated points with
    the input's float dtype (computed in float64). Vectorised over the points; poses are
    interpolated once per distinct point stamp.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must be N×3 (or N×D, D >= 3), got shape {pts.shape}")
    stamps = _int_stamps(point_stamps_ns, "point_stamps_ns")
    if stamps.shape != (pts.shape[0],):
        raise ValueError(
            f"point_stamps_ns has shape {stamps.shape}, expected ({pts.shape[0]},) for the points"
        )
    out_dtype = pts.dtype if np.issubdtype(pts.dtype, np.floating) else np.dtype(np.float64)
    if pts.shape[0] == 0:
        return pts.astype(out_dtype, copy=True)
    pose_stamps = _int_stamps(pose_stamps_ns, "pose_stamps_ns")
    track = np.asarray(poses, dtype=np.float64)

    unique, inverse = np.unique(stamps, return_inverse=True)
    at_points = interpolate_poses(pose_stamps, track, unique)  # (U, 4, 4) ego(t_i) -> world
    at_reference = interpolate_poses(
        pose_stamps, track, np.asarray([int(reference_stamp_ns)], dtype=np.int64)
    )[0]
    r_ref_t = at_reference[:3, :3].T
    # ego(t_i) -> ego(t_ref) = pose(t_ref)^-1 @ pose(t_i)
    rotations = r_ref_t @ at_points[:, :3, :3]  # (U, 3, 3)
    translations = (at_points[:, :3, 3] - at_reference[:3, 3]) @ r_ref_t.T  # (U, 3)

    xyz = pts[:, :3].astype(np.float64, copy=False)
    if unique.size == 1:
        moved = xyz @ rotations[0].T + translations[0]
    else:
        inverse = inverse.reshape(-1)
        moved = np.einsum("nij,nj->ni", rotations[inverse], xyz) + translations[inverse]
    out = pts.astype(out_dtype, copy=True)
    out[:, :3] = moved
    return out


def poses_from_speed_yaw_rate(
    stamps_ns: ArrayLike,
    speed_mps: ArrayLike,
    yaw_rate_rps: ArrayLike,
    initial_pose: ArrayLike | None = None,
) -> np.ndarray:
    """Integrate a planar trajectory from speed and yaw rate into ``(K, 4, 4)`` ego -> world poses.

    ``stamps_ns`` ``(K,)`` sorted int64; ``speed_mps`` and ``yaw_rate_rps`` ``(K,)`` (or
    scalars) are the CAN values at those stamps. Between two stamps the vehicle moves on the arc
    of the mean speed and mean yaw rate of the two samples (exact for constant speed and yaw
    rate). The first pose is ``initial_pose`` (default: identity): the trajectory is expressed
    in the frame of the ego at ``stamps_ns[0]``.
    """
    stamps = _int_stamps(stamps_ns, "stamps_ns")
    if stamps.ndim != 1 or stamps.size == 0:
        raise ValueError(f"stamps_ns must be a non-empty 1-D array, got shape {stamps.shape}")
    if np.any(np.diff(stamps) < 0):
        raise ValueError("stamps_ns must be sorted in non-decreasing order")
    count = stamps.size
    speed = np.broadcast_to(np.asarray(speed_mps, dtype=np.float64), (count,))
    yaw_rate = np.broadcast_to(np.asarray(yaw_rate_rps, dtype=np.float64), (count,))
    dt = np.diff(stamps).astype(np.float64) * 1e-9
    mean_speed = 0.5 * (speed[1:] + speed[:-1])
    turn = 0.5 * (yaw_rate[1:] + yaw_rate[:-1]) * dt  # heading change per interval
    yaw = np.concatenate(([0.0], np.cumsum(turn)))
    # Chord of the arc: length v·dt·sinc(θ/2), along the mean heading yaw_k + θ/2.
    chord = mean_speed * dt * np.sinc(turn / (2.0 * np.pi))
    heading = yaw[:-1] + 0.5 * turn
    x = np.concatenate(([0.0], np.cumsum(chord * np.cos(heading))))
    y = np.concatenate(([0.0], np.cumsum(chord * np.sin(heading))))
    poses = np.zeros((count, 4, 4), dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    poses[:, 0, 0] = c
    poses[:, 0, 1] = -s
    poses[:, 1, 0] = s
    poses[:, 1, 1] = c
    poses[:, 2, 2] = 1.0
    poses[:, 0, 3] = x
    poses[:, 1, 3] = y
    poses[:, 3, 3] = 1.0
    if initial_pose is not None:
        start = np.asarray(initial_pose, dtype=np.float64)
        if start.shape != (4, 4):
            raise ValueError(f"initial_pose must be 4×4, got shape {start.shape}")
        poses = start @ poses
    return poses
