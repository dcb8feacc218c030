"""Heatmap peak decoding: max-pool NMS, top-k, and exact recovery of encoded boxes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from fusionrt.plugins.models.reference.layout import (
    GEOMETRY,
    NUM_CLASSES,
    OUT_COLS,
    OUT_ROWS,
    REGRESSION_CHANNELS,
)
from fusionrt.plugins.models.reference.postprocess import decode, local_maxima
from fusionrt.plugins.models.reference.train.targets import make_targets


def _outputs_from_targets(boxes, labels, velocities):
    heatmap, indices, regression, valid = make_targets(boxes, labels, velocities)
    dense = np.zeros((len(REGRESSION_CHANNELS), OUT_ROWS * OUT_COLS), np.float32)
    keep = valid > 0
    dense[:, indices[keep]] = regression[keep].T
    return heatmap, dense.reshape(len(REGRESSION_CHANNELS), OUT_ROWS, OUT_COLS)


def test_local_maxima_keeps_one_cell_per_peak():
    heatmap = np.zeros((1, 8, 8), np.float32)
    heatmap[0, 2:5, 2:5] = 0.5
    heatmap[0, 3, 3] = 0.9
    heatmap[0, 7, 7] = 0.3
    peaks = np.argwhere(local_maxima(heatmap) & (heatmap > 0.05))
    assert peaks.tolist() == [[0, 3, 3], [0, 7, 7]]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_local_maxima_equals_a_padded_3x3_max_pool(classes, rows, cols, seed):
    rng = np.random.default_rng(seed)
    heatmap = rng.integers(0, 4, (classes, rows, cols)).astype(np.float32)  # many ties
    padded = np.pad(heatmap, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    pooled = sliding_window_view(padded, (3, 3), axis=(1, 2)).max(axis=(-2, -1))
    np.testing.assert_array_equal(local_maxima(heatmap), heatmap >= pooled)


def test_top_k_and_threshold_limit_the_detections():
    rng = np.random.default_rng(0)
    heatmap = rng.random((NUM_CLASSES, OUT_ROWS, OUT_COLS)).astype(np.float32)
    regression = np.zeros((len(REGRESSION_CHANNELS), OUT_ROWS, OUT_COLS), np.float32)
    detections = decode(heatmap, regression, 5, top_k=7, score_threshold=0.5)
    assert len(detections) == 7 and detections.stamp_ns == 5
    assert np.all(np.diff(detections.scores) <= 0) and detections.scores.min() >= 0.5
    assert decode(np.zeros_like(heatmap), regression, 0).boxes.shape == (0, 7)


#: Box centres at least 4 m apart: one per 8 m block of the grid, anywhere in its first 4 m.
_centres = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.floats(0, 3.99), st.floats(0, 3.99)),
    min_size=1,
    max_size=6,
    unique_by=lambda c: c[:2],
).map(
    lambda cells: [
        (GEOMETRY.bev.x_range[0] + 1 + 8 * i + dx, GEOMETRY.bev.y_range[0] + 1 + 8 * j + dy)
        for i, j, dx, dy in cells
    ]
)


@settings(max_examples=40, deadline=None)
@given(
    centres=_centres,
    label=st.integers(0, NUM_CLASSES - 1),
    yaw=st.floats(-3.1, 3.1),
    size=st.tuples(st.floats(0.4, 5.0), st.floats(0.4, 2.5), st.floats(0.8, 2.0)),
    velocity=st.tuples(st.floats(-20, 20), st.floats(-20, 20)),
)
def test_decoding_the_targets_recovers_every_box(centres, label, yaw, size, velocity):
    boxes = np.array([[x, y, 0.8, *size, yaw] for x, y in centres], np.float32)
    labels = np.full(len(boxes), label)
    velocities = np.tile(np.array(velocity, np.float32), (len(boxes), 1))
    heatmap, regression = _outputs_from_targets(boxes, labels, velocities)
    detections = decode(heatmap, regression, 0)
    assert len(detections) == len(boxes)
    order = np.lexsort((detections.boxes[:, 1], detections.boxes[:, 0]))
    expected = boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]
    np.testing.assert_allclose(detections.boxes[order, :6], expected[:, :6], atol=1e-4)
    angle = detections.boxes[order, 6] - expected[:, 6]
    np.testing.assert_allclose(np.cos(angle), 1.0, atol=1e-4)
    np.testing.assert_allclose(detections.velocities, velocities, atol=1e-4)
    assert np.all(detections.labels == label) and np.allclose(detections.scores, 1.0)
