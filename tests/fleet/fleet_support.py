"""Helpers of the fleet tests: the sample drives and pipeline files over the toy model.

A module of its own (not ``conftest``) so that test modules import it by a name no other test
folder uses.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_support import write_pipeline

from fusionrt.sim.config import SimConfig
from fusionrt.sim.recorder import record_drive

#: seed and condition of each sample drive
DRIVES = {
    "drive_a": (1, "clear"),
    "drive_b": (2, "fog"),
    "drive_c": (3, "clear"),
    "drive_d": (4, "night"),
}
TOPICS = {
    "lidar_top": ("lidar", "/sensors/lidar_top/points"),
    "camera_front": ("camera", "/sensors/camera_front/image/compressed"),
    "radar_front": ("radar", "/sensors/radar_front/points"),
}


def make_drive(out: Path, seed: int, condition: str) -> Path:
    """A 2 s simulated drive (small camera and lidar) in ``out``."""
    config = SimConfig(
        duration_s=2.0,
        seed=seed,
        condition=condition,
        camera_width=320,
        camera_height=180,
        lidar_columns=512,
    )
    record_drive(config, out, overwrite=True, workers=1)
    return out


def pipeline_dict(model: str = "toy", **model_options: object) -> dict:
    """The pipeline tests' lidar + camera + radar pipeline with a toy model, no sinks."""
    sensors = {name: {"plugin": plugin, "topic": topic} for name, (plugin, topic) in TOPICS.items()}
    sensors["camera_front"]["options"] = {"jpeg_reduction": 2}
    return {
        "plugins": ["toy_model", "fleet_models"],
        "sensors": sensors,
        "sync": {
            "policy": "collector",
            "reference": "lidar_top",
            "tolerance_ms": 60,
            "timeout_ms": 120,
        },
        "model": {"name": model, "options": {"threshold": 0.5, **model_options}},
        "backend": "onnxruntime",
        "sinks": [],
        "ground_truth": {"topic": "/ground_truth/actors"},
        "runtime": {"workers": 1, "queue_size": 3},
    }


__all__ = ["DRIVES", "TOPICS", "make_drive", "pipeline_dict", "write_pipeline"]
