"""Decision-level fusion: several models' 3D detections of one frame → one set of detections.

Two fusers, pure functions over :class:`~fusionrt.runtime.messages.Detections` (boxes in the
ego frame, N×7 ``x y z l w h yaw``), so the runtime's fuser components, ``fusionrt eval`` and
the tests call the same code:

* :func:`weighted_box_fusion` — score-weighted box fusion (WBF, Solovyev et al., "Weighted
  boxes fusion", Image and Vision Computing 2021), class-wise, in the bird's-eye view:
  boxes of one class whose centres lie within ``threshold`` metres (``match="centre"``) or
  whose rotated BEV footprints overlap by IoU ≥ ``threshold`` (``match="bev_iou"``) form a
  cluster; the fused box is the average of its members weighted by ``model weight × score``
  (yaw as a circular mean), and its score is ``Σ w·s / Σ w`` over the models that ran on the
  frame, so a box only one of three equal models saw keeps a third of its score.
* :func:`probabilistic_fusion` — calibrated confidences combined as independent evidence,
  in the spirit of Apollo's probabilistic fusion: each model's score becomes the probability
  that the object exists (its :class:`Calibration`, measured on training drives), each
  detection contributes its likelihood ratio ``odds(p) / odds(prior)`` (the model's own
  existence prior divided out), and each model that ran but did not detect the object
  contributes ``1 − P(detect)`` at that place (its recall map: a camera that cannot see
  behind the car is no evidence against a car there). The posterior is the fused score.

Common rules: clusters take at most one box per model (a model's own boxes are never merged
with each other), boxes are visited best score first with a fixed tie-break, so the order of
the models does not matter; a model given as ``None`` did not run on the frame (its sensor
was missing or stale) and contributes nothing, not even to the normalisation — fusing one
model's detections with nothing returns them unchanged (the probabilistic fuser with an
identity calibration). An empty :class:`Detections` is a model that ran and saw nothing.

Written here rather than taken from the ``ensemble-boxes`` package: that package fuses
axis-aligned 2D image boxes only; these are rotated boxes in metres, matched in the BEV.
Rotated-rectangle overlap comes from OpenCV (``cv2.rotatedRectangleIntersection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusionrt.runtime.messages import Detections

__all__ = [
    "MATCH_MODES",
    "Calibration",
    "bev_iou",
    "probabilistic_fusion",
    "weighted_box_fusion",
]

MATCH_MODES = ("centre", "bev_iou")
#: Default matching thresholds: centre distance (m), BEV IoU.
DEFAULT_THRESHOLD = {"centre": 1.5, "bev_iou": 0.1}
_EPS = 1e-6


def bev_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the bird's-eye-view footprints of two boxes (``x y z l w h yaw``)."""
    import cv2  # noqa: PLC0415  (only for bev_iou matching: listing plugins stays fast)

    rect_a = ((float(a[0]), float(a[1])), (float(a[3]), float(a[4])), float(np.degrees(a[6])))
    rect_b = ((float(b[0]), float(b[1])), (float(b[3]), float(b[4])), float(np.degrees(b[6])))
    kind, polygon = cv2.rotatedRectangleIntersection(rect_a, rect_b)
    if kind == cv2.INTERSECT_NONE or polygon is None:
        return 0.0
    inter = float(cv2.contourArea(cv2.convexHull(polygon)))
    union = float(a[3] * a[4] + b[3] * b[4]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class _Candidate:
    model: int
    index: int
    score: float
    weight: float


@dataclass
class _Cluster:
    """Boxes of one object from different models (at most one each)."""

    members: list[_Candidate]


def _check_classes(per_model: Sequence[Detections | None]) -> tuple[str, ...]:
    names = {d.class_names for d in per_model if d is not None}
    if len(names) > 1:
        raise ValueError(f"the models' detections name different classes: {sorted(names)}")
    return names.pop() if names else Detections.empty(0).class_names


def _best_match(
    box: np.ndarray, fused: np.ndarray, free: np.ndarray, match: str, threshold: float
) -> int | None:
    """Index of the cluster (rows of ``fused`` boxes, ``free`` of this box's model) that
    ``box`` matches best: the nearest centre within ``threshold`` m, or the largest BEV IoU
    of at least ``threshold`` (only clusters near enough to overlap are intersected)."""
    if not free.any():
        return None
    distance = np.hypot(fused[:, 0] - box[0], fused[:, 1] - box[1])
    if match == "centre":
        ok = free & (distance <= threshold)
        return int(np.argmin(np.where(ok, distance, np.inf))) if ok.any() else None
    reach = 0.5 * (np.hypot(fused[:, 3], fused[:, 4]) + np.hypot(box[3], box[4]))
    best, best_iou = None, threshold
    for k in np.flatnonzero(free & (distance < reach)):
        iou = bev_iou(box, fused[k])
        if iou >= best_iou:
            best, best_iou = int(k), iou
    return best


def _clusters(
    per_model: Sequence[Detections | None],
    weights: Sequence[float],
    label: int,
    *,
    match: str,
    threshold: float,
    fuse_box: Any,
) -> list[_Cluster]:
    """Greedy clustering of one class's boxes, best score first (ties: larger weight, then
    the box itself), each box into the best-matching cluster that has no box of its model."""
    candidates = []
    for m, dets in enumerate(per_model):
        if dets is None:
            continue
        for i in np.flatnonzero(dets.labels == label):
            candidates.append(_Candidate(m, int(i), float(dets.scores[i]), float(weights[m])))

    def box_of(c: _Candidate) -> np.ndarray:
        return per_model[c.model].boxes[c.index].astype(np.float64)  # type: ignore[union-attr]

    candidates.sort(key=lambda c: (-c.score, -c.weight, *box_of(c).tolist()))
    clusters: list[_Cluster] = []
    fused = np.zeros((len(candidates), 7))  # the running fused box of each cluster
    has_model = np.zeros((len(candidates), len(per_model)), bool)
    for cand in candidates:
        box = box_of(cand)
        k = len(clusters)
        best = _best_match(box, fused[:k], ~has_model[:k, cand.model], match, threshold)
        if best is None:
            clusters.append(_Cluster([cand]))
            fused[k], has_model[k, cand.model] = box, True
        else:
            clusters[best].members.append(cand)
            fused[best], has_model[best, cand.model] = fuse_box(clusters[best].members), True
    return clusters


def _average_box(
    per_model: Sequence[Detections | None], members: Sequence[_Candidate], w: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``w``-weighted mean box (yaw: circular mean) and velocity of ``members``; a lone
    member's own box and velocity, bit for bit."""
    if len(members) == 1:
        only = per_model[members[0].model]
        assert only is not None
        velocity = None if only.velocities is None else only.velocities[members[0].index]
        return only.boxes[members[0].index].astype(np.float64), velocity
    boxes = np.array(
        [per_model[c.model].boxes[c.index] for c in members],  # type: ignore[union-attr]
        np.float64,
    )
    w = w / w.sum() if w.sum() > 0 else np.full(len(members), 1.0 / len(members))
    box = (w[:, None] * boxes).sum(axis=0)
    box[6] = np.arctan2((w * np.sin(boxes[:, 6])).sum(), (w * np.cos(boxes[:, 6])).sum())
    velocities = [
        per_model[c.model].velocities[c.index]  # type: ignore[union-attr,index]
        for c in members
        if per_model[c.model].velocities is not None  # type: ignore[union-attr]
    ]
    velocity = None
    if len(velocities) == len(members):
        velocity = (w[:, None] * np.asarray(velocities, np.float64)).sum(axis=0)
    return box, velocity


def _pack(
    per_model: Sequence[Detections | None],
    stamp_ns: int | None,
    class_names: tuple[str, ...],
    rows: list[tuple[float, int, np.ndarray, np.ndarray | None]],
) -> Detections:
    """Detections from ``(score, label, box, velocity)`` rows, best score first; with
    velocities when every model that ran has them; stamped ``stamp_ns`` or the newest
    model's stamp."""
    rows = sorted(rows, key=lambda r: (-r[0], r[1], *r[2].tolist()))
    ran = [d for d in per_model if d is not None]
    with_velocity = bool(ran) and all(d.velocities is not None for d in ran)
    if stamp_ns is None:
        stamp_ns = max((d.stamp_ns for d in ran), default=0)
    return Detections(
        stamp_ns=int(stamp_ns),
        boxes=np.array([r[2] for r in rows], np.float32).reshape(-1, 7),
        scores=np.array([r[0] for r in rows], np.float32),
        labels=np.array([r[1] for r in rows], np.int64),
        class_names=class_names,
        velocities=(
            np.array([r[3] for r in rows], np.float32).reshape(-1, 2) if with_velocity else None
        ),
    )


def _threshold(match: str, threshold: float | None) -> float:
    if match not in MATCH_MODES:
        raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
    return DEFAULT_THRESHOLD[match] if threshold is None else float(threshold)


def weighted_box_fusion(
    per_model: Sequence[Detections | None],
    weights: Sequence[float] | None = None,
    *,
    match: str = "centre",
    threshold: float | None = None,
    stamp_ns: int | None = None,
) -> Detections:
    """Score-weighted box fusion of the models' detections of one frame (module docstring).

    ``weights`` (default all 1) weight each model; ``threshold`` is the centre distance in
    metres (default 1.5) or the BEV IoU (default 0.1) of ``match``; ``stamp_ns`` defaults to
    the newest of the models' stamps.
    """
    weights = [1.0] * len(per_model) if weights is None else list(weights)
    if len(weights) != len(per_model) or any(w <= 0 for w in weights):
        raise ValueError(f"need one weight > 0 per model, got {weights} for {len(per_model)}")
    limit = _threshold(match, threshold)
    class_names = _check_classes(per_model)
    total = sum(w for w, d in zip(weights, per_model, strict=True) if d is not None)

    def member_weights(members: Sequence[_Candidate]) -> np.ndarray:
        return np.array([c.weight * c.score for c in members])

    def fuse_box(members: Sequence[_Candidate]) -> np.ndarray:
        return _average_box(per_model, members, member_weights(members))[0]

    rows = []
    for label in range(len(class_names)):
        for cluster in _clusters(
            per_model, weights, label, match=match, threshold=limit, fuse_box=fuse_box
        ):
            box, velocity = _average_box(
                per_model, cluster.members, member_weights(cluster.members)
            )
            # Σ (w/total)·s: a lone model's score comes back exactly (w/total = 1).
            score = sum(c.weight / total * c.score for c in cluster.members)
            rows.append((score, label, box, velocity))
    return _pack(per_model, stamp_ns, class_names, rows)


@dataclass(frozen=True)
class Calibration:
    """How far one model's detections can be trusted, per class, measured on training drives.

    ``precision[c, b]``: probability that a detection of class ``c`` with a score in bin ``b``
    (``score_edges``) is a real object (non-decreasing in the score); ``prior[c]``: the
    fraction of all its detections of class ``c`` that are real (its existence prior);
    ``detection[c, i, j]``: probability that it detects an object of class ``c`` whose centre
    lies in BEV region ``(i, j)`` of ``region_edges_x`` × ``region_edges_y`` (metres, ego frame;
    outside every region: 0, no evidence).
    """

    score_edges: np.ndarray
    precision: np.ndarray
    prior: np.ndarray
    region_edges_x: np.ndarray
    region_edges_y: np.ndarray
    detection: np.ndarray

    @classmethod
    def identity(cls, num_classes: int = 3) -> Calibration:
        """A calibration that keeps scores as they are and takes no evidence from misses."""
        edges = np.linspace(0.0, 1.0, 1001)
        centres = 0.5 * (edges[:-1] + edges[1:])
        return cls(
            score_edges=edges,
            precision=np.tile(centres, (num_classes, 1)),
            prior=np.full(num_classes, 0.5),
            region_edges_x=np.array([0.0, 1.0]),
            region_edges_y=np.array([0.0, 1.0]),
            detection=np.zeros((num_classes, 1, 1)),
        )

    def probability(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """P(real) of detections: their precision, linear between bin centres."""
        centres = 0.5 * (self.score_edges[:-1] + self.score_edges[1:])
        out = np.empty(len(scores), np.float64)
        for i, (s, c) in enumerate(zip(scores, labels, strict=True)):
            out[i] = np.interp(float(s), centres, self.precision[int(c)])
        return out

    def detection_probability(self, label: int, xy: np.ndarray) -> float:
        """P(the model detects an object of ``label`` at ``xy``) from the recall map."""
        i = int(np.searchsorted(self.region_edges_x, xy[0], side="right")) - 1
        j = int(np.searchsorted(self.region_edges_y, xy[1], side="right")) - 1
        rows, cols = self.detection.shape[1:]
        if not (0 <= i < rows and 0 <= j < cols):
            return 0.0
        return float(self.detection[int(label), i, j])

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON)."""
        return {k: np.asarray(getattr(self, k)).tolist() for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: np.asarray(d[k], np.float64) for k in cls.__dataclass_fields__})


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def probabilistic_fusion(
    per_model: Sequence[Detections | None],
    calibration: Sequence[Calibration],
    priors: Sequence[Sequence[float]] | None = None,
    *,
    match: str = "centre",
    threshold: float | None = None,
    stamp_ns: int | None = None,
) -> Detections:
    """Calibrated detections combined as independent evidence (module docstring).

    For a cluster of class ``c`` the log-odds of existence is
    ``mean_m∈D logit(prior_m,c) + Σ_m∈D [logit p_m − logit prior_m,c]
    + Σ_m∈R∖D log(1 − P_m(detect c at the cluster))``, where ``D`` are the models that
    detected it and ``R`` those that ran (not ``None``); ``priors`` (M × classes) override
    the calibrations' measured priors. The box is the probability-weighted mean.
    """
    if len(calibration) != len(per_model):
        raise ValueError(
            f"need one calibration per model, got {len(calibration)} for {len(per_model)}"
        )
    limit = _threshold(match, threshold)
    class_names = _check_classes(per_model)
    prior = np.array(
        [c.prior for c in calibration] if priors is None else priors, np.float64
    ).reshape(len(per_model), -1)
    probability = [
        None if d is None else cal.probability(d.scores, d.labels)
        for d, cal in zip(per_model, calibration, strict=True)
    ]
    ran = [m for m, d in enumerate(per_model) if d is not None]

    def member_weights(members: Sequence[_Candidate]) -> np.ndarray:
        return np.array([probability[c.model][c.index] for c in members])  # type: ignore[index]

    def fuse_box(members: Sequence[_Candidate]) -> np.ndarray:
        return _average_box(per_model, members, member_weights(members))[0]

    ones = [1.0] * len(per_model)
    rows = []
    for label in range(len(class_names)):
        for cluster in _clusters(
            per_model, ones, label, match=match, threshold=limit, fuse_box=fuse_box
        ):
            box, velocity = _average_box(
                per_model, cluster.members, member_weights(cluster.members)
            )
            detected = {c.model for c in cluster.members}
            members = [c.model for c in cluster.members]
            # common prior, then each detection's likelihood ratio with its own prior out
            log_odds = float(_logit(prior[sorted(detected), label]).mean())
            ratios = _logit(member_weights(cluster.members)) - _logit(prior[members, label])
            log_odds += float(ratios.sum())
            for m in ran:
                if m not in detected:
                    p_detect = calibration[m].detection_probability(label, box[:2])
                    log_odds += float(np.log(max(1.0 - p_detect, _EPS)))
            score = float(1.0 / (1.0 + np.exp(-log_odds)))
            rows.append((score, label, box, velocity))
    return _pack(per_model, stamp_ns, class_names, rows)
