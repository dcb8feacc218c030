"""Camera images from recorded bytes: ROS 2 ``Image`` / ``CompressedImage`` (CDR) and image files.

Every decoder returns pixels in **one channel order: RGB, uint8, H×W×3** (``DecodedImage.pixels``),
and says what the recorded encoding was (``rgb8``, ``bgr8``, ``mono8``, ``bayer_rggb8``...,
``jpeg``, ``png``) so nothing is lost:

* ``sensor_msgs/msg/Image`` ``rgb8`` is returned as a **view** of the message bytes (no copy,
  read-only; a padded ``step`` gives a strided view). ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``
  and the four 8-bit Bayer patterns are converted once with ``cv2.cvtColor``.
* ``sensor_msgs/msg/CompressedImage`` and image files (JPEG or PNG, recognised by their magic
  bytes) are decoded with ``cv2.imdecode`` straight into RGB; EXIF orientation is ignored (camera
  frames are used as the sensor recorded them). ``reduction`` 2, 4 or 8 decodes a JPEG at 1/2,
  1/4 or 1/8 of its size through libjpeg's DCT scaling, which is much faster than decoding at full
  size and resizing (pixel ``i`` of the reduced image covers full-size pixels
  ``[r·i, r·i + r)``, i.e. ``u_reduced = (u + 0.5) / r − 0.5``).

Every size in a message is checked before numpy or OpenCV sees it. Bad input raises
:class:`~fusionrt.DecodeError` with the caller's context (``sensor``, ``topic``, ``path``,
``record_offset``) and ``offset``: the byte offset in the record where the problem lies (the CDR
encapsulation header included). A JPEG must end with its EOI marker and a PNG with its ``IEND``
chunk, so that a truncated file is an error rather than a half-grey picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fusionrt.plugins.ros_decode import (
    CDR_HEADER_BYTES,
    as_buffer,
    deserialize,
    header_stamp_ns,
    offset_in,
)
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import DecodeError

IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_MSGTYPE = "sensor_msgs/msg/CompressedImage"
#: The msgtype of a record whose bytes are a whole image file (JPEG or PNG).
IMAGE_FILE_MSGTYPE = "fusionrt/image_file"
#: Msgtypes read as image files; an empty msgtype is sniffed from the magic bytes too.
IMAGE_FILE_MSGTYPES = frozenset(
    {IMAGE_FILE_MSGTYPE, "image/jpeg", "image/png", "kitti/image_png", "nuscenes/camera_jpg", ""}
)

#: ``sensor_msgs/msg/Image`` encodings understood: channels per pixel and the OpenCV
#: conversion to RGB (``None``: already RGB).
RAW_ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, cv2.COLOR_GRAY2RGB),
    # ROS names the 2×2 pattern from the top-left pixel; OpenCV names it from the second row
    # (the same mapping as cv_bridge).
    "bayer_rggb8": (1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, cv2.COLOR_BayerGB2RGB),
}

_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"
# OpenCV >= 4.10 decodes straight to RGB; older releases decode BGR and convert.
_IMREAD_RGB: int | None = getattr(cv2, "IMREAD_COLOR_RGB", None)
_IMREAD_REDUCED = {1: 0, 2: 16, 4: 32, 8: 64}  # the IMREAD_REDUCED_* bit of each factor


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An image in RGB uint8 H×W×3, with where it came from.

    ``stamp_ns`` is the message header's stamp (``None`` for image files or a zero stamp);
    ``reduction`` is the JPEG DCT reduction applied (1 = full size); ``is_view`` says whether
    ``pixels`` shares memory with the recorded bytes. ``compressed`` is the recorded JPEG or
    PNG file (a copy of its bytes, ``None`` for raw Images): outputs pass it on as it is
    instead of encoding the pixels again.
    """

    pixels: np.ndarray
    encoding: str
    stamp_ns: int | None = None
    frame_id: str = ""
    reduction: int = 1
    is_view: bool = False
    compressed: bytes | None = None


def is_image_file_msgtype(msgtype: str) -> bool:
    """Whether records of ``msgtype`` hold a whole image file."""
    return msgtype in IMAGE_FILE_MSGTYPES or msgtype.startswith("image/")


def decode_image_record(
    data: bytes | bytearray | memoryview, msgtype: str, *, reduction: int = 1, **where: Any
) -> DecodedImage:
    """Decode one record of ``msgtype`` (Image, CompressedImage or an image file) to RGB.

    ``where`` (``sensor``, ``topic``, ``path``, ``record_offset``) is context for errors.
    """
    kind = msgtype.replace("/msg/", "/")
    if kind == "sensor_msgs/Image":
        return decode_image_msg(data, **where)
    if kind == "sensor_msgs/CompressedImage":
        return decode_compressed_image_msg(data, reduction=reduction, **where)
    if is_image_file_msgtype(msgtype):
        return decode_image_file(data, reduction=reduction, **where)
    raise DecodeError(
        f"camera cannot read msgtype {msgtype!r} (known: {IMAGE_MSGTYPE}, "
        f"{COMPRESSED_IMAGE_MSGTYPE}, {IMAGE_FILE_MSGTYPE})",
        **where,
        offset=0,
    )


