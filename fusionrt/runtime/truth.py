"""Ground truth during a run: what a source provides, found by stamp, and mAP computed as
frames are written.

A source gives its recording's ground truth (:meth:`Source.ground_truth
<fusionrt.runtime.components.Source.ground_truth>`) as a :class:`GroundTruthSource`: boxes in
the rig's ego frame at stamps of the common clock, labels indexing the model's class names,
answered by :meth:`~GroundTruthSource.near`. Two kinds exist, because recordings keep it in
two ways:

* **at rest** (:class:`IndexedGroundTruth`): files the source can read for any stamp (KITTI
  ``label_2``, nuScenes annotations). A sorted stamp index answers ``near`` by bisection and
  only the frames asked for are loaded, a few kept in a small cache;
* **in the stream** (:class:`StreamedGroundTruth`): messages among the recording's own records
  (the simulator's topic in a bag). Reading them by stamp would mean a second pass over the
  file, so the run hands it each record of its ``topics`` as the replay reaches it; it keeps
  those stamped within ``window_ns`` of the newest (a frame is written long before its ground
  truth leaves that window) and forgets the rest: bounded memory for an hour-long drive, each
  message decoded once, none before the replay reaches it.

:class:`RunEvaluator` scores each written frame against it with
:class:`~fusionrt.runtime.evaluation.MapAccumulator`, holding a frame back only while a nearer
ground truth may still arrive in the stream (never for ground truth at rest), so the mAP equals
the one computed over the whole run at once. A recording that loops (stamps jump back) finishes
the old lap's frames before the window fills anew.
"""

from __future__ import annotations

import bisect
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fusionrt.runtime import evaluation
from fusionrt.runtime.geometry import BevGrid
from fusionrt.runtime.messages import Detections, RawRecord

__all__ = [
    "WINDOW_NS",
    "GroundTruthBoxes",
    "GroundTruthSource",
    "GroundTruthWindow",
    "IndexedGroundTruth",
    "RunEvaluator",
    "StreamedGroundTruth",
    "nearest_stamp",
]

#: Streamed ground truth older (or newer) than this relative to the newest received is forgotten.
WINDOW_NS = 10_000_000_000


@dataclass(frozen=True)
class GroundTruthBoxes:
    """Ground truth at one stamp (common clock): N×7 boxes (ego frame: centre x, y, z, length,
    width, height, yaw — the convention of :class:`~fusionrt.Detections`), class indices into
    the model's class names and the unoccluded fraction of each actor (1 where the recording
    does not say)."""

    stamp_ns: int
    boxes: np.ndarray
    labels: np.ndarray
    visibility: np.ndarray

    @classmethod
    def from_lists(
        cls,
        stamp_ns: int,
        boxes: Iterable[Sequence[float]],
        labels: Iterable[int],
        visibility: Iterable[float],
    ) -> GroundTruthBoxes:
        """Boxes, labels and visibilities as built up in lists (any may be empty)."""
        return cls(
            int(stamp_ns),
            np.asarray(list(boxes), np.float32).reshape(-1, 7),
            np.asarray(list(labels), np.int64).reshape(-1),
            np.asarray(list(visibility), np.float32).reshape(-1),
        )


def nearest_stamp(stamps: Sequence[int], stamp_ns: int, tolerance_ns: int) -> int | None:
    """Index of the stamp of sorted ``stamps`` nearest ``stamp_ns`` (the earlier on a tie),
    ``None`` when none lies within ``tolerance_ns``; O(log n) by bisection."""
    index = bisect.bisect_left(stamps, stamp_ns)
    best = None
    for candidate in (index - 1, index):
        if 0 <= candidate < len(stamps):
            distance = abs(stamps[candidate] - stamp_ns)
            if distance <= tolerance_ns and (best is None or distance < best[0]):
                best = (distance, candidate)
    return None if best is None else best[1]


class GroundTruthSource(ABC):
    """A recording's ground truth, found by stamp (what ``Source.ground_truth`` returns).

    Implementations are :class:`IndexedGroundTruth` (at rest) and :class:`StreamedGroundTruth`
    (in the record stream); see the module docstring. Thread-safe: a run looks up from its
    sink thread while its reading thread may add.
    """

    @abstractmethod
    def near(self, stamp_ns: int, tolerance_ns: int) -> GroundTruthBoxes | None:
        """The ground truth nearest ``stamp_ns`` within ``tolerance_ns``, if any is known.

        Raises a :class:`~fusionrt.runtime.errors.FusionError` naming the file when the ground
        truth there cannot be read (it costs that frame's evaluation only).
        """

    @property
    @abstractmethod
    def count(self) -> int:
        """Ground-truth stamps known so far (0: the drive has none, or none arrived yet)."""

    def settled(self, stamp_ns: int, tolerance_ns: int) -> bool:
        """Whether :meth:`near` gives its final answer for ``stamp_ns`` (no nearer ground
        truth can arrive later). Ground truth at rest always does."""
        return True


