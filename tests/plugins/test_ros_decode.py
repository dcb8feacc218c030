"""The shared ROS 2 decode steps, on crafted CDR bytes of every message the codecs read."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.plugins.ros_decode import as_buffer, deserialize, header_stamp_ns
from fusionrt.plugins.sensors.can import CanFrame, decode_can_frame_msg, encode_can_frame_msg
from fusionrt.plugins.sensors.image_codec import (
    COMPRESSED_IMAGE_MSGTYPE,
    IMAGE_MSGTYPE,
    decode_compressed_image_msg,
    decode_image_msg,
    encode_compressed_image_msg,
    encode_image_file,
    encode_image_msg,
)
from fusionrt.plugins.sensors.pointcloud2 import MSGTYPE as POINTCLOUD2_MSGTYPE
from fusionrt.plugins.sensors.pointcloud2 import decode_pointcloud2, encode_pointcloud2
from fusionrt.runtime.errors import DecodeError, StampError

STAMP_NS = 1_700_000_000_123_456_789
WHERE = {"sensor": "front", "topic": "/front", "path": "drive.mcap", "record_offset": 4096}


def _image() -> bytes:
    return encode_image_msg(np.zeros((4, 6, 3), np.uint8), "rgb8", stamp_ns=STAMP_NS)


def _compressed() -> bytes:
    jpeg = encode_image_file(np.zeros((8, 8, 3), np.uint8), "jpeg")
    return encode_compressed_image_msg(jpeg, "jpeg", stamp_ns=STAMP_NS)


def _cloud() -> bytes:
    points = np.zeros(3, [("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    return encode_pointcloud2(points, "lidar", STAMP_NS)


def _can() -> bytes:
    return encode_can_frame_msg(CanFrame(STAMP_NS, "can0", 0x1A0, b"\x01\x02"))


#: (serialized message, its msgtype, the codec reading it, the decoded stamp)
CODECS: dict[str, tuple[Callable[[], bytes], str, Callable[..., Any], Callable[[Any], int]]] = {
    "Image": (_image, IMAGE_MSGTYPE, decode_image_msg, lambda d: d.stamp_ns),
    "CompressedImage": (
        _compressed,
        COMPRESSED_IMAGE_MSGTYPE,
        decode_compressed_image_msg,
        lambda d: d.stamp_ns,
    ),
    "PointCloud2": (_cloud, POINTCLOUD2_MSGTYPE, decode_pointcloud2, lambda d: d.stamp_ns),
    "can_msgs Frame": (_can, "can_msgs/msg/Frame", decode_can_frame_msg, lambda d: d.t_ns),
}


def _craft(data: bytes, *, sec: int | None = None, nanosec: int | None = None) -> bytes:
    """``data`` (little-endian CDR, header first) with its header stamp overwritten."""
    out = bytearray(data)
    assert out[:2] == b"\x00\x01"
    if sec is not None:
        struct.pack_into("<i", out, 4, sec)
    if nanosec is not None:
        struct.pack_into("<I", out, 8, nanosec)
    return bytes(out)


@pytest.mark.parametrize("codec", list(CODECS))
def test_every_codec_reads_the_header_stamp_exactly(codec: str) -> None:
    make, _, decode, stamp_of = CODECS[codec]
    assert stamp_of(decode(make(), **WHERE)) == STAMP_NS
    edge = _craft(make(), nanosec=999_999_999)
    assert stamp_of(decode(edge, **WHERE)) == 1_700_000_000 * 10**9 + 999_999_999


@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize(
    ("crafted", "offset", "words"),
    [
        ({"nanosec": 10**9}, 8, "nanosec 1000000000 is not below 10**9"),
        ({"nanosec": 2**32 - 1}, 8, "nanosec 4294967295"),
        ({"sec": -1}, 4, "sec -1 is negative"),
        ({"sec": -(2**31)}, 4, "is negative"),
    ],
)
def test_an_impossible_header_stamp_is_a_stamp_error_naming_the_field_offset(
    codec: str, crafted: dict[str, int], offset: int, words: str
) -> None:
    make, _, decode, _ = CODECS[codec]
    with pytest.raises(StampError) as info:
        decode(_craft(make(), **crafted), **WHERE)
    error = info.value
    assert isinstance(error, DecodeError)  # callers that only know DecodeError still catch it
    assert words in error.message
    assert error.context == {**WHERE, "offset": offset}
    assert "\n" not in str(error)


def test_header_stamp_ns_of_a_deserialized_header() -> None:
    msg = deserialize(as_buffer(_cloud()), POINTCLOUD2_MSGTYPE)
    assert header_stamp_ns(msg.header) == STAMP_NS
    msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
    assert header_stamp_ns(msg.header) == 0  # "unset": the caller decides what it means


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CODECS)), st.data())
def test_a_truncated_message_is_a_decode_error_at_an_offset_inside_it(
    codec: str, data: st.DataObject
) -> None:
    make, msgtype, decode, _ = CODECS[codec]
    full = make()
    cut = data.draw(st.integers(0, len(full) - 1))
    try:
        deserialize(as_buffer(full[:cut]), msgtype, **WHERE)
    except StampError:
        pytest.fail("a truncated message is not a stamp error")
    except DecodeError as exc:
        assert exc.context["offset"] <= cut  # where the reader ran out, never beyond it
        assert exc.context["sensor"] == "front" and msgtype in exc.message
    else:
        # rosbags does not check trailing padding: then the codec's own size checks must fail
        with pytest.raises(DecodeError):
            decode(full[:cut], **WHERE)


def test_the_offset_is_where_rosbags_stopped_after_the_encapsulation_header() -> None:
    full = _compressed()
    with pytest.raises(DecodeError) as info:
        deserialize(as_buffer(full[:10]), COMPRESSED_IMAGE_MSGTYPE, **WHERE)
    # 10 bytes: the 4-byte encapsulation, sec (4..8), half of nanosec (8..12): nanosec fails
    assert info.value.context["offset"] == 8
    with pytest.raises(DecodeError) as info:
        deserialize(as_buffer(b"\x07\x07"), COMPRESSED_IMAGE_MSGTYPE, **WHERE)
    assert info.value.context["offset"] == 0  # no encapsulation header: at the start


def test_as_buffer_keeps_views_and_copies_only_what_it_must() -> None:
    raw = bytearray(_cloud())
    view = as_buffer(raw)
    assert view.obj is raw  # no copy
    strided = memoryview(bytes(raw) * 2)[::2]
    assert bytes(as_buffer(strided)) == bytes(strided)  # non-contiguous: one copy
    cloud = decode_pointcloud2(raw)
    assert cloud.data_offset is not None and np.shares_memory(
        cloud.points, np.frombuffer(raw, np.uint8)
    )
