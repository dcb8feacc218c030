"""Measure a model's :class:`~.boxes.Calibration` from its detections on drives with truth.

Each frame's detections are matched to the ground truth greedily, best score first, each to
the nearest unmatched object of its class within ``match_m`` (2 m: the middle of the
nuScenes thresholds). Then, per class:

* ``precision`` — the fraction of matched detections per score bin, made non-decreasing by
  isotonic regression (pool-adjacent-violators, weighted by the bin counts): a higher score
  must never mean a lower probability; bins without detections take their neighbours' value;
* ``prior`` — the fraction of all the model's detections that are matched;
* ``detection`` — per BEV region, the fraction of ground-truth objects that some detection
  matched (the recall map), shrunk towards 0 where there were few objects (``n / (n + 1)``
  of the raw rate), so a region seen rarely gives weak evidence from a miss.

Pool-adjacent-violators is written here (a dozen lines) rather than taken from
scikit-learn, which fusionrt does not otherwise depend on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.plugins.fusers.boxes import Calibration
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.messages import Detections

__all__ = [
    "CalibrationCounts",
    "DecisionCalibration",
    "fit_calibration",
    "isotonic",
    "match_detections",
]

#: Score bins (detections below 0.05 are not output by the reference model).
SCORE_EDGES = np.concatenate([[0.0], np.linspace(0.05, 0.95, 19), [1.0]])
#: BEV regions of the recall map: 8 m cells over the reference model's grid.
REGION_EDGES_X = np.arange(-12.0, 52.1, 8.0)
REGION_EDGES_Y = np.arange(-32.0, 32.1, 8.0)


def isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence closest to ``values`` in weighted least squares (PAV);
    an entry of weight 0 takes the fitted value of the nearest weighted entry before it (or
    after it, at the start)."""
    used = np.flatnonzero(np.asarray(weights) > 0)
    if used.size == 0:
        return np.zeros(len(values))
    level: list[float] = []
    weight: list[float] = []
    size: list[int] = []
    for v, w in zip(np.asarray(values)[used], np.asarray(weights)[used], strict=True):
        level.append(float(v))
        weight.append(float(w))
        size.append(1)
        while len(level) > 1 and level[-2] > level[-1]:  # pool the violating pair
            total = weight[-2] + weight[-1]
            level[-2] = (level[-2] * weight[-2] + level[-1] * weight[-1]) / total
            weight[-2], size[-2] = total, size[-2] + size[-1]
            del level[-1], weight[-1], size[-1]
    fitted = np.repeat(level, size)
    position = np.searchsorted(used, np.arange(len(values)), side="right") - 1
    return fitted[np.clip(position, 0, None)]


