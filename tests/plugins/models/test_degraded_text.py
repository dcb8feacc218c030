"""What the model sees of a degraded sensor's announcement: a real degraded drive through the
runtime's frame assembly and the text sensor's tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrt.plugins.models.reference.drives import iter_drive_frames
from fusionrt.plugins.models.reference.eval.runner import drive_condition
from fusionrt.plugins.sensors.text import TEXT_MASK, TEXT_TOKENS, HashingTokenizer
from fusionrt.sim import Failure, SimConfig, record_drive
from fusionrt.sim.config import DiagnosticsConfig
from fusionrt.sim.world import DRIVE_EPOCH_NS

START_S, DELAY_S, DURATION_S = 0.5, 1.0, 3.5


@pytest.fixture(scope="module")
def degraded_lidar_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SimConfig(
        duration_s=DURATION_S,
        seed=31,
        failures=(Failure("lidar_top", START_S, DURATION_S, "degraded"),),
        diagnostics=DiagnosticsConfig(
            delay_s=(DELAY_S, DELAY_S), miss_probability=0.0, false_alarms_per_hour=0.0
        ),
        camera_width=480,
        camera_height=270,
    )
    out = tmp_path_factory.mktemp("degraded") / "drive"
    record_drive(config, out, workers=1)
    return out


def test_the_announcement_reaches_the_model_from_the_moment_it_is_logged(degraded_lidar_drive):
    dtc = HashingTokenizer().piece_id("c1a201")
    seen = []
    for item in iter_drive_frames(degraded_lidar_drive, lambda tensors, present: dict(tensors)):
        feed = item.assembled.feed
        tokens = feed[TEXT_TOKENS][feed[TEXT_MASK] > 0]
        t = (item.assembled.frame.stamp_ns - DRIVE_EPOCH_NS) / 1e9
        seen.append((t, dtc in tokens.tolist()))
    onset = START_S + DELAY_S
    assert not any(has for t, has in seen if t < onset)  # nothing before it is logged
    after = [has for t, has in seen if t >= onset + 0.005]  # the log line's 2-5 ms latency
    # Every frame after it, on this drive: the DTC comes first in its lines and the status
    # repeats each second, so only two other lines within a second could push it out of the
    # 32 tokens (none here).
    assert len(after) >= 15 and all(after)
    assert drive_condition(degraded_lidar_drive) == "degraded-lidar"
    assert np.mean([has for _, has in seen]) < 1.0
