"""The lidar plugin: file readers, decode, preprocess, on real KITTI / nuScenes clouds."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionrt import ConfigError, DecodeError, RawRecord
from fusionrt.calibration import Rig, SensorCalibration, Transform
from fusionrt.calibration.transforms import interpolate_poses
from fusionrt.plugins.sensors import lidar
from fusionrt.plugins.sensors.bev import LidarBevRasterizer, lidar_bev_channels
from fusionrt.plugins.sensors.lidar import (
    MSGTYPE_KITTI_BIN,
    MSGTYPE_NUSCENES_PCD_BIN,
    MSGTYPE_PCD,
    MSGTYPE_POINTCLOUD2,
    LidarSensor,
    point_stamps_ns,
    pose_table,
    read_points,
)
from fusionrt.plugins.sensors.pcd import write_pcd
from fusionrt.plugins.sensors.pointcloud2 import encode_pointcloud2
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.sensor import PreprocessContext
from fusionrt.runtime.sync import poses_from_speed_yaw_rate
from fusionrt.runtime.testing import parametrize_sensor_checks

KITTI_REDUCED = Path("kitti/training/velodyne_reduced/000008.bin")
KITTI_FULL = Path("kitti/training/velodyne/000001.bin")
NUSCENES_LIDAR = Path("nuscenes/samples/LIDAR_TOP") / (
    "n015-2018-07-24-11-22-45+0800__LIDAR_TOP__1532402927647951.pcd.bin"
)
XYZI = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])


@parametrize_sensor_checks(LidarSensor)
def test_lidar_conformance(check: Any) -> None:
    check()


def _ranges(points: np.ndarray) -> list[tuple[float, float]]:
    return [(float(points[a].min()), float(points[a].max())) for a in ("x", "y", "z")]


@pytest.mark.parametrize(
    ("relative", "count", "ranges"),
    [
        (KITTI_REDUCED, 17_238, [(2.9, 76.8), (-26.4, 10.3), (-3.6, 2.9)]),
        (KITTI_FULL, 120_268, [(-79.4, 77.0), (-55.3, 57.7), (-7.3, 2.9)]),
    ],
)
def test_kitti_bin_files_read_with_their_counts_and_ranges(
    real_data: Path, relative: Path, count: int, ranges: list[tuple[float, float]]
) -> None:
    points = read_points(real_data / relative)
    assert points.dtype == XYZI
    assert len(points) == count
    np.testing.assert_allclose(_ranges(points), ranges, atol=0.051)
    assert points["intensity"].min() >= 0.0 and points["intensity"].max() <= 1.0
    assert points.flags.writeable


def test_nuscenes_pcd_bin_reads_with_count_ranges_intensity_and_rings(real_data: Path) -> None:
    points = read_points(real_data / NUSCENES_LIDAR)
    assert points.dtype.names == ("x", "y", "z", "intensity", "ring")
    assert len(points) == 34_688
    np.testing.assert_allclose(
        _ranges(points), [(-58.0, 96.9), (-96.3, 98.6), (-3.4, 19.0)], atol=0.051
    )
    assert points["intensity"].min() >= 0 and points["intensity"].max() <= 255
    assert np.all(points["intensity"] == np.round(points["intensity"]))
    assert set(np.unique(points["ring"]).astype(int)) <= set(range(32))


def test_read_points_reads_pcd_and_rejects_unknown_suffixes(tmp_path: Path) -> None:
    cloud = np.zeros(4, XYZI)
    cloud["x"] = [1, 2, 3, 4]
    (tmp_path / "cloud.pcd").write_bytes(write_pcd(cloud, "binary_compressed"))
    np.testing.assert_array_equal(read_points(tmp_path / "cloud.pcd")["x"], [1, 2, 3, 4])
    (tmp_path / "cloud.ply").write_bytes(b"ply")
    with pytest.raises(DecodeError, match="suffix"):
        read_points(tmp_path / "cloud.ply")
    with pytest.raises(DecodeError, match="cannot read"):
        read_points(tmp_path / "missing.bin")


def test_truncated_kitti_file_names_the_partial_record(tmp_path: Path) -> None:
    path = tmp_path / "000000.bin"
    path.write_bytes(bytes(16 * 10 + 7))
    with pytest.raises(DecodeError, match="not a multiple") as info:
        read_points(path)
    assert info.value.context["offset"] == 160
    assert info.value.context["path"] == str(path)


def test_decode_file_records_by_msgtype_or_path(real_data: Path) -> None:
    sensor = LidarSensor("lidar_top", "/LIDAR_TOP")
    data = (real_data / NUSCENES_LIDAR).read_bytes()
    by_type = sensor.decode(RawRecord("/LIDAR_TOP", 42, data, MSGTYPE_NUSCENES_PCD_BIN))
    by_path = sensor.decode(RawRecord("/LIDAR_TOP", 42, data, path=str(NUSCENES_LIDAR)))
    for message in (by_type, by_path):
        assert message.stamp_ns == 42
        assert message.sensor == "lidar_top"
        assert message.frame_id == "lidar_top"
        assert len(message.payload) == 34_688
        assert np.shares_memory(message.payload, np.frombuffer(data, np.uint8))
        assert message.meta["intensity_scale"] == pytest.approx(1 / 255)


def test_decode_errors_name_sensor_topic_path_and_offset() -> None:
    sensor = LidarSensor("velo", "/kitti/velo")
    record = RawRecord("/kitti/velo", 1, bytes(16 * 3 + 2), MSGTYPE_KITTI_BIN, "drive/1.bin", 99)
    with pytest.raises(DecodeError) as info:
        sensor.decode(record)
    assert info.value.context == {
        "sensor": "velo", "topic": "/kitti/velo", "path": "drive/1.bin", "record_offset": 99,
        "offset": 48,
    }  # fmt: skip
    with pytest.raises(DecodeError, match="suffix") as info:
        sensor.decode(RawRecord("/kitti/velo", 1, b"", path="scan.ply"))
    assert info.value.context["sensor"] == "velo" and info.value.context["path"] == "scan.ply"
    with pytest.raises(DecodeError, match="unsupported msgtype"):
        sensor.decode(RawRecord("/kitti/velo", 1, b"", "sensor_msgs/msg/Image"))
    with pytest.raises(DecodeError, match="lack field"):
        sensor.decode(RawRecord("/t", 1, encode_pointcloud2(np.zeros(3, [("x", "<f4")]), "l", 1),
                                MSGTYPE_POINTCLOUD2))  # fmt: skip


def test_pointcloud2_stamp_and_frame_come_from_the_header() -> None:
    cloud = np.zeros(5, XYZI)
    message = LidarSensor().decode(
        RawRecord("/points", 1, encode_pointcloud2(cloud, "velodyne", 77), MSGTYPE_POINTCLOUD2)
    )
    assert (message.stamp_ns, message.frame_id) == (77, "velodyne")
    assert message.meta["point_step"] == 16


def _kitti_context(real_data: Path) -> PreprocessContext:
    from fusionrt.calibration.formats.kitti import load_kitti_calib

    rig = load_kitti_calib(real_data / "kitti/training/calib/000008.txt")
    return PreprocessContext(geometry=ModelGeometry(), rig=rig, sensor_names=("lidar",))


def _kitti_cars(real_data: Path, rig: Rig) -> list[tuple[np.ndarray, float, float, float]]:
    """(centre in the Velodyne frame, length, width, yaw) of each labelled car."""
    to_velodyne = rig.transform("cam0", "lidar")  # cam0 = the rectified reference camera
    cars = []
    for line in (real_data / "kitti/training/label_2/000008.txt").read_text().splitlines():
        fields = line.split()
        if fields[0] != "Car":
            continue
        h, w, length, x, y, z, rotation_y = map(float, fields[8:15])
        centre = to_velodyne.apply(np.array([[x, y - h / 2, z]]))[0]  # label: bottom centre
        cars.append((centre, length, w, -rotation_y - math.pi / 2))
    return cars


def test_bev_of_a_real_kitti_cloud_has_the_labelled_cars_occupied(real_data: Path) -> None:
    context = _kitti_context(real_data)
    sensor = LidarSensor()
    data = (real_data / KITTI_REDUCED).read_bytes()
    message = sensor.decode(RawRecord("/velodyne", 0, data, MSGTYPE_KITTI_BIN))
    raster = sensor.preprocess(message, context)["lidar_bev"]
    grid = context.geometry.bev
    xs, ys = grid.cell_centres()
    cell_x, cell_y = np.meshgrid(xs, ys, indexing="ij")
    ground_z = -1.73  # the Velodyne is 1.73 m above the road
    car_height = (ground_z + 0.4 - grid.z_range[0]) / (grid.z_range[1] - grid.z_range[0])
    cars = _kitti_cars(real_data, context.rig)  # type: ignore[arg-type]
    assert len(cars) == 6
    occupied_in_cars = np.zeros(cell_x.shape, bool)
    for centre, length, width, yaw in cars:
        along = (cell_x - centre[0]) * math.cos(yaw) + (cell_y - centre[1]) * math.sin(yaw)
        across = -(cell_x - centre[0]) * math.sin(yaw) + (cell_y - centre[1]) * math.cos(yaw)
        footprint = (np.abs(along) < length / 2) & (np.abs(across) < width / 2)
        on_car = footprint & (raster[0] > 0) & (raster[1] > car_height)
        assert on_car.sum() >= 3, f"car at {centre[:2]} has {on_car.sum()} occupied cells"
        occupied_in_cars |= footprint & (raster[0] > 0)
    # the raster is not trivially full: most occupied cells are elsewhere (road, walls)
    assert (raster[0] > 0).sum() > 2 * occupied_in_cars.sum()


def test_preprocess_of_the_full_kitti_scan_has_finite_declared_channels(real_data: Path) -> None:
    context = _kitti_context(real_data)
    sensor = LidarSensor()
    points = read_points(real_data / KITTI_FULL)
    message = sensor.decode(RawRecord("/velodyne", 0, points.tobytes(), MSGTYPE_KITTI_BIN))
    outputs = sensor.preprocess(message, context)
    (spec,) = sensor.tensor_specs(context)
    raster = outputs[spec.name]
    assert spec.matches(raster)
    assert spec.shape == (len(lidar_bev_channels(context.geometry.bev)), 160, 160)
    assert np.isfinite(raster).all()
    assert raster.min() >= 0 and raster[:2].max() <= 1 and raster[3:].max() == 1
    assert 0.05 < raster[2][raster[0] > 0].mean() < 0.9  # KITTI reflectance, 0…1


def _message(points: np.ndarray, stamp_ns: int = 1_000_000_000) -> Any:
    record = RawRecord("/points", 0, encode_pointcloud2(points, "lidar", stamp_ns),
                       MSGTYPE_POINTCLOUD2)  # fmt: skip
    return LidarSensor().decode(record)


def _rig(translation: tuple[float, float, float], box: Any = None, yaw: float = 0.0) -> Rig:
    extrinsics = Transform.from_rpy([0.0, 0.0, yaw], translation)
    return Rig("ego", [SensorCalibration("lidar", "lidar", extrinsics)], vehicle_box=box)


def _one_point(x: float, y: float, z: float) -> np.ndarray:
    cloud = np.zeros(1, XYZI)
    cloud[0] = (x, y, z, 0.5)
    return cloud


def test_points_are_moved_into_the_rig_frame() -> None:
    sensor = LidarSensor()
    grid = ModelGeometry().bev  # rows along x from -20 m, columns along y from -40 m, 0.5 m
    message = _message(_one_point(10.2, 0.2, -1.0))
    plain = sensor.preprocess(message, PreprocessContext())["lidar_bev"]
    assert plain[0, 60, 80] > 0  # x 10.2 → row 60, y 0.2 → column 80
    moved = sensor.preprocess(message, PreprocessContext(rig=_rig((1.0, 0.0, 1.5))))["lidar_bev"]
    assert moved[0, 62, 80] > 0 and moved[0].sum() == plain[0].sum()
    turned = sensor.preprocess(message, PreprocessContext(rig=_rig((0, 0, 0), yaw=math.pi / 2)))
    assert turned["lidar_bev"][0, 39, 100] > 0  # (10.2, 0.2) turned left: (-0.2, 10.2)
    assert grid.shape == (160, 160)


def test_returns_inside_the_vehicle_box_are_dropped() -> None:
    cloud = np.concatenate([_one_point(0.5, 0.2, 0.5), _one_point(5.0, 0.2, 0.5)])
    box = ((-1.0, -1.0, 0.0), (2.0, 1.0, 1.8))
    raster = LidarBevRasterizerCheck.raster(cloud, _rig((0, 0, 0), box))
    assert raster[0].astype(bool).sum() == 1
    assert raster[0, 50, 80] > 0 and raster[0, 41, 80] == 0


class LidarBevRasterizerCheck:
    @staticmethod
    def raster(cloud: np.ndarray, rig: Rig | None) -> np.ndarray:
        return LidarSensor().preprocess(_message(cloud), PreprocessContext(rig=rig))["lidar_bev"]


def test_nan_and_inf_points_are_dropped_and_outputs_stay_finite() -> None:
    cloud = np.zeros(4, XYZI)
    cloud[0] = (np.nan, 1, 0, 0.5)
    cloud[1] = (5, np.inf, 0, 0.5)
    cloud[2] = (5, 1, 0, np.nan)
    cloud[3] = (5, 1, 0, 0.5)
    raster = LidarBevRasterizerCheck.raster(cloud, None)
    assert np.isfinite(raster).all()
    assert (raster[0] > 0).sum() == 1
    assert raster[2].max() == pytest.approx(0.5)


def test_empty_cloud_and_missing_message_give_zeros() -> None:
    sensor = LidarSensor()
    context = PreprocessContext(geometry=ModelGeometry(bev=BevGrid(resolution=1.0)))
    empty = sensor.preprocess(_message(np.zeros(0, XYZI)), context)["lidar_bev"]
    missing = sensor.preprocess(None, context)["lidar_bev"]
    assert empty.shape == missing.shape == (7, 80, 80)
    assert not empty.any() and not missing.any()


def test_integer_intensity_is_scaled_to_unit_range_and_option_overrides() -> None:
    cloud = np.zeros(2, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "u1")])
    cloud[0] = (5, 1, 0, 255)
    cloud[1] = (5, 1, 0, 51)
    message = _message(cloud)
    raster = LidarSensor().preprocess(message, PreprocessContext())["lidar_bev"]
    assert raster[2].max() == pytest.approx(153 / 255)
    raster = LidarSensor(intensity_scale=1.0).preprocess(message, PreprocessContext())
    assert raster["lidar_bev"][2].max() == pytest.approx(153)


def test_payload_without_coordinates_raises_decode_error() -> None:
    message = _message(np.zeros(3, XYZI))
    for payload in ("text", np.zeros((3, 4), np.float32), np.zeros(3, [("x", "<f4")])):
        bad = dataclasses.replace(message, payload=payload)
        with pytest.raises(DecodeError, match=r"structured|lack") as info:
            LidarSensor().preprocess(bad, PreprocessContext())
        assert info.value.context["sensor"] == "lidar"


def test_tensor_name_option() -> None:
    sensor = LidarSensor("lidar_front", tensor_name="front_bev")
    (spec,) = sensor.tensor_specs(PreprocessContext())
    assert (spec.name, spec.sensor) == ("front_bev", "lidar_front")


def test_point_stamps_from_relative_absolute_float_and_integer_times() -> None:
    cloud = np.zeros(3, [("time", "<f4"), ("t", "<u4"), ("timestamp", "<f8")])
    cloud["time"] = [0.0, 0.0625, np.nan]  # float32 seconds (0.0625 is exact in float32)
    cloud["t"] = [0, 50_000_000, 99_000_000]
    cloud["timestamp"] = [1_700_000_000.0, 1_700_000_000.05, 1_700_000_000.1]
    stamps, finite = point_stamps_ns(cloud, 10**18, "time")
    assert stamps.tolist() == [10**18, 10**18 + 62_500_000, 10**18]
    assert finite.tolist() == [True, True, False]
    stamps, finite = point_stamps_ns(cloud, 10**18, "t")
    assert stamps.tolist() == [10**18, 10**18 + 50_000_000, 10**18 + 99_000_000]
    assert finite.all()
    stamps, _ = point_stamps_ns(cloud, 5, "timestamp")
    np.testing.assert_allclose(stamps, [1.7e18, 1.7e18 + 5e7, 1.7e18 + 1e8], atol=1000)


def test_pose_table_accepts_pairs_mappings_and_objects() -> None:
    poses = np.repeat(np.eye(4)[None], 2, axis=0)
    expected_stamps = [1, 2]
    for given in (
        ([2, 1], poses),
        {2: poses[0], 1: poses[1]},
        type("Trajectory", (), {"stamps_ns": [1, 2], "poses": poses})(),
    ):
        stamps, table = pose_table(given)
        assert stamps.tolist() == expected_stamps and table.shape == (2, 4, 4)
    with pytest.raises(ConfigError, match="ego_poses"):
        pose_table("not poses")
    with pytest.raises(ConfigError, match="ego_poses"):
        pose_table(([1, 2], np.eye(4)))


class _RecordingCompensation:
    """A stand-in for ``sync.compensate_points`` that records its inputs, applies the
    ``sensor_to_ego`` mount and shifts x by 10."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        points: np.ndarray,
        stamps: np.ndarray,
        reference: int,
        pose_stamps: np.ndarray,
        poses: np.ndarray,
        *,
        time_resolution_ns: int,
        sensor_to_ego: np.ndarray | None,
    ) -> np.ndarray:
        self.calls.append(
            {
                "points": np.array(points),
                "stamps": np.array(stamps),
                "reference": reference,
                "pose_stamps": np.array(pose_stamps),
                "time_resolution_ns": time_resolution_ns,
                "sensor_to_ego": sensor_to_ego,
            }
        )
        ego = np.array(points, np.float64)
        if sensor_to_ego is not None:
            ego = ego @ sensor_to_ego[:3, :3].T + sensor_to_ego[:3, 3]
        return ego + np.array([10.0, 0.0, 0.0])


