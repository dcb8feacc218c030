"""Conditions (fog, night) and sensor failures change what the sensors record."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fusionrt import DecodeError
from fusionrt.plugins.sensors.pointcloud2 import decode_pointcloud2
from fusionrt.sim import CONDITIONS, SimConfig, World
from fusionrt.sim.camera import CameraRenderer
from fusionrt.sim.recorder import TOPIC_ACTORS, TOPIC_CAMERA, TOPIC_LIDAR, TOPIC_LOG, TOPIC_RADAR
from fusionrt.sim.rig import CAMERA, build_rig
from fusionrt.sim.textlog import LEVELS
from fusionrt.sim.world import DRIVE_EPOCH_NS, rng_for

from .conftest import FAILURES, Drive, stamp_of, xyz


def _grey(raw_jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(raw_jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img is not None
    return img.astype(np.float64)


def _ranges(drive: Drive) -> tuple[np.ndarray, np.ndarray]:
    ranges, intensity = [], []
    for _, raw in drive.raw(TOPIC_LIDAR):
        pts = decode_pointcloud2(raw).points
        ranges.append(np.linalg.norm(xyz(pts), axis=1))
        intensity.append(pts["intensity"].astype(np.float64))
    return np.concatenate(ranges), np.concatenate(intensity)


def _contrast(raw_jpeg: bytes) -> tuple[float, float]:
    """Global contrast (grey-level std) and edge strength (mean gradient of a blurred image,
    so the sensor noise does not count)."""
    grey = _grey(raw_jpeg).astype(np.float32)
    blur = cv2.GaussianBlur(grey, (0, 0), 2.0)
    gx, gy = cv2.Sobel(blur, cv2.CV_32F, 1, 0), cv2.Sobel(blur, cv2.CV_32F, 0, 1)
    return float(grey.std()), float(np.mean(np.hypot(gx, gy)))


def test_fog_lowers_camera_contrast(clear_drive: Drive, fog_drive: Drive) -> None:
    clear = np.array([_contrast(bytes(m.data)) for _, m in clear_drive.decoded(TOPIC_CAMERA)])
    fog = np.array([_contrast(bytes(m.data)) for _, m in fog_drive.decoded(TOPIC_CAMERA)])
    assert len(clear) == len(fog)  # same schedule: same seed
    std_ratio, edge_ratio = np.median(fog, axis=0) / np.median(clear, axis=0)
    assert std_ratio < 0.8
    assert edge_ratio < 0.5


def test_fog_shortens_lidar_range_and_adds_near_returns(
    clear_drive: Drive, fog_drive: Drive
) -> None:
    r_clear, i_clear = _ranges(clear_drive)
    r_fog, i_fog = _ranges(fog_drive)
    assert r_clear.max() > 60.0
    assert r_fog.max() < CONDITIONS["fog"].lidar_max_range_m + 0.5
    near_clear = np.mean((r_clear < 6.0) & (i_clear < 13.0))
    near_fog = np.mean((r_fog < 6.0) & (i_fog < 13.0))
    assert near_fog > near_clear + 0.03  # spurious droplet echoes


def test_radar_is_unaffected_by_fog(clear_drive: Drive, fog_drive: Drive) -> None:
    assert list(clear_drive.raw(TOPIC_RADAR)) == list(fog_drive.raw(TOPIC_RADAR))


def test_fog_is_announced_in_the_text_log(fog_drive: Drive) -> None:
    logs = [m for _, m in fog_drive.decoded(TOPIC_LOG)]
    assert any(m.level == LEVELS["WARN"] and m.name == "weather" and "fog" in m.msg for m in logs)


def test_night_is_dark() -> None:
    config = SimConfig(duration_s=5.0, seed=4)
    world, rig = World.generate(4, 5.0), build_rig(config)
    means = {}
    for name in ("clear", "night"):
        renderer = CameraRenderer(world, rig, CAMERA, CONDITIONS[name], seed=4)
        means[name] = renderer.render(2.0, rng_for(4, "t")).image.mean()
    assert means["night"] < 0.35 * means["clear"]


def _stamps_s(drive: Drive, topic: str) -> np.ndarray:
    rig = drive.rig()
    from fusionrt.sim.recorder import TOPICS

    offset = rig.sensor(TOPICS[topic][1]).time_offset_ns  # type: ignore[arg-type]
    stamps = [s for t, _, s in drive.summary.messages if t == topic]
    return (np.array(stamps, dtype=np.int64) + offset - DRIVE_EPOCH_NS) / 1e9


def test_silent_failure_leaves_a_gap(failing_drive: Drive, clear_drive: Drive) -> None:
    radar = FAILURES[0]
    t = _stamps_s(failing_drive, TOPIC_RADAR)
    inside = (t >= radar.start_s) & (t < radar.end_s)
    assert not inside.any()
    assert (t < radar.start_s).any() and (t >= radar.end_s).any()
    t_clear = _stamps_s(clear_drive, TOPIC_RADAR)
    assert ((t_clear >= radar.start_s) & (t_clear < radar.end_s)).sum() >= 8
    logs = [m for _, m in failing_drive.decoded(TOPIC_LOG)]
    assert any(m.level == LEVELS["ERROR"] and m.name == "radar_front" for m in logs)


def test_garbage_failure_sends_undecodable_images(failing_drive: Drive) -> None:
    camera = FAILURES[1]
    offset = failing_drive.rig().sensor(CAMERA).time_offset_ns
    bad = good = 0
    for _, msg in failing_drive.decoded(TOPIC_CAMERA):
        t = (stamp_of(msg) + offset - DRIVE_EPOCH_NS) / 1e9
        image = cv2.imdecode(np.asarray(msg.data, np.uint8), cv2.IMREAD_COLOR)
        if camera.start_s <= t < camera.end_s:
            assert image is None
            bad += 1
        else:
            assert image is not None
            good += 1
    assert bad >= 5 and good >= 15


def test_corrupt_failure_sends_bytes_that_do_not_deserialize(failing_drive: Drive) -> None:
    lidar = FAILURES[2]
    stamps = _stamps_s(failing_drive, TOPIC_LIDAR)
    raws = [raw for _, raw in failing_drive.raw(TOPIC_LIDAR)]
    assert len(raws) == len(stamps)
    bad = 0
    for t, raw in zip(stamps, raws, strict=True):
        if lidar.start_s <= t < lidar.end_s:
            with pytest.raises(DecodeError):
                decode_pointcloud2(raw)
            bad += 1
        else:
            assert decode_pointcloud2(raw).points.size > 1000
    assert bad >= 3
    # The ground truth does not fail with the sensor.
    assert failing_drive.summary.counts[TOPIC_ACTORS] >= 19
