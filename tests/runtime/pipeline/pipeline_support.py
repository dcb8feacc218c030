"""Helpers of the pipeline tests: short simulated drives and pipeline files.

A module of its own (not ``conftest``) so that test modules import it by a name no other test
folder uses.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fusionrt.sim.conditions import Failure
from fusionrt.sim.config import SimConfig
from fusionrt.sim.recorder import record_drive

HERE = Path(__file__).parent

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
