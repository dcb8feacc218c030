"""The MCAP wire-format helpers against files the rosbags and mcap libraries write and read."""

from __future__ import annotations

import contextlib
import struct
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from bag_helpers import (
    COMPRESSED_IMAGE,
    Written,
    chunk_indexes,
    drive,
    storage_file,
    write_bag,
)
from hypothesis import given
from hypothesis import strategies as st
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Chunk
from mcap.stream_reader import CRCValidationError, breakup_chunk, get_chunk_data_stream
from rosbags.rosbag2 import CompressionMode

from fusionrt.plugins.sources.mcap_format import (
    CHUNK_CRC_OFFSET,
    add_chunk_crcs,
    chunk_records,
    message_index_entries,
    parse_message,
    read_chunk_head,
)


def _chunks(file: Path) -> list[Chunk]:
    with file.open("rb") as f:
        out = []
        for index in chunk_indexes(file):
            f.seek(index.chunk_start_offset + 9)
            out.append(Chunk.read(ReadDataStream(f)))
        return out


@pytest.mark.parametrize("compression", [None, CompressionMode.STORAGE], ids=["none", "zstd"])
def test_add_chunk_crcs_writes_the_crc_the_mcap_library_checks(
    tmp_path: Path, compression: CompressionMode | None
) -> None:
    rng = np.random.default_rng(4)
    written = [  # 3 MB that do not compress: several 1 MiB chunks
        Written("/camera", COMPRESSED_IMAGE, 10**9 + i * 10**8, rng.bytes(100_000))
        for i in range(30)
    ] + drive(1.0)
    file = storage_file(write_bag(tmp_path / "bag", written, compression=compression))
    before = file.read_bytes()
    assert all(chunk.uncompressed_crc == 0 for chunk in _chunks(file))  # rosbags writes none
    stamped = add_chunk_crcs(file)
    chunks = _chunks(file)
    assert stamped == len(chunks) >= 2
    for chunk in chunks:
        stream, size = get_chunk_data_stream(chunk)
        assert chunk.uncompressed_crc == zlib.crc32(stream.read(size)) != 0
        breakup_chunk(chunk, validate_crc=True)
    with file.open("rb") as f:
        assert sum(1 for _ in SeekingReader(f, validate_crcs=True).iter_messages()) == len(written)
    # Only the CRC fields changed, and a second pass has nothing to do.
    after = file.read_bytes()
    changed = np.flatnonzero(np.frombuffer(before, np.uint8) != np.frombuffer(after, np.uint8))
    crc_fields = {
        i.chunk_start_offset + CHUNK_CRC_OFFSET + k for i in chunk_indexes(file) for k in range(4)
    }
    assert set(changed.tolist()) <= crc_fields
    assert add_chunk_crcs(file) == 0 and file.read_bytes() == after


def test_a_stamped_crc_catches_a_flipped_byte(tmp_path: Path) -> None:
    file = storage_file(write_bag(tmp_path / "bag", drive(1.0)))
    add_chunk_crcs(file)
    (index,) = chunk_indexes(file)
    data = bytearray(file.read_bytes())
    data[index.chunk_start_offset + index.chunk_length // 2] ^= 0x10  # uncompressed records
    file.write_bytes(bytes(data))
    (chunk,) = _chunks(file)
    with pytest.raises(CRCValidationError):
        breakup_chunk(chunk, validate_crc=True)


def test_chunk_records_give_offsets_and_bodies_as_the_mcap_library_parses(tmp_path: Path) -> None:
    file = storage_file(write_bag(tmp_path / "bag", drive(1.0)))
    (chunk,) = _chunks(file)
    ours = [(opcode, bytes(body)) for _, opcode, body in chunk_records(chunk.data)]
    theirs = breakup_chunk(chunk)
    assert len(ours) == len(theirs)
    messages = [parse_message(memoryview(body)) for opcode, body in ours if opcode == 0x05]
    assert messages == [
        (r.channel_id, r.log_time, r.data) for r in theirs if type(r).__name__ == "Message"
    ]
    # Each offset is where the record starts in the chunk: the message index says the same.
    with file.open("rb") as f:
        (index,) = chunk_indexes(file)
        listed = set()
        for offset in index.message_index_offsets.values():
            f.seek(offset)
            _, length = struct.unpack("<BQ", f.read(9))
            channel_id, entries = message_index_entries(f.read(length))
            listed |= {(channel_id, int(t), int(o)) for t, o in entries.tolist()}
    found = {
        (parse_message(body)[0], parse_message(body)[1], offset)
        for offset, opcode, body in chunk_records(chunk.data)
        if opcode == 0x05
    }
    assert found == listed


@given(st.binary(max_size=300))
def test_parsers_refuse_any_bytes_with_a_value_error(data: bytes) -> None:
    """Damaged bytes are a ValueError (reported, skipped), never another exception."""
    for parse in (
        lambda: list(chunk_records(data)),
        lambda: message_index_entries(data),
        lambda: parse_message(memoryview(data)),
    ):
        with contextlib.suppress(ValueError):
            parse()
    head = read_chunk_head(BytesIO(b"\x06" + struct.pack("<Q", len(data)) + data), 0, len(data))
    assert head is None or head.data_offset + head.data_size == 9 + len(data)