def test_ego_motion_compensation_gets_sensor_points_mount_and_per_point_stamps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _RecordingCompensation()
    monkeypatch.setattr(lidar, "compensate_points", recorder)
    cloud = np.zeros(3, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("time", "<f4")])
    cloud["x"] = [1.0, 2.0, 3.0]
    cloud["time"] = [0.0, 0.0625, np.nan]
    context = PreprocessContext(
        rig=_rig((1.0, 0.0, 1.5)),
        ego_poses=([0, 2 * 10**9], np.repeat(np.eye(4)[None], 2, axis=0)),
        reference_stamp_ns=1_200_000_000,
    )
    raster = LidarSensor(time_resolution_ns=1).preprocess(_message(cloud), context)["lidar_bev"]
    LidarSensor().preprocess(_message(cloud), context)  # default: times rounded to 1 ms
    call, rounded = recorder.calls
    np.testing.assert_allclose(call["points"], [[1, 0, 0], [2, 0, 0], [3, 0, 0]])  # sensor
    np.testing.assert_allclose(call["sensor_to_ego"][:3, 3], [1.0, 0.0, 1.5])  # the rig's mount
    assert call["stamps"][:2].tolist() == [1_000_000_000, 1_062_500_000]
    assert (call["time_resolution_ns"], rounded["time_resolution_ns"]) == (1, 1_000_000)
    assert call["reference"] == 1_200_000_000
    assert call["pose_stamps"].tolist() == [0, 2 * 10**9]
    assert raster[0, 64, 80] > 0 and raster[0, 66, 80] > 0  # x 12 and 13 after the shift
    assert (raster[0] > 0).sum() == 2  # the point with a NaN time is dropped


