"""The main job: the bundled sample drive through examples/pipelines/sample.yaml with the
shipped reference model finds the actors (mAP against the drive's ground truth)."""

from __future__ import annotations

from pathlib import Path

import yaml

from fusionrt.runtime.config import pipeline_from_dict
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.run_cli import evaluate

REPO = Path(__file__).resolve().parents[3]
SAMPLE_PIPELINE = REPO / "examples" / "pipelines" / "sample.yaml"
SAMPLE_DRIVE = REPO / "examples" / "drives" / "sample"
#: Measured on this drive with this pipeline when the model shipped: overall 0.586 (car 0.784,
#: pedestrian 0.451, cyclist 0.524). The sample drive has a 16-beam lidar (training used 32
#: beams) and sample.yaml keeps detections scoring >= 0.3, hence below the held-out 0.832.
MIN_SAMPLE_MAP = 0.55


def test_sample_drive_detections_match_the_ground_truth(tmp_path):
    data = yaml.safe_load(SAMPLE_PIPELINE.read_text())
    data["sinks"] = []  # the sinks have tests of their own; this is about detections
    config = pipeline_from_dict(data, SAMPLE_PIPELINE)
    options = RunOptions(out_dir=tmp_path, keep_results=True)
    result = Pipeline(config, SAMPLE_DRIVE, Registry.create(entry_points=False), options).run()
    assert result.frames == 199 and not result.dropped
    map_values, note = evaluate(result)
    assert map_values is not None, note
    assert map_values["overall"] >= MIN_SAMPLE_MAP
    assert map_values["car"] >= 0.7
    # scored frame by frame as written, the run's own mAP is the one over the whole drive
    assert result.map_report is not None and dict(result.map_report.map) == map_values


DECISION_PIPELINE = REPO / "examples" / "pipelines" / "decision.yaml"


def test_decision_level_example_fuses_the_shipped_single_sensor_models(tmp_path):
    """decision.yaml: the three shipped variants, each on its engine, fused per frame by the
    calibrated probabilistic fuser; what the fuser gets is each model's own detections."""
    data = yaml.safe_load(DECISION_PIPELINE.read_text())
    config = pipeline_from_dict(data, DECISION_PIPELINE)
    options = RunOptions(out_dir=tmp_path, max_frames=30, keep_results=True)
    pipeline = Pipeline(config, SAMPLE_DRIVE, Registry.create(entry_points=False), options)
    seen: list[dict] = []
    fuse = pipeline.fuser.fuse
    pipeline.fuser.fuse = lambda per_model, stamp_ns: (
        seen.append(dict(per_model)) or fuse(per_model, stamp_ns)
    )
    result = pipeline.run()
    assert result.frames == 30 and not result.dropped
    assert len(seen) == 30 and all(set(s) == {m.instance for m in config.models} for s in seen)
    lidar_boxes = sum(len(s["lidar_model"]) for s in seen if s["lidar_model"] is not None)
    assert lidar_boxes > 30  # the lidar model finds the cars of every frame
    fused = sum(len(d) for d in result.detections)
    assert 0 < fused <= sum(len(d) for s in seen for d in s.values() if d is not None)
    for stage in ("infer.lidar_model", "infer.camera_model", "infer.radar_model", "fuse"):
        assert stage in result.recorder.summary()
