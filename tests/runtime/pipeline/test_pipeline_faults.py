"""Plugins that misbehave cost their own frames, never the run: wrong shapes, NaN, hangs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from pipeline_support import pipeline_dict, write_pipeline

from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry


def _faulty_pipeline(tmp_path: Path, plugin: str, **runtime: object) -> Path:
    data = pipeline_dict(**runtime)
    data["plugins"] = ["toy_model", "faulty_sensors"]
    data["sensors"]["radar_front"]["plugin"] = plugin
    return write_pipeline(tmp_path / f"{plugin}.yaml", data)


def _run(tmp_path: Path, drive: Path, pipeline: Path, timeout_s: float = 120.0):
    """Run in a thread, so that a run that hangs fails the test instead of blocking it."""
    config = load_pipeline(pipeline)
    out = tmp_path / "out"
    runner = Pipeline(config, drive, Registry.create(entry_points=False), RunOptions(out_dir=out))
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=runner.run()), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "the run hung"
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    return outcome["result"], lines, time.monotonic() - started


@pytest.fixture(scope="module")
def clean_frames(tmp_path_factory, drive) -> int:
    tmp = tmp_path_factory.mktemp("clean")
    result, _, _ = _run(tmp, drive, write_pipeline(tmp / "p.yaml", pipeline_dict()))
    return result.frames


@pytest.mark.parametrize(
    ("plugin", "reason"), [("bad_shape_radar", "bad_tensor"), ("nan_radar", "nonfinite_input")]
)
def test_a_bad_tensor_masks_its_sensor_for_that_frame(
    tmp_path, drive, clean_frames, plugin, reason
):
    result, lines, _ = _run(tmp_path, drive, _faulty_pipeline(tmp_path, plugin))
    assert result.frames == clean_frames  # no frame is lost, the run goes on
    bad = result.faults[("radar_front", reason)]
    assert bad == clean_frames - 3 > 0  # every radar frame from the fourth on, counted
    masked = [line for line in lines if line["missing"].get("radar_front") == reason]
    assert len(masked) == bad
    assert all("lidar_top" not in line["missing"] for line in lines)  # the others unharmed


def test_a_decode_that_never_returns_is_abandoned_then_quarantined(tmp_path, drive, clean_frames):
    pipeline = _faulty_pipeline(
        tmp_path, "stuck_decode_radar", plugin_timeout_ms=200, quarantine_after=2
    )
    result, lines, _ = _run(tmp_path, drive, pipeline)
    assert result.frames == clean_frames  # the lidar keeps the frames coming
    assert result.faults[("radar_front", "plugin_timeout")] == 2
    assert result.faults[("radar_front", "quarantined")] > 10  # the rest of its messages
    assert "radar_front" in lines[-1]["missing"]


def test_a_preprocess_that_never_returns_is_abandoned_then_quarantined(
    tmp_path, drive, clean_frames
):
    pipeline = _faulty_pipeline(
        tmp_path, "stuck_preprocess_radar", plugin_timeout_ms=200, quarantine_after=3
    )
    result, lines, elapsed = _run(tmp_path, drive, pipeline)
    assert result.frames == clean_frames
    assert result.faults[("radar_front", "plugin_timeout")] == 3
    assert result.faults[("radar_front", "quarantined")] > 10
    timed_out = [line for line in lines if line["missing"].get("radar_front") == "plugin_timeout"]
    assert len(timed_out) == 3
    # the three timeouts cost their deadline each, not a stalled run (generous bound)
    assert elapsed < 60
