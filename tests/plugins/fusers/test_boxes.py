"""The decision-level fusers: matching, weighting, class handling, a missing model, and the
properties every fuser must have (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.plugins.fusers.boxes import (
    Calibration,
    bev_iou,
    probabilistic_fusion,
    weighted_box_fusion,
)
from fusionrt.runtime.messages import Detections

CAR, PED = 0, 1


def dets(rows: list[tuple[float, ...]], stamp_ns: int = 5, velocity: bool = True) -> Detections:
    """Detections from ``(score, label, x, y[, yaw])`` rows (4.5 × 1.9 × 1.6 m boxes)."""
    boxes = [[r[2], r[3], 0.8, 4.5, 1.9, 1.6, r[4] if len(r) > 4 else 0.0] for r in rows]
    return Detections(
        stamp_ns=stamp_ns,
        boxes=np.array(boxes, np.float32).reshape(-1, 7),
        scores=np.array([r[0] for r in rows], np.float32),
        labels=np.array([r[1] for r in rows], np.int64),
        velocities=np.array([[r[2] / 10, 0.0] for r in rows], np.float32).reshape(-1, 2)
        if velocity
        else None,
    )


def canonical(d: Detections) -> np.ndarray:
    """Rows ``label, score, box..., velocity...`` in a fixed order (for comparisons)."""
    v = d.velocities if d.velocities is not None else np.zeros((len(d), 2), np.float32)
    rows = np.column_stack([d.labels, d.scores, d.boxes, v]).astype(np.float64)
    order = np.lexsort((rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))
    return rows[order]


@st.composite
def detections(draw: st.DrawFn, max_boxes: int = 8) -> Detections:
    n = draw(st.integers(0, max_boxes))
    coord = st.floats(-30.0, 50.0, allow_nan=False, width=32)
    size = st.floats(0.5, 5.0, width=32)
    boxes = [
        [
            draw(coord),
            draw(coord),
            draw(st.floats(-1, 2, width=32)),
            draw(size),
            draw(size),
            draw(size),
            draw(st.floats(-3.125, 3.125, width=32)),
        ]
        for _ in range(n)
    ]
    scores = [draw(st.floats(0.0625, 0.96875, width=32)) for _ in range(n)]
    labels = [draw(st.integers(0, 2)) for _ in range(n)]
    velocities = None
    if draw(st.booleans()):
        velocities = np.array(
            [
                [draw(st.floats(-20, 20, width=32)), draw(st.floats(-20, 20, width=32))]
                for _ in range(n)
            ],
            np.float32,
        ).reshape(-1, 2)
    return Detections(
        stamp_ns=draw(st.integers(1, 10**12)),
        boxes=np.array(boxes, np.float32).reshape(-1, 7),
        scores=np.array(scores, np.float32),
        labels=np.array(labels, np.int64),
        velocities=velocities,
    )


MATCHES = st.sampled_from(["centre", "bev_iou"])


@settings(max_examples=150, deadline=None)
@given(detections(), st.integers(0, 3), MATCHES, st.floats(0.1, 10.0))
def test_one_model_with_nothing_comes_back_unchanged(d, position, match, weight):
    per_model: list[Detections | None] = [None, None, None]
    per_model.insert(position, d)
    weights = [1.0, 2.0, 3.0]
    weights.insert(position, weight)
    fused = weighted_box_fusion(per_model, weights, match=match)
    np.testing.assert_array_equal(canonical(fused), canonical(d))
    assert fused.stamp_ns == d.stamp_ns and (fused.velocities is None) == (d.velocities is None)
    identity = [Calibration.identity()] * 4
    p = probabilistic_fusion(per_model, identity, match=match)
    np.testing.assert_allclose(canonical(p), canonical(d), rtol=0, atol=2e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), detections()), min_size=1, max_size=4), MATCHES, st.data())
def test_the_order_of_the_models_does_not_matter(per_model, match, data):
    weights = [data.draw(st.floats(0.2, 5.0)) for _ in per_model]
    order = data.draw(st.permutations(range(len(per_model))))
    fused = weighted_box_fusion(per_model, weights, match=match)
    shuffled = weighted_box_fusion(
        [per_model[i] for i in order], [weights[i] for i in order], match=match
    )
    np.testing.assert_allclose(canonical(fused), canonical(shuffled), rtol=1e-5, atol=1e-4)
    calibrations = [_calibration(0.3 + 0.1 * k) for k in range(len(per_model))]
    p = probabilistic_fusion(per_model, calibrations, match=match)
    q = probabilistic_fusion(
        [per_model[i] for i in order], [calibrations[i] for i in order], match=match
    )
    np.testing.assert_allclose(canonical(p), canonical(q), rtol=1e-5, atol=1e-4)


@settings(max_examples=100, deadline=None)
@given(st.lists(detections(), min_size=1, max_size=3), MATCHES)
def test_a_missing_model_contributes_nothing(per_model, match):
    with_missing = weighted_box_fusion(
        [*per_model, None], [1.0] * (len(per_model) + 1), match=match
    )
    np.testing.assert_array_equal(
        canonical(with_missing), canonical(weighted_box_fusion(per_model, match=match))
    )
    cals = [_calibration(0.5)] * (len(per_model) + 1)
    np.testing.assert_array_equal(
        canonical(probabilistic_fusion([*per_model, None], cals, match=match)),
        canonical(probabilistic_fusion(per_model, cals[:-1], match=match)),
    )


def test_a_model_that_ran_and_saw_nothing_lowers_the_scores():
    car = dets([(0.9, CAR, 10.0, 0.0)])
    assert weighted_box_fusion([car, None]).scores.tolist() == pytest.approx([0.9])
    assert weighted_box_fusion([car, Detections.empty(5)]).scores.tolist() == pytest.approx([0.45])
    assert weighted_box_fusion([car, Detections.empty(5)], [3.0, 1.0]).scores[0] == pytest.approx(
        0.675
    )


def test_matching_boxes_fuse_into_a_weighted_mean():
    a = dets([(0.8, CAR, 10.0, 0.0, 0.1)])
    b = dets([(0.4, CAR, 11.0, 1.0, 0.3)], stamp_ns=9)
    fused = weighted_box_fusion([a, b], [1.0, 2.0])
    assert len(fused) == 1 and fused.stamp_ns == 9
    w = np.array([0.8 * 1.0, 0.4 * 2.0])
    np.testing.assert_allclose(fused.boxes[0, :2], (w @ np.array([[10, 0], [11, 1]])) / w.sum())
    assert fused.boxes[0, 6] == pytest.approx(0.2, abs=1e-6)  # circular mean of 0.1 and 0.3
    assert fused.scores[0] == pytest.approx((0.8 * 1 + 0.4 * 2) / 3)
    np.testing.assert_allclose(fused.velocities[0], [(w @ [1.0, 1.1]) / w.sum(), 0.0], atol=1e-6)
    # beyond the centre threshold: two objects
    far = dets([(0.4, CAR, 13.0, 0.0)])
    assert len(weighted_box_fusion([a, far], threshold=1.5)) == 2
    assert len(weighted_box_fusion([a, far], threshold=3.5)) == 1


def test_yaw_averages_across_the_pi_seam():
    a = dets([(0.5, CAR, 0.0, 0.0, 3.1)])
    b = dets([(0.5, CAR, 0.0, 0.0, -3.1)])
    assert abs(weighted_box_fusion([a, b]).boxes[0, 6]) == pytest.approx(np.pi, abs=1e-5)


def test_classes_never_fuse_and_a_model_never_fuses_with_itself():
    car, ped = dets([(0.9, CAR, 5.0, 0.0)]), dets([(0.9, PED, 5.0, 0.0)])
    fused = weighted_box_fusion([car, ped])
    assert sorted(fused.labels.tolist()) == [CAR, PED]
    assert fused.scores.tolist() == pytest.approx([0.45, 0.45])
    twice = dets([(0.9, CAR, 5.0, 0.0), (0.8, CAR, 5.2, 0.0)])
    assert len(weighted_box_fusion([twice])) == 2
    other = Detections(5, car.boxes, car.scores, car.labels, class_names=("a", "b", "c"))
    with pytest.raises(ValueError, match="different classes"):
        weighted_box_fusion([car, other])


def test_bev_iou_matching():
    box = np.array([0, 0, 0, 4, 2, 1.5, 0], np.float64)
    assert bev_iou(box, box) == pytest.approx(1.0)
    shifted = box.copy()
    shifted[0] = 2.0
    assert bev_iou(box, shifted) == pytest.approx(1 / 3, rel=1e-4)  # 2·2 / (8 + 8 − 4)
    turned = box.copy()
    turned[6] = np.pi / 2
    assert bev_iou(box, turned) == pytest.approx(4 / 12, rel=1e-4)  # a 2×2 cross
    shifted[0] = 5.0
    assert bev_iou(box, shifted) == 0.0
    a = dets([(0.9, CAR, 10.0, 0.0)])
    b = dets([(0.6, CAR, 12.0, 0.0)])  # IoU of two 4.5 × 1.9 boxes 2 m apart: 0.38
    assert len(weighted_box_fusion([a, b], match="bev_iou", threshold=0.3)) == 1
    assert len(weighted_box_fusion([a, b], match="bev_iou", threshold=0.5)) == 2
    with pytest.raises(ValueError, match="match must be"):
        weighted_box_fusion([a, b], match="giou")


def _calibration(detect: float, prior: float = 0.5) -> Calibration:
    """Identity scores, ``prior``, and P(detect) = ``detect`` for x in [0, 50), |y| < 20."""
    base = Calibration.identity()
    return Calibration(
        score_edges=base.score_edges,
        precision=base.precision,
        prior=np.full(3, prior),
        region_edges_x=np.array([0.0, 50.0]),
        region_edges_y=np.array([-20.0, 20.0]),
        detection=np.full((3, 1, 1), detect),
    )


def test_independent_evidence_adds_up_and_misses_count_where_a_model_sees():
    a, b = dets([(0.7, CAR, 10.0, 0.0)]), dets([(0.7, CAR, 10.3, 0.0)])
    cal = [_calibration(0.9), _calibration(0.9)]
    both = probabilistic_fusion([a, b], cal)
    assert both.scores[0] == pytest.approx(0.7**2 / (0.7**2 + 0.3**2), rel=1e-5)  # odds 7/3 · 7/3
    missed = probabilistic_fusion([a, Detections.empty(5)], cal)
    odds = 0.7 / 0.3 * (1 - 0.9)  # the second model would have seen it with P 0.9
    assert missed.scores[0] == pytest.approx(odds / (1 + odds), rel=1e-5)
    behind = dets([(0.7, CAR, -8.0, 0.0)])  # outside the second model's region: no evidence
    assert probabilistic_fusion([behind, Detections.empty(5)], cal).scores[0] == pytest.approx(0.7)
    # A model's own prior is divided out: a score of 0.7 from a detector whose detections are
    # real 80 % of the time anyway is evidence *against* (odds 7/3 < 4), and alone its
    # posterior is its calibrated probability.
    sceptic = [_calibration(0.0, prior=0.8), _calibration(0.0)]
    assert probabilistic_fusion([a, None], sceptic).scores[0] == pytest.approx(0.7)
    odds = np.sqrt(4.0 * 1.0) * (7 / 3) / 4.0 * (7 / 3) / 1.0  # mean prior log-odds, then LRs
    assert probabilistic_fusion([a, b], sceptic).scores[0] == pytest.approx(
        odds / (1 + odds), rel=1e-5
    )
    assert odds / (1 + odds) < both.scores[0]


def test_calibration_round_trips_through_json():
    cal = _calibration(0.4, prior=0.3)
    back = Calibration.from_dict(cal.to_dict())
    for name in cal.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(back, name), getattr(cal, name))
