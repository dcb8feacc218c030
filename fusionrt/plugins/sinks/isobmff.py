"""The top-level boxes of an ISO base media file (MP4): enough to find where a torn file ends.

ISO/IEC 14496-12 (ISO base media file format), §4.2 "Object structure": a file is a sequence
of boxes; each starts with a 32-bit big-endian ``size`` (the whole box, header included) and a
4-character ``type``; ``size`` 1 means a 64-bit big-endian size follows the type, ``size`` 0
means the box extends to the end of the file. §8.8 (movie fragments): a fragment is a ``moof``
box describing samples whose bytes follow in an ``mdat`` box.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

__all__ = ["Box", "top_level_boxes", "whole_end"]

_HEADER = struct.Struct(">I4s")
_LARGE_SIZE = struct.Struct(">Q")


class Box(NamedTuple):
    """A top-level box: its 4-character type, offset and size in bytes (header included)."""

    type: str
    offset: int
    size: int


def _read_boxes(stream: BinaryIO, length: int) -> list[Box]:
    boxes: list[Box] = []
    offset = 0
    while offset + _HEADER.size <= length:
        stream.seek(offset)
        size, raw_type = _HEADER.unpack(stream.read(_HEADER.size))
        header = _HEADER.size
        if size == 1:
            large = stream.read(_LARGE_SIZE.size)
            if len(large) < _LARGE_SIZE.size:
                break
            (size,) = _LARGE_SIZE.unpack(large)
            header += _LARGE_SIZE.size
        elif size == 0:
            size = length - offset
        if size < header or offset + size > length:
            break  # torn (or not a box at all): the boxes before it are the whole ones
        boxes.append(Box(raw_type.decode("latin-1"), offset, size))
        offset += size
    return boxes


def top_level_boxes(path: Path) -> list[Box]:
    """The whole top-level boxes of ``path`` in file order, up to the first torn one."""
    with Path(path).open("rb") as stream:
        length = stream.seek(0, 2)
        return _read_boxes(stream, length)


def whole_end(path: Path) -> int:
    """Where ``path`` should end to hold whole boxes only: after the last whole box, less a
    trailing ``moof`` whose ``mdat`` (the fragment's samples) is missing."""
    boxes = top_level_boxes(path)
    if boxes and boxes[-1].type == "moof":
        boxes.pop()
    return boxes[-1].offset + boxes[-1].size if boxes else 0
