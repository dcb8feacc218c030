"""nuScenes-style detection mAP: centre-distance matching at 0.5 / 1 / 2 / 4 m (numpy).

Follows the nuScenes detection benchmark (Caesar et al. 2020, ``nuscenes.eval.detection``):
per class and distance threshold, the predictions of all frames are sorted by score and each
is matched greedily to the nearest still-unmatched ground-truth box of its frame and class
whose BEV centre lies within the threshold; precision is interpolated at 101 recall points,
and AP is the mean of ``max(precision − 0.1, 0) / 0.9`` over recall ≥ 0.1. mAP averages AP
over the four thresholds and then over classes. A class without ground truth is left out of
the average (reported as ``None``).

mAP ranks detections of every score; a deployed model keeps those above one score threshold.
:func:`operating_point` picks it: the threshold (on a grid of 0.01) whose detections have the
highest F1 at a 2 m centre distance, all classes together.

Which ground-truth actors count as targets is decided here too, so that ``fusionrt eval``, a
``fusionrt run`` on a drive with ground truth and the fleet report score alike: an actor whose
centre lies inside the model's BEV grid and that is visible enough from the roof.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fusionrt.runtime.geometry import BevGrid
from fusionrt.runtime.messages import CLASS_NAMES

DISTANCE_THRESHOLDS_M: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
MIN_RECALL = 0.1
MIN_PRECISION = 0.1
#: Ground truth is matched to a frame when stamped within this of the frame stamp.
GT_TOLERANCE_NS = 20_000_000
#: An actor is a detection target when its centre is inside the BEV grid and at least this
#: fraction of it is unoccluded from the roof (a geometric test, the same in every weather,
#: like nuScenes' visibility filter).
MIN_VISIBILITY = 0.2
#: Centre distance at which :func:`operating_point` counts a detection as true (the middle
#: of the mAP thresholds, the one nuScenes uses for its true-positive metrics).
OPERATING_DISTANCE_M = 2.0
#: Score thresholds :func:`operating_point` tries.
OPERATING_THRESHOLDS = tuple(round(0.01 * k, 2) for k in range(1, 100))


def detection_targets(
    boxes: np.ndarray, visibility: np.ndarray, bev: BevGrid, min_visibility: float = MIN_VISIBILITY
) -> np.ndarray:
    """Boolean mask of the ground-truth actors (N×7 boxes, ego frame) that count as targets."""
    (x_min, x_max), (y_min, y_max) = bev.x_range, bev.y_range
    x, y = boxes[:, 0], boxes[:, 1]
    inside = (x >= x_min) & (x < x_max) & (y >= y_min) & (y < y_max)
    return inside & (visibility >= min_visibility)


@dataclass
class FrameResult:
    """One frame's predictions and ground truth (BEV centres, classes, scores)."""

    pred_xy: np.ndarray  # P×2
    pred_labels: np.ndarray  # P
    pred_scores: np.ndarray  # P
    gt_xy: np.ndarray  # G×2
    gt_labels: np.ndarray  # G


def match_frame(
    frame: FrameResult, label: int, threshold_m: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and TP flags of ``frame``'s predictions of ``label`` (score order, stable) and
    its number of ground-truth boxes of that class.

    Greedy matching never crosses frames, so matching each frame on its own in score order
    gives exactly the flags of matching all frames' predictions in one global score order.
    """
    mine = frame.pred_labels == label
    scores = frame.pred_scores[mine]
    xy = frame.pred_xy[mine]
    gt = frame.gt_xy[frame.gt_labels == label]
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(order), bool)
    if len(gt):
        taken = np.zeros(len(gt), bool)
        for rank, p in enumerate(order.tolist()):
            distances = np.hypot(*(gt - xy[p]).T)
            distances[taken] = np.inf
            best = int(np.argmin(distances))
            if distances[best] < threshold_m:
                taken[best] = True
                tp[rank] = True
    return scores[order], tp, len(gt)


def match_class(
    frames: Sequence[FrameResult], label: int, threshold_m: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and TP flags of every prediction of ``label`` (sorted by score), and #ground truth."""
    matched = [match_frame(frame, label, threshold_m) for frame in frames]
    if not matched:
        return np.zeros(0), np.zeros(0, bool), 0
    scores = np.concatenate([m[0] for m in matched])
    tp = np.concatenate([m[1] for m in matched])
    order = np.argsort(-scores, kind="stable")
    return scores[order], tp[order], sum(m[2] for m in matched)


def average_precision(tp: np.ndarray, num_gt: int) -> float:
    """nuScenes AP of score-sorted TP flags against ``num_gt`` ground-truth boxes."""
    if num_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    tps = np.cumsum(tp)
    fps = np.cumsum(~tp)
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / num_gt
    recall_points = np.linspace(0.0, 1.0, 101)
    interpolated = np.interp(recall_points, recall, precision, right=0.0)
    kept = interpolated[round(100 * MIN_RECALL) + 1 :] - MIN_PRECISION
    return float(np.mean(np.clip(kept, 0.0, None)) / (1.0 - MIN_PRECISION))


@dataclass
class MapReport:
    """AP per class and threshold, mAP per class and overall, and the frame count."""

    ap: dict[str, dict[str, float | None]] = field(default_factory=dict)
    map: dict[str, float | None] = field(default_factory=dict)
    frames: int = 0
    ground_truth: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "map": self.map,
            "ap": self.ap,
            "frames": self.frames,
            "ground_truth": self.ground_truth,
        }