def _stamp_of(header: Any, where: dict[str, Any]) -> int | None:
    # A zero stamp means "not set": the camera then uses the record's stamp.
    stamp = header_stamp_ns(header, **where)
    return stamp if stamp > 0 else None


def decode_image_msg(data: bytes | bytearray | memoryview, **where: Any) -> DecodedImage:
    """Decode CDR bytes of a ``sensor_msgs/msg/Image`` (8-bit encodings) to RGB uint8.

    ``rgb8`` pixels are a read-only view of ``data``; other encodings are converted once.
    """
    buffer = as_buffer(data)
    msg = deserialize(buffer, IMAGE_MSGTYPE, **where)
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    pixels: np.ndarray = msg.data
    data_offset = offset_in(pixels, buffer)
    spec = RAW_ENCODINGS.get(encoding) or RAW_ENCODINGS.get(encoding.lower())
    if spec is None:
        raise DecodeError(
            f"Image encoding {encoding!r} is not supported (supported: {sorted(RAW_ENCODINGS)})",
            **where,
            offset=CDR_HEADER_BYTES,
        )
    channels, conversion = spec
    if height <= 0 or width <= 0:
        raise DecodeError(f"Image is empty ({width}×{height} pixels)", **where, offset=0)
    if step < width * channels:
        raise DecodeError(
            f"Image step {step} is smaller than width × channels = {width} × {channels} "
            f"for {encoding}",
            **where,
            offset=data_offset,
        )
    if pixels.size != height * step:
        at = None if data_offset is None else data_offset + min(pixels.size, height * step)
        raise DecodeError(
            f"Image data holds {pixels.size} bytes, expected height × step = {height} × {step} "
            f"= {height * step} (truncated message or wrong step)",
            **where,
            offset=at,
        )
    if (
        conversion is not None
        and channels == 1
        and encoding.startswith("bayer")
        and (height < 2 or width < 2)
    ):
        raise DecodeError(f"Bayer image {width}×{height} is smaller than 2×2", **where, offset=0)
    # A (height, width, channels) view with the row stride of the message: no copy.
    grid = np.ndarray((height, width, channels), np.uint8, pixels, 0, (step, channels, 1))
    if conversion is None:
        rgb, is_view = grid, True
    else:
        source = grid[:, :, 0] if channels == 1 else grid
        rgb, is_view = cv2.cvtColor(np.ascontiguousarray(source), conversion), False
    return DecodedImage(
        pixels=rgb,
        encoding=encoding,
        stamp_ns=_stamp_of(msg.header, where),
        frame_id=str(msg.header.frame_id),
        is_view=is_view,
    )


def decode_compressed_image_msg(
    data: bytes | bytearray | memoryview, *, reduction: int = 1, **where: Any
) -> DecodedImage:
    """Decode CDR bytes of a ``sensor_msgs/msg/CompressedImage`` (JPEG or PNG) to RGB uint8."""
    buffer = as_buffer(data)
    msg = deserialize(buffer, COMPRESSED_IMAGE_MSGTYPE, **where)
    payload: np.ndarray = msg.data
    data_offset = offset_in(payload, buffer) or 0
    decoded = _decode_file_bytes(payload, reduction, data_offset, **where)
    return DecodedImage(
        pixels=decoded.pixels,
        encoding=decoded.encoding,
        stamp_ns=_stamp_of(msg.header, where),
        frame_id=str(msg.header.frame_id),
        reduction=decoded.reduction,
        compressed=decoded.compressed,
    )


def decode_image_file(
    data: bytes | bytearray | memoryview, *, reduction: int = 1, **where: Any
) -> DecodedImage:
    """Decode the bytes of a JPEG or PNG file to RGB uint8."""
    return _decode_file_bytes(
        np.frombuffer(memoryview(data).cast("B"), np.uint8), reduction, 0, **where
    )


