"""The MCAP wire format, as far as checking a file against its own indexes needs.

Source: the MCAP specification, https://mcap.dev/spec (format version 0x30, "0"). Every
record is ``opcode: uint8, length: uint64, body``, little-endian. The bodies read here:

* Chunk (0x06): ``message_start_time: uint64, message_end_time: uint64,
  uncompressed_size: uint64, uncompressed_crc: uint32`` (CRC-32 of the uncompressed records;
  0 means "not computed"), ``compression: string`` (``uint32`` length + UTF-8: ``""``,
  ``"zstd"`` or ``"lz4"``), ``records: uint64`` length + bytes;
* Message Index (0x07): ``channel_id: uint16``, then ``uint32`` byte length + array of
  ``(log_time: uint64, offset: uint64)``, ``offset`` being the message record's offset in the
  chunk's uncompressed records;
* Message (0x05): ``channel_id: uint16, sequence: uint32, log_time: uint64,
  publish_time: uint64``, then the message bytes up to the record's end;
* Footer (0x02, the last record before the closing magic): ``summary_start: uint64,
  summary_offset_start: uint64, summary_crc: uint32``.

The ``mcap`` library parses whole records (and this package uses it for the summary, schemas
and channels), but it reads a chunk only whole, gives no offsets of the records inside it and
does not bound a record's length by its chunk. Checking a file against its message indexes
needs all three, hence these few functions.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import lz4.frame  # installed with rosbags, which needs it too
import numpy as np
import numpy.typing as npt
import zstandard

__all__ = [
    "CHUNK_CRC_OFFSET",
    "COMPRESSIONS",
    "FOOTER_SIZE",
    "MAGIC",
    "OP_CHANNEL",
    "OP_CHUNK",
    "OP_DATA_END",
    "OP_FOOTER",
    "OP_HEADER",
    "OP_MESSAGE",
    "OP_MESSAGE_INDEX",
    "OP_NAMES",
    "OP_SCHEMA",
    "RECORD_HEAD",
    "ChunkHead",
    "add_chunk_crcs",
    "chunk_records",
    "decompress",
    "message_index_entries",
    "parse_message",
    "read_chunk_head",
    "read_summary_start",
]

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER = 0x01
OP_FOOTER = 0x02
OP_SCHEMA = 0x03
OP_CHANNEL = 0x04
OP_MESSAGE = 0x05
OP_CHUNK = 0x06
OP_MESSAGE_INDEX = 0x07
OP_DATA_END = 0x0F
OP_NAMES = {
    OP_HEADER: "header",
    OP_FOOTER: "footer",
    OP_SCHEMA: "schema",
    OP_CHANNEL: "channel",
    OP_MESSAGE: "message",
    OP_CHUNK: "chunk",
    OP_MESSAGE_INDEX: "message index",
    OP_DATA_END: "data end",
}
COMPRESSIONS = ("", "zstd", "lz4")

#: ``opcode: uint8, length: uint64``: the head of every record.
RECORD_HEAD = struct.Struct("<BQ")
#: The fixed fields of a chunk, up to the compression string's length.
_CHUNK_FIXED = struct.Struct("<QQQII")
#: Where a chunk's ``uncompressed_crc`` is, from the start of its record.
CHUNK_CRC_OFFSET = RECORD_HEAD.size + 24
#: The footer record with the closing magic after it.
FOOTER_SIZE = RECORD_HEAD.size + 8 + 8 + 4 + len(MAGIC)
_MESSAGE_HEAD = struct.Struct("<HIQQ")
_INDEX_HEAD = struct.Struct("<HI")
_INDEX_ENTRY = np.dtype([("log_time", "<u8"), ("offset", "<u8")])


@dataclass(frozen=True, slots=True)
class ChunkHead:
    """A chunk record's fields before its data, and where its data is in the file."""

    start_ns: int
    end_ns: int
    uncompressed_size: int
    crc: int
    compression: str
    data_offset: int
    data_size: int


def read_chunk_head(f: BinaryIO, offset: int, length: int) -> ChunkHead | None:
    """The head of the chunk record at ``offset`` whose body has ``length`` bytes.

    ``None`` when the fields do not add up to ``length`` or name no known compression: the
    bytes there are not a chunk.
    """
    f.seek(offset + RECORD_HEAD.size)
    fixed = f.read(_CHUNK_FIXED.size)
    if len(fixed) < _CHUNK_FIXED.size:
        return None
    start, end, size, crc, name_length = _CHUNK_FIXED.unpack(fixed)
    if name_length > max(map(len, COMPRESSIONS)):
        return None
    tail = f.read(name_length + 8)
    if len(tail) < name_length + 8:
        return None
    compression = tail[:name_length].decode("ascii", "replace")
    (data_size,) = struct.unpack_from("<Q", tail, name_length)
    fields = _CHUNK_FIXED.size + name_length + 8
    if compression not in COMPRESSIONS or fields + data_size != length:
        return None
    return ChunkHead(
        start, end, size, crc, compression, offset + RECORD_HEAD.size + fields, data_size
    )