class IndexedGroundTruth(GroundTruthSource):
    """Ground truth at rest: a sorted index of ``stamps_ns`` and ``load(stamp_ns)`` reading one.

    ``load`` is called only for the stamps :meth:`near` selects; the last ``cache_size``
    results are kept (a sink and the evaluator ask for the same frame). A stamp whose ``load``
    raised is not read again: it raises once, then has no ground truth.
    """

    def __init__(
        self,
        stamps_ns: Iterable[int],
        load: Callable[[int], GroundTruthBoxes],
        cache_size: int = 8,
    ) -> None:
        self._stamps = sorted({int(s) for s in stamps_ns})
        self._load = load
        self._cache: OrderedDict[int, GroundTruthBoxes] = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._failed: set[int] = set()
        self._lock = threading.Lock()

    @property
    def stamps_ns(self) -> list[int]:
        """The stamps that have ground truth, sorted."""
        return list(self._stamps)

    @property
    def count(self) -> int:
        return len(self._stamps)

    def near(self, stamp_ns: int, tolerance_ns: int) -> GroundTruthBoxes | None:
        index = nearest_stamp(self._stamps, stamp_ns, tolerance_ns)
        if index is None:
            return None
        stamp = self._stamps[index]
        with self._lock:
            if stamp in self._failed:
                return None
            cached = self._cache.get(stamp)
            if cached is not None:
                self._cache.move_to_end(stamp)
                return cached
            try:
                truth = self._load(stamp)
            except BaseException:
                self._failed.add(stamp)
                raise
            self._cache[stamp] = truth
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return truth


class GroundTruthWindow:
    """The ground truth of the last ``window_ns`` of drive, searchable by stamp (thread-safe)."""

    def __init__(self, window_ns: int = WINDOW_NS) -> None:
        self.window_ns = window_ns
        self.received = 0
        self.newest_ns: int | None = None  # stamp of the most recently received
        self._stamps: list[int] = []
        self._boxes: dict[int, GroundTruthBoxes] = {}
        self._lock = threading.Lock()

    def add(self, truth: GroundTruthBoxes, *, forget: bool = True) -> None:
        """Keep ``truth`` and (unless ``forget`` is false: :meth:`forget` later) forget what
        is now outside the window around it."""
        stamp = truth.stamp_ns
        with self._lock:
            self.received += 1
            self.newest_ns = stamp
            if stamp not in self._boxes:
                bisect.insort(self._stamps, stamp)
            self._boxes[stamp] = truth
        if forget:
            self.forget()

    def forget(self) -> None:
        """Forget the ground truth outside the window around the newest received."""
        with self._lock:
            if self.newest_ns is None:
                return
            low = bisect.bisect_left(self._stamps, self.newest_ns - self.window_ns)
            high = bisect.bisect_right(self._stamps, self.newest_ns + self.window_ns)
            for old in self._stamps[:low] + self._stamps[high:]:
                del self._boxes[old]
            del self._stamps[high:]
            del self._stamps[:low]

    def nearest(self, stamp_ns: int, tolerance_ns: int) -> GroundTruthBoxes | None:
        """The kept ground truth nearest ``stamp_ns``, if within ``tolerance_ns``."""
        with self._lock:
            index = nearest_stamp(self._stamps, stamp_ns, tolerance_ns)
            return None if index is None else self._boxes[self._stamps[index]]

    def __len__(self) -> int:
        return len(self._stamps)


