"""Rates, jitter, latency, clock offsets and log order of a recorded drive."""

from __future__ import annotations

import numpy as np

from fusionrt.sim.recorder import (
    TOPIC_ACTORS,
    TOPIC_CAMERA,
    TOPIC_CAN,
    TOPIC_LIDAR,
    TOPIC_LOG,
    TOPIC_RADAR,
    TOPICS,
)
from fusionrt.sim.timing import DEFAULT_TIMINGS

from .conftest import DURATION_S, Drive

SENSOR_TOPICS = (TOPIC_CAMERA, TOPIC_LIDAR, TOPIC_RADAR, TOPIC_CAN, TOPIC_LOG)


def _common(drive: Drive, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """Log times and header stamps mapped to the common clock with the rig's offsets."""
    rig = drive.rig()
    sensor = TOPICS[topic][1]
    offset = rig.sensor(sensor).time_offset_ns if sensor else 0
    rows = [(log, stamp) for t, log, stamp in drive.summary.messages if t == topic]
    log_ns = np.array([r[0] for r in rows], dtype=np.int64)
    common = np.array([r[1] for r in rows], dtype=np.int64) + offset
    return log_ns, common


def test_clock_offsets_map_stamps_to_the_common_clock(clear_drive: Drive) -> None:
    """common = stamp + time_offset_ns: then every message arrives after its capture, by the
    sensor's latency. With the opposite sign the camera would arrive before it was taken."""
    rig = clear_drive.rig()
    offsets = {name: s.time_offset_ns for name, s in rig.sensors.items()}
    assert offsets["lidar_top"] == 0  # the time master
    assert all(offsets[n] != 0 for n in ("camera_front", "radar_front", "can", "log"))
    expected_ms = {
        TOPIC_CAMERA: DEFAULT_TIMINGS["camera"].latency_s * 1e3,
        TOPIC_LIDAR: DEFAULT_TIMINGS["lidar"].latency_s * 1e3,
        TOPIC_RADAR: DEFAULT_TIMINGS["radar"].latency_s * 1e3,
        TOPIC_CAN: DEFAULT_TIMINGS["can"].latency_s * 1e3,
        TOPIC_LOG: 3.5,
    }
    for topic in SENSOR_TOPICS:
        log_ns, common = _common(clear_drive, topic)
        latency_ms = (log_ns - common) / 1e6
        assert latency_ms.min() > 0.0, topic
        assert abs(np.median(latency_ms) - expected_ms[topic]) < 6.0, topic


def test_rates_and_jitter(clear_drive: Drive) -> None:
    counts = clear_drive.summary.counts
    cfg = clear_drive.config
    assert abs(counts[TOPIC_CAMERA] - DURATION_S * cfg.camera_rate_hz) <= 2
    assert abs(counts[TOPIC_LIDAR] - DURATION_S * 10) <= 1
    assert abs(counts[TOPIC_RADAR] - DURATION_S * cfg.radar_rate_hz) <= 2
    assert abs(counts[TOPIC_CAN] - DURATION_S * 100 * 3) <= 9  # 3 frames a cycle
    _, cam = _common(clear_drive, TOPIC_CAMERA)
    period = np.diff(np.sort(cam)) / 1e9
    assert abs(np.median(period) - 1.0 / cfg.camera_rate_hz) < 0.002
    assert period.std() > 0.0005  # jittered


def test_log_order_differs_from_stamp_order(clear_drive: Drive) -> None:
    rig = clear_drive.rig()
    common = []
    for topic, _, stamp in clear_drive.summary.messages:
        sensor = TOPICS[topic][1]
        if topic in (TOPIC_CAMERA, TOPIC_LIDAR, TOPIC_RADAR):
            common.append(stamp + rig.sensor(sensor).time_offset_ns)  # type: ignore[arg-type]
    common_arr = np.array(common)
    assert np.any(np.diff(common_arr) < 0)  # a message logged after a later-stamped one


def test_ground_truth_at_every_lidar_stamp(clear_drive: Drive) -> None:
    _, lidar = _common(clear_drive, TOPIC_LIDAR)
    _, gt = _common(clear_drive, TOPIC_ACTORS)
    assert set(lidar.tolist()) <= set(gt.tolist())
    assert len(gt) >= len(lidar)
