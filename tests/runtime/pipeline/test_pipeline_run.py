"""End to end on a simulated ROS 2 drive: determinism, workers, faults, masks, hooks, drops."""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pipeline_support import make_drive, pipeline_dict, write_pipeline

from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.errors import EngineError, SinkError
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import PluginInfo
from fusionrt.runtime.report import MAP_KEYS, PERCENTILE_KEYS, build_report
from fusionrt.sim.conditions import Failure


class Observer:
    """A plugin that records the lifecycle and observer hook calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.faults: list[tuple[str, str]] = []
        self.masks: list[dict[str, bool]] = []

    @hookimpl
    def fusionrt_configure(self, config):
        self.calls.append("configure")

    @hookimpl
    def fusionrt_unconfigure(self, config):
        self.calls.append("unconfigure")

    @hookimpl
    def fusionrt_frame_done(self, frame, detections, timings_ms):
        self.calls.append("frame")
        self.masks.append({name: m is not None for name, m in frame.messages.items()})

    @hookimpl
    def fusionrt_sensor_fault(self, sensor, stamp_ns, reason, detail):
        self.faults.append((sensor, reason))


def _run(tmp_path: Path, drive: Path, registry, data: dict, **options):
    config = load_pipeline(write_pipeline(tmp_path / "pipeline.yaml", data))
    observer = Observer()
    registry.register(observer, PluginInfo("observer", "tests", ""))
    out = tmp_path / "out"
    result = Pipeline(config, drive, registry, RunOptions(out_dir=out, **options)).run()
    return result, observer, out


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def _outputs(lines: list[dict]) -> list:
    return [(d["stamp_ns"], d["detections"], d["missing"]) for d in lines]


def test_end_to_end_is_deterministic_and_independent_of_the_workers(tmp_path, drive, registry):
    runs = []
    for index, (workers, infer_workers) in enumerate(((1, 1), (4, 3), (4, 3))):
        result, observer, out = _run(
            tmp_path / str(index),
            drive,
            _fresh(),
            pipeline_dict(),
            workers=workers,
            infer_workers=infer_workers,
        )
        runs.append(_outputs(_lines(out)))
        assert result.frames == len(runs[-1]) >= 15  # a lidar sweep every 0.1 s
    assert runs[0] == runs[1] == runs[2]
    assert any(stamp_dets[1] for stamp_dets in runs[0])  # the model saw the lidar
    report = build_report(result)
    assert set(report) >= {
        "frames",
        "dropped",
        "backend",
        "realtime_factor",
        "stages",
        "end_to_end",
        "map",
    }
    assert report["backend"] == "onnxruntime" and report["dropped"] == 0
    for stage in (
        "decode.camera",
        "decode.lidar",
        "preprocess.lidar",
        "infer",
        "postprocess",
        "sink",
    ):
        assert list(report["stages"][stage]) == list(PERCENTILE_KEYS), stage
    assert report["end_to_end"]["p50_ms"] > 0 and list(report["map"]) == list(MAP_KEYS)
    assert report["peak_rss_mb"] > 0 and report["startup_s"] > 0
    assert observer.calls[0] == "configure" and observer.calls[-1] == "unconfigure"
    assert observer.calls.count("frame") == result.frames
    assert result.ground_truth == [] and result.detections == []  # a run keeps neither
    assert result.map_report is not None and result.map_report.frames == result.frames


def _fresh():
    from fusionrt.runtime.registry import Registry

    return Registry.create(entry_points=False)


def test_a_sensor_failing_mid_drive_is_masked_counted_and_frames_keep_coming(tmp_path, drive):
    failing = make_drive(tmp_path / "drive", Failure("radar_front", 0.6, 1.4, "silent"))
    healthy, _, _ = _run(tmp_path / "a", drive, _fresh(), pipeline_dict())
    result, observer, out = _run(tmp_path / "b", failing, _fresh(), pipeline_dict())
    assert result.frames == healthy.frames  # no stall: every lidar sweep still makes a frame
    without_radar = [m for m in observer.masks if not m["radar_front"]]
    assert len(without_radar) >= 5 and all(m["lidar_top"] for m in without_radar)
    assert result.missing["radar_front"] == len(without_radar)
    lines = _lines(out)
    assert sum("radar_front" in line["missing"] for line in lines) == len(without_radar)


def test_garbage_bytes_in_one_topic_are_counted_and_the_run_completes(tmp_path, drive):
    broken = make_drive(tmp_path / "drive", Failure("camera_front", 0.5, 1.2, "corrupt"))
    result, observer, _ = _run(tmp_path / "run", broken, _fresh(), pipeline_dict())
    decode_errors = result.faults[("camera_front", "decode_error")]
    assert decode_errors >= 5
    assert observer.faults.count(("camera_front", "decode_error")) == decode_errors
    assert result.frames >= 15
    assert "decode_error" in json.dumps(build_report(result)["faults"])


@pytest.mark.parametrize("infer_workers", [1, 2])
def test_realtime_mode_drops_late_frames_and_counts_them(tmp_path, drive, infer_workers):
    data = pipeline_dict(deadline_ms=1, queue_size=1)
    result, _, out = _run(
        tmp_path, drive, _fresh(), data, realtime=True, rate=50.0, infer_workers=infer_workers
    )
    assert sum(result.dropped.values()) > 0
    assert set(result.dropped) <= {"deadline", "queue_full", "superseded"}
    assert result.frames + sum(result.dropped.values()) >= 15  # formed = written + dropped
    stamps = [line["stamp_ns"] for line in _lines(out)]
    assert len(stamps) == result.frames and stamps == sorted(stamps)  # in order despite drops


def test_realtime_behind_drops_the_oldest_frames_and_latency_stays_bounded(tmp_path, drive):
    """An engine four times too slow for real time: the frames it cannot take are dropped
    oldest first (a newer one waits), so a frame never waits behind a growing backlog. (The
    deadline is set far off: this is the drop that bounds latency without it.)"""
    data = pipeline_dict(queue_size=3, deadline_ms=10_000)
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    sink = CountingSink()
    options = RunOptions(realtime=True, keep_results=True)
    pipeline = Pipeline(config, drive, _fresh(), options, sinks=[sink])
    infer = pipeline.engine.infer

    def slow(feed):
        time.sleep(0.4)  # a frame comes every 0.1 s
        return infer(feed)

    pipeline.engine.infer = slow
    result = _run_in_thread(pipeline)["result"]
    assert result.dropped["superseded"] > 0 and result.frames >= 3
    assert result.frames + sum(result.dropped.values()) >= 15  # formed = written + dropped
    e2e = result.recorder.summary()["end_to_end"]
    assert e2e["max_ms"] < 2000  # waits behind one frame at most, not behind all of them


def test_per_backend_options_reach_only_the_backend_that_runs(tmp_path, drive):
    data = pipeline_dict()
    data["backend"] = {
        "name": "auto",  # onnxruntime here, which has no precision option: given, it would fail
        "per_backend": {"onnxruntime": {"io_binding": True}, "tensorrt": {"precision": "fp16"}},
    }
    config = load_pipeline(write_pipeline(tmp_path / "pipeline.yaml", data))
    pipeline = Pipeline(config, drive, _fresh(), RunOptions(infer_workers=2), sinks=[])
    assert [e.name for e in pipeline.engines] == ["onnxruntime", "onnxruntime"]
    assert all(e.io_binding for e in pipeline.engines)
    assert pipeline.run().frames >= 15  # io-bound engines on two inference threads


def test_max_frames_stops_early(tmp_path, drive):
    result, _, out = _run(tmp_path, drive, _fresh(), pipeline_dict(), max_frames=4)
    assert result.frames == 4 and len(_lines(out)) == 4
    assert np.all(np.diff([d["stamp_ns"] for d in _lines(out)]) > 0)


def test_a_truncated_bag_is_reported_and_what_remains_replays(tmp_path, drive, registry):
    """A recorder killed mid-write: the cut is reported once through the fault hook (even
    though the source finds it while opening) and every complete chunk still replays."""
    cut = tmp_path / "cut"
    cut.mkdir()
    for item in drive.iterdir():
        target = cut / item.name
        if item.is_dir():
            target.mkdir()
            for inner in item.iterdir():
                (target / inner.name).write_bytes(inner.read_bytes())
        else:
            target.write_bytes(item.read_bytes())
    mcap = cut / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])
    result, observer, _ = _run(tmp_path, cut, registry, pipeline_dict())
    assert 0 < result.frames < 20
    truncated = [f for f in observer.faults if f[1] == "truncated"]
    assert len(truncated) == 1
    assert sum(n for (_, reason), n in result.faults.items() if reason == "truncated") == 1


class CountingSink:
    """Counts the frames written; raises on frame ``fail_at`` if given."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.written = 0
        self.fail_at = fail_at

    def write(self, frame, detections, timings_ms) -> None:
        if self.written == self.fail_at:
            raise RuntimeError("disk full")
        self.written += 1

    def close(self) -> None:
        pass