def image_format_of(head: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``None`` from the first bytes of a file."""
    if head.startswith(_JPEG_MAGIC):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    return None


def _decode_file_bytes(
    payload: np.ndarray, reduction: int, base_offset: int, **where: Any
) -> DecodedImage:
    if reduction not in _IMREAD_REDUCED:
        raise ValueError(f"reduction must be 1, 2, 4 or 8, got {reduction}")
    head = payload[:8].tobytes()
    fmt = image_format_of(head)
    if fmt is None:
        raise DecodeError(
            f"image bytes are neither JPEG nor PNG (first bytes {head.hex()!r}, "
            f"{payload.size} bytes)",
            **where,
            offset=base_offset,
        )
    end = payload.size
    if fmt == "jpeg":
        while end > 0 and payload[end - 1] == 0:  # some encoders pad with zeros
            end -= 1
        complete = end >= 4 and payload[end - 2 : end].tobytes() == _JPEG_EOI
    else:
        complete = end >= 20 and payload[end - 8 : end].tobytes() == _PNG_IEND
    if not complete:
        marker = "EOI marker FFD9" if fmt == "jpeg" else "IEND chunk"
        raise DecodeError(
            f"{fmt.upper()} data of {payload.size} bytes does not end with its {marker} "
            "(truncated file)",
            **where,
            offset=base_offset + payload.size,
        )
    factor = reduction if fmt == "jpeg" else 1  # PNG has no cheap reduced decode
    color = _IMREAD_RGB if _IMREAD_RGB is not None else cv2.IMREAD_COLOR
    flags = color | _IMREAD_REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        pixels = cv2.imdecode(payload, flags)
    except cv2.error as exc:
        raise DecodeError(
            f"{fmt.upper()} data could not be decoded: {exc}", **where, offset=base_offset
        ) from exc
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise DecodeError(
            f"{fmt.upper()} data of {payload.size} bytes could not be decoded to an 8-bit image",
            **where,
            offset=base_offset,
        )
    if _IMREAD_RGB is None:
        cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)
    # a copy, not a view: a view would keep the whole record (a bag chunk) alive
    return DecodedImage(pixels=pixels, encoding=fmt, reduction=factor, compressed=payload.tobytes())


# -- encoders (samples, tests, tools) -------------------------------------------------------


def encode_image_msg(
    pixels: np.ndarray,
    encoding: str,
    *,
    stamp_ns: int = 0,
    frame_id: str = "",
    step: int | None = None,
) -> bytes:
    """CDR bytes of a ``sensor_msgs/msg/Image`` holding ``pixels`` (H×W or H×W×C uint8).

    ``pixels`` must already be in ``encoding``'s channel layout; ``step`` larger than
    ``width · channels`` pads each row with zeros.
    """
    if encoding not in RAW_ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}")
    channels = RAW_ENCODINGS[encoding][0]
    grid = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    if grid.shape[2] != channels or grid.dtype != np.uint8:
        raise ValueError(f"{encoding} needs {channels} uint8 channels, got {pixels.shape}")
    height, width = grid.shape[:2]
    row = width * channels
    step = row if step is None else step
    if step < row:
        raise ValueError(f"step {step} < width × channels = {row}")
    body = np.zeros((height, step), np.uint8)
    body[:, :row] = grid.reshape(height, row)
    store = typestore()
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg = store.types[IMAGE_MSGTYPE](
        header=_header(store, sec, nanosec, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=step,
        data=body.reshape(-1),
    )
    return bytes(store.serialize_cdr(msg, IMAGE_MSGTYPE))


def encode_compressed_image_msg(
    file_bytes: bytes, fmt: str, *, stamp_ns: int = 0, frame_id: str = ""
) -> bytes:
    """CDR bytes of a ``sensor_msgs/msg/CompressedImage`` holding a JPEG or PNG file."""
    store = typestore()
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg = store.types[COMPRESSED_IMAGE_MSGTYPE](
        header=_header(store, sec, nanosec, frame_id),
        format=fmt,
        data=np.frombuffer(file_bytes, np.uint8),
    )
    return bytes(store.serialize_cdr(msg, COMPRESSED_IMAGE_MSGTYPE))


def _header(store: Any, sec: int, nanosec: int, frame_id: str) -> Any:
    time = store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return store.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def encode_image_file(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """JPEG or PNG file bytes of an RGB uint8 image (deterministic for one OpenCV build)."""
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    else:
        raise ValueError(f"fmt must be 'jpeg' or 'png', got {fmt!r}")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    return buf.tobytes()


__all__ = [
    "COMPRESSED_IMAGE_MSGTYPE",
    "IMAGE_FILE_MSGTYPE",
    "IMAGE_FILE_MSGTYPES",
    "IMAGE_MSGTYPE",
    "RAW_ENCODINGS",
    "DecodedImage",
    "decode_compressed_image_msg",
    "decode_image_file",
    "decode_image_msg",
    "decode_image_record",
    "encode_compressed_image_msg",
    "encode_image_file",
    "encode_image_msg",
    "image_format_of",
    "is_image_file_msgtype",
]
