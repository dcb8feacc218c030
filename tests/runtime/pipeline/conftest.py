"""Fixtures of the pipeline tests: short simulated drives (real ROS 2 bags) and pipeline files.

Drives are made once per session with ``fusionrt.sim`` (2 s, small camera, 512-column lidar);
the pipelines run the test-only :mod:`toy_model` (a real ONNX graph) on ONNX Runtime.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fusionrt.runtime.registry import Registry

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the toy model plugin and the support module, by plain name

from pipeline_support import make_drive  # noqa: E402


@pytest.fixture(scope="session")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_drive(tmp_path_factory.mktemp("drive"))


@pytest.fixture
def registry() -> Registry:
    return Registry.create(entry_points=False)
