"""examples/pipelines/kitti.yaml and nuscenes.yaml on the real samples in tests/data/real, end
to end with mAP against their labels; and the front end refusing a misconfigured run on them
(a mistyped topic, no rig, a rig whose ego is not on the road, a ground-truth topic that is
not there) instead of running with a sensor masked or boxes floating above the cars."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from fusionrt.calibration.formats.kitti import load_kitti_calib, read_kitti_calib
from fusionrt.runtime.config import pipeline_from_dict
from fusionrt.runtime.errors import CalibrationError, ConfigError
from fusionrt.runtime.front_end import build_front_end
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry

REPO = Path(__file__).resolve().parents[3]
PIPELINES = REPO / "examples" / "pipelines"
REAL = REPO / "tests" / "data" / "real"


def _fusionrt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusionrt.runtime.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _pipeline(name: str, path: Path | None = None, **changes: Any) -> Any:
    """An example pipeline (its sinks dropped) with top-level ``changes``, anchored at ``path``."""
    source = PIPELINES / f"{name}.yaml"
    data = yaml.safe_load(source.read_text()) | {"sinks": []} | changes
    return pipeline_from_dict(data, path or source)


@pytest.mark.parametrize(
    ("name", "frames", "classes"),
    [("kitti", 2, {"car", "cyclist"}), ("nuscenes", 1, {"car", "pedestrian"})],
)
def test_the_example_pipeline_runs_on_the_real_sample_with_map(
    tmp_path: Path, name: str, frames: int, classes: set[str]
) -> None:
    out = tmp_path / "out"
    done = _fusionrt(
        "run",
        str(PIPELINES / f"{name}.yaml"),
        "--source",
        str(REAL / name),
        "--out",
        str(out),
        "--report",
        str(out / "report.json"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == frames and report["error"] is None
    assert report["map_note"].endswith(f"over {frames} frames with ground truth")
    # scored against the labels (low: the model is trained on simulated drives, see the file)
    assert {c for c, ap in report["map"].items() if ap is not None} == classes | {"overall"}
    assert 0.0 < report["map"]["overall"] < 0.5 and report["map"]["car"] > 0.0
    assert len((out / "detections.jsonl").read_text().splitlines()) == frames
    assert (out / "run.mcap").stat().st_size > 0


def _bev_iou(a: np.ndarray, b: np.ndarray) -> float:
    def rect(box: np.ndarray) -> Any:
        return (
            (float(box[0]), float(box[1])),
            (float(box[3]), float(box[4])),
            math.degrees(box[6]),
        )

    _, points = cv2.rotatedRectangleIntersection(rect(a), rect(b))
    inter = cv2.contourArea(points) if points is not None and len(points) else 0.0
    return float(inter / (a[3] * a[4] + b[3] * b[4] - inter))


def _labelled_cars(frame: str) -> np.ndarray:
    """label_2's cars on the road: bottom centre (rectified camera 0) → Velodyne through the
    devkit's matrices, then 1.73 m up (the Velodyne's height above the road)."""
    m = read_kitti_calib(REAL / f"kitti/training/calib/{frame}.txt")
    r0, tr = np.eye(4), np.eye(4)
    r0[:3, :3], tr[:3] = m["R0_rect"], m["Tr_velo_to_cam"]
    cam_to_velo = np.linalg.inv(r0 @ tr)
    cars = []
    for line in (REAL / f"kitti/training/label_2/{frame}.txt").read_text().splitlines():
        f = line.split()
        if f[0] == "Car":
            h, w, length, x, y, z, ry = map(float, f[8:15])
            bottom = (cam_to_velo @ [x, y, z, 1.0])[:3]
            forward = cam_to_velo[:3, :3] @ [math.cos(ry), 0.0, -math.sin(ry)]
            yaw = math.atan2(forward[1], forward[0])
            cars.append([bottom[0], bottom[1], bottom[2] + 1.73 + h / 2, length, w, h, yaw])
    return np.asarray(cars)


def test_kitti_detections_land_on_the_labelled_cars() -> None:
    """In the road-level frame the model's car boxes sit where label_2 puts the cars: the ones
    that overlap a labelled car have its centre height (with a Velodyne-centred ego they came
    out 1.7 m higher, floating over the roofs), and one is found with BEV IoU >= 0.5."""
    config = _pipeline("kitti")
    options = RunOptions(keep_results=True)
    result = Pipeline(config, REAL / "kitti", Registry.create(entry_points=False), options).run()
    (frame8,) = [d for d in result.detections if d.stamp_ns == 800_000_000]
    cars = frame8.boxes[frame8.labels == 0]
    labelled = _labelled_cars("000008")
    overlaps = [(_bev_iou(label, car), car[2] - label[2]) for label in labelled for car in cars]
    touching = [(iou, dz) for iou, dz in overlaps if iou >= 0.1]
    assert touching and max(iou for iou, _ in touching) >= 0.5
    assert all(abs(dz) < 0.3 for _, dz in touching), touching


# -- refusals ---------------------------------------------------------------------------------


@pytest.fixture
def registry() -> Registry:
    return Registry.create(entry_points=False)


def test_a_mistyped_topic_is_a_config_error_with_the_nearest_topic(registry: Registry) -> None:
    data = yaml.safe_load((PIPELINES / "kitti.yaml").read_text())
    data["sensors"]["lidar"]["topic"] = "velodyn"
    config = pipeline_from_dict(data, PIPELINES / "kitti.yaml")
    with pytest.raises(ConfigError, match="no topic 'velodyn'; did you mean 'velodyne'") as e:
        build_front_end(config, REAL / "kitti", registry)
    assert e.value.context["key"] == "sensors.lidar.topic"
    data["sensors"]["lidar"]["topic"] = "/points_raw"  # nothing near: the topics are listed
    config = pipeline_from_dict(data, PIPELINES / "kitti.yaml")
    with pytest.raises(ConfigError, match="it has image_2, velodyne"):
        build_front_end(config, REAL / "kitti", registry)


def test_a_run_without_a_rig_is_refused_unless_the_pipeline_says_it_needs_none(
    registry: Registry, tmp_path: Path
) -> None:
    drive = tmp_path / "kitti" / "training"
    shutil.copytree(REAL / "kitti" / "training", drive, ignore=shutil.ignore_patterns("calib"))
    with pytest.raises(ConfigError, match="no rig: the drive has none") as e:
        build_front_end(_pipeline("kitti"), drive, registry)
    assert e.value.context["key"] == "rig"
    front = build_front_end(_pipeline("kitti", sensors_in_ego_frame=True), drive, registry)
    try:
        assert front.rig is None
    finally:
        front.source.close()
    # the drive's own rig is not used either when the pipeline says the data needs none
    front = build_front_end(_pipeline("kitti", sensors_in_ego_frame=True), REAL / "kitti", registry)
    try:
        assert front.rig is None
    finally:
        front.source.close()


def test_a_rig_whose_ego_is_not_on_the_road_is_refused_and_an_undeclared_one_warned(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    velodyne = load_kitti_calib(
        REAL / "kitti/training/calib/000008.txt", lidar_height_m=None
    )  # ego = the Velodyne, declared 1.73 m up
    velodyne.save(tmp_path / "velodyne.yaml")
    config = _pipeline("kitti", tmp_path / "p.yaml", rig="velodyne.yaml")
    with pytest.raises(CalibrationError, match=r"ego_height_m: 1\.73") as e:
        build_front_end(config, REAL / "kitti", registry)
    assert "model 'reference' assumes the ego frame on the road" in str(e.value)
    assert e.value.context == {"field": "ego_height_m", "file": str(tmp_path / "velodyne.yaml")}
    undeclared = velodyne.to_dict()
    del undeclared["ego_height_m"]
    (tmp_path / "undeclared.yaml").write_text(yaml.safe_dump(undeclared))
    config = _pipeline("kitti", tmp_path / "p.yaml", rig="undeclared.yaml")
    with caplog.at_level(logging.WARNING, logger="fusionrt.front_end"):
        front = build_front_end(config, REAL / "kitti", registry)
    front.source.close()
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "fusionrt.front_end"]
    assert "does not declare ego_height_m" in warning and "undeclared.yaml" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fusionrt.front_end"):  # the drive's: road
        build_front_end(_pipeline("kitti"), REAL / "kitti", registry).source.close()
    assert not caplog.records


def test_a_ground_truth_topic_the_drive_lacks_is_a_config_error(registry: Registry) -> None:
    config = _pipeline("kitti", ground_truth={"topic": "/ground_truth/actors"})
    with pytest.raises(ConfigError, match="reads its ground truth from the drive's files") as e:
        build_front_end(config, REAL / "kitti", registry)
    assert e.value.context["key"] == "ground_truth.topic"
    sample = yaml.safe_load((PIPELINES / "sample.yaml").read_text())
    sample["ground_truth"] = {"topic": "/ground_truth/actor"}
    config = pipeline_from_dict(sample, PIPELINES / "sample.yaml")
    with pytest.raises(ConfigError, match="did you mean '/ground_truth/actors'") as e:
        build_front_end(config, REPO / "examples/drives/sample", registry)
    assert e.value.context["key"] == "ground_truth.topic"
    assert e.value.context["file"] == str(PIPELINES / "sample.yaml")


def test_sensors_in_ego_frame_and_a_rig_contradict(tmp_path: Path) -> None:
    (tmp_path / "rig.yaml").write_text("frame: ego\nsensors: {}\n")
    data = yaml.safe_load((PIPELINES / "kitti.yaml").read_text())
    data |= {"rig": "rig.yaml", "sensors_in_ego_frame": True}
    with pytest.raises(ConfigError, match="needs no rig, but the file names one") as e:
        pipeline_from_dict(data, tmp_path / "p.yaml")
    assert e.value.context["key"] == "sensors_in_ego_frame"
    data = yaml.safe_load((PIPELINES / "kitti.yaml").read_text()) | {"sensors_in_ego_frame": 1}
    with pytest.raises(ConfigError, match="must be true or false"):
        pipeline_from_dict(data, tmp_path / "p.yaml")
