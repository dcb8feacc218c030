"""Image decoding: ROS Image encodings, CompressedImage, image files, and bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fusionrt import DecodeError, RawRecord
from fusionrt.plugins.sensors.camera import CameraSensor, synthetic_road_image
from fusionrt.plugins.sensors.image_codec import (
    COMPRESSED_IMAGE_MSGTYPE,
    IMAGE_FILE_MSGTYPE,
    IMAGE_MSGTYPE,
    decode_image_msg,
    decode_image_record,
    encode_compressed_image_msg,
    encode_image_file,
    encode_image_msg,
)

NUSCENES = Path(__file__).resolve().parents[2] / "data" / "real" / "nuscenes" / "samples"
CAM_FRONT = (
    NUSCENES / "CAM_FRONT" / "n015-2018-07-24-11-22-45+0800__CAM_FRONT__1532402927612460.jpg"
)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return synthetic_road_image(64, 40)


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """A Bayer mosaic: ``pattern`` names the colours of the 2×2 tile, row-major."""
    channel = {"r": 0, "g": 1, "b": 2}
    out = np.zeros(rgb.shape[:2], np.uint8)
    for k, colour in enumerate(pattern):
        i, j = divmod(k, 2)
        out[i::2, j::2] = rgb[i::2, j::2, channel[colour]]
    return out


def test_rgb8_is_a_zero_copy_view(rgb: np.ndarray) -> None:
    data = encode_image_msg(rgb, "rgb8", stamp_ns=12_000_000_345, frame_id="cam")
    image = decode_image_msg(data)
    assert image.is_view and image.encoding == "rgb8"
    assert image.stamp_ns == 12_000_000_345 and image.frame_id == "cam"
    assert np.shares_memory(image.pixels, np.frombuffer(data, np.uint8))
    np.testing.assert_array_equal(image.pixels, rgb)


def test_padded_step_is_a_strided_view(rgb: np.ndarray) -> None:
    data = encode_image_msg(rgb, "rgb8", step=rgb.shape[1] * 3 + 13)
    image = decode_image_msg(data)
    assert image.is_view
    np.testing.assert_array_equal(image.pixels, rgb)


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8"])
def test_colour_encodings_become_rgb(rgb: np.ndarray, encoding: str) -> None:
    native = {
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "bgra8": np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 7, np.uint8)]),
    }[encoding]
    image = decode_image_msg(encode_image_msg(np.ascontiguousarray(native), encoding, step=300))
    assert image.encoding == encoding
    np.testing.assert_array_equal(image.pixels, rgb)


def test_mono8_becomes_grey_rgb(rgb: np.ndarray) -> None:
    grey = rgb[:, :, 1].copy()
    image = decode_image_msg(encode_image_msg(grey, "mono8"))
    assert image.pixels.shape == (*grey.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(image.pixels[:, :, c], grey)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_recover_a_flat_colour(pattern: str) -> None:
    flat = np.empty((16, 20, 3), np.uint8)
    flat[:] = (200, 100, 30)
    image = decode_image_msg(encode_image_msg(_mosaic(flat, pattern), f"bayer_{pattern}8"))
    # away from the border, demosaicing a flat colour gives that colour back
    np.testing.assert_array_equal(image.pixels[4:-4, 4:-4], flat[4:-4, 4:-4])


def test_bayer_of_a_scene_is_close_to_the_scene() -> None:
    scene = cv2.GaussianBlur(synthetic_road_image(160, 96), (5, 5), 0)
    image = decode_image_msg(encode_image_msg(_mosaic(scene, "rggb"), "bayer_rggb8"))
    error = np.abs(image.pixels[2:-2, 2:-2].astype(int) - scene[2:-2, 2:-2].astype(int))
    assert error.mean() < 6


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_image_and_file(rgb: np.ndarray, fmt: str) -> None:
    file_bytes = encode_image_file(rgb, fmt, quality=95)
    compressed = encode_compressed_image_msg(file_bytes, fmt, stamp_ns=5, frame_id="f")
    a = decode_image_record(compressed, COMPRESSED_IMAGE_MSGTYPE)
    b = decode_image_record(file_bytes, IMAGE_FILE_MSGTYPE)
    assert a.encoding == b.encoding == fmt and a.stamp_ns == 5 and b.stamp_ns is None
    np.testing.assert_array_equal(a.pixels, b.pixels)
    tolerance = 0 if fmt == "png" else 12
    assert np.abs(a.pixels.astype(int) - rgb.astype(int)).mean() <= tolerance


def test_real_nuscenes_jpeg_decodes_to_1600x900() -> None:
    if not CAM_FRONT.is_file():
        pytest.skip("nuScenes sample not present")
    data = CAM_FRONT.read_bytes()
    image = decode_image_record(data, IMAGE_FILE_MSGTYPE)
    assert image.pixels.shape == (900, 1600, 3) and image.pixels.dtype == np.uint8
    reference = cv2.cvtColor(cv2.imread(str(CAM_FRONT), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(image.pixels, reference)
    half = decode_image_record(data, IMAGE_FILE_MSGTYPE, reduction=2)
    assert half.pixels.shape == (450, 800, 3) and half.reduction == 2
    # the camera sensor reads the same file through a CompressedImage message
    sensor = CameraSensor("cam_front")
    record = RawRecord(
        "/cam", 1, encode_compressed_image_msg(data, "jpeg"), COMPRESSED_IMAGE_MSGTYPE
    )
    message = sensor.decode(record)
    assert message.payload.shape == (900, 1600, 3) and message.meta["encoding"] == "jpeg"


# -- bad input ------------------------------------------------------------------------------


def _raises(data: bytes, msgtype: str, match: str | None) -> DecodeError:
    with pytest.raises(DecodeError, match=match) as info:
        decode_image_record(data, msgtype, sensor="cam_front", topic="/cam/image")
    err = info.value
    assert err.context["sensor"] == "cam_front" and err.context["topic"] == "/cam/image"
    assert "offset" in err.context
    return err


def test_unknown_encoding(rgb: np.ndarray) -> None:
    data = bytearray(encode_image_msg(rgb, "rgb8"))
    index = data.find(b"rgb8")
    data[index : index + 4] = b"yuv4"
    _raises(bytes(data), IMAGE_MSGTYPE, "encoding 'yuv4' is not supported")


def test_step_too_small_and_size_mismatch(rgb: np.ndarray) -> None:
    store_msg = encode_image_msg(rgb, "rgb8")
    # rewrite the step field (uint32 after height, width, encoding and is_bigendian)
    from fusionrt.plugins.ros_types import typestore

    store = typestore()
    msg = store.deserialize_cdr(store_msg, IMAGE_MSGTYPE)
    msg.step = rgb.shape[1] * 3 - 1
    _raises(bytes(store.serialize_cdr(msg, IMAGE_MSGTYPE)), IMAGE_MSGTYPE, "step .* smaller")
    msg.step = rgb.shape[1] * 3
    msg.height = rgb.shape[0] + 1
    err = _raises(
        bytes(store.serialize_cdr(msg, IMAGE_MSGTYPE)), IMAGE_MSGTYPE, "expected height × step"
    )
    assert err.context["offset"] > 4


@pytest.mark.parametrize("cut", [1, 10, 100, -1])
def test_truncated_image_message(rgb: np.ndarray, cut: int) -> None:
    data = encode_image_msg(rgb, "rgb8")
    _raises(data[:cut], IMAGE_MSGTYPE, None)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_truncated_or_corrupt_files(rgb: np.ndarray, fmt: str) -> None:
    data = encode_image_file(rgb, fmt)
    _raises(data[:-1], IMAGE_FILE_MSGTYPE, "truncated")
    _raises(data[: len(data) // 2], IMAGE_FILE_MSGTYPE, "truncated")
    _raises(b"GIF89a" + data[6:], IMAGE_FILE_MSGTYPE, "neither JPEG nor PNG")
    _raises(b"", IMAGE_FILE_MSGTYPE, "neither JPEG nor PNG")


def test_unknown_msgtype(rgb: np.ndarray) -> None:
    _raises(b"abc", "sensor_msgs/msg/PointCloud2", "cannot read msgtype")


def test_decode_error_names_the_record(rgb: np.ndarray) -> None:
    sensor = CameraSensor("cam_left", topic="/left")
    record = RawRecord(
        "/left/image", 7, b"\x00\x01\x00\x00garbage", IMAGE_MSGTYPE, path="drive.mcap", offset=4096
    )
    with pytest.raises(DecodeError) as info:
        sensor.decode(record)
    context = info.value.context
    assert context["sensor"] == "cam_left" and context["topic"] == "/left/image"
    assert context["path"] == "drive.mcap" and context["record_offset"] == 4096
    assert "offset" in context
