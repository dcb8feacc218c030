"""The ``USS1`` frame format of the ultrasonic bumper controller.

A frame is little-endian and packed::

    magic    4 bytes   b"USS1"
    stamp_ns uint64    controller clock, nanoseconds
    count    uint16    number of echo records that follow
    flags    uint16    reserved, 0
    records  count × (id uint8, status uint8, range_m float32)

``status`` is 0 for a valid echo, 1 for no echo (free space up to the maximum range) and
2 for a faulty transducer.
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"USS1"
HEADER = struct.Struct("<4sQHH")
RECORD_DTYPE = np.dtype([("id", "u1"), ("status", "u1"), ("range_m", "<f4")])  # packed: 6 bytes
STATUS_OK, STATUS_NO_ECHO, STATUS_FAULT = 0, 1, 2


class WireFormatError(ValueError):
    """The bytes are not a valid USS1 frame; ``offset`` is where the problem is."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def encode_frame(stamp_ns: int, records: np.ndarray) -> bytes:
    """Serialise echo records (an array of ``RECORD_DTYPE``) into one frame."""
    records = np.asarray(records, dtype=RECORD_DTYPE)
    return HEADER.pack(MAGIC, stamp_ns, len(records), 0) + records.tobytes()


def decode_frame(data: bytes | bytearray | memoryview) -> tuple[int, np.ndarray]:
    """Return ``(stamp_ns, records)``; ``records`` is a read-only view of ``data``."""
    if len(data) < HEADER.size:
        raise WireFormatError(f"frame is {len(data)} bytes, shorter than the header", len(data))
    magic, stamp_ns, count, _flags = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireFormatError(f"bad magic {bytes(magic)!r}, expected {MAGIC!r}", 0)
    expected = HEADER.size + count * RECORD_DTYPE.itemsize
    if len(data) != expected:
        raise WireFormatError(
            f"frame declares {count} records ({expected} bytes) but has {len(data)} bytes",
            min(len(data), expected),
        )
    records = np.frombuffer(data, dtype=RECORD_DTYPE, count=count, offset=HEADER.size)
    return int(stamp_ns), records