def test_compensated_kitti_sweep_rasterises_as_the_plain_per_point_computation(
    real_data: Path,
) -> None:
    # The real 120k-point KITTI scan as one 100 ms sweep (time by azimuth), on a turning ego,
    # mounted 1.73 m up and yawed: the raster equals the one of the computation before the
    # speed-up (sensor -> ego, times rounded to 1 ms, one pose per distinct time, one 3×3 per
    # point in float64).
    scan = read_points(real_data / KITTI_FULL)
    cloud = np.zeros(len(scan), [*XYZI.descr, ("time", "<f4")])
    for name in ("x", "y", "z", "intensity"):
        cloud[name] = scan[name]
    cloud["time"] = (np.arctan2(scan["y"], scan["x"]) + np.pi) / (2 * np.pi) * 0.1
    pose_stamps = np.arange(900, 1_301, 20, dtype=np.int64) * 1_000_000
    poses = poses_from_speed_yaw_rate(pose_stamps, 15.0, 0.5)
    rig = _rig((0.2, 0.0, 1.73), ((-1.0, -0.9, 0.0), (3.7, 0.9, 1.6)), yaw=0.05)
    context = PreprocessContext(
        rig=rig, ego_poses=(pose_stamps, poses), reference_stamp_ns=1_050_000_000
    )
    message = _message(cloud)
    raster = LidarSensor().preprocess(message, context)["lidar_bev"]

    mount = rig.transform("lidar", "ego").matrix
    xyz = np.stack([scan[a] for a in ("x", "y", "z")], axis=1).astype(np.float64)
    ego = xyz @ mount[:3, :3].T + mount[:3, 3]
    stamps, _ = point_stamps_ns(message.payload, message.stamp_ns, "time")
    stamps = (stamps + 500_000) // 1_000_000 * 1_000_000
    distinct, inverse = np.unique(stamps, return_inverse=True)
    at = interpolate_poses(pose_stamps, poses, np.append(distinct, 1_050_000_000))
    r_ref_t = at[-1, :3, :3].T
    rotations = r_ref_t @ at[:-1, :3, :3]
    translations = (at[:-1, :3, 3] - at[-1, :3, 3]) @ r_ref_t.T
    moved = np.einsum("nij,nj->ni", rotations[inverse], ego) + translations[inverse]
    plain = LidarBevRasterizer(ModelGeometry().bev).rasterize(
        moved, scan["intensity"], None, rig.vehicle_box
    )
    assert (plain[0] > 0).sum() > 5000
    np.testing.assert_array_equal(raster, plain)


