"""The ``degraded`` failure mode: plausible but wrong data, announced late by the diagnostics.

The drive-level tests compare a degraded drive with the clear drive of the same seed
(``clear_drive``): before the failure the bytes are the same, during it only what the
degradation touches differs; the announcement comes exactly ``delay_s`` late on the log and
on CAN. The rate tests check the announcement statistics on many failures.
"""

from __future__ import annotations

from pathlib import Path

import cantools
import numpy as np
import pytest

from fusionrt import ConfigError
from fusionrt.plugins.sensors.pointcloud2 import decode_pointcloud2
from fusionrt.sim import Failure, SimConfig, record_drive
from fusionrt.sim.can import DBC_PATH, DIAG_STATUS_ID, FRAME_SPACING_S
from fusionrt.sim.config import DiagnosticsConfig
from fusionrt.sim.degradation import camera_fault, lidar_blockage, smear
from fusionrt.sim.diagnostics import DTC_CODES, announcements
from fusionrt.sim.lidar import LidarModel
from fusionrt.sim.recorder import TOPIC_CAMERA, TOPIC_CAN, TOPIC_LIDAR, TOPIC_LOG, TOPIC_RADAR
from fusionrt.sim.rig import CAMERA, LIDAR, RADAR
from fusionrt.sim.world import DRIVE_EPOCH_NS, rng_for

from .conftest import DURATION_S, SEED, Drive, _drive, stamp_of, xyz

START_S, DELAY_S = 0.6, 0.7
DEGRADED = tuple(Failure(s, START_S, DURATION_S, "degraded") for s in (LIDAR, RADAR, CAMERA))
#: No misses and no false alarms: every announcement is the fault's, exactly DELAY_S late.
EXACT = DiagnosticsConfig(
    delay_s=(DELAY_S, DELAY_S), miss_probability=0.0, false_alarms_per_hour=0.0
)


