"""Fixtures of the sink tests: real frames of the bundled sample drive."""

from __future__ import annotations

import pytest
from sink_support import Captured, capture_sample


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Captured:
    """The sample pipeline's first 30 frames (lidar, camera, radar, detections, ground truth)."""
    return capture_sample(tmp_path_factory.mktemp("capture"), max_frames=30)