def test_no_compensation_without_times_poses_or_when_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _RecordingCompensation()
    monkeypatch.setattr(lidar, "compensate_points", recorder)
    poses = ([0, 1], np.repeat(np.eye(4)[None], 2, axis=0))
    timed = np.zeros(2, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("t", "<u4")])
    LidarSensor().preprocess(_message(np.zeros(2, XYZI)), PreprocessContext(ego_poses=poses))
    LidarSensor().preprocess(_message(timed), PreprocessContext())
    LidarSensor(motion_compensation=False).preprocess(
        _message(timed), PreprocessContext(ego_poses=poses)
    )
    assert recorder.calls == []
    LidarSensor().preprocess(_message(timed), PreprocessContext(ego_poses=poses))
    assert len(recorder.calls) == 1


def test_samples_are_small_deterministic_and_decode() -> None:
    sensor = LidarSensor()
    records = sensor.sample_records()
    assert sum(len(r.data) for r in records) < 300_000
    assert [r.data for r in records] == [r.data for r in LidarSensor().sample_records()]
    context = sensor.default_context()
    for record in records:
        message = sensor.decode(record)
        assert len(message.payload) > 1000
        raster = sensor.preprocess(message, context)["lidar_bev"]
        assert (raster[0] > 0).sum() > 500
        assert raster[3:].sum(axis=(1, 2))[1] > 0  # the ground (ego z = 0) is in slice 1


