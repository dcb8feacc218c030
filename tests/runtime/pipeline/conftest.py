"""Fixtures of the pipeline tests: short simulated drives (real ROS 2 bags) and pipeline files.

Drives are made once per session with ``fusionrt.sim`` (2 s, small camera, 512-column lidar);
the pipelines run the test-only :mod:`toy_model` (a real ONNX graph) on ONNX Runtime.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from fusionrt.runtime.registry import Registry
from fusionrt.sim.conditions import Failure
from fusionrt.sim.config import SimConfig
from fusionrt.sim.recorder import record_drive

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the toy model plugin module, named in the pipeline files

TOPICS = {
    "lidar_top": ("lidar", "/sensors/lidar_top/points"),
    "camera_front": ("camera", "/sensors/camera_front/image/compressed"),
    "radar_front": ("radar", "/sensors/radar_front/points"),
}


def make_drive(out: Path, *failures: Failure) -> Path:
    """A 2 s simulated drive in ``out``."""
    config = SimConfig(
        duration_s=2.0,
        camera_width=320,
        camera_height=180,
        lidar_columns=512,
        failures=tuple(failures),
    )
    record_drive(config, out, overwrite=True, workers=1)
    return out


@pytest.fixture(scope="session")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_drive(tmp_path_factory.mktemp("drive"))


def pipeline_dict(sinks: list | None = None, **runtime: object) -> dict:
    """A pipeline over the simulated car's lidar, camera and radar with the toy model."""
    sensors = {name: {"plugin": plugin, "topic": topic} for name, (plugin, topic) in TOPICS.items()}
    sensors["camera_front"]["options"] = {"jpeg_reduction": 2}
    return {
        "plugins": ["toy_model"],
        "sensors": sensors,
        "sync": {
            "policy": "collector",
            "reference": "lidar_top",
            "tolerance_ms": 60,
            "timeout_ms": 120,
        },
        "model": {"name": "toy", "options": {"threshold": 0.5}},
        "backend": "onnxruntime",
        "sinks": sinks if sinks is not None else [{"name": "jsonl"}],
        "ground_truth": {"topic": "/ground_truth/actors"},
        "runtime": {"workers": 2, "queue_size": 3, **runtime},
    }


def write_pipeline(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def registry() -> Registry:
    return Registry.create(entry_points=False)
