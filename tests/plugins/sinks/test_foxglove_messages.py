"""The Foxglove conversions, each against the rule of the published schema it follows; every
message is decoded with the schema foxglove-sdk publishes for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sink_support import decode

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sensors.camera import CameraSensor
from fusionrt.plugins.sensors.image_codec import IMAGE_FILE_MSGTYPE
from fusionrt.plugins.sinks.foxglove_messages import (
    camera_calibration,
    compressed_image,
    point_cloud,
)
from fusionrt.runtime.messages import RawRecord

REAL = Path(__file__).resolve().parents[2] / "data" / "real"


def _decoded(message):
    return decode(type(message).get_schema(), message.encode())


def _rig(model: str, distortion: list[float]) -> Rig:
    camera = {
        "kind": "camera",
        "model": model,
        "width": 1920,
        "height": 1080,
        "K": [[1000.0, 0.5, 960.0], [0.0, 1001.0, 540.0], [0.0, 0.0, 1.0]],
        "distortion": distortion,
        "extrinsics": {"translation": [1, 0, 2], "rotation": {"quaternion_wxyz": [1, 0, 0, 0]}},
    }
    return Rig.from_dict({"frame": "base_link", "sensors": {"cam": camera}})


@pytest.mark.parametrize(
    ("model", "distortion", "foxglove_model", "d"),
    [
        ("pinhole", [], "plumb_bob", [0.0] * 5),  # Foxglove needs a model: no distortion
        ("plumb_bob", [0.1, -0.2, 0.001, 0.002, 0.03], "plumb_bob", None),
        (
            "plumb_bob",
            [0.1, -0.2, 0.001, 0.002, 0.03, 0.4, 0.05, 0.006],
            "rational_polynomial",
            None,
        ),
        ("fisheye", [0.01, -0.02, 0.003, -0.004], "kannala_brandt", None),  # OpenCV fisheye
    ],
)
def test_each_camera_model_is_the_foxglove_distortion_model_of_the_same_formula(
    model, distortion, foxglove_model, d
):
    rig = _rig(model, distortion)
    calibration = _decoded(camera_calibration(rig, "cam", 5_000_000_123))
    assert calibration.distortion_model == foxglove_model
    assert list(calibration.D) == (d if d is not None else distortion)
    assert list(calibration.K) == rig.camera("cam").K.reshape(9).tolist()
    assert (
        list(calibration.P)
        == np.hstack([rig.camera("cam").K, np.zeros((3, 1))]).reshape(12).tolist()
    )
    assert (calibration.width, calibration.height, calibration.frame_id) == (1920, 1080, "cam")
    assert (calibration.timestamp.seconds, calibration.timestamp.nanos) == (5, 123)


def test_a_cloud_declares_every_field_foxglove_can_read_at_its_offset():
    dtype = np.dtype(
        {
            "names": ["x", "y", "z", "intensity", "t", "ring", "label"],
            "formats": [">f4", ">f4", ">f4", "u1", ">f8", "<u2", "<i8"],  # big-endian from a bag
            "offsets": [0, 4, 8, 12, 16, 24, 26],
            "itemsize": 40,  # padding after the last field
        }
    )
    points = np.zeros(5, dtype)
    for name in ("x", "y", "z", "intensity", "t", "ring", "label"):
        points[name] = np.arange(5) * 7 + len(name)
    cloud = _decoded(point_cloud(points, 1, "lidar"))
    assert cloud.point_stride == 40 and len(cloud.data) == 5 * 40
    declared = {f.name: (f.offset, f.type) for f in cloud.fields}
    assert set(declared) == {"x", "y", "z", "intensity", "t", "ring"}  # no int64 in Foxglove
    numpy_of = {1: "<u1", 3: "<u2", 7: "<f4", 8: "<f8"}  # the schema's numeric types used here
    for name, (offset, kind) in declared.items():
        values = np.ndarray(5, numpy_of[kind], cloud.data, offset, (40,))
        np.testing.assert_array_equal(values, points[name])  # little-endian, as the schema says


def test_a_plain_array_of_points_is_sent_as_float32_xyz():
    xyz = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    cloud = _decoded(point_cloud(xyz, 1, "ego"))
    assert cloud.point_stride == 12 and [f.name for f in cloud.fields] == ["x", "y", "z"]
    np.testing.assert_array_equal(np.frombuffer(cloud.data, "<f4").reshape(2, 3), xyz)


@pytest.mark.parametrize(
    ("relative", "image_format"),
    [
        ("kitti/training/image_2/000008.png", "png"),
        ("nuscenes/samples/CAM_FRONT", "jpeg"),
    ],
)
def test_a_recorded_image_file_passes_byte_for_byte(relative, image_format):
    path = REAL / relative
    if path.is_dir():
        path = sorted(path.iterdir())[0]
    data = path.read_bytes()
    camera = CameraSensor("cam")
    message = camera.decode(RawRecord("/cam", 7, data, IMAGE_FILE_MSGTYPE, path=str(path)))
    image = _decoded(compressed_image(message, 7, "cam"))
    assert image.format == image_format and image.data == data and image.frame_id == "cam"
