"""RunInfo.health(): a snapshot of the run's counts that a sink can read while it runs."""

from __future__ import annotations

from pipeline_support import pipeline_dict, write_pipeline

from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry


class SnapshotSink:
    """Takes a health snapshot at every frame."""

    name = "snapshot"

    def __init__(self) -> None:
        self.snapshots = []

    def start(self, info) -> None:
        self.info = info

    def write(self, frame, detections, timings_ms) -> None:
        self.snapshots.append(self.info.health())

    def close(self) -> None:
        pass


def test_health_counts_grow_as_the_run_goes_on(tmp_path, drive):
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", pipeline_dict()))
    sink = SnapshotSink()
    options = RunOptions(out_dir=tmp_path / "out")
    result = Pipeline(config, drive, Registry.create(entry_points=False), options, sinks=[sink])
    result = result.run()
    first, last = sink.snapshots[0], sink.snapshots[-1]
    written = [s.frames for s in sink.snapshots]  # frames every sink had written by then
    assert written == sorted(written) and all(n <= i for i, n in enumerate(written))
    assert len(written) == result.frames
    assert set(last.sensors) == {"lidar_top", "camera_front", "radar_front"}
    lidar = last.sensors["lidar_top"]
    assert lidar.messages >= result.frames - 1 and lidar.last_stamp_ns is not None
    assert first.sensors["lidar_top"].messages < lidar.messages
    assert last.uptime_s > first.uptime_s >= 0 and last.end_to_end_p50_ms is not None
    assert not any(s.stale or s.quarantined for s in last.sensors.values())