def test_decode_does_not_copy_or_modify_the_record() -> None:
    record = LidarSensor().sample_records()[0]
    before = bytes(record.data)
    message = LidarSensor().decode(record)
    assert not message.payload.flags.writeable
    assert np.shares_memory(message.payload, np.frombuffer(record.data, np.uint8))
    assert bytes(record.data) == before
    assert dataclasses.replace(record).data is record.data


def test_registers_through_the_sensor_hook() -> None:
    assert lidar.fusionrt_sensors() == [LidarSensor]
    assert MSGTYPE_PCD == "fusionrt/pcd"


def test_ego_motion_compensation_with_the_synchroniser_moves_early_points_back() -> None:
    cloud = np.zeros(2, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("t", "<u4")])
    cloud[0] = (5.2, 0.2, 0.0, 0)  # measured at the message stamp, 1.0 s
    cloud[1] = (5.2, 0.2, 0.0, 100_000_000)  # measured 100 ms later, at the reference stamp
    stamps = np.array([0, 2_000_000_000])
    poses = np.repeat(np.eye(4)[None], 2, axis=0)
    poses[1, 0, 3] = 20.0  # the ego drives forward at 10 m/s
    context = PreprocessContext(ego_poses=(stamps, poses), reference_stamp_ns=1_100_000_000)
    raster = LidarSensor().preprocess(_message(cloud, 1_000_000_000), context)["lidar_bev"]
    assert raster[0, 48, 80] > 0  # the early point is 1 m further back: x 4.2
    assert raster[0, 50, 80] > 0  # the point at the reference stamp stays at x 5.2
    assert (raster[0] > 0).sum() == 2
