"""Ground truth found by stamp (at rest and streamed) and the run's frame-by-frame mAP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.evaluation import FrameResult, detection_targets, mean_average_precision
from fusionrt.runtime.geometry import BevGrid
from fusionrt.runtime.messages import CLASS_NAMES, Detections, RawRecord
from fusionrt.runtime.truth import (
    GroundTruthBoxes,
    IndexedGroundTruth,
    RunEvaluator,
    StreamedGroundTruth,
    nearest_stamp,
)

BEV = BevGrid(x_range=(-12.0, 52.0), y_range=(-32.0, 32.0))
TOLERANCE_NS = 20_000_000


def _truth(stamp_ns: int, xy: list[tuple[float, float]]) -> GroundTruthBoxes:
    return GroundTruthBoxes.from_lists(
        stamp_ns,
        [[x, y, 0.8, 4.0, 1.8, 1.5, 0.0] for x, y in xy],
        [0] * len(xy),
        [1.0] * len(xy),
    )


def _detections(stamp_ns: int, xy: list[tuple[float, float]], scores: list[float]) -> Detections:
    boxes = np.asarray([[x, y, 0.8, 4.0, 1.8, 1.5, 0.0] for x, y in xy], np.float32)
    return Detections(
        stamp_ns,
        boxes.reshape(-1, 7),
        np.asarray(scores, np.float32),
        np.zeros(len(xy), np.int64),
    )


def _brute_nearest(stamps: list[int], stamp_ns: int, tolerance_ns: int) -> int | None:
    best = None
    for index, stamp in enumerate(stamps):
        distance = abs(stamp - stamp_ns)
        if distance <= tolerance_ns and (best is None or distance < best[0]):
            best = (distance, index)
    return None if best is None else best[1]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-(10**12), 10**12), max_size=60, unique=True),
    st.integers(-(2 * 10**12), 2 * 10**12),
    st.integers(0, 10**12),
)
def test_nearest_stamp_is_the_brute_force_nearest(
    stamps: list[int], stamp_ns: int, tolerance_ns: int
) -> None:
    stamps.sort()
    assert nearest_stamp(stamps, stamp_ns, tolerance_ns) == _brute_nearest(
        stamps, stamp_ns, tolerance_ns
    )


def test_indexed_ground_truth_loads_only_what_is_asked_and_keeps_a_few() -> None:
    stamps = [i * 100_000_000 for i in range(36_000)]  # an hour at 10 Hz
    loaded: list[int] = []

    def load(stamp_ns: int) -> GroundTruthBoxes:
        loaded.append(stamp_ns)
        return _truth(stamp_ns, [(10.0, 0.0)])

    truth = IndexedGroundTruth(reversed(stamps), load, cache_size=2)
    assert truth.count == 36_000 and not loaded  # nothing read up front
    assert truth.near(1_234_500_000, 30_000_000) is None  # 34.5 ms from 1.2 s
    found = truth.near(1_250_000_000, 60_000_000)  # 50 ms from both: the earlier wins
    assert found is not None and found.stamp_ns == 1_200_000_000
    assert truth.near(1_250_000_000, 60_000_000) is found and loaded == [1_200_000_000]
    truth.near(0, 0)
    truth.near(100_000_000, 0)
    truth.near(1_200_000_000, 0)  # pushed out of the 2-entry cache: read again
    assert loaded == [1_200_000_000, 0, 100_000_000, 1_200_000_000]


def test_indexed_ground_truth_raises_once_for_a_broken_file() -> None:
    def load(stamp_ns: int) -> GroundTruthBoxes:
        raise ConfigError("line 3 is not a KITTI label", path="label_2/000008.txt")

    truth = IndexedGroundTruth([800_000_000], load)
    with pytest.raises(ConfigError, match="KITTI label"):
        truth.near(800_000_000, 0)
    assert truth.near(800_000_000, 0) is None  # reported once, then no ground truth there


def _record(stamp_ns: int, xy: list[tuple[float, float]]) -> RawRecord:
    data = np.asarray([stamp_ns, *[v for p in xy for v in p]], np.float64).tobytes()
    return RawRecord("/gt", stamp_ns, data, "test/gt")


def _decode(record: RawRecord) -> GroundTruthBoxes:
    values = np.frombuffer(bytes(record.data), np.float64)
    return _truth(int(values[0]), [tuple(p) for p in values[1:].reshape(-1, 2)])


def test_streamed_frames_wait_until_their_ground_truth_is_settled() -> None:
    truth = StreamedGroundTruth(["/gt"], _decode)
    evaluator = RunEvaluator(truth, BEV, CLASS_NAMES)
    evaluator.add_record(_record(1_000_000_000, [(10.0, 0.0)]))
    evaluator.add_frame(_detections(1_010_000_000, [(10.0, 0.0)], [0.9]))
    # a ground truth 20 ms later may still come nearer (at 1.015 s): the frame waits
    assert evaluator.accumulator.frames == 0
    evaluator.add_record(_record(1_015_000_000, [(30.0, 0.0)]))
    assert evaluator.accumulator.frames == 0
    evaluator.add_record(_record(1_100_000_000, []))
    assert evaluator.accumulator.frames == 1
    report = evaluator.finish()
    assert report is not None and report.map["car"] == 0.0  # matched to the nearer, at 30 m


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3_000),  # ground-truth stamp, ms
            st.lists(st.tuples(st.floats(0, 40), st.floats(-20, 20)), max_size=3),
        ),
        min_size=1,
        max_size=12,
        unique_by=lambda t: t[0],
    ),
    st.lists(st.integers(0, 3_000), min_size=1, max_size=12),
    st.integers(0, 2**32 - 1),
)
def test_streamed_evaluation_equals_scoring_the_whole_run_at_once(
    truths: list[tuple[int, list[tuple[float, float]]]], frames_ms: list[int], seed: int
) -> None:
    """Ground truth and frames interleaved as a replay delivers them (each frame written at
    most a few records after its stamp), the window bounded: the same mAP as matching every
    frame with the nearest ground truth of the whole drive."""
    rng = np.random.default_rng(seed)
    truths.sort()
    frames = []
    for stamp in sorted(frames_ms):
        count = int(rng.integers(0, 4))
        xy = [(float(x), float(y)) for x, y in rng.uniform((-5, -20), (45, 20), (count, 2))]
        frames.append(_detections(stamp * 1_000_000, xy, rng.uniform(0.1, 1, count).tolist()))
    # expected: each frame against the nearest ground truth within the tolerance, all at once
    stamps = [t * 1_000_000 for t, _ in truths]
    expected = []
    for det in frames:
        index = _brute_nearest(stamps, det.stamp_ns, TOLERANCE_NS)
        if index is None:
            continue
        gt = _truth(stamps[index], truths[index][1])
        keep = detection_targets(gt.boxes, gt.visibility, BEV)
        expected.append(
            FrameResult(
                det.boxes[:, :2], det.labels, det.scores, gt.boxes[keep, :2], gt.labels[keep]
            )
        )
    # streamed: records in stamp order, frames written once the replay is 50 ms past them
    streamed = StreamedGroundTruth(["/gt"], _decode, window_ns=200_000_000)
    evaluator = RunEvaluator(streamed, BEV, CLASS_NAMES, keep=True)
    pending = list(frames)
    for stamp, xy in truths:
        while pending and pending[0].stamp_ns + 50_000_000 <= stamp * 1_000_000:
            evaluator.add_frame(pending.pop(0))
        evaluator.add_record(_record(stamp * 1_000_000, xy))
    for det in pending:
        evaluator.add_frame(det)
    report = evaluator.finish()
    if not expected:
        assert report is None
        return
    assert report is not None
    assert dict(report.map) == dict(mean_average_precision(expected).map)
    assert [t.stamp_ns for t in evaluator.kept_truth()] == sorted(
        {
            stamps[i]
            for d in frames
            if (i := _brute_nearest(stamps, d.stamp_ns, TOLERANCE_NS)) is not None
        }
    )


def test_a_looping_recording_finishes_the_old_lap_first() -> None:
    truth = StreamedGroundTruth(["/gt"], _decode, window_ns=1_000_000_000)
    evaluator = RunEvaluator(truth, BEV, CLASS_NAMES)
    evaluator.add_record(_record(5_000_000_000, [(10.0, 0.0)]))
    evaluator.add_frame(_detections(5_000_000_000, [(10.0, 0.0)], [0.9]))  # waits
    evaluator.add_record(_record(1_000_000_000, [(30.0, 0.0)]))  # the bag starts again
    report = evaluator.finish()
    assert report is not None and report.frames == 1 and report.map["car"] == 1.0
