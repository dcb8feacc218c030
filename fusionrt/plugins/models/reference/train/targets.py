"""CenterPoint training targets from ground-truth boxes (numpy).

Per class a heatmap on the 64 × 64 output grid with a Gaussian peak of 1 at each object's
centre cell (CenterNet's "penalty-reduced" targets: cells near a centre are only mildly
negative), and for each object the regression target at its centre cell, in the channel order
of :data:`~fusionrt.plugins.models.reference.layout.REGRESSION_CHANNELS`.
"""

from __future__ import annotations

import numpy as np

from fusionrt.plugins.models.reference.layout import (
    GEOMETRY,
    NUM_CLASSES,
    OUT_COLS,
    OUT_RESOLUTION,
    OUT_ROWS,
    REGRESSION_CHANNELS,
)

MAX_OBJECTS = 96


def gaussian_radius_cells(length_m: np.ndarray, width_m: np.ndarray) -> np.ndarray:
    """Peak radius in output cells: about a third of the box's longer side, 1 to 3 cells."""
    return np.clip(np.rint(0.35 * np.maximum(length_m, width_m) / OUT_RESOLUTION), 1, 3).astype(int)


def draw_gaussian(heatmap: np.ndarray, row: int, col: int, radius: int) -> None:
    """Max-blend a Gaussian of σ = (2r + 1) / 6 centred on (row, col) into ``heatmap``."""
    sigma = (2 * radius + 1) / 6.0
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    rows, cols = heatmap.shape
    r0, r1 = max(0, row - radius), min(rows, row + radius + 1)
    c0, c1 = max(0, col - radius), min(cols, col + radius + 1)
    patch = kernel[r0 - row + radius : r1 - row + radius, c0 - col + radius : c1 - col + radius]
    np.maximum(heatmap[r0:r1, c0:c1], patch, out=heatmap[r0:r1, c0:c1])


def make_targets(
    boxes: np.ndarray, labels: np.ndarray, velocities: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Targets of one frame's (already filtered) boxes.

    Returns ``heatmap`` (classes × rows × cols, float32), ``indices`` (MAX_OBJECTS flat cell
    indices), ``regression`` (MAX_OBJECTS × channels) and ``valid`` (MAX_OBJECTS, 0/1).
    """
    heatmap = np.zeros((NUM_CLASSES, OUT_ROWS, OUT_COLS), np.float32)
    indices = np.zeros(MAX_OBJECTS, np.int64)
    regression = np.zeros((MAX_OBJECTS, len(REGRESSION_CHANNELS)), np.float32)
    valid = np.zeros(MAX_OBJECTS, np.float32)
    fx = (boxes[:, 0] - GEOMETRY.bev.x_range[0]) / OUT_RESOLUTION
    fy = (boxes[:, 1] - GEOMETRY.bev.y_range[0]) / OUT_RESOLUTION
    radii = gaussian_radius_cells(boxes[:, 3], boxes[:, 4])
    order = np.argsort(-boxes[:, 3] * boxes[:, 4], kind="stable")[:MAX_OBJECTS]  # big first
    for slot, k in enumerate(order.tolist()):
        row, col = int(fx[k]), int(fy[k])
        if not (0 <= row < OUT_ROWS and 0 <= col < OUT_COLS):
            continue
        draw_gaussian(heatmap[int(labels[k])], row, col, int(radii[k]))
        indices[slot] = row * OUT_COLS + col
        length, width, height = np.maximum(boxes[k, 3:6], 0.05)
        yaw = boxes[k, 6]
        regression[slot] = (
            fx[k] - row, fy[k] - col, boxes[k, 2],
            np.log(length), np.log(width), np.log(height),
            np.sin(yaw), np.cos(yaw), velocities[k, 0], velocities[k, 1],
        )  # fmt: skip
        valid[slot] = 1.0
    return heatmap, indices, regression, valid
