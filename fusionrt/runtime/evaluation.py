"""nuScenes-style detection mAP: centre-distance matching at 0.5 / 1 / 2 / 4 m (numpy).

Follows the nuScenes detection benchmark (Caesar et al. 2020, ``nuscenes.eval.detection``):
per class and distance threshold, the predictions of all frames are sorted by score and each
is matched greedily to the nearest still-unmatched ground-truth box of its frame and class
whose BEV centre lies within the threshold; precision is interpolated at 101 recall points,
and AP is the mean of ``max(precision − 0.1, 0) / 0.9`` over recall ≥ 0.1. mAP averages AP
over the four thresholds and then over classes. A class without ground truth is left out of
the average (reported as ``None``).

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


def match_class(
    frames: Sequence[FrameResult], label: int, threshold_m: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores and TP flags of every prediction of ``label`` (sorted by score), and #ground truth."""
    scores, frame_ids, xy = [], [], []
    gt_by_frame = []
    num_gt = 0
    for f, frame in enumerate(frames):
        mine = frame.pred_labels == label
        scores.append(frame.pred_scores[mine])
        xy.append(frame.pred_xy[mine])
        frame_ids.append(np.full(int(mine.sum()), f))
        gt = frame.gt_xy[frame.gt_labels == label]
        gt_by_frame.append(gt)
        num_gt += len(gt)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    all_xy = np.concatenate(xy) if xy else np.zeros((0, 2))
    all_frames = np.concatenate(frame_ids) if frame_ids else np.zeros(0, int)
    order = np.argsort(-all_scores, kind="stable")
    taken = [np.zeros(len(g), bool) for g in gt_by_frame]
    tp = np.zeros(len(order), bool)
    for rank, p in enumerate(order.tolist()):
        gt = gt_by_frame[all_frames[p]]
        if len(gt) == 0:
            continue
        distances = np.hypot(*(gt - all_xy[p]).T)
        distances[taken[all_frames[p]]] = np.inf
        best = int(np.argmin(distances))
        if distances[best] < threshold_m:
            taken[all_frames[p]][best] = True
            tp[rank] = True
    return all_scores[order], tp, num_gt


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


def mean_average_precision(
    frames: Sequence[FrameResult],
    class_names: Sequence[str] = CLASS_NAMES,
    thresholds_m: Sequence[float] = DISTANCE_THRESHOLDS_M,
) -> MapReport:
    """nuScenes-style mAP over ``frames`` (see the module docstring)."""
    report = MapReport(frames=len(frames))
    per_class = []
    for label, name in enumerate(class_names):
        aps = []
        num_gt = 0
        for threshold in thresholds_m:
            _, tp, num_gt = match_class(frames, label, threshold)
            aps.append(average_precision(tp, num_gt))
        report.ap[name] = {f"{t:g}m": _clean(a) for t, a in zip(thresholds_m, aps, strict=True)}
        class_map = float(np.mean(aps)) if num_gt else float("nan")
        report.map[name] = _clean(class_map)
        report.ground_truth[name] = num_gt
        per_class.append(class_map)
    valid = [v for v in per_class if not np.isnan(v)]
    report.map["overall"] = round(float(np.mean(valid)), 4) if valid else None
    return report
