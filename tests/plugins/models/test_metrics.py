"""nuScenes-style mAP: exact cases and invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.evaluation import (
    FrameResult,
    MapAccumulator,
    average_precision,
    match_class,
    mean_average_precision,
    operating_point,
)


def _frame(pred_xy, pred_labels, scores, gt_xy, gt_labels) -> FrameResult:
    return FrameResult(
        np.asarray(pred_xy, float).reshape(-1, 2),
        np.asarray(pred_labels, int),
        np.asarray(scores, float),
        np.asarray(gt_xy, float).reshape(-1, 2),
        np.asarray(gt_labels, int),
    )


def test_perfect_detections_score_one_and_none_score_zero():
    gt = [[10, 0], [20, 5], [30, -4]]
    perfect = _frame(gt, [0, 1, 2], [0.9, 0.8, 0.7], gt, [0, 1, 2])
    assert mean_average_precision([perfect]).map == {
        "car": 1.0, "pedestrian": 1.0, "cyclist": 1.0, "overall": 1.0,
    }  # fmt: skip
    empty = _frame([], [], [], gt, [0, 1, 2])
    assert mean_average_precision([empty]).map["overall"] == 0.0


def test_matching_is_greedy_by_score_within_the_threshold():
    frame = _frame([[0, 0.3], [0, 0.1], [5, 5]], [0, 0, 0], [0.9, 0.5, 0.8], [[0, 0]], [0])
    scores, tp, num_gt = match_class([frame], 0, 0.5)
    assert scores.tolist() == [0.9, 0.8, 0.5] and tp.tolist() == [True, False, False]
    assert num_gt == 1
    _, tp_tight, _ = match_class([frame], 0, 0.2)
    assert tp_tight.tolist() == [False, False, True]


def test_a_class_without_ground_truth_is_left_out():
    frame = _frame([[1, 1]], [0], [0.9], [[1, 1]], [0])
    report = mean_average_precision([frame])
    assert report.map["pedestrian"] is None and report.map["overall"] == 1.0
    assert np.isnan(average_precision(np.zeros(0, bool), 0))


def test_low_precision_scores_zero():
    # one TP ranked below 19 false positives: precision 0.05 < the 0.1 floor
    tp = np.array([False] * 19 + [True])
    assert average_precision(tp, 1) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    gt=st.lists(
        st.tuples(st.integers(-15, 15), st.integers(-15, 15)), min_size=1, max_size=8, unique=True
    ),
    noise=st.floats(0.0, 0.2),
    false_positives=st.integers(0, 5),
    seed=st.integers(0, 1000),
)
def test_map_is_bounded_and_invariant_to_frame_order_and_score_scale(
    gt, noise, false_positives, seed
):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(3):
        gt_xy = 2.0 * np.asarray(gt, float)  # boxes at least 2 m apart
        pred = gt_xy + rng.uniform(-noise, noise, gt_xy.shape)
        extra = rng.uniform(-30, 30, (false_positives, 2))
        xy = np.concatenate([pred, extra])
        scores = rng.random(len(xy))
        frames.append(_frame(xy, np.zeros(len(xy), int), scores, gt_xy, np.zeros(len(gt_xy), int)))
    report = mean_average_precision(frames)
    overall = report.map["overall"]
    assert overall is not None and 0.0 <= overall <= 1.0
    reordered = mean_average_precision(frames[::-1]).map["overall"]
    scaled = [
        FrameResult(f.pred_xy, f.pred_labels, f.pred_scores * 0.5, f.gt_xy, f.gt_labels)
        for f in frames
    ]
    assert reordered == overall == mean_average_precision(scaled).map["overall"]
    if false_positives == 0:  # every prediction is within 0.2·√2 m of its own box
        assert report.ap["car"]["0.5m"] == 1.0


def _global_greedy_tp(frames, label, threshold):
    """The definition: every prediction of ``label`` over all frames in one score order,
    each matched to the nearest free ground truth of its own frame."""
    preds = [
        (float(score), f, xy)
        for f, frame in enumerate(frames)
        for xy, score, lab in zip(frame.pred_xy, frame.pred_scores, frame.pred_labels, strict=True)
        if lab == label
    ]
    preds.sort(key=lambda p: -p[0])  # stable: frame order, then position, among equal scores
    free = [list(frame.gt_xy[frame.gt_labels == label]) for frame in frames]
    tp = []
    for _, f, xy in preds:
        best = min(
            range(len(free[f])),
            key=lambda i: float(np.hypot(*(free[f][i] - xy))),
            default=None,
        )
        hit = best is not None and float(np.hypot(*(free[f][best] - xy))) < threshold
        if hit:
            free[f][best] = np.array([np.inf, np.inf])
        tp.append(hit)
    return np.array(tp, bool)


@st.composite
def _frames(draw):
    frames = []
    for _ in range(draw(st.integers(1, 6))):
        n_gt, n_pred = draw(st.integers(0, 4)), draw(st.integers(0, 6))
        coords = st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 1))
        gt = np.array([[draw(coords), draw(coords)] for _ in range(n_gt)]).reshape(-1, 2)
        pred = np.array([[draw(coords), draw(coords)] for _ in range(n_pred)]).reshape(-1, 2)
        scores = np.array([draw(st.sampled_from([0.2, 0.5, 0.9])) for _ in range(n_pred)])
        frames.append(
            FrameResult(
                pred,
                np.array([draw(st.integers(0, 1)) for _ in range(n_pred)], np.int64),
                scores.astype(np.float32),
                gt,
                np.array([draw(st.integers(0, 1)) for _ in range(n_gt)], np.int64),
            )
        )
    return frames


@given(_frames(), st.sampled_from([0.5, 1.0, 4.0]))
@settings(max_examples=200, deadline=None)
def test_streaming_matches_equal_the_global_greedy_definition(frames, threshold):
    for label in (0, 1):
        _, tp, _ = match_class(frames, label, threshold)
        assert tp.tolist() == _global_greedy_tp(frames, label, threshold).tolist()
    streamed = MapAccumulator(("a", "b"))
    for frame in frames:
        streamed.add(frame)
    assert streamed.report().to_dict() == mean_average_precision(frames, ("a", "b")).to_dict()


def test_operating_point_is_the_threshold_of_the_best_f1():
    # three cars, three true detections (0.9, 0.7, 0.35) and false ones at 0.8, 0.3, 0.2:
    # above 0.35 F1 = 2·(3/4)·1/(3/4 + 1) = 0.857, above 0.3 F1 drops, above 0.7 recall does
    gt = [[10, 0], [20, 5], [30, -4]]
    frame = _frame(
        [[10, 0.5], [40, 40], [20, 5], [30, -4], [-5, 9], [0, 30]],
        [0, 0, 0, 0, 0, 0],
        [0.9, 0.8, 0.7, 0.35, 0.3, 0.2],
        gt,
        [0, 0, 0],
    )
    point = operating_point([frame])
    assert point is not None
    assert point.score_threshold == 0.35  # the highest threshold keeping all three
    assert (point.detections, point.ground_truth) == (4, 3)
    assert point.precision == 0.75 and point.recall == 1.0
    assert point.f1 == pytest.approx(6 / 7)
    assert operating_point([frame], distance_m=0.1).recall == pytest.approx(2 / 3)  # 0.5 m off
    assert operating_point([_frame([[1, 1]], [0], [0.9], [], [])]) is None


@settings(max_examples=50, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    hits=st.lists(st.booleans(), min_size=30, max_size=30),
    misses=st.integers(0, 5),
)
def test_operating_point_is_the_highest_threshold_of_the_best_f1(scores, hits, misses):
    # detections at x = 0, 10, 20 ...; a hit has its ground truth there, a miss is far away
    xy = [[10 * i, 0] for i in range(len(scores))]
    hits = hits[: len(scores)]
    gt = [p for p, hit in zip(xy, hits, strict=True) if hit] + [
        [-50 - i, 50] for i in range(misses)
    ]
    frame = _frame(xy, [0] * len(xy), scores, gt, [0] * len(gt))
    point = operating_point([frame])
    if not gt:
        assert point is None
        return
    f1 = {}  # brute force: F1 = 2 TP / (kept + ground truth) at every threshold
    for threshold in (round(0.01 * k, 2) for k in range(1, 100)):
        kept = [hit for s, hit in zip(scores, hits, strict=True) if s >= threshold]
        f1[threshold] = 2 * sum(kept) / (len(kept) + len(gt))
    best = max(f1.values())
    assert point is not None and point.f1 == pytest.approx(best)
    assert point.score_threshold == max(t for t, v in f1.items() if v >= best - 1e-12)
