"""Ground truth during a run: a bounded window of it, and mAP computed as frames are written.

A run of hours must not keep every ground-truth message, nor every frame's detections, to
score itself at the end. :class:`GroundTruthWindow` keeps the ground truth stamped within
``window_ns`` of the newest one received (a frame is written long before its ground truth
leaves that window), answers "the ground truth nearest this stamp" by bisection, and forgets
the rest; a recording that loops (stamps jump back) simply fills it anew. :class:`RunEvaluator`
scores each written frame against it with :class:`~fusionrt.runtime.evaluation.MapAccumulator`,
holding a frame back only until ground truth later than its stamp has arrived (or the input
ended), so the mAP equals the one computed over the whole run at once.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fusionrt.runtime import evaluation
from fusionrt.runtime.geometry import BevGrid
from fusionrt.runtime.messages import Detections

__all__ = ["GroundTruthBoxes", "GroundTruthWindow", "RunEvaluator"]

#: Ground truth older (or newer) than this relative to the newest received is forgotten.
WINDOW_NS = 10_000_000_000


@dataclass(frozen=True)
class GroundTruthBoxes:
    """Ground truth at one stamp (common clock): N×7 boxes (ego frame), class indices and the
    unoccluded fraction of each actor (1 where the recording does not say)."""

    stamp_ns: int
    boxes: np.ndarray
    labels: np.ndarray
    visibility: np.ndarray


class GroundTruthWindow:
    """The ground truth of the last ``window_ns`` of drive, searchable by stamp (thread-safe)."""

    def __init__(self, window_ns: int = WINDOW_NS) -> None:
        self.window_ns = window_ns
        self.received = 0
        self.newest_ns: int | None = None  # stamp of the most recently received
        self._stamps: list[int] = []
        self._boxes: dict[int, GroundTruthBoxes] = {}
        self._lock = threading.Lock()

    def add(self, truth: GroundTruthBoxes) -> None:
        """Keep ``truth`` and forget what is now outside the window around it."""
        stamp = truth.stamp_ns
        with self._lock:
            self.received += 1
            self.newest_ns = stamp
            if stamp not in self._boxes:
                bisect.insort(self._stamps, stamp)
            self._boxes[stamp] = truth
            low = bisect.bisect_left(self._stamps, stamp - self.window_ns)
            high = bisect.bisect_right(self._stamps, stamp + self.window_ns)
            for old in self._stamps[:low] + self._stamps[high:]:
                del self._boxes[old]
            del self._stamps[high:]
            del self._stamps[:low]

    def nearest(self, stamp_ns: int, tolerance_ns: int) -> GroundTruthBoxes | None:
        """The kept ground truth nearest ``stamp_ns``, if within ``tolerance_ns``."""
        with self._lock:
            stamps = self._stamps
            index = bisect.bisect_left(stamps, stamp_ns)
            best = min(
                stamps[max(index - 1, 0) : index + 1],
                key=lambda s: (abs(s - stamp_ns), s),
                default=None,
            )
            if best is None or abs(best - stamp_ns) > tolerance_ns:
                return None
            return self._boxes[best]

    def __len__(self) -> int:
        return len(self._stamps)


class RunEvaluator:
    """nuScenes-style mAP of a run, frame by frame (see the module docstring; thread-safe:
    ground truth comes from the reading thread, frames from the writing one)."""

    def __init__(
        self,
        truth: GroundTruthWindow,
        bev: BevGrid,
        class_names: Sequence[str],
        tolerance_ns: int = evaluation.GT_TOLERANCE_NS,
    ) -> None:
        self.truth = truth
        self.bev = bev
        self.tolerance_ns = tolerance_ns
        self.accumulator = evaluation.MapAccumulator(class_names)
        self._pending: deque[Detections] = deque()
        self._lock = threading.Lock()

    def add_truth(self, truth: GroundTruthBoxes) -> None:
        """Keep one ground-truth message; score the frames it completes."""
        with self._lock:
            newest = self.truth.newest_ns
            if newest is not None and truth.stamp_ns < newest - self.truth.window_ns:
                self._score_ready(final=True)  # the recording looped: finish the old lap
            self.truth.add(truth)
            self._score_ready(final=False)

    def add_frame(self, detections: Detections) -> None:
        """Score one written frame, now or once ground truth past its stamp has arrived."""
        with self._lock:
            self._pending.append(detections)
            self._score_ready(final=False)

    def finish(self) -> evaluation.MapReport | None:
        """Score what is pending; the report, ``None`` when no frame had ground truth."""
        with self._lock:
            self._score_ready(final=True)
            return self.accumulator.report() if self.accumulator.frames else None

    def _score_ready(self, *, final: bool) -> None:
        while self._pending:
            stamp = self._pending[0].stamp_ns
            newest = self.truth.newest_ns
            if not final and (newest is None or newest < stamp + self.tolerance_ns):
                return  # a nearer ground truth may still come
            self._score(self._pending.popleft())

    def _score(self, detections: Detections) -> None:
        truth = self.truth.nearest(detections.stamp_ns, self.tolerance_ns)
        if truth is None:
            return  # frames without ground truth at their stamp are left out, as in eval
        keep = evaluation.detection_targets(truth.boxes, truth.visibility, self.bev)
        self.accumulator.add(
            evaluation.FrameResult(
                pred_xy=detections.boxes[:, :2],
                pred_labels=detections.labels,
                pred_scores=detections.scores,
                gt_xy=truth.boxes[keep, :2],
                gt_labels=truth.labels[keep],
            )
        )
