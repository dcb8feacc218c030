"""Reading ROS 2 messages: CDR bytes to a message, and a header's stamp to nanoseconds.

The sensor codecs (camera images, PointCloud2, CAN frames) share these steps, so a bad message
is reported the same way whichever sensor reads it:

* :func:`deserialize` runs rosbags' CDR deserializer with fusionrt's one typestore and turns any
  failure into a :class:`~fusionrt.runtime.errors.DecodeError` whose ``offset`` is the byte
  offset in the serialized message where it failed. rosbags names that offset in its message
  ("... at offset N"), counted from the start of the CDR body, which follows the 4-byte
  encapsulation header (representation identifier and options, OMG DDS-XTypes).
* :func:`header_stamp_ns` turns the ``builtin_interfaces/msg/Time`` of a ``std_msgs/msg/Header``
  into ``int`` nanoseconds. ``Time.msg`` (ros2/rcl_interfaces) has ``int32 sec``, "valid over all
  int32 values", and ``uint32 nanosec``, "valid in the range [0, 1e9)". A ``nanosec`` of 10⁹ or
  more breaks that definition, and a negative ``sec`` (before 1970) is valid ROS time but not a
  plausible sensor stamp: both raise :class:`~fusionrt.runtime.errors.StampError`, which
  the frame assembler reports as ``implausible_stamp`` rather than ``decode_error``.

:func:`as_buffer` and :func:`offset_in` let a codec keep arrays as views of the received bytes
and say where in the message a bad array lies.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import DecodeError, StampError

__all__ = [
    "CDR_HEADER_BYTES",
    "NS_PER_S",
    "as_buffer",
    "deserialize",
    "header_stamp_ns",
    "offset_in",
]

#: Bytes of the CDR encapsulation header before the message body.
CDR_HEADER_BYTES = 4
NS_PER_S = 1_000_000_000
_ROSBAGS_OFFSET = re.compile(r"at offset (\d+)")


def as_buffer(data: bytes | bytearray | memoryview) -> memoryview:
    """``data`` as a byte-format memoryview: rosbags slices it, so the message's arrays are
    views of ``data`` (a slice of ``bytes`` would be a copy). A non-contiguous view is copied."""
    try:
        return memoryview(data).cast("B")
    except TypeError:
        return memoryview(bytes(data))


def offset_in(view: np.ndarray, buffer: memoryview) -> int | None:
    """Byte offset of ``view`` inside ``buffer`` when it is a view of it, else ``None``."""
    base = np.frombuffer(buffer, np.uint8)
    if view.size == 0 or base.size == 0 or not np.shares_memory(view, base):
        return None
    return int(view.__array_interface__["data"][0] - base.__array_interface__["data"][0])


def deserialize(buffer: memoryview, msgtype: str, **where: Any) -> Any:
    """The ``msgtype`` message held by the CDR bytes in ``buffer``.

    ``buffer`` comes from :func:`as_buffer`. ``where`` (``sensor``, ``topic``, ``path``,
    ``record_offset``) names the message in the error; ``offset`` is added (0 when rosbags does
    not say where it failed).
    """
    try:
        return typestore().deserialize_cdr(buffer, msgtype)
    except Exception as exc:  # rosbags raises SerdeError and struct/Index/ValueError variants
        found = _ROSBAGS_OFFSET.search(str(exc))
        offset = int(found.group(1)) + CDR_HEADER_BYTES if found else 0
        # A field aligned past the end of a truncated message: the failure is where it ends.
        offset = min(offset, len(buffer))
        raise DecodeError(
            f"not a valid CDR {msgtype} message ({len(buffer)} bytes): {exc}",
            **where,
            offset=offset,
        ) from exc


def header_stamp_ns(header: Any, **where: Any) -> int:
    """``header.stamp`` (a ``std_msgs/msg/Header``) as ``int`` nanoseconds since the epoch.

    Raises :class:`~fusionrt.runtime.errors.StampError` (with ``where`` and the byte ``offset``
    of the bad field) for a ``nanosec`` of 10⁹ or more or a negative ``sec``. The offsets are
    those of a message whose first field is its header (Image, CompressedImage, PointCloud2,
    can_msgs Frame): ``sec`` right after the encapsulation header, ``nanosec`` 4 bytes later.
    A zero stamp is returned as 0: what "unset" means is the caller's choice.
    """
    sec = int(header.stamp.sec)
    nanosec = int(header.stamp.nanosec)
    if nanosec >= NS_PER_S:
        raise StampError(
            f"header stamp nanosec {nanosec} is not below 10**9 (sec {sec})",
            **where,
            offset=CDR_HEADER_BYTES + 4,
        )
    if sec < 0:
        raise StampError(
            f"header stamp sec {sec} is negative (before 1970)", **where, offset=CDR_HEADER_BYTES
        )
    return sec * NS_PER_S + nanosec