def _run_in_thread(pipeline: Pipeline, timeout_s: float = 120.0):
    """Run in a thread so that a deadlock fails the test instead of hanging it."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = pipeline.run()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "the pipeline did not stop"
    return outcome


def test_a_stalled_inference_thread_keeps_frames_in_flight_bounded(tmp_path, drive):
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", pipeline_dict(queue_size=2)))
    sink = CountingSink()
    options = RunOptions(infer_workers=2, keep_results=True)
    pipeline = Pipeline(config, drive, _fresh(), options, sinks=[sink])
    slow, infer = pipeline.engines[0], pipeline.engines[0].infer
    calls = itertools.count()

    def stall_once(feed):
        if next(calls) == 0:
            time.sleep(0.5)  # the other thread could run through the drive meanwhile
        return infer(feed)

    slow.infer = stall_once
    in_flight = []
    submit = pipeline._submit

    def watched_submit(job):
        going_on = submit(job)
        in_flight.append(pipeline._queued - sink.written)
        return going_on

    pipeline._submit = watched_submit
    result = _run_in_thread(pipeline)["result"]
    assert result.frames == sink.written >= 15
    assert max(in_flight) <= 2 + 2  # queue_size + infer_workers
    stamps = [d.stamp_ns for d in result.detections]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("where", ["sink", "engine"])
def test_an_error_mid_run_stops_every_thread_and_is_raised(tmp_path, drive, where):
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", pipeline_dict()))
    sink = CountingSink(fail_at=5 if where == "sink" else None)
    pipeline = Pipeline(config, drive, _fresh(), RunOptions(infer_workers=2), sinks=[sink])
    if where == "engine":
        engine, infer = pipeline.engines[1], pipeline.engines[1].infer
        calls = itertools.count()

        def fail_third(feed):
            if next(calls) == 2:
                raise RuntimeError("CUDA error: an illegal memory access")
            return infer(feed)

        engine.infer = fail_third
    outcome = _run_in_thread(pipeline)
    error = outcome.get("error")
    if where == "sink":  # one line naming the sink, the cause kept
        assert isinstance(error, SinkError) and error.context["sink"] == "CountingSink"
        assert "RuntimeError: disk full" in str(error)
    else:
        assert isinstance(error, EngineError) and error.context["backend"] == "onnxruntime"
        assert "CUDA error: an illegal memory access" in str(error)
    assert sink.written < 15  # the run stopped early
    # the partial result is kept for the report
    assert pipeline.result is not None and pipeline.result.frames == sink.written
    assert pipeline.result.error == f"{type(error).__name__}: {error}"
