"""Vectorised ray casting against yawed boxes: slab intersection, and line-of-sight tests.

Boxes stand on the ground and turn about z only (see :class:`fusionrt.sim.world.Boxes`); rays
are tested in each box's own frame, as ``rays × boxes`` float32 arrays, one per axis.
"""

from __future__ import annotations

import numpy as np

from fusionrt.sim.world import Boxes

__all__ = ["cast_boxes", "entry_distances", "visible_fraction"]


def cast_boxes(
    origins: np.ndarray, dirs: np.ndarray, center: np.ndarray, half: np.ndarray, yaw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab intersection of rays with yawed boxes.

    ``origins`` ``(C, 3)`` (one per column), ``dirs`` ``(C, B, 3)`` unit vectors, boxes
    ``center`` ``(K, 3)``, ``half`` sizes ``(K, 3)``, ``yaw`` ``(K,)``. Returns for each ray the
    distance to the first box hit (``inf`` if none), the index of that box (``-1``) and the
    axis (0, 1, 2) of the face it entered through. Rays starting inside a box ignore it.
    Computed in float32 on ``(C, B, K)`` arrays, one per axis.
    """
    c_count, b_count = dirs.shape[:2]
    if center.shape[0] == 0:
        return (
            np.full((c_count, b_count), np.inf),
            np.full((c_count, b_count), -1, dtype=np.int64),
            np.zeros((c_count, b_count), dtype=np.int64),
        )
    f32 = np.float32
    cos, sin = np.cos(yaw).astype(f32), np.sin(yaw).astype(f32)
    rel = (origins[:, None, :] - center[None]).astype(f32)  # (C, K, 3)
    o = (
        (cos * rel[..., 0] + sin * rel[..., 1])[:, None],
        (-sin * rel[..., 0] + cos * rel[..., 1])[:, None],
        rel[..., 2][:, None],
    )  # each (C, 1, K)
    dx, dy, dz = (dirs[..., i].astype(f32)[..., None] for i in range(3))  # (C, B, 1)
    d = (cos * dx + sin * dy, -sin * dx + cos * dy, dz)
    h = half.astype(f32)
    tmins, tnear, tfar = [], None, None
    for i in range(3):
        di = np.where(np.abs(d[i]) < 1e-9, f32(1e-9), d[i])
        inv = f32(1.0) / di
        t1 = (-h[:, i] - o[i]) * inv
        t2 = (h[:, i] - o[i]) * inv
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        tmins.append(lo)
        tnear = lo if tnear is None else np.maximum(tnear, lo)
        tfar = hi if tfar is None else np.minimum(tfar, hi)
    assert tnear is not None and tfar is not None
    dist = np.where((tnear <= tfar) & (tnear > 0.0), tnear, np.inf)  # (C, B, K)
    k = dist.argmin(axis=-1)[..., None]
    best = np.take_along_axis(dist, k, axis=-1)[..., 0].astype(np.float64)
    per_axis = np.stack(
        [np.take_along_axis(np.broadcast_to(t, dist.shape), k, axis=-1)[..., 0] for t in tmins], -1
    )
    axis = per_axis.argmax(axis=-1)
    return best, np.where(np.isfinite(best), k[..., 0], -1), axis


def visible_fraction(
    origin: np.ndarray, boxes: Boxes, targets: np.ndarray, samples: int = 9
) -> np.ndarray:
    """Fraction of sample points of each target box seen from ``origin`` unoccluded.

    ``targets`` are indices into ``boxes``; the samples are the centre and the 8 corners
    pulled 20 % towards the centre. A sample is occluded when the segment from ``origin`` to
    it crosses another box (the target itself is ignored).
    """
    if targets.size == 0:
        return np.zeros(0)
    t = boxes.select(targets)
    corners = t.corners()  # (T, 8, 3)
    centre = t.center[:, None, :]
    pts = np.concatenate([centre, centre + 0.8 * (corners - centre)], axis=1)[:, :samples]
    rel = pts - origin  # (T, S, 3)
    length = np.linalg.norm(rel, axis=-1)
    dirs = rel / np.maximum(length, 1e-9)[..., None]
    n_t, n_s = dirs.shape[:2]
    dist = entry_distances(origin, dirs.reshape(-1, 3), boxes.center, 0.5 * boxes.size, boxes.yaw)
    dist = dist.reshape(n_t, n_s, -1)
    dist[np.arange(n_t), :, targets] = np.inf  # a box does not hide itself
    seen = np.all(dist >= length[..., None] - 1e-3, axis=-1)
    return seen.mean(axis=1)


def entry_distances(
    origin: np.ndarray, dirs: np.ndarray, center: np.ndarray, half: np.ndarray, yaw: np.ndarray
) -> np.ndarray:
    """Entry distance ``(R, K)`` of rays ``dirs`` ``(R, 3)`` from one ``origin`` into every
    box (``inf`` where missed or where the ray starts inside)."""
    cos, sin = np.cos(yaw), np.sin(yaw)
    rel = origin[None] - center  # (K, 3)
    o = (cos * rel[:, 0] + sin * rel[:, 1], -sin * rel[:, 0] + cos * rel[:, 1], rel[:, 2])
    dx, dy, dz = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]
    d = (cos * dx + sin * dy, -sin * dx + cos * dy, np.broadcast_to(dz, (dirs.shape[0], yaw.size)))
    tnear = np.full((dirs.shape[0], yaw.size), -np.inf)
    tfar = np.full((dirs.shape[0], yaw.size), np.inf)
    for i in range(3):
        di = np.where(np.abs(d[i]) < 1e-12, 1e-12, d[i])
        t1 = (-half[:, i] - o[i]) / di
        t2 = (half[:, i] - o[i]) / di
        tnear = np.maximum(tnear, np.minimum(t1, t2))
        tfar = np.minimum(tfar, np.maximum(t1, t2))
    return np.where((tnear <= tfar) & (tnear > 0.0), tnear, np.inf)
