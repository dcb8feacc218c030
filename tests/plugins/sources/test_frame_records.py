"""Camera frames as Image / CompressedImage CDR: byte for byte what rosbags serialises for the
whole message (the pixels written after rosbags' empty-data prefix), for any size, stamp and
frame id."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.image_codec import COMPRESSED_IMAGE_MSGTYPE, IMAGE_MSGTYPE
from fusionrt.plugins.sources.frame_records import frame_record_bytes

frames = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda hw: arrays(np.uint8, (hw[0], hw[1], 3))
)
stamps = st.integers(0, 2**31 * 1_000_000_000 - 1)  # Time.sec is an int32
frame_ids = st.text(max_size=9)  # every length: the padding before the sizes changes


def _header(stamp_ns: int, frame_id: str):
    types = typestore().types
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


@settings(max_examples=200, deadline=None)
@given(frames, stamps, frame_ids, st.sampled_from(["rgb8", "bgr8"]))
def test_an_image_record_is_what_rosbags_writes_for_the_whole_message(
    bgr, stamp_ns, frame_id, encoding
):
    data, msgtype = frame_record_bytes(bgr, encoding, stamp_ns, frame_id=frame_id)
    pixels = bgr[:, :, ::-1] if encoding == "rgb8" else bgr
    store = typestore()
    whole = store.types[IMAGE_MSGTYPE](
        header=_header(stamp_ns, frame_id),
        height=bgr.shape[0],
        width=bgr.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=bgr.shape[1] * 3,
        data=np.ascontiguousarray(pixels).reshape(-1),
    )
    assert msgtype == IMAGE_MSGTYPE
    assert bytes(data) == bytes(store.serialize_cdr(whole, IMAGE_MSGTYPE))


@settings(max_examples=50, deadline=None)
@given(frames, stamps, frame_ids)
def test_a_jpeg_record_is_what_rosbags_writes_for_the_whole_message(bgr, stamp_ns, frame_id):
    data, msgtype = frame_record_bytes(bgr, "jpeg", stamp_ns, frame_id=frame_id, jpeg_quality=80)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
    store = typestore()
    whole = store.types[COMPRESSED_IMAGE_MSGTYPE](
        header=_header(stamp_ns, frame_id), format="jpeg", data=jpeg.reshape(-1)
    )
    assert ok and msgtype == COMPRESSED_IMAGE_MSGTYPE
    assert bytes(data) == bytes(store.serialize_cdr(whole, COMPRESSED_IMAGE_MSGTYPE))


@pytest.mark.parametrize(
    "frame",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16)],
)
def test_frames_that_are_not_bgr_pictures_are_refused(frame):
    with pytest.raises(ValueError, match="H×W×3 uint8 BGR"):
        frame_record_bytes(frame, "rgb8", 1)
