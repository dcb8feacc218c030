"""Rigid transforms (SE(3)), rotation conversions and pose interpolation.

Conventions, stated once and used by all of fusionrt:

* **Quaternions** are Hamilton quaternions in the order ``(w, x, y, z)``, unless a name says
  ``xyzw``. Functions returning quaternions return unit quaternions with ``w >= 0``.
* **Rotations are active**: ``R @ p`` rotates the vector ``p``; nothing here rotates frames.
* A :class:`Transform` named ``a_to_b`` (or "sensor -> rig") maps the coordinates of a point
  expressed in frame ``a`` to its coordinates in frame ``b``: ``p_b = R @ p_a + t``.
  Composition reads right to left: ``(b_to_c @ a_to_b).apply(p_a) == p_c``.
* **Roll, pitch, yaw** (radians) compose as ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``: extrinsic
  rotations about x, then y, then z (equivalently intrinsic z, y', x'').
* Frames: the common frame ``ego`` is x forward, y left, z up (ISO 8855); a camera frame is
  x right, y down, z forward.
* Timestamps are ``int64`` nanoseconds; distances are metres; angles radians unless a name
  says ``deg``.

All functions are vectorised over leading axes and work in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Transform",
    "interpolate_poses",
    "matrix_to_quat",
    "matrix_to_rpy",
    "quat_to_matrix",
    "rpy_to_matrix",
    "slerp",
]


# -- rotation conversions -----------------------------------------------------------------


def quat_to_matrix(q_wxyz: ArrayLike) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of quaternions ``(..., 4)`` in w, x, y, z order.

    The quaternions are normalised first; a zero quaternion raises ``ValueError``.
    """
    q = np.asarray(q_wxyz, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternions must have a last axis of 4 (w, x, y, z), got {q.shape}")
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm == 0.0) or not np.all(np.isfinite(norm)):
        raise ValueError("cannot convert a zero or non-finite quaternion to a rotation")
    w, x, y, z = np.moveaxis(q / norm, -1, 0)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    r = np.empty((*q.shape[:-1], 3, 3), dtype=np.float64)
    r[..., 0, 0] = 1.0 - 2.0 * (yy + zz)
    r[..., 0, 1] = 2.0 * (xy - wz)
    r[..., 0, 2] = 2.0 * (xz + wy)
    r[..., 1, 0] = 2.0 * (xy + wz)
    r[..., 1, 1] = 1.0 - 2.0 * (xx + zz)
    r[..., 1, 2] = 2.0 * (yz - wx)
    r[..., 2, 0] = 2.0 * (xz - wy)
    r[..., 2, 1] = 2.0 * (yz + wx)
    r[..., 2, 2] = 1.0 - 2.0 * (xx + yy)
    return r


