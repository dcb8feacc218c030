"""3D boxes as line segments in a camera image: what the video draws and Foxglove annotates.

Conventions: boxes are N×7 (x, y, z centre, length, width, height, yaw about +z) in the rig
frame; pixel coordinates are OpenCV's (the centre of the top-left pixel is ``(0, 0)``), in the
image size the rig calibrates. A box edge is kept when both its corners project to meaningful
pixels (at least :data:`MIN_DEPTH_M` in front of the camera, and where its lens distortion is
monotonic: :meth:`~fusionrt.calibration.cameras.CameraModel.in_domain`), and it is clipped to
the image (Liang–Barsky), so an edge that leaves the image ends at its border instead of at a
clamped, bent coordinate.
Straight segments join the projected corners: under lens distortion the true image of an edge
is slightly curved.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BOX_EDGES", "MIN_DEPTH_M", "box_corners", "box_edges_in_image", "clip_segments"]

#: Corner pairs of the 12 edges of a box (corner index bits: x sign, y sign, z sign).
BOX_EDGES = np.array(
    [
        (0, 1), (1, 3), (3, 2), (2, 0),  # bottom face
        (4, 5), (5, 7), (7, 6), (6, 4),  # top face
        (0, 4), (1, 5), (2, 6), (3, 7),  # verticals
    ],
    np.intp,
)  # fmt: skip
#: Corners nearer the camera plane than this (metres) are not projected.
MIN_DEPTH_M = 0.1
_SIGNS = np.array([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (-1, 1)], float)


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """``(N, 8, 3)`` corners of N×7 boxes: index bits (x sign, y sign, z sign), z bit lowest."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    local = _SIGNS[None] * (0.5 * boxes[:, 3:6])[:, None, :]
    c, s = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return np.stack([x, y, local[..., 2]], axis=-1) + boxes[:, None, :3]


def clip_segments(
    segments: np.ndarray, width: float, height: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clip M×2×2 segments ``((u0, v0), (u1, v1))`` to the image ``[-0.5, width - 0.5] ×
    [-0.5, height - 0.5]`` (its pixels' outer edges); the clipped segments of those that
    cross it, and a bool mask (M) of which did."""
    start, delta = segments[:, 0, :], segments[:, 1, :] - segments[:, 0, :]
    lower, upper = np.full(len(segments), 0.0), np.full(len(segments), 1.0)
    keep = np.ones(len(segments), bool)
    for axis, size in ((0, width), (1, height)):
        d = delta[:, axis]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # d == 0, tiny d
            t_low = (-0.5 - start[:, axis]) / d
            t_high = (size - 0.5 - start[:, axis]) / d
        entering, leaving = np.minimum(t_low, t_high), np.maximum(t_low, t_high)
        parallel = d == 0.0
        inside = (start[:, axis] >= -0.5) & (start[:, axis] <= size - 0.5)
        keep &= ~parallel | inside
        lower = np.where(parallel, lower, np.maximum(lower, entering))
        upper = np.where(parallel, upper, np.minimum(upper, leaving))
    keep &= lower <= upper
    clipped = np.stack([start + lower[:, None] * delta, start + upper[:, None] * delta], axis=1)
    # rounding may leave an end 1e-16 outside the border it was clipped to
    np.clip(clipped, -0.5, [width - 0.5, height - 0.5], out=clipped)
    return clipped[keep], keep


def box_edges_in_image(boxes: np.ndarray, rig: Any, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """The visible edges of N×7 rig-frame boxes in ``camera``'s calibrated image.

    Returns ``(segments, box_index)``: M×2×2 float64 pixel segments clipped to the image and,
    for each, the index of its box.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    if len(boxes) == 0:
        return np.zeros((0, 2, 2)), np.zeros(0, np.intp)
    model = rig.camera(camera)
    corners = rig.transform(rig.frame, camera).apply(box_corners(boxes).reshape(-1, 3))
    uv = model.project(corners)[0].reshape(-1, 8, 2)
    usable = model.in_domain(corners, MIN_DEPTH_M).reshape(-1, 8)
    drawn = usable[:, BOX_EDGES].all(axis=2)  # N×12: both corners project
    segments = uv[:, BOX_EDGES][drawn]  # M×2×2
    box_index = np.nonzero(drawn)[0]
    clipped, inside = clip_segments(segments, model.width, model.height)
    return clipped, box_index[inside]