class StreamedGroundTruth(GroundTruthSource):
    """Ground truth carried by records of ``topics`` in the source's own stream.

    The run passes each such record to :meth:`decode` (the source's ``decode``: bytes to
    :class:`GroundTruthBoxes`; it raises a ``DecodeError`` for a broken message) and the result
    to :meth:`keep`, then, once the frames it settles are scored, calls :meth:`forget`;
    :meth:`near` answers from the last ``window_ns`` kept.
    """

    def __init__(
        self,
        topics: Iterable[str],
        decode: Callable[[RawRecord], GroundTruthBoxes],
        window_ns: int = WINDOW_NS,
    ) -> None:
        self.topics: tuple[str, ...] = tuple(topics)
        self._decode = decode
        self.window = GroundTruthWindow(window_ns)

    @property
    def window_ns(self) -> int:
        return self.window.window_ns

    @property
    def newest_ns(self) -> int | None:
        """Stamp of the ground truth kept last (``None`` before the first)."""
        return self.window.newest_ns

    @property
    def count(self) -> int:
        return self.window.received

    def decode(self, record: RawRecord) -> GroundTruthBoxes:
        """One record of :attr:`topics` as boxes (not kept: see :meth:`keep`)."""
        return self._decode(record)

    def keep(self, truth: GroundTruthBoxes) -> None:
        """Add decoded ground truth to the window (nothing is forgotten yet)."""
        self.window.add(truth, forget=False)

    def forget(self) -> None:
        """Forget what lies outside the window around the newest ground truth kept."""
        self.window.forget()

    def near(self, stamp_ns: int, tolerance_ns: int) -> GroundTruthBoxes | None:
        return self.window.nearest(stamp_ns, tolerance_ns)

    def settled(self, stamp_ns: int, tolerance_ns: int) -> bool:
        """Final once ground truth stamped past ``stamp_ns + tolerance_ns`` has arrived (the
        stream is in stamp order)."""
        newest = self.newest_ns
        return newest is not None and newest >= stamp_ns + tolerance_ns


class RunEvaluator:
    """nuScenes-style mAP of a run, frame by frame (see the module docstring; thread-safe:
    streamed ground truth comes from the reading thread, frames from the writing one).

    ``on_error(stamp_ns, error)`` is called when the ground truth of a frame cannot be read;
    that frame is then left out, as frames without ground truth are. With ``keep``, the ground
    truth each scored frame was matched with is kept (:meth:`kept_truth`; the fleet scores a
    drive's chunks together later).
    """

    def __init__(
        self,
        truth: GroundTruthSource,
        bev: BevGrid,
        class_names: Sequence[str],
        *,
        tolerance_ns: int = evaluation.GT_TOLERANCE_NS,
        on_error: Callable[[int, Exception], None] | None = None,
        keep: bool = False,
    ) -> None:
        self.truth = truth
        self.bev = bev
        self.tolerance_ns = tolerance_ns
        self.on_error = on_error
        self.accumulator = evaluation.MapAccumulator(class_names)
        self._pending: deque[Detections] = deque()
        self._kept: dict[int, GroundTruthBoxes] | None = {} if keep else None
        self._lock = threading.Lock()

    def add_record(self, record: RawRecord) -> GroundTruthBoxes:
        """Decode and keep one record of streamed ground truth; score the frames it settles.

        Raises what the source's decode raises (the record is then ignored).
        """
        truth = self.truth
        if not isinstance(truth, StreamedGroundTruth):
            raise TypeError(f"{type(truth).__name__} is not fed records")
        boxes = truth.decode(record)
        with self._lock:
            newest = truth.newest_ns
            if newest is not None and boxes.stamp_ns < newest - truth.window_ns:
                self._score_ready(final=True)  # the recording looped: finish the old lap
            truth.keep(boxes)
            self._score_ready(final=False)
            truth.forget()  # only now: a frame just settled may match one about to go
        return boxes

    def add_frame(self, detections: Detections) -> None:
        """Score one written frame, now or once its ground truth is settled."""
        with self._lock:
            self._pending.append(detections)
            self._score_ready(final=False)

    def finish(self) -> evaluation.MapReport | None:
        """Score what is pending; the report, ``None`` when no frame had ground truth."""
        with self._lock:
            self._score_ready(final=True)
            return self.accumulator.report() if self.accumulator.frames else None

    def kept_truth(self) -> list[GroundTruthBoxes]:
        """With ``keep``: the ground truth the frames scored so far were matched with, once
        per stamp, in stamp order."""
        with self._lock:
            kept = self._kept or {}
            return [kept[stamp] for stamp in sorted(kept)]

    def _score_ready(self, *, final: bool) -> None:
        while self._pending:
            stamp = self._pending[0].stamp_ns
            if not final and not self.truth.settled(stamp, self.tolerance_ns):
                return  # a nearer ground truth may still come
            self._score(self._pending.popleft())

    def _score(self, detections: Detections) -> None:
        try:
            truth = self.truth.near(detections.stamp_ns, self.tolerance_ns)
        except Exception as exc:  # a broken label file costs this frame's evaluation only
            if self.on_error is None:
                raise
            self.on_error(detections.stamp_ns, exc)
            return
        if truth is None:
            return  # frames without ground truth at their stamp are left out, as in eval
        if self._kept is not None:
            self._kept[truth.stamp_ns] = truth
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
