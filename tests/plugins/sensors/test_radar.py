"""The radar plugin: nuScenes radar PCD (43-byte records), devkit filter, BEV splatting."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrt import DecodeError, RawRecord
from fusionrt.calibration import Rig, SensorCalibration, Transform
from fusionrt.plugins.sensors import radar
from fusionrt.plugins.sensors.lidar import MSGTYPE_PCD, MSGTYPE_POINTCLOUD2
from fusionrt.plugins.sensors.pointcloud2 import encode_pointcloud2
from fusionrt.plugins.sensors.radar import (
    NUSCENES_RADAR_DTYPE,
    RadarSensor,
    devkit_valid,
    read_points,
)
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.sensor import PreprocessContext
from fusionrt.runtime.testing import parametrize_sensor_checks

RADAR_PCD = Path("nuscenes/samples/RADAR_BACK_LEFT") / (
    "n015-2018-07-25-16-15-50+0800__RADAR_BACK_LEFT__1532506682462345.pcd"
)


@parametrize_sensor_checks(RadarSensor)
def test_radar_conformance(check: Any) -> None:
    check()


@parametrize_sensor_checks(lambda: RadarSensor("radar_front", devkit_filter=True))
def test_radar_conformance_with_devkit_filter(check: Any) -> None:
    check()


def test_nuscenes_radar_file_reads_its_43_byte_records_exactly(real_data: Path) -> None:
    path = real_data / RADAR_PCD
    points = read_points(path)
    assert points.dtype == NUSCENES_RADAR_DTYPE
    assert points.dtype.itemsize == 43
    assert len(points) == 125
    assert path.stat().st_size > 370 + 125 * 43  # zero padding follows: not read as points
    assert points["x"].min() == pytest.approx(9.6) and points["x"].max() == pytest.approx(90.6)
    assert points["y"].min() == pytest.approx(-21.9) and points["y"].max() == pytest.approx(40.5)
    assert points["rcs"].min() == pytest.approx(-5.0)
    assert points["rcs"].max() == pytest.approx(19.5)
    assert np.all(points["z"] == 0)
    np.testing.assert_array_equal(np.sort(points["id"]), np.arange(125))
    assert set(np.unique(points["dyn_prop"])) <= set(range(8))
    assert set(np.unique(points["pdh0"])) <= set(range(1, 8))


def test_devkit_filter_keeps_70_of_125(real_data: Path) -> None:
    points = read_points(real_data / RADAR_PCD, devkit_filter=True)
    assert len(points) == 70
    assert np.all(points["invalid_state"] == 0)
    assert np.all((points["dyn_prop"] >= 0) & (points["dyn_prop"] <= 6))
    assert np.all(points["ambig_state"] == 3)
    full = read_points(real_data / RADAR_PCD)
    assert int(devkit_valid(full).sum()) == 70


def test_decode_the_radar_file_bytes_with_and_without_the_filter(real_data: Path) -> None:
    data = (real_data / RADAR_PCD).read_bytes()
    record = RawRecord("/RADAR_BACK_LEFT", 1_532_506_682_462_345_000, data, MSGTYPE_PCD)
    message = RadarSensor("radar_back_left").decode(record)
    assert len(message.payload) == 125
    assert message.stamp_ns == record.stamp_ns
    assert np.shares_memory(message.payload, np.frombuffer(data, np.uint8))
    filtered = RadarSensor("radar_back_left", devkit_filter=True).decode(record)
    assert len(filtered.payload) == 70
    assert filtered.meta["devkit_dropped"] == 55


def test_truncated_radar_file_raises_decode_error_naming_where(real_data: Path) -> None:
    data = (real_data / RADAR_PCD).read_bytes()[: 370 + 100 * 43 + 20]
    record = RawRecord("/RADAR_BACK_LEFT", 0, data, MSGTYPE_PCD, "sweeps/radar.pcd", 4096)
    with pytest.raises(DecodeError, match="truncated") as info:
        RadarSensor("radar_back_left").decode(record)
    assert info.value.context["offset"] == 370 + 100 * 43
    assert info.value.context["sensor"] == "radar_back_left"
    assert info.value.context["path"] == "sweeps/radar.pcd"


def test_real_radar_scan_preprocesses_into_finite_channels(real_data: Path) -> None:
    sensor = RadarSensor("radar_back_left")
    record = RawRecord("/r", 0, (real_data / RADAR_PCD).read_bytes(), MSGTYPE_PCD)
    context = PreprocessContext(geometry=ModelGeometry(bev=BevGrid(x_range=(0, 100))))
    raster = sensor.preprocess(sensor.decode(record), context)["radar_bev"]
    assert raster.shape == (4, 200, 160)
    assert np.isfinite(raster).all()
    occupancy, rcs = raster[0], raster[1]
    assert occupancy.sum() > 125  # each point covers a disc of cells
    assert rcs[occupancy > 0].min() >= -5.0 and rcs.max() <= 19.5


def _scan(**fields: list[float]) -> np.ndarray:
    count = len(next(iter(fields.values())))
    names = list(fields)
    points = np.zeros(count, [(name, "<f4") for name in names])
    for name, values in fields.items():
        points[name] = values
    return points


def _message(points: np.ndarray) -> Any:
    record = RawRecord("/radar", 0, encode_pointcloud2(points, "radar", 5), MSGTYPE_POINTCLOUD2)
    return RadarSensor().decode(record)


def _rig(yaw: float, translation: tuple[float, float, float]) -> Rig:
    extrinsics = Transform.from_rpy([0.0, 0.0, yaw], translation)
    return Rig("ego", [SensorCalibration("radar", "radar", extrinsics)])


def test_compensated_velocity_is_preferred_and_rotated_into_the_ego_frame() -> None:
    points = _scan(x=[10.2], y=[0.2], z=[0], rcs=[7], vx=[9], vy=[9], vx_comp=[3], vy_comp=[1])
    sensor = RadarSensor()
    plain = sensor.preprocess(_message(points), PreprocessContext())["radar_bev"]
    assert plain[:, 60, 80].tolist() == [1.0, 7.0, 3.0, 1.0]
    assert plain[0].sum() == 13  # a 1 m disc at 0.5 m resolution
    context = PreprocessContext(rig=_rig(math.pi / 2, (1.0, 0.0, 0.5)))
    turned = sensor.preprocess(_message(points), context)["radar_bev"]
    # (10.2, 0.2) turned left then shifted: (0.8, 10.2); velocity (3, 1) → (-1, 3)
    np.testing.assert_allclose(turned[:, 41, 100], [1.0, 7.0, -1.0, 3.0], atol=1e-5)


def test_uncompensated_and_radial_velocity_fallbacks() -> None:
    sensor = RadarSensor()
    raw = sensor.preprocess(_message(_scan(x=[10.2], y=[0.2], z=[0], vx=[2], vy=[-1])),
                            PreprocessContext())["radar_bev"]  # fmt: skip
    assert raw[:, 60, 80].tolist() == [1.0, 0.0, 2.0, -1.0]
    radial = sensor.preprocess(_message(_scan(x=[3.0], y=[4.0], z=[0], doppler=[-5.0])),
                               PreprocessContext())["radar_bev"]  # fmt: skip
    np.testing.assert_allclose(radial[:, 46, 88], [1.0, 0.0, -3.0, -4.0], atol=1e-6)
    still = sensor.preprocess(_message(_scan(x=[3.0], y=[4.0], z=[0])), PreprocessContext())
    assert still["radar_bev"][0, 46, 88] == 1 and not still["radar_bev"][1:].any()


def test_nan_points_are_dropped_and_outputs_finite() -> None:
    points = _scan(x=[np.nan, 5.2, 7.2], y=[0.2, np.inf, 0.2], z=[0, 0, 0], rcs=[1, 2, np.nan])
    raster = RadarSensor().preprocess(_message(points), PreprocessContext())["radar_bev"]
    assert np.isfinite(raster).all()
    assert not raster.any()


def test_radius_option_and_empty_scan() -> None:
    points = _scan(x=[10.2], y=[0.2], z=[0], rcs=[1])
    wide = RadarSensor(radius_m=2.0).preprocess(_message(points), PreprocessContext())
    assert wide["radar_bev"][0].sum() == 49  # cells within 4 cells of the centre cell
    empty = RadarSensor().preprocess(_message(points[:0]), PreprocessContext())["radar_bev"]
    assert empty.shape == (4, 160, 160) and not empty.any()


def test_samples_are_small_and_cover_pointcloud2_and_pcd() -> None:
    sensor = RadarSensor()
    records = sensor.sample_records()
    assert {r.msgtype for r in records} == {MSGTYPE_POINTCLOUD2, MSGTYPE_PCD}
    assert sum(len(r.data) for r in records) < 20_000
    context = sensor.default_context()
    for record in records:
        raster = sensor.preprocess(sensor.decode(record), context)["radar_bev"]
        assert raster[0].sum() > 100
        assert raster[2].max() == pytest.approx(5.0)  # the moving car


def test_registers_through_the_sensor_hook() -> None:
    assert radar.fusionrt_sensors() == [RadarSensor]