def matrix_to_quat(r: ArrayLike) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` (w, x, y, z, with ``w >= 0``) of rotation matrices.

    Shepperd's method: the largest of the four candidate denominators is used per matrix, so
    the result is accurate for every rotation, including half turns.
    """
    m = np.asarray(r, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must be (..., 3, 3), got {m.shape}")
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidates, each proportional to the quaternion (scaled by 4·component).
    cands = np.stack(
        [
            np.stack([1.0 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], axis=-1),
            np.stack([m21 - m12, 1.0 + m00 - m11 - m22, m01 + m10, m02 + m20], axis=-1),
            np.stack([m02 - m20, m01 + m10, 1.0 - m00 + m11 - m22, m12 + m21], axis=-1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, 1.0 - m00 - m11 + m22], axis=-1),
        ],
        axis=-2,
    )
    diag = np.stack([m00 + m11 + m22, m00, m11, m22], axis=-1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0.0, -q, q)


def rpy_to_matrix(rpy_rad: ArrayLike) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of roll, pitch, yaw ``(..., 3)`` in radians.

    ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``.
    """
    a = np.asarray(rpy_rad, dtype=np.float64)
    if a.shape[-1:] != (3,):
        raise ValueError(f"rpy must have a last axis of 3 (roll, pitch, yaw), got {a.shape}")
    cr, sr = np.cos(a[..., 0]), np.sin(a[..., 0])
    cp, sp = np.cos(a[..., 1]), np.sin(a[..., 1])
    cy, sy = np.cos(a[..., 2]), np.sin(a[..., 2])
    r = np.empty((*a.shape[:-1], 3, 3), dtype=np.float64)
    r[..., 0, 0] = cy * cp
    r[..., 0, 1] = cy * sp * sr - sy * cr
    r[..., 0, 2] = cy * sp * cr + sy * sr
    r[..., 1, 0] = sy * cp
    r[..., 1, 1] = sy * sp * sr + cy * cr
    r[..., 1, 2] = sy * sp * cr - cy * sr
    r[..., 2, 0] = -sp
    r[..., 2, 1] = cp * sr
    r[..., 2, 2] = cp * cr
    return r


def matrix_to_rpy(r: ArrayLike) -> np.ndarray:
    """Roll, pitch, yaw ``(..., 3)`` in radians of rotation matrices ``(..., 3, 3)``.

    Pitch lies in [-π/2, π/2], roll and yaw in (-π, π]. At gimbal lock (pitch = ±π/2) roll and
    yaw are not separable: roll is set to 0 and the whole turn about z goes into yaw, so that
    ``rpy_to_matrix(matrix_to_rpy(R)) == R`` still holds.
    """
    m = np.asarray(r, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must be (..., 3, 3), got {m.shape}")
    cos_pitch = np.hypot(m[..., 0, 0], m[..., 1, 0])
    pitch = np.arctan2(-m[..., 2, 0], cos_pitch)
    locked = cos_pitch < 1e-9
    yaw = np.where(
        locked,
        np.arctan2(-m[..., 0, 1], m[..., 1, 1]),
        np.arctan2(m[..., 1, 0], m[..., 0, 0]),
    )
    # Roll from what is left once yaw and pitch are undone: near gimbal lock, where yaw is
    # ill-conditioned, the residual turn absorbs its error, so the angles still rebuild R.
    zeros = np.zeros_like(yaw)
    rest = np.swapaxes(rpy_to_matrix(np.stack([zeros, pitch, yaw], axis=-1)), -1, -2) @ m
    roll = np.arctan2(rest[..., 2, 1], rest[..., 1, 1])
    return np.stack([roll, pitch, yaw], axis=-1)


# -- interpolation ------------------------------------------------------------------------


def slerp(q0_wxyz: ArrayLike, q1_wxyz: ArrayLike, t: ArrayLike) -> np.ndarray:
    """Spherical linear interpolation from ``q0`` (t = 0) to ``q1`` (t = 1), shortest path.

    ``q0`` and ``q1`` are ``(4,)`` or ``(N, 4)`` (w, x, y, z); ``t`` is ``(N,)`` (a scalar is
    treated as ``(1,)``). Returns ``(N, 4)`` unit quaternions with ``w >= 0``. Nearly equal
    quaternions are interpolated linearly and renormalised (no division by ``sin θ ≈ 0``).
    """
    q0 = np.asarray(q0_wxyz, dtype=np.float64)
    q1 = np.asarray(q1_wxyz, dtype=np.float64)
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if tt.ndim != 1:
        raise ValueError(f"t must be 1-D, got shape {tt.shape}")
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    q0, q1 = np.broadcast_arrays(q0, q1)
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)  # shortest path: q and -q are the same rotation
    dot = np.abs(dot)
    tt = tt[:, None]
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe_sin = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - tt, np.sin((1.0 - tt) * theta) / safe_sin)
    w1 = np.where(near, tt, np.sin(tt * theta) / safe_sin)
    q = w0 * q0 + w1 * q1
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0.0, -q, q)


def interpolate_poses(stamps_ns: ArrayLike, poses: ArrayLike, query_ns: ArrayLike) -> np.ndarray:
    """Poses ``(N, 4, 4)`` at ``query_ns`` from a sorted pose track.

    ``stamps_ns`` ``(K,)`` int64 non-decreasing, ``poses`` ``(K, 4, 4)`` rigid transforms (for
    instance ego -> world). Between the two bracketing stamps the rotation is slerped and the
    translation interpolated linearly; a query equal to a stamp returns that pose exactly.
    Queries before the first or after the last stamp are clamped to the end poses (no
    extrapolation). Interpolation weights are computed from integer nanosecond differences, so
    large absolute stamps lose no precision.
    """
    stamps = np.asarray(stamps_ns)
    track = np.asarray(poses, dtype=np.float64)
    query = np.atleast_1d(np.asarray(query_ns))
    if stamps.ndim != 1 or stamps.size == 0:
        raise ValueError(f"stamps_ns must be a non-empty 1-D array, got shape {stamps.shape}")
    if track.shape != (stamps.size, 4, 4):
        raise ValueError(
            f"poses must be ({stamps.size}, 4, 4) to match stamps_ns, got {track.shape}"
        )
    if not (np.issubdtype(stamps.dtype, np.integer) and np.issubdtype(query.dtype, np.integer)):
        raise ValueError("stamps_ns and query_ns must be integer nanoseconds")
    stamps = stamps.astype(np.int64)
    query = query.astype(np.int64)
    if np.any(np.diff(stamps) < 0):
        raise ValueError("stamps_ns must be sorted in non-decreasing order")
    if stamps.size == 1:
        return np.repeat(track, query.size, axis=0)
    clamped = np.clip(query, stamps[0], stamps[-1])
    hi = np.clip(np.searchsorted(stamps, clamped, side="right"), 1, stamps.size - 1)
    lo = hi - 1
    span = stamps[hi] - stamps[lo]
    offset = clamped - stamps[lo]
    alpha = np.where(span > 0, offset / np.where(span > 0, span, 1), 0.0).astype(np.float64)
    quats = matrix_to_quat(track[:, :3, :3])
    rot = quat_to_matrix(slerp(quats[lo], quats[hi], alpha))
    trans = (1.0 - alpha)[:, None] * track[lo, :3, 3] + alpha[:, None] * track[hi, :3, 3]
    out = np.zeros((query.size, 4, 4), dtype=np.float64)
    out[:, :3, :3] = rot
    out[:, :3, 3] = trans
    out[:, 3, 3] = 1.0
    exact_lo = alpha == 0.0
    exact_hi = alpha == 1.0
    out[exact_lo] = track[lo[exact_lo]]
    out[exact_hi] = track[hi[exact_hi]]
    return out


# -- SE(3) --------------------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


class Transform:
    """A rigid transform ``p_dst = rotation @ p_src + translation`` (immutable).

    ``rotation`` is a 3×3 float64 rotation matrix and ``translation`` a (3,) float64 vector;
    both are read-only arrays. The constructor does not check orthonormality (the rig does,
    with a documented tolerance); use :meth:`from_matrix` / :meth:`from_quaternion` /
    :meth:`from_rpy` to build one.
    """

    __slots__ = ("_matrix", "rotation", "translation")

    rotation: np.ndarray
    translation: np.ndarray
    _matrix: np.ndarray | None

    def __init__(self, rotation: ArrayLike | None = None, translation: ArrayLike | None = None):
        rot = np.eye(3) if rotation is None else np.array(rotation, dtype=np.float64)
        trans = np.zeros(3) if translation is None else np.array(translation, dtype=np.float64)
        if rot.shape != (3, 3):
            raise ValueError(f"rotation must be 3×3, got shape {rot.shape}")
        trans = trans.reshape(-1)
        if trans.shape != (3,):
            raise ValueError(f"translation must have 3 elements, got shape {trans.shape}")
        if not (np.all(np.isfinite(rot)) and np.all(np.isfinite(trans))):
            raise ValueError("transform contains non-finite values")
        object.__setattr__(self, "rotation", _readonly(rot))
        object.__setattr__(self, "translation", _readonly(trans))
        object.__setattr__(self, "_matrix", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Transform is immutable")

    # construction

    @classmethod
    def identity(cls) -> Transform:
        """The identity transform."""
        return cls()

    @classmethod
    def from_matrix(cls, m: ArrayLike) -> Transform:
        """From a 4×4 homogeneous matrix (last row must be ``[0, 0, 0, 1]``) or a 3×4 ``[R|t]``."""
        a = np.asarray(m, dtype=np.float64)
        if a.shape == (4, 4):
            if not np.allclose(a[3], [0.0, 0.0, 0.0, 1.0], atol=1e-9):
                raise ValueError(f"last row of a 4×4 rigid transform must be [0 0 0 1], got {a[3]}")
        elif a.shape != (3, 4):
            raise ValueError(f"transform matrix must be 4×4 or 3×4, got shape {a.shape}")
        return cls(a[:3, :3], a[:3, 3])

    @classmethod
    def from_quaternion(cls, q_wxyz: ArrayLike, translation: ArrayLike | None = None) -> Transform:
        """From a (w, x, y, z) quaternion (normalised here) and a translation."""
        return cls(quat_to_matrix(np.asarray(q_wxyz, dtype=np.float64).reshape(4)), translation)

    @classmethod
    def from_rpy(cls, rpy_rad: ArrayLike, translation: ArrayLike | None = None) -> Transform:
        """From roll, pitch, yaw in radians (``R = Rz(yaw) Ry(pitch) Rx(roll)``)."""
        return cls(rpy_to_matrix(np.asarray(rpy_rad, dtype=np.float64).reshape(3)), translation)

    # views

    @property
    def matrix(self) -> np.ndarray:
        """The 4×4 homogeneous matrix (float64, read-only)."""
        if self._matrix is None:
            m = np.eye(4)
            m[:3, :3] = self.rotation
            m[:3, 3] = self.translation
            object.__setattr__(self, "_matrix", _readonly(m))
        assert self._matrix is not None
        return self._matrix

    @property
    def quaternion(self) -> np.ndarray:
        """The rotation as a (w, x, y, z) unit quaternion with ``w >= 0``."""
        return matrix_to_quat(self.rotation)

    @property
    def rpy(self) -> np.ndarray:
        """The rotation as roll, pitch, yaw in radians."""
        return matrix_to_rpy(self.rotation)

    # algebra

    def inverse(self) -> Transform:
        """The inverse transform (``R.T``, ``-R.T @ t``)."""
        rt = self.rotation.T
        return Transform(rt, -rt @ self.translation)

    def __matmul__(self, other: Transform) -> Transform:
        if not isinstance(other, Transform):
            return NotImplemented
        return Transform(
            self.rotation @ other.rotation, self.rotation @ other.translation + self.translation
        )

    def apply(self, points: ArrayLike) -> np.ndarray:
        """Transform points ``(..., 3)`` (typically N×3); returns float64 of the same shape."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise ValueError(f"points must have a last axis of 3, got shape {p.shape}")
        return p @ self.rotation.T + self.translation

    def rotate(self, vectors: ArrayLike) -> np.ndarray:
        """Rotate direction vectors ``(..., 3)`` (velocities, normals): no translation."""
        v = np.asarray(vectors, dtype=np.float64)
        if v.shape[-1:] != (3,):
            raise ValueError(f"vectors must have a last axis of 3, got shape {v.shape}")
        return v @ self.rotation.T

    def allclose(self, other: Transform, atol: float = 1e-9) -> bool:
        """Whether both matrices agree element-wise within ``atol``."""
        return bool(np.allclose(self.matrix, other.matrix, rtol=0.0, atol=atol))

    def __repr__(self) -> str:
        t = ", ".join(f"{v:.6g}" for v in self.translation)
        rpy = ", ".join(f"{v:.4g}" for v in np.degrees(self.rpy))
        return f"Transform(translation=[{t}], rpy_deg=[{rpy}])"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Transform, (np.array(self.rotation), np.array(self.translation)))
