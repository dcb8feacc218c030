"""A short real drive from the simulator, shared by the model tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrt.sim.conditions import parse_failure
from fusionrt.sim.config import SimConfig
from fusionrt.sim.recorder import record_drive
from fusionrt.sim.rig import SENSOR_ALIASES


@pytest.fixture(scope="session")
def short_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2.5 s foggy drive whose radar fails from 1 s to 2 s (small camera, fast to write)."""
    out = tmp_path_factory.mktemp("drive") / "fog"
    config = SimConfig(
        duration_s=2.5,
        seed=4242,
        condition="fog",
        failures=(parse_failure("radar@1s-2s", "silent", dict(SENSOR_ALIASES)),),
        camera_width=480,
        camera_height=270,
    )
    record_drive(config, out, workers=1)
    return out
