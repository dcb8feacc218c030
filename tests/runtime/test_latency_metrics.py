"""Latency recording and the sample replay."""

from __future__ import annotations

import pytest

from fusionrt.runtime.metrics import LatencyRecorder
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.sample_replay import replay_samples


def test_percentiles_of_known_samples():
    recorder = LatencyRecorder()
    for ms in range(1, 101):
        recorder.add("infer", ms * 1_000_000)
    row = recorder.summary()["infer"]
    assert row["count"] == 100
    assert row["p50_ms"] == pytest.approx(50.5)
    assert row["p99_ms"] == pytest.approx(99.01)
    assert row["max_ms"] == 100.0
    assert "infer" in recorder.table().splitlines()[2]


def test_disabled_recorder_records_nothing():
    recorder = LatencyRecorder(enabled=False)
    with recorder.time("decode.camera"):
        pass
    assert recorder.summary() == {}


def test_time_context_records_even_when_the_body_raises():
    recorder = LatencyRecorder()
    with pytest.raises(ValueError), recorder.time("preprocess.lidar"):
        raise ValueError("bad")
    assert recorder.summary()["preprocess.lidar"]["count"] == 1


def test_replay_samples_times_every_installed_sensor():
    registry = Registry.create()
    rows, recorder = replay_samples(registry, repeats=2)
    names = {row[0] for row in rows}
    assert names == {c.name for c in registry.components("sensor")}
    assert "ultrasonic" in names
    (row,) = [r for r in rows if r[0] == "ultrasonic"]
    assert row[2] == "3" and "ultrasonic_bev 1x160x160" in row[3]
    assert recorder.summary()["decode.ultrasonic"]["count"] == 6


def test_memory_is_bounded_and_exact_figures_stay_exact():
    recorder = LatencyRecorder(reservoir_size=100)
    for ns in range(1, 100_001):
        recorder.add("infer", ns)
    assert len(recorder.samples_ns()["infer"]) == 100
    assert recorder.counts()["infer"] == 100_000
    assert recorder.totals_ns()["infer"] == 100_000 * 100_001 // 2
    row = recorder.summary()["infer"]
    assert row["count"] == 100_000
    assert row["max_ms"] == pytest.approx(0.1)
    # a uniform sample: the median of 1..100000 ns is near 0.05 ms
    assert 0.035 < row["p50_ms"] < 0.065


def test_stages_with_equal_counts_keep_paired_samples():
    recorder = LatencyRecorder(reservoir_size=50)
    for i in range(5_000):
        recorder.add("end_to_end", 10 * i + 3)
        recorder.add("sync_hold", 10 * i)
    samples = recorder.samples_ns()
    pairs = zip(samples["end_to_end"], samples["sync_hold"], strict=True)
    assert all(e2e - hold == 3 for e2e, hold in pairs)
