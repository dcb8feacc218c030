"""Measuring a model's calibration: isotonic precision, priors, the recall map."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.plugins.fusers.calibration import (
    REGION_EDGES_X,
    fit_calibration,
    isotonic,
    match_detections,
)
from fusionrt.runtime.messages import Detections


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 20)), min_size=1, max_size=25))
def test_isotonic_is_the_weighted_monotone_fit(pairs):
    values = np.array([v for v, _ in pairs])
    weights = np.array([w for _, w in pairs], float)
    fit = isotonic(values, weights)
    assert fit.shape == values.shape
    assert np.all(np.diff(fit) >= -1e-12)  # non-decreasing
    if weights.sum() > 0:  # PAV keeps the weighted mean
        assert np.isclose(fit @ weights, values @ weights)
        used = weights > 0
        if np.all(np.diff(values[used]) >= 0):  # already monotone: unchanged where weighted
            np.testing.assert_allclose(fit[used], values[used])


def test_isotonic_pools_violators():
    np.testing.assert_allclose(
        isotonic(np.array([0.2, 0.6, 0.4, 0.9]), np.ones(4)), [0.2, 0.5, 0.5, 0.9]
    )
    np.testing.assert_allclose(
        isotonic(np.array([0.0, 0.3, 0.0, 0.8]), np.array([0, 1, 0, 1])), [0.3, 0.3, 0.3, 0.8]
    )


def _dets(rows):
    boxes = [[x, y, 0, 4, 2, 1.5, 0] for _, _, x, y in rows]
    return Detections(
        stamp_ns=1,
        boxes=np.array(boxes, np.float32).reshape(-1, 7),
        scores=np.array([r[0] for r in rows], np.float32),
        labels=np.array([r[1] for r in rows], np.int64),
    )


def test_matching_is_greedy_by_score_within_the_class_and_distance():
    dets = _dets([(0.5, 0, 10.5, 0.0), (0.9, 0, 10.0, 0.2), (0.8, 1, 20.0, 0.0), (0.7, 0, 30, 0)])
    gt_xy = np.array([[10.0, 0.0], [20.0, 0.0], [33.0, 0.0]])
    det_ok, gt_ok = match_detections(dets, gt_xy, np.array([0, 0, 0]))
    assert det_ok.tolist() == [False, True, False, False]  # best score takes the car first
    assert gt_ok.tolist() == [True, False, False]


def test_an_informative_model_is_calibrated_as_such():
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(300):
        gt = rng.uniform([0, -20], [40, 20], (4, 2))
        rows = [(0.9, 0, *xy) for xy in gt[:3]]  # sees 3 of 4 cars with 0.9...
        rows += [(0.1, 0, *rng.uniform([0, -20], [40, 20])) for _ in range(2)]  # ...2 false 0.1
        frames.append((_dets(rows), gt, np.zeros(4, np.int64)))
    cal = fit_calibration(frames)
    p = cal.probability(np.array([0.1, 0.9]), np.array([0, 0]))
    assert p[0] < 0.05 and p[1] > 0.97
    assert abs(cal.prior[0] - 3 / 5) < 0.02
    seen = cal.detection[0][cal.detection[0] > 0]
    assert 0.6 < seen.mean() < 0.75  # 3 of 4, shrunk a little
    assert cal.detection_probability(0, np.array([REGION_EDGES_X[0] - 5.0, 0.0])) == 0.0