@pytest.fixture(scope="module")
def degraded_drive(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    config = SimConfig(duration_s=DURATION_S, seed=SEED, failures=DEGRADED, diagnostics=EXACT)
    return _drive(tmp_path_factory, "degraded", config)


def _common_s(drive: Drive, sensor: str, stamp: int) -> float:
    return (stamp + drive.rig().sensor(sensor).time_offset_ns - DRIVE_EPOCH_NS) / 1e9


def test_the_log_announces_each_fault_late_by_the_configured_delay(degraded_drive: Drive) -> None:
    lines = [
        (m.name, _common_s(degraded_drive, "log", stamp_of(m)), m.msg, m.level)
        for _, m in degraded_drive.decoded(TOPIC_LOG)
    ]
    for sensor in (LIDAR, RADAR, CAMERA):
        mine = [(t, text, level) for name, t, text, level in lines if name == sensor]
        announced = [(t, text) for t, text, level in mine if text.startswith("self-test:")]
        assert len(announced) == 1, mine
        t_onset, text = announced[0]
        assert t_onset == pytest.approx(START_S + DELAY_S, abs=1e-6)
        assert f"DTC {DTC_CODES[sensor]:06X}" in text
        status = [t for t, text, _ in mine if "active, degraded" in text]
        # Repeated every second while active, so the newest log lines always carry it.
        assert np.allclose(np.diff([t_onset, *status]), 1.0)
        assert not [t for t, text, _ in mine if "watchdog" in text]  # the data link is fine
    lidar_text = next(text for name, _, text, _ in lines if name == LIDAR)
    lo, hi = lidar_blockage(SEED, DEGRADED[0], 0).sector_deg
    assert f"sector {lo} to {hi} deg" in lidar_text


def test_can_diag_status_sets_the_dtc_at_the_announcement(degraded_drive: Drive) -> None:
    db = cantools.database.load_file(str(DBC_PATH))
    message = db.get_message_by_frame_id(DIAG_STATUS_ID)
    seen = []
    for _, frame in degraded_drive.decoded(TOPIC_CAN):
        if frame.id == DIAG_STATUS_ID:
            values = message.decode(bytes(frame.data), decode_choices=False)
            seen.append((_common_s(degraded_drive, "can", stamp_of(frame)), values))
    assert 0.8 * DURATION_S * 10 <= len(seen) <= DURATION_S * 10 + 1  # 10 Hz, a few dropped
    for t, values in seen:
        on = t - 3 * FRAME_SPACING_S >= START_S + DELAY_S  # sent after the cycle's 3 frames
        assert (values["LidarState"], values["RadarState"], values["CameraState"]) == (on,) * 3
        assert (values["ActiveDtc"] != 0) == on


def _column_azimuth(points: np.ndarray) -> np.ndarray:
    """The azimuth of the column that fired each point (from its time in the sweep)."""
    model = LidarModel()
    column = np.rint(points["t"].astype(np.float64) * model.columns / (model.sweep_s * 1e9))
    return np.pi - 2.0 * np.pi * column / model.columns


def test_lidar_loses_its_sector_and_gains_near_returns(
    clear_drive: Drive, degraded_drive: Drive
) -> None:
    blockage = lidar_blockage(SEED, DEGRADED[0], 0)
    clear = [decode_pointcloud2(raw) for _, raw in clear_drive.raw(TOPIC_LIDAR)]
    bad = [decode_pointcloud2(raw).points for _, raw in degraded_drive.raw(TOPIC_LIDAR)]
    assert len(clear) == len(bad)
    in_sector_clear = in_sector_bad = near_bad = 0
    for cloud, after in zip(clear, bad, strict=True):
        before = cloud.points
        if _common_s(clear_drive, LIDAR, cloud.stamp_ns) < START_S:
            np.testing.assert_array_equal(before, after)
            continue
        sector_b = blockage.covers(_column_azimuth(before))
        sector_a = blockage.covers(_column_azimuth(after))
        np.testing.assert_array_equal(before[~sector_b], after[~sector_a])  # outside: untouched
        in_sector_clear += int(np.sum(sector_b))
        inside = after[sector_a]
        in_sector_bad += len(inside)
        near_bad += int(np.sum(np.linalg.norm(xyz(inside), axis=1) <= 4.0 + 1e-2))
    assert in_sector_clear > 1000
    real_kept = in_sector_bad - near_bad
    assert real_kept < 0.2 * in_sector_clear  # most returns are lost
    assert near_bad > 0.1 * in_sector_clear  # and the dirt echoes back


def test_radar_loses_real_targets_and_reports_ghosts(
    clear_drive: Drive, degraded_drive: Drive
) -> None:
    kept = total = ghosts = 0
    for (_, a), (_, b) in zip(
        clear_drive.raw(TOPIC_RADAR), degraded_drive.raw(TOPIC_RADAR), strict=True
    ):
        before, after = decode_pointcloud2(a), decode_pointcloud2(b)
        if _common_s(clear_drive, RADAR, before.stamp_ns) < START_S:
            assert a == b
            continue
        rows_b = {tuple(r) for r in before.points.tolist()}
        rows_a = [tuple(r) for r in after.points.tolist()]
        kept += sum(r in rows_b for r in rows_a)
        total += len(rows_b)
        ghosts += sum(r not in rows_b for r in rows_a)
    assert total > 50
    assert kept < 0.45 * total
    assert ghosts > 2 * (DURATION_S - START_S) * 16  # about 4 per scan at 16 Hz


def test_a_frozen_camera_resends_its_last_image(clear_drive: Drive, degraded_drive: Drive) -> None:
    assert camera_fault(SEED, DEGRADED[2], 2).kind == "frozen"  # what this seed draws
    clear = [(stamp_of(m), bytes(m.data)) for _, m in clear_drive.decoded(TOPIC_CAMERA)]
    bad = [(stamp_of(m), bytes(m.data)) for _, m in degraded_drive.decoded(TOPIC_CAMERA)]
    assert [s for s, _ in clear] == [s for s, _ in bad]  # the stream goes on, same stamps
    times = [_common_s(clear_drive, CAMERA, s) for s, _ in clear]
    last = [c for t, (_, c) in zip(times, clear, strict=True) if t < START_S][-1]
    during = [b for t, (_, b) in zip(times, bad, strict=True) if t >= START_S]
    assert len(during) > 10 and all(b == last for b in during)


def test_a_smear_blurs_and_darkens_the_image() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    fault = camera_fault(SEED, Failure(CAMERA, 0.0, 1.0, "degraded"), 0)
    out = smear(image, fault, rng_for(1, "smear"))
    assert out.shape == image.shape and out.dtype == np.uint8
    edges = np.abs(np.diff(out.astype(float), axis=1)).mean()
    assert edges < 0.2 * np.abs(np.diff(image.astype(float), axis=1)).mean()


def test_announcements_are_late_missed_and_false_at_the_configured_rates() -> None:
    config = DiagnosticsConfig(delay_s=(1.0, 3.0), miss_probability=0.2, false_alarms_per_hour=60.0)
    failures = tuple(Failure(LIDAR, 10.0 * i, 10.0 * i + 5.0, "degraded") for i in range(3000))
    duration = 30_000.0
    announced = announcements(failures, duration, config, seed=4)
    true = [a for a in announced if a.failure is not None]
    delays = np.array([a.onset_s - failures[a.failure].start_s for a in true])
    assert delays.min() >= 1.0 and delays.max() <= 3.0
    assert abs(delays.mean() - 2.0) < 0.05
    miss_rate = 1.0 - len(true) / len(failures)
    assert abs(miss_rate - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(failures))
    false = [a for a in announced if a.failure is None]
    for sensor in (RADAR, CAMERA):  # the lidar is at fault half the time: fewer false alarms
        count = sum(a.sensor == sensor for a in false)
        expected = 60.0 * duration / 3600.0 * 3600.0 / (3600.0 + 60.0 * 4.0)
        assert abs(count - expected) < 4 * np.sqrt(expected), (sensor, count, expected)
    assert announcements(failures[:50], 600.0, config, seed=4) == announcements(
        failures[:50], 600.0, config, seed=4
    )
    assert announcements(failures[:50], 600.0, config, seed=5) != announcements(
        failures[:50], 600.0, config, seed=4
    )


def test_degraded_drives_are_deterministic(tmp_path: Path) -> None:
    failures = tuple(Failure(s, 0.1, 0.5, "degraded") for s in (LIDAR, RADAR, CAMERA))
    diagnostics = DiagnosticsConfig(delay_s=(0.1, 0.2))
    config = SimConfig(duration_s=0.6, seed=2, failures=failures, diagnostics=diagnostics)
    record_drive(config, tmp_path / "a", workers=1)
    record_drive(config, tmp_path / "b", workers=2)
    for name in ("bag/bag.mcap", "can0.log", "drive.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_only_perception_sensors_degrade(tmp_path: Path) -> None:
    config = SimConfig(duration_s=0.5, failures=(Failure("can", 0.1, 0.2, "degraded"),))
    with pytest.raises(ConfigError, match="degraded mode"):
        record_drive(config, tmp_path / "x", workers=1)
