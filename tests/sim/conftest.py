"""Short synthetic drives shared by the simulator tests (generated once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from fusionrt.calibration import Rig
from fusionrt.plugins.ros_types import typestore
from fusionrt.sim import Failure, SimConfig, record_drive
from fusionrt.sim.recorder import BAG_DIR, RIG_FILE, DriveSummary

SEED = 11
DURATION_S = 2.0


@dataclass(frozen=True)
class Drive:
    """A drive written for the tests: its config, what the recorder reported, its files."""

    config: SimConfig
    summary: DriveSummary

    @property
    def out(self) -> Path:
        return self.summary.out

    @property
    def bag(self) -> Path:
        return self.out / BAG_DIR

    @property
    def mcap(self) -> Path:
        return self.bag / f"{BAG_DIR}.mcap"

    def rig(self) -> Rig:
        return Rig.load(self.out / RIG_FILE)

    def raw(self, topic: str) -> Iterator[tuple[int, bytes]]:
        """``(log time, raw CDR)`` of every message on ``topic``, in log order."""
        with Reader(self.bag) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            for _, log_ns, data in reader.messages(connections=conns):
                yield log_ns, bytes(data)

    def decoded(self, topic: str) -> Iterator[tuple[int, Any]]:
        """``(log time, message)`` of every message on ``topic`` (rosbags' deserializer)."""
        store = typestore()
        with Reader(self.bag) as reader:
            conns = [c for c in reader.connections if c.topic == topic]
            for conn, log_ns, data in reader.messages(connections=conns):
                yield log_ns, store.deserialize_cdr(data, conn.msgtype)


def stamp_of(msg: Any) -> int:
    """A message's stamp in nanoseconds (its header's, or its own for rcl_interfaces/Log)."""
    stamp = msg.header.stamp if hasattr(msg, "header") else msg.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def xyz(points: np.ndarray) -> np.ndarray:
    """N×3 float64 of a structured point array."""
    return np.stack([points[k].astype(np.float64) for k in ("x", "y", "z")], axis=1)


def _drive(factory: pytest.TempPathFactory, name: str, config: SimConfig) -> Drive:
    out = factory.mktemp(name)
    return Drive(config, record_drive(config, out / "drive", workers=1))


@pytest.fixture(scope="session")
def clear_drive(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    return _drive(tmp_path_factory, "clear", SimConfig(duration_s=DURATION_S, seed=SEED))


@pytest.fixture(scope="session")
def fog_drive(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    config = SimConfig(duration_s=DURATION_S, seed=SEED, condition="fog")
    return _drive(tmp_path_factory, "fog", config)


#: The failures of ``failing_drive``: one per mode.
FAILURES = (
    Failure("radar_front", 0.5, 1.2, "silent"),
    Failure("camera_front", 0.8, 1.3, "garbage"),
    Failure("lidar_top", 1.0, 1.35, "corrupt"),
)


@pytest.fixture(scope="session")
def failing_drive(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    config = SimConfig(duration_s=DURATION_S, seed=SEED, failures=FAILURES)
    return _drive(tmp_path_factory, "failing", config)
