"""The pipeline's live mode: records pushed into an inbox by a source's own thread, frames due
on the wall clock, sensors that stop going stale and coming back. The source here plays a
recorded bag in real time (``bag_live``); the ROS 2 transport has its own tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipeline_support import pipeline_dict, write_pipeline

from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import PluginInfo, Registry

RADAR = "/sensors/radar_front/points"


def _live_pipeline(tmp_path: Path, drive: Path, **live: object) -> Path:
    data = pipeline_dict()
    data["plugins"] = ["toy_model", "bag_live"]
    data["rig"] = str(drive / "rig.yaml")
    data["live"] = {"transport": "bag_live", "bag": str(drive / "bag"), **live}
    data["sync"]["expected_periods_ms"] = {"lidar_top": 100, "radar_front": 62}
    data.pop("ground_truth")
    return write_pipeline(tmp_path / "live.yaml", data)


class StaleWatcher:
    def __init__(self) -> None:
        self.stale: list[tuple[str, int]] = []

    @hookimpl
    def fusionrt_sensor_stale(self, sensor, last_stamp_ns, now_ns):
        self.stale.append((sensor, last_stamp_ns))


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def test_live_frames_equal_the_replay_for_the_frames_complete_in_both(tmp_path, drive):
    registry = Registry.create(entry_points=False)
    config = load_pipeline(_live_pipeline(tmp_path, drive))
    live_out, replay_out = tmp_path / "live", tmp_path / "replay"
    result = Pipeline(config, None, registry, RunOptions(out_dir=live_out, duration_s=3.0)).run()
    replay_config = load_pipeline(write_pipeline(tmp_path / "replay.yaml", pipeline_dict()))
    Pipeline(
        replay_config, drive, Registry.create(entry_points=False), RunOptions(out_dir=replay_out)
    ).run()
    live = {line["stamp_ns"]: line for line in _lines(live_out) if not line["missing"]}
    replayed = {line["stamp_ns"]: line for line in _lines(replay_out) if not line["missing"]}
    common = sorted(set(live) & set(replayed))
    assert result.frames >= 15 and len(common) >= 10
    for stamp in common:
        a, b = live[stamp]["detections"], replayed[stamp]["detections"]
        assert [d["label"] for d in a] == [d["label"] for d in b]
        np.testing.assert_allclose(
            [d["box"] + [d["score"]] for d in a], [d["box"] + [d["score"]] for d in b], atol=1e-4
        )


def test_a_sensor_that_stops_is_masked_reported_stale_and_recovers(tmp_path, drive):
    registry = Registry.create(entry_points=False)
    watcher = StaleWatcher()
    registry.register(watcher, PluginInfo("watcher", "tests", ""))
    config = load_pipeline(_live_pipeline(tmp_path, drive, silent={RADAR: [0.5, 1.5]}))
    out = tmp_path / "out"
    pipeline = Pipeline(config, None, registry, RunOptions(out_dir=out, duration_s=3.0))
    result = pipeline.run()
    lines = _lines(out)
    first = lines[0]["stamp_ns"]
    # once per silence: the radar's, and every sensor's once the 2 s drive has ended
    in_drive = [sensor for sensor, last in watcher.stale if last - first < 1.8e9]
    assert in_drive == ["radar_front"]
    during = [x for x in lines if 0.7e9 < x["stamp_ns"] - first < 1.3e9]
    after = [x for x in lines if x["stamp_ns"] - first > 1.7e9]
    assert during and all("radar_front" in x["missing"] for x in during)  # masked, not stalled
    assert after and not any("radar_front" in x["missing"] for x in after)  # recovered
    # frames during the silence were emitted at their deadline, not when the radar came back
    timeout_ms = config.sync.parameters["timeout_ns"] / 1e6
    assert all(x["latency_ms"]["sync_wait"] < timeout_ms + 1000 for x in during)
    assert not pipeline.health().sensors["radar_front"].stale
    assert result.frames == len(lines)


def test_a_live_run_needs_a_rig_and_a_live_section(tmp_path, drive):
    data = json.loads(json.dumps(pipeline_dict()))
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    with pytest.raises(ConfigError) as info:
        Pipeline(config, None, Registry.create(entry_points=False))
    assert info.value.context["key"] == "rig"
    data["rig"] = str(drive / "rig.yaml")
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    with pytest.raises(ConfigError) as info:
        Pipeline(config, None, Registry.create(entry_points=False))
    assert info.value.context["key"] == "live"


def test_a_looping_stream_resets_the_timeline_and_the_wall_clock_follows(tmp_path, drive):
    """The bag plays twice, its stamps unchanged: one timeline reset, and the second pass is
    a normal run again — complete frames, and no sensor reported stale over and over, as it
    would be if the wall clock kept its offset into the first pass's stamps (2 s ahead)."""
    config = load_pipeline(_live_pipeline(tmp_path, drive, loops=2))
    out = tmp_path / "out"
    registry = Registry.create(entry_points=False)
    result = Pipeline(config, None, registry, RunOptions(out_dir=out, duration_s=5.5)).run()
    assert result.timeline_resets == 1
    lines = _lines(out)
    restart = next(
        i for i in range(1, len(lines)) if lines[i]["stamp_ns"] < lines[i - 1]["stamp_ns"]
    )
    second = lines[restart:]
    assert len(second) >= 12
    assert sum(1 for line in second if not line["missing"]) >= len(second) // 2
    # a few silences per sensor (the reset's held messages, a loaded machine), not one per
    # period as when the clock stays a lap ahead (19-29 per sensor measured)
    assert all(count <= 8 for count in result.stale.values()), result.stale
