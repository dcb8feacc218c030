"""Camera preprocessing: undistort/resize/normalise, batching, lift table, real KITTI/nuScenes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fusionrt import ConfigError, DecodeError, RawRecord, SensorMessage
from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sensors.camera import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    CameraSensor,
    camera_sample_rig_dict,
)
from fusionrt.plugins.sensors.image_codec import (
    IMAGE_FILE_MSGTYPE,
    IMAGE_MSGTYPE,
    encode_image_msg,
)
from fusionrt.plugins.sensors.lift import INVALID_UV, bev_lift_points, plan_resize
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.sensor import PreprocessContext
from fusionrt.runtime.testing import parametrize_sensor_checks

REAL = Path(__file__).resolve().parents[2] / "data" / "real"
KITTI = REAL / "kitti" / "training"
NUSCENES = REAL / "nuscenes"
NUSCENES_JSON = NUSCENES / "scene-0061_ca9a282c9e77460f8360f564131a8af5.json"


@parametrize_sensor_checks(CameraSensor)
def test_conformance(check) -> None:
    check()


@parametrize_sensor_checks(
    lambda: CameraSensor("cam_front", jpeg_reduction=2, resize_mode="stretch")
)
def test_conformance_reduced_stretch(check) -> None:
    check()


# -- helpers ----------------------------------------------------------------------------------


def _rig(
    width: int = 640,
    height: int = 400,
    distortion=(-0.2, 0.05, 0.0, 0.0, 0.0),
    names=("cam",),
    yaw_deg=(0.0,),
) -> Rig:
    sensors = {}
    for name, yaw in zip(names, yaw_deg, strict=True):
        c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
        rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        cam_to_ego = rz @ np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        sensors[name] = {
            "kind": "camera",
            "model": "plumb_bob" if any(distortion) else "pinhole",
            "width": width,
            "height": height,
            "K": [
                [300.0, 0.0, width / 2 - 0.5 + 7.0],
                [0.0, 310.0, height / 2 - 0.5 - 5.0],
                [0.0, 0.0, 1.0],
            ],
            "distortion": list(distortion) if any(distortion) else [],
            "extrinsics": {
                "translation": [1.0, 0.0, 1.6],
                "rotation": {"matrix": cam_to_ego.tolist()},
            },
        }
    return Rig.from_dict({"frame": "ego", "sensors": sensors})


def _geometry(**kw) -> ModelGeometry:
    base = dict(
        bev=BevGrid(x_range=(0.0, 40.0), y_range=(-20.0, 20.0), resolution=0.5),
        image_size=(128, 224),
        num_cameras=1,
        lift_heights=(0.0, 1.0),
    )
    base.update(kw)
    return ModelGeometry(**base)


def _blob_image(width: int, height: int, u: float, v: float, sigma: float = 4.0) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    blob = 255.0 * np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * sigma**2))
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.round(blob).astype(np.uint8)
    return image


def _peak(plane: np.ndarray) -> tuple[float, float]:
    """Sub-pixel centroid of the brightest blob of one output channel."""
    v0, u0 = np.unravel_index(np.argmax(plane), plane.shape)
    window = plane[max(v0 - 3, 0) : v0 + 4, max(u0 - 3, 0) : u0 + 4]
    weights = window - window.min()
    vv, uu = np.mgrid[max(v0 - 3, 0) : v0 + 4, max(u0 - 3, 0) : u0 + 4]
    return float((uu * weights).sum() / weights.sum()), float((vv * weights).sum() / weights.sum())


def _to_pixels(uv_norm: np.ndarray, width: int, height: int) -> tuple[float, float]:
    return ((uv_norm[0] + 1) * width - 1) / 2, ((uv_norm[1] + 1) * height - 1) / 2


def _message(sensor: CameraSensor, image: np.ndarray, name: str | None = None) -> SensorMessage:
    record = RawRecord("/cam", 1, encode_image_msg(image, "rgb8"), IMAGE_MSGTYPE)
    message = sensor.decode(record)
    if name is not None:
        message.sensor = name
    return message


# -- preprocessing ----------------------------------------------------------------------------


def test_specs_follow_the_geometry() -> None:
    sensor = CameraSensor("cam")
    context = PreprocessContext(
        geometry=_geometry(num_cameras=3, lift_heights=(0.0, 1.0, 2.0)),
        rig=_rig(),
        sensor_names=("cam",),
    )
    specs = {s.name: s for s in sensor.tensor_specs(context)}
    assert specs["camera_images"].shape == (3, 3, 128, 224)
    assert specs["camera_lift_uv"].shape == (3, 3, 80, 80, 2)
    assert specs["camera_lift_valid"].shape == (3, 3, 80, 80)
    assert all(s.dtype == "float32" for s in specs.values())


def test_normalisation_is_imagenet_mean_std_in_rgb_order() -> None:
    sensor = CameraSensor("cam")
    context = PreprocessContext(
        geometry=_geometry(), rig=_rig(distortion=(0, 0, 0, 0, 0)), sensor_names=("cam",)
    )
    image = np.empty((400, 640, 3), np.uint8)
    image[:] = (10, 128, 250)
    out = sensor.preprocess(_message(sensor, image), context)["camera_images"][0]
    expected = (np.array([10, 128, 250]) - np.array(IMAGENET_MEAN_RGB)) / np.array(IMAGENET_STD_RGB)
    # the border of a remap may read outside the image; the interior is exact
    np.testing.assert_allclose(out[:, 2:-2, 2:-2].mean(axis=(1, 2)), expected, rtol=1e-5)
    np.testing.assert_allclose(out[:, 10, 10], expected, rtol=1e-5)


@pytest.mark.parametrize("rectified", [False, True])
def test_blob_lands_where_the_lift_table_says(rectified: bool) -> None:
    """Undistortion + crop + resize keep geometry: a point drawn in the raw image appears in the
    model image exactly where the lift table projects the same 3-D point."""
    rig = _rig()
    geometry = _geometry(images_rectified=rectified)
    sensor = CameraSensor("cam")
    context = PreprocessContext(geometry=geometry, rig=rig, sensor_names=("cam",))
    uv_table, valid = sensor.lift_table(context)
    points = bev_lift_points(geometry.bev, geometry.lift_heights)
    checked = 0
    for z, i, j in [(0, 30, 40), (1, 50, 30), (0, 20, 52), (1, 70, 44)]:
        assert valid[0, z, i, j] == 1.0
        point = points[z, i, j][None]
        if rectified:  # the recorded image is already a pinhole image: project without distortion
            cam = rig.camera("cam")
            p = rig.transform("ego", "cam").apply(point)[0]
            u, v = cam.K[0, 0] * p[0] / p[2] + cam.K[0, 2], cam.K[1, 1] * p[1] / p[2] + cam.K[1, 2]
        else:
            ((u, v),) = rig.project(point, "ego", "cam")[0]
        out = sensor.preprocess(_message(sensor, _blob_image(640, 400, u, v)), context)
        plane = out["camera_images"][0, 0]
        expected = _to_pixels(uv_table[0, z, i, j], 224, 128)
        got = _peak(plane)
        assert abs(got[0] - expected[0]) < 0.35 and abs(got[1] - expected[1]) < 0.35, (
            got,
            expected,
        )
        checked += 1
    assert checked == 4


def test_output_intrinsics_follow_crop_and_resize() -> None:
    plan = plan_resize((1600, 900), (256, 448), "crop", "center")
    # 900 rows scale to 256: 1575 columns are kept, 12 cropped on the left (13 on the right)
    assert plan.crop == (12, 0, 1575, 900)
    k = np.array([[1266.4, 0, 816.3], [0, 1266.4, 491.5], [0, 0, 1]])
    k_out = plan.output_intrinsics(k)
    # a source pixel maps through the plan exactly as through the intrinsics
    u_src, v_src = plan.output_to_source(np.array(100.0), np.array(50.0))
    ray = np.linalg.solve(k, [u_src, v_src, 1.0])
    projected = k_out @ ray
    np.testing.assert_allclose(projected[:2] / projected[2], [100.0, 50.0], atol=1e-9)
    bottom = plan_resize((1600, 900), (200, 448), "crop", "bottom")
    assert bottom.crop[1] + bottom.crop[3] == 900 and bottom.crop[1] > 0
    stretch = plan_resize((1600, 900), (256, 448), "stretch")
    assert stretch.crop == (0, 0, 1600, 900) and stretch.scale == (448 / 1600, 256 / 900)


def test_image_size_disagreeing_with_the_rig_is_a_decode_error() -> None:
    sensor = CameraSensor("cam")
    context = PreprocessContext(geometry=_geometry(), rig=_rig(), sensor_names=("cam",))
    message = _message(sensor, np.zeros((300, 640, 3), np.uint8))
    with pytest.raises(
        DecodeError, match="640×300 but the rig says camera 'cam' is 640×400"
    ) as info:
        sensor.preprocess(message, context)
    assert info.value.context["sensor"] == "cam" and info.value.context["topic"] == "/cam"


def test_without_a_rig_images_are_resized_and_the_lift_is_empty() -> None:
    sensor = CameraSensor("cam")
    context = PreprocessContext(geometry=_geometry(), rig=None, sensor_names=("cam",))
    out = sensor.preprocess(_message(sensor, np.full((90, 160, 3), 200, np.uint8)), context)
    assert out["camera_images"].shape == (1, 3, 128, 224)
    assert np.all(out["camera_images"] > 0) and not np.any(out["camera_lift_valid"])


def test_lift_table_is_computed_once_per_context() -> None:
    sensor = CameraSensor("cam")
    context = PreprocessContext(geometry=_geometry(), rig=_rig(), sensor_names=("cam",))
    first = sensor.lift_table(context)
    message = _message(sensor, np.zeros((400, 640, 3), np.uint8))
    out = sensor.preprocess(message, context)
    assert out["camera_lift_uv"] is first[0] and out["camera_lift_valid"] is first[1]
    assert not out["camera_lift_uv"].flags.writeable
    # a new rig invalidates the cached table
    context.rig = _rig(distortion=(0, 0, 0, 0, 0))
    assert sensor.lift_table(context)[0] is not first[0]


def test_lift_validity_and_invalid_coordinates() -> None:
    sensor = CameraSensor("cam")
    context = PreprocessContext(
        geometry=_geometry(bev=BevGrid((-20.0, 40.0), (-20.0, 20.0), resolution=1.0)),
        rig=_rig(),
        sensor_names=("cam",),
    )
    uv, valid = sensor.lift_table(context)
    behind = bev_lift_points(context.geometry.bev, (0.0,))[0, :, :, 0] < 1.0
    assert not np.any(valid[0, 0][behind])  # cells behind the camera are never seen
    assert np.all(uv[valid == 0] == INVALID_UV)
    assert np.all(np.abs(uv[valid == 1]) <= 1.0)
    assert valid.sum() > 100


# -- batching ---------------------------------------------------------------------------------


def _batch_context(num_cameras: int = 3) -> PreprocessContext:
    rig = _rig(
        distortion=(0, 0, 0, 0, 0), names=("front", "left", "right"), yaw_deg=(0.0, 60.0, -60.0)
    )
    return PreprocessContext(
        geometry=_geometry(num_cameras=num_cameras),
        rig=rig,
        sensor_names=("lidar", "left", "front", "right"),
    )


def test_batch_order_follows_sensor_names_and_absent_cameras_are_empty() -> None:
    sensor = CameraSensor("front")
    context = _batch_context()
    assert sensor.camera_names(context) == ["left", "front", "right"]
    bright = np.full((400, 640, 3), 250, np.uint8)
    dark = np.full((400, 640, 3), 5, np.uint8)
    out = sensor.preprocess_batch(
        {
            "front": _message(sensor, bright, "front"),
            "left": _message(sensor, dark, "left"),
            "right": None,
        },
        context,
    )
    images, valid, uv = out["camera_images"], out["camera_lift_valid"], out["camera_lift_uv"]
    assert images.shape == (3, 3, 128, 224)
    assert images[1, :, 64, 112].mean() > 1.5 and images[0, :, 64, 112].mean() < -1.5
    assert not np.any(images[2]) and not np.any(valid[2]) and np.all(uv[2] == INVALID_UV)
    _full_uv, full_valid = sensor.lift_table(context)
    np.testing.assert_array_equal(valid[:2], full_valid[:2])
    # the three cameras look in different directions: their visible cells differ
    assert full_valid[0].sum() > 0 and full_valid[1].sum() > 0 and full_valid[2].sum() > 0
    assert not np.any((full_valid[0] > 0) & (full_valid[2] > 0))  # left vs right
    # a sequence in slot order gives the same batch
    same = sensor.preprocess_batch(
        [_message(sensor, dark, "left"), _message(sensor, bright, "front")], context
    )
    np.testing.assert_array_equal(same["camera_images"], images)


def test_single_message_fills_its_own_slot() -> None:
    sensor = CameraSensor("right")
    context = _batch_context()
    out = sensor.preprocess(_message(sensor, np.full((400, 640, 3), 250, np.uint8)), context)
    filled = [bool(np.any(out["camera_images"][i])) for i in range(3)]
    assert filled == [False, False, True]
    assert out["camera_lift_valid"][2].sum() > 0 and not np.any(out["camera_lift_valid"][:2])


def test_explicit_camera_option_and_batch_overflow() -> None:
    context = _batch_context(num_cameras=2)
    with pytest.raises(ConfigError, match="num_cameras"):
        CameraSensor("front").camera_names(context)
    sensor = CameraSensor("front", cameras=["right", "front"])
    assert sensor.camera_names(context) == ["right", "front"]
    with pytest.raises(ConfigError, match="no slot"):
        sensor.preprocess_batch({"left": None}, context)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        CameraSensor("cam", jpeg_reduction=3)
    with pytest.raises(ConfigError):
        CameraSensor("cam", resize_mode="zoom")
    with pytest.raises(ConfigError):
        CameraSensor("cam", std=(1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match="unknown option 'colour' of the camera sensor"):
        CameraSensor("cam", colour="red")


def test_sample_rig_matches_the_samples() -> None:
    sensor = CameraSensor("camera")
    rig = Rig.from_dict(camera_sample_rig_dict("camera"))
    for record in sensor.sample_records():
        message = sensor.decode(record)
        assert message.payload.shape == (rig.camera("camera").height, rig.camera("camera").width, 3)


# -- real data --------------------------------------------------------------------------------


def _kitti_cars(frame: str) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """(bottom centre + half height in rectified camera-0 coordinates, 2D box) of each Car."""
    cars = []
    for line in (KITTI / "label_2" / f"{frame}.txt").read_text().splitlines():
        f = line.split()
        if f[0] != "Car":
            continue
        h = float(f[8])
        x, y, z = map(float, f[11:14])
        cars.append((np.array([x, y - h / 2, z]), tuple(map(float, f[4:8]))))
    return cars


@pytest.mark.parametrize("frame", ["000008", "000001"])
def test_kitti_lift_sends_a_car_cell_into_the_car_box(frame: str) -> None:
    if not KITTI.is_dir():
        pytest.skip("KITTI sample not present")
    from fusionrt.calibration.formats.kitti import load_kitti_calib

    rig = load_kitti_calib(KITTI / "calib" / f"{frame}.txt")
    image = cv2.imread(str(KITTI / "image_2" / f"{frame}.png"))
    assert image.shape[:2] == (rig.camera("cam2").height, rig.camera("cam2").width)
    # the rig frame is on the road (1.73 m below the Velodyne): car centres lie near z = 0.7 m
    geometry = ModelGeometry(
        bev=BevGrid((0.0, 70.4), (-40.0, 40.0), resolution=0.4),
        image_size=(192, 640),
        num_cameras=1,
        lift_heights=(0.23, 0.73, 1.23),
    )
    sensor = CameraSensor("cam2")
    context = PreprocessContext(geometry=geometry, rig=rig, sensor_names=("lidar", "cam2"))
    uv, valid = sensor.lift_table(context)
    plan = sensor._state(context).slots[0].plan
    to_ego = rig.transform("cam0", rig.frame)
    inside = 0
    for centre_cam0, (left, top, right, bottom) in _kitti_cars(frame):
        centre = to_ego.apply(centre_cam0[None])[0]
        i = int((centre[0] - geometry.bev.x_range[0]) // geometry.bev.resolution)
        j = int((centre[1] - geometry.bev.y_range[0]) // geometry.bev.resolution)
        k = int(np.argmin(np.abs(np.array(geometry.lift_heights) - centre[2])))
        if not valid[0, k, i, j]:
            continue  # the car's centre is outside the image (a truncated car)
        u_out, v_out = _to_pixels(uv[0, k, i, j], 640, 192)
        u, v = plan.output_to_source(np.array(u_out), np.array(v_out))
        assert left <= u <= right and top <= v <= bottom, (
            frame,
            (u, v),
            (left, top, right, bottom),
        )
        inside += 1
    assert inside == {"000008": 5, "000001": 1}[frame]


def test_nuscenes_six_cameras_batch_and_lift_into_their_boxes() -> None:
    if not NUSCENES_JSON.is_file():
        pytest.skip("nuScenes sample not present")
    from fusionrt.calibration.formats.nuscenes import nuscenes_rig

    sample = json.loads(NUSCENES_JSON.read_text())
    channels = [
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_FRONT_LEFT",
        "CAM_BACK",
        "CAM_BACK_LEFT",
        "CAM_BACK_RIGHT",
    ]
    records = {ch: {**s["calibrated_sensor"]} for ch, s in sample["sensors"].items()}
    rig = nuscenes_rig(records)
    names = [c.lower() for c in channels]
    geometry = ModelGeometry(
        bev=BevGrid((-51.2, 51.2), (-51.2, 51.2), resolution=0.8),
        image_size=(256, 448),
        num_cameras=6,
        lift_heights=(0.5, 1.0, 1.5, 2.0),
        images_rectified=True,
    )
    sensor = CameraSensor("cam_front", jpeg_reduction=2)
    context = PreprocessContext(geometry=geometry, rig=rig, sensor_names=("lidar_top", *names))
    messages = {}
    for channel in channels:
        path = next((NUSCENES / "samples" / channel).glob("*.jpg"))
        record = RawRecord(f"/{channel}", 1, path.read_bytes(), IMAGE_FILE_MSGTYPE, path=str(path))
        message = sensor.decode(record)
        message.sensor = channel.lower()
        messages[channel.lower()] = message
    out = sensor.preprocess_batch(messages, context)
    assert out["camera_images"].shape == (6, 3, 256, 448)
    assert all(np.abs(out["camera_images"][n]).mean() > 0.1 for n in range(6))
    uv, valid = out["camera_lift_uv"], out["camera_lift_valid"]
    state = sensor._state(context)
    checked = 0
    for slot, channel in enumerate(channels):
        plan = state.slots[slot].plan
        to_ego = rig.transform(channel.lower(), "ego")
        for instance in sample["cam_instances"][channel]:
            if instance["class"] not in ("car", "truck", "bus") or instance["depth"] > 50:
                continue
            centre = to_ego.apply(np.array(instance["bbox_3d_cam"][:3])[None])[0]
            i = int((centre[0] - geometry.bev.x_range[0]) // geometry.bev.resolution)
            j = int((centre[1] - geometry.bev.y_range[0]) // geometry.bev.resolution)
            k = int(np.argmin(np.abs(np.array(geometry.lift_heights) - centre[2])))
            if not valid[slot, k, i, j]:
                continue
            u_out, v_out = _to_pixels(uv[slot, k, i, j], 448, 256)
            u, v = plan.output_to_source(np.array(u_out), np.array(v_out))
            left, top, right, bottom = instance["bbox_2d_xyxy"]
            assert left <= u <= right and top <= v <= bottom, (channel, instance["class"])
            checked += 1
    assert checked >= 5


def test_a_camera_missing_from_the_rig_is_a_calibration_error() -> None:
    from fusionrt import CalibrationError

    sensor = CameraSensor("cam_rear")
    context = PreprocessContext(geometry=_geometry(), rig=_rig(), sensor_names=("cam_rear",))
    with pytest.raises(CalibrationError, match="cam_rear"):
        sensor.lift_table(context)
