"""Shared paths to the real data samples (tests/data/real, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
KITTI = REAL / "kitti"
NUSCENES = REAL / "nuscenes"
NUSCENES_JSON = NUSCENES / "scene-0061_ca9a282c9e77460f8360f564131a8af5.json"


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    if not KITTI.is_dir():
        pytest.skip("KITTI sample not present")
    return KITTI


@pytest.fixture(scope="session")
def nuscenes_dir() -> Path:
    if not NUSCENES_JSON.is_file():
        pytest.skip("nuScenes sample not present")
    return NUSCENES
