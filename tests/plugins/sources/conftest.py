"""Fixtures of the replay-source tests."""

from __future__ import annotations

import pytest
from bag_helpers import STORAGES


@pytest.fixture(params=sorted(STORAGES))
def storage(request: pytest.FixtureRequest) -> str:
    """Each rosbag2 storage plugin: ``mcap`` and ``sqlite3``."""
    return str(request.param)
