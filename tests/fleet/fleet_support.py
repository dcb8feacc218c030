"""Helpers of the fleet tests: the sample drives and pipeline files over the toy model.

A module of its own (not ``conftest``) so that test modules import it by a name no other test
folder uses.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mcap.reader import make_reader
from mcap.writer import Writer
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


def _bag_file(drive: Path) -> Path:
    (mcap,) = (drive / "bag").glob("*.mcap")
    return mcap


def cut_to_header(drive: Path) -> Path:
    """Leave only the MCAP magic and header record (a recorder that died at once)."""
    mcap = _bag_file(drive)
    data = mcap.read_bytes()
    header_length = int.from_bytes(data[9:17], "little")  # opcode, then a u64 record length
    mcap.write_bytes(data[: 8 + 1 + 8 + header_length])
    return drive


def empty_bag(drive: Path) -> Path:
    """Replace the bag's MCAP file with a complete one that holds no channel or message."""
    with _bag_file(drive).open("wb") as handle:
        writer = Writer(handle)
        writer.start(profile="ros2", library="fusionrt tests")
        writer.finish()
    return drive


def corrupt_every_chunk(drive: Path) -> Path:
    """Zero the second half of every chunk: the summary still indexes them, none decompresses."""
    mcap = _bag_file(drive)
    data = bytearray(mcap.read_bytes())
    with mcap.open("rb") as handle:
        summary = make_reader(handle).get_summary()
    assert summary is not None and summary.chunk_indexes
    for index in summary.chunk_indexes:
        start = index.chunk_start_offset + index.chunk_length // 2
        stop = index.chunk_start_offset + index.chunk_length
        data[start:stop] = bytes(stop - start)
    mcap.write_bytes(bytes(data))
    return drive


def copy_drive(source: Path, target: Path) -> Path:
    """A copy of a drive folder (to spoil without touching the session's drives)."""
    shutil.copytree(source, target)
    return target


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


__all__ = [
    "DRIVES",
    "TOPICS",
    "copy_drive",
    "corrupt_every_chunk",
    "cut_to_header",
    "empty_bag",
    "make_drive",
    "pipeline_dict",
    "write_pipeline",
]