def decompress(compression: str, data: bytes, uncompressed_size: int) -> bytes:
    """A chunk's records; raises ``ValueError`` when they do not decompress to their size."""
    try:
        if compression == "zstd":
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=uncompressed_size)
        elif compression == "lz4":
            out = lz4.frame.decompress(data)
        else:
            out = data
    except (zstandard.ZstdError, RuntimeError) as exc:  # lz4 raises RuntimeError
        raise ValueError(f"{compression} data does not decompress: {exc}") from None
    if len(out) != uncompressed_size:
        raise ValueError(f"decompressed to {len(out)} bytes, the chunk says {uncompressed_size}")
    return out


def chunk_records(data: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """``(offset, opcode, body)`` of each record in a chunk's uncompressed records.

    Raises ``ValueError`` at a record that runs past the end: what follows cannot be found.
    """
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        if pos + RECORD_HEAD.size > len(view):
            raise ValueError(f"a record head cut at byte {pos} of the chunk's records")
        opcode, length = RECORD_HEAD.unpack_from(view, pos)
        body = pos + RECORD_HEAD.size
        if opcode == 0 or body + length > len(view):
            raise ValueError(
                f"the record at byte {pos} of the chunk's records "
                f"(opcode 0x{opcode:02x}, {length} bytes) runs past their end"
            )
        yield pos, opcode, view[body : body + length]
        pos = body + length


def parse_message(body: memoryview) -> tuple[int, int, bytes]:
    """``(channel_id, log_time, data)`` of a message record's body."""
    if len(body) < _MESSAGE_HEAD.size:
        raise ValueError(f"a message record of {len(body)} bytes")
    channel_id, _, log_time, _ = _MESSAGE_HEAD.unpack_from(body)
    return channel_id, log_time, bytes(body[_MESSAGE_HEAD.size :])


def message_index_entries(body: bytes) -> tuple[int, npt.NDArray[np.void]]:
    """``(channel_id, entries)`` of a message index record's body.

    ``entries`` is a structured array with fields ``log_time`` and ``offset``. Raises
    ``ValueError`` when the array's length does not fit the body.
    """
    if len(body) < _INDEX_HEAD.size:
        raise ValueError(f"a message index record of {len(body)} bytes")
    channel_id, size = _INDEX_HEAD.unpack_from(body)
    if size % _INDEX_ENTRY.itemsize or _INDEX_HEAD.size + size > len(body):
        raise ValueError(f"a message index array of {size} bytes in a {len(body)}-byte record")
    return channel_id, np.frombuffer(body, _INDEX_ENTRY, size // 16, _INDEX_HEAD.size)


def read_summary_start(f: BinaryIO, size: int) -> int | None:
    """The footer's ``summary_start`` (0: no summary); ``None`` when there is no footer."""
    if size < len(MAGIC) + FOOTER_SIZE:
        return None
    f.seek(size - FOOTER_SIZE)
    tail = f.read(FOOTER_SIZE)
    opcode, length = RECORD_HEAD.unpack_from(tail)
    if opcode != OP_FOOTER or length != 20 or tail[-len(MAGIC) :] != MAGIC:
        return None
    (summary_start,) = struct.unpack_from("<Q", tail, RECORD_HEAD.size)
    return int(summary_start) if summary_start < size else None


def add_chunk_crcs(path: str | Path) -> int:
    """Write the CRC-32 of every chunk of the MCAP file at ``path`` whose CRC is 0; in place.

    Walks the data section record by record (one chunk in memory at a time) and returns how
    many chunks it stamped. A reader checks a non-zero CRC, so a damaged chunk cannot pass
    for a good one.
    """
    stamped = 0
    with Path(path).open("r+b") as f:
        size = f.seek(0, 2)
        pos = len(MAGIC)
        while pos + RECORD_HEAD.size <= size:
            f.seek(pos)
            opcode, length = RECORD_HEAD.unpack(f.read(RECORD_HEAD.size))
            if opcode in (OP_DATA_END, OP_FOOTER) or pos + RECORD_HEAD.size + length > size:
                break
            if opcode == OP_CHUNK:
                head = read_chunk_head(f, pos, length)
                if head is None:
                    raise ValueError(f"{path}: the record at byte {pos} is not a valid chunk")
                if head.crc == 0:
                    f.seek(head.data_offset)
                    records = decompress(
                        head.compression, f.read(head.data_size), head.uncompressed_size
                    )
                    f.seek(pos + CHUNK_CRC_OFFSET)
                    f.write(struct.pack("<I", zlib.crc32(records)))
                    stamped += 1
            pos += RECORD_HEAD.size + length
    return stamped