def _clean(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


class _Growing:
    """A 1-D array that grows by doubling: appending costs amortised O(1) and 0 objects."""

    def __init__(self, dtype: type) -> None:
        self.data: np.ndarray = np.zeros(64, dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.zeros(max(end, 2 * len(self.data)), self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end

    def values(self) -> np.ndarray:
        return self.data[: self.size]


class MapAccumulator:
    """nuScenes-style mAP computed as frames arrive, keeping only what AP needs.

    Each :meth:`add` matches one frame (see :func:`match_frame`) and keeps, per class, its
    predictions' scores (float32) and one bit per distance threshold saying whether the
    prediction matched — five bytes per prediction, in two contiguous arrays — and the
    ground-truth count; the frames themselves are not kept, so a run of hours evaluates in
    small memory. :meth:`report` equals :func:`mean_average_precision` over the same frames.
    """

    def __init__(
        self,
        class_names: Sequence[str] = CLASS_NAMES,
        thresholds_m: Sequence[float] = DISTANCE_THRESHOLDS_M,
    ) -> None:
        if len(thresholds_m) > 8:
            raise ValueError("at most 8 distance thresholds (one bit each)")
        self.class_names = tuple(class_names)
        self.thresholds_m = tuple(thresholds_m)
        self.frames = 0
        self._scores = [_Growing(np.float32) for _ in self.class_names]
        self._hits = [_Growing(np.uint8) for _ in self.class_names]
        self._num_gt = [0] * len(self.class_names)

    def add(self, frame: FrameResult) -> None:
        """Match one frame and keep its scores and TP flags."""
        self.frames += 1
        for label in range(len(self.class_names)):
            hits: np.ndarray | None = None
            for bit, threshold in enumerate(self.thresholds_m):
                # the same stable score order at every threshold: flags line up per prediction
                scores, tp, num_gt = match_frame(frame, label, threshold)
                if hits is None:
                    hits = np.zeros(len(scores), np.uint8)
                    self._scores[label].extend(scores)
                hits |= tp.astype(np.uint8) << bit
            if hits is not None:
                self._hits[label].extend(hits)
            self._num_gt[label] += num_gt

    def report(self) -> MapReport:
        """AP per class and threshold, mAP per class and overall, over the frames added."""
        report = MapReport(frames=self.frames)
        per_class = []
        for label, name in enumerate(self.class_names):
            num_gt = self._num_gt[label]
            scores = self._scores[label].values()
            hits = self._hits[label].values()[np.argsort(-scores, kind="stable")]
            aps = [
                average_precision((hits >> bit & 1).astype(bool), num_gt)
                for bit in range(len(self.thresholds_m))
            ]
            report.ap[name] = {
                f"{t:g}m": _clean(a) for t, a in zip(self.thresholds_m, aps, strict=True)
            }
            class_map = float(np.mean(aps)) if num_gt else float("nan")
            report.map[name] = _clean(class_map)
            report.ground_truth[name] = num_gt
            per_class.append(class_map)
        valid = [v for v in per_class if not np.isnan(v)]
        report.map["overall"] = round(float(np.mean(valid)), 4) if valid else None
        return report


def mean_average_precision(
    frames: Sequence[FrameResult],
    class_names: Sequence[str] = CLASS_NAMES,
    thresholds_m: Sequence[float] = DISTANCE_THRESHOLDS_M,
) -> MapReport:
    """nuScenes-style mAP over ``frames`` (see the module docstring)."""
    accumulator = MapAccumulator(class_names, thresholds_m)
    for frame in frames:
        accumulator.add(frame)
    return accumulator.report()


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A score threshold and what detections at or above it achieve (all classes)."""

    score_threshold: float
    precision: float
    recall: float
    f1: float
    distance_m: float
    detections: int
    ground_truth: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready."""
        return {
            "score_threshold": self.score_threshold,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "distance_m": self.distance_m,
            "detections": self.detections,
            "ground_truth": self.ground_truth,
        }


def operating_point(
    frames: Sequence[FrameResult],
    class_names: Sequence[str] = CLASS_NAMES,
    distance_m: float = OPERATING_DISTANCE_M,
    thresholds: Sequence[float] = OPERATING_THRESHOLDS,
) -> OperatingPoint | None:
    """The threshold of ``thresholds`` with the highest F1 (the highest such threshold on a
    tie), matching as mAP does at ``distance_m``; ``None`` without ground truth."""
    matched = [
        match_frame(f, label, distance_m) for f in frames for label in range(len(class_names))
    ]
    num_gt = sum(m[2] for m in matched)
    if num_gt == 0:
        return None
    scores = np.concatenate([np.zeros(0), *(m[0] for m in matched)])
    tp = np.concatenate([np.zeros(0, bool), *(m[1] for m in matched)])
    order = np.argsort(-scores, kind="stable")
    scores, true_so_far = scores[order], np.concatenate(([0], np.cumsum(tp[order])))
    cut = np.asarray(thresholds, np.float64)
    kept = np.searchsorted(-scores, -cut, side="right")  # detections with score >= threshold
    true = true_so_far[kept]
    precision = true / np.maximum(kept, 1)
    recall = true / num_gt
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return OperatingPoint(
        score_threshold=float(cut[best]),
        precision=float(precision[best]),
        recall=float(recall[best]),
        f1=float(f1[best]),
        distance_m=distance_m,
        detections=int(kept[best]),
        ground_truth=num_gt,
    )
