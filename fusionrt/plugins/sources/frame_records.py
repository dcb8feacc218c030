"""Camera frames as the record bytes the ``camera`` sensor decodes: ``sensor_msgs/msg/Image`` or
``sensor_msgs/msg/CompressedImage`` CDR, written with one pass over the pixels.

OpenCV captures BGR; the record is ``rgb8`` (converted here, on the capture thread, so the
camera's decode is a zero-copy view), ``bgr8`` (as captured; the camera converts) or ``jpeg``
(a CompressedImage: an encode here and a decode there, for sinks that keep the JPEG bytes).

Both messages end with their pixel bytes, a CDR ``sequence<uint8>`` (``Image.msg`` and
``CompressedImage.msg`` of ros2/common_interfaces ``sensor_msgs``): a 4-byte aligned ``uint32``
element count followed by the elements, unaligned. So rosbags serialises the message with empty
``data`` — header, sizes, encoding, the count 0 last — and the count is overwritten with the
real one and the pixels written after it, straight into the record's buffer (OMG CDR,
formal/02-06-51 §15.3.2). Serialising the pixels through rosbags instead costs a second pass
over them.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.image_codec import COMPRESSED_IMAGE_MSGTYPE, IMAGE_MSGTYPE

__all__ = ["ENCODINGS", "frame_record_bytes"]

#: What a frame becomes: ``rgb8`` / ``bgr8`` Images or ``jpeg`` CompressedImages.
ENCODINGS = ("rgb8", "bgr8", "jpeg")

_EMPTY = np.empty(0, np.uint8)
_COUNT = struct.Struct("<I")  # the sequence's element count (CDR little-endian)


def frame_record_bytes(
    bgr: np.ndarray, encoding: str, stamp_ns: int, *, frame_id: str = "", jpeg_quality: int = 90
) -> tuple[bytearray, str]:
    """The CDR bytes and msgtype of one captured frame (``bgr``: H×W×3 uint8, as OpenCV gives)."""
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ValueError(f"expected an H×W×3 uint8 BGR frame, got {bgr.dtype} {bgr.shape}")
    store = typestore()
    types = store.types
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )
    if encoding == "jpeg":
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {bgr.shape} frame as JPEG")
        empty: Any = types[COMPRESSED_IMAGE_MSGTYPE](header=header, format="jpeg", data=_EMPTY)
        out, pixels = _with_payload(store.serialize_cdr(empty, COMPRESSED_IMAGE_MSGTYPE), jpeg.size)
        pixels[:] = jpeg.reshape(-1)
        return out, COMPRESSED_IMAGE_MSGTYPE
    if encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    height, width = bgr.shape[:2]
    empty = types[IMAGE_MSGTYPE](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * 3,
        data=_EMPTY,
    )
    out, pixels = _with_payload(store.serialize_cdr(empty, IMAGE_MSGTYPE), bgr.size)
    grid = pixels.reshape(height, width, 3)
    if encoding == "rgb8":
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=grid)
    else:
        np.copyto(grid, bgr)
    return out, IMAGE_MSGTYPE


def _with_payload(empty: memoryview, size: int) -> tuple[bytearray, np.ndarray]:
    """A buffer holding ``empty`` (a message serialised with an empty trailing uint8 sequence)
    with the count set to ``size``, and a writable view of its ``size`` payload bytes."""
    head = len(empty)
    out = bytearray(head + size)
    out[:head] = empty
    _COUNT.pack_into(out, head - _COUNT.size, size)
    return out, np.frombuffer(out, np.uint8, count=size, offset=head)