def match_detections(
    detections: Detections, gt_xy: np.ndarray, gt_labels: np.ndarray, match_m: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """``(matched per detection, matched per ground-truth object)``: greedy, best score
    first, each detection to the nearest unmatched object of its class within ``match_m``."""
    det_ok = np.zeros(len(detections), bool)
    gt_ok = np.zeros(len(gt_labels), bool)
    for i in np.argsort(-detections.scores, kind="stable"):
        candidates = np.flatnonzero((gt_labels == detections.labels[i]) & ~gt_ok)
        if candidates.size == 0:
            continue
        distance = np.hypot(*(gt_xy[candidates] - detections.boxes[i, :2]).T)
        best = int(np.argmin(distance))
        if distance[best] <= match_m:
            det_ok[i] = True
            gt_ok[candidates[best]] = True
    return det_ok, gt_ok


@dataclass
class CalibrationCounts:
    """Running counts for :func:`fit_calibration` (add frames, then :meth:`calibration`)."""

    num_classes: int = 3
    match_m: float = 2.0

    def __post_init__(self) -> None:
        bins, rows, cols = len(SCORE_EDGES) - 1, len(REGION_EDGES_X) - 1, len(REGION_EDGES_Y) - 1
        self.detections = np.zeros((self.num_classes, bins))
        self.true = np.zeros((self.num_classes, bins))
        self.objects = np.zeros((self.num_classes, rows, cols))
        self.found = np.zeros((self.num_classes, rows, cols))

    def add(self, detections: Detections, gt_xy: np.ndarray, gt_labels: np.ndarray) -> None:
        """Count one frame."""
        det_ok, gt_ok = match_detections(detections, gt_xy, gt_labels, self.match_m)
        bins = np.clip(
            np.searchsorted(SCORE_EDGES, detections.scores, side="right") - 1,
            0,
            self.detections.shape[1] - 1,
        )
        np.add.at(self.detections, (detections.labels, bins), 1.0)
        np.add.at(self.true, (detections.labels[det_ok], bins[det_ok]), 1.0)
        i = np.searchsorted(REGION_EDGES_X, gt_xy[:, 0], side="right") - 1
        j = np.searchsorted(REGION_EDGES_Y, gt_xy[:, 1], side="right") - 1
        inside = (i >= 0) & (i < self.objects.shape[1]) & (j >= 0) & (j < self.objects.shape[2])
        labels = gt_labels[inside]
        np.add.at(self.objects, (labels, i[inside], j[inside]), 1.0)
        ok = gt_ok[inside]
        np.add.at(self.found, (labels[ok], i[inside][ok], j[inside][ok]), 1.0)

    def calibration(self) -> Calibration:
        """The calibration of the frames counted so far."""
        rate = np.divide(
            self.true, self.detections, out=np.zeros_like(self.true), where=self.detections > 0
        )
        precision = np.stack([isotonic(r, n) for r, n in zip(rate, self.detections, strict=True)])
        total = self.detections.sum(axis=1)
        prior = np.divide(
            self.true.sum(axis=1), total, out=np.full(len(total), 0.5), where=total > 0
        )
        detection = self.found / (self.objects + 1.0)
        return Calibration(
            score_edges=SCORE_EDGES.copy(),
            precision=precision,
            prior=prior,
            region_edges_x=REGION_EDGES_X.copy(),
            region_edges_y=REGION_EDGES_Y.copy(),
            detection=detection,
        )


def fit_calibration(
    frames: Iterable[tuple[Detections, np.ndarray, np.ndarray]],
    num_classes: int = 3,
    match_m: float = 2.0,
) -> Calibration:
    """The calibration of a model from ``(detections, gt_xy, gt_labels)`` per frame."""
    counts = CalibrationCounts(num_classes, match_m)
    for detections, gt_xy, gt_labels in frames:
        counts.add(detections, gt_xy, gt_labels)
    return counts.calibration()


@dataclass(frozen=True)
class DecisionCalibration:
    """Per model (by name): its calibration and WBF weight (its training-drive mAP).

    The JSON of ``fusionrt train calibrate``: ``{"drives": [...], "models": {NAME:
    {"wbf_weight": w, "calibration": {...}}}}``; the runtime's fusers read it too.
    """

    calibration: dict[str, Calibration]
    weights: dict[str, float]
    drives: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "drives": list(self.drives),
            "models": {
                s: {"wbf_weight": self.weights[s], "calibration": c.to_dict()}
                for s, c in self.calibration.items()
            },
        }

    @classmethod
    def load(cls, path: Path) -> DecisionCalibration:
        """Read a file of ``fusionrt train calibrate`` (``ConfigError`` naming it if bad)."""
        try:
            d = json.loads(Path(path).read_text())
            models = d["models"]
            return cls(
                {s: Calibration.from_dict(m["calibration"]) for s, m in models.items()},
                {s: float(m["wbf_weight"]) for s, m in models.items()},
                tuple(d.get("drives", ())),
            )
        except FileNotFoundError:
            raise ConfigError("decision calibration not found", file=str(path)) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"not a decision calibration (fusionrt train calibrate): {exc!r}"[:200],
                file=str(path),
            ) from None
