"""Damaged recordings: every message is replayed exactly once or reported lost, with its count.

The damage is done to copies of real bags: the bundled sample drive (written by ``fusionrt sim``:
MCAP, 18 zstd chunks, no chunk CRCs), a short drive recorded here by ``fusionrt sim`` (with chunk
CRCs) and sqlite3 bags written by rosbags. What must come out is counted on the intact files
with the mcap library and SQL, not with the code under test.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections import Counter
from pathlib import Path

import pytest
import zstandard
from bag_helpers import (
    COMPRESSED_IMAGE,
    SAMPLE_BAG,
    Key,
    Written,
    chunk_data_offset,
    chunk_indexes,
    copy_bag,
    drive,
    keys,
    mcap_messages,
    storage_file,
    write_bag,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.records import ChunkIndex
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from fusionrt import RawRecord
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sources import BadRecord, RosbagSource
from fusionrt.plugins.sources.sqlite_format import PageFile, read_header
from fusionrt.sim import SimConfig, record_drive


def _read(bag: Path) -> tuple[list[RawRecord], list[BadRecord]]:
    with RosbagSource(bag) as source:
        return list(source.records()), list(source.bad_records)


def _in_stamp_order(records: list[RawRecord]) -> bool:
    stamps = [r.stamp_ns for r in records]
    return stamps == sorted(stamps)


# -- MCAP: the sample drive ------------------------------------------------------------------


@pytest.mark.parametrize("victim", [0, 7, 17])
def test_zero_filled_chunk_is_reported_with_its_message_count(tmp_path: Path, victim: int) -> None:
    """Power loss: a chunk's blocks read back as zeros, its CRC field included (so no CRC
    check can notice). Chunk 0 also declares the channels; chunk 17, the last, holds one message."""
    file = copy_bag(SAMPLE_BAG, tmp_path / "bag")
    intact = mcap_messages(file)
    chunk = chunk_indexes(file)[victim]
    lost = mcap_messages(file, chunk)
    with file.open("r+b") as f:
        f.seek(chunk.chunk_start_offset)
        f.write(bytes(chunk.chunk_length))
    records, bad = _read(file.parent)
    assert keys(records) == intact - lost  # every other message, exactly once
    assert _in_stamp_order(records)
    (report,) = bad
    assert report.reason == "corrupt_chunk" and report.path == str(file)
    assert report.offset == chunk.chunk_start_offset
    assert report.lost == sum(lost.values())
    assert report.stamp_ns == chunk.message_start_time


def _rewrite_chunk_index_entry(file: Path, entry: int, chunk_start_offset: int) -> None:
    """Point the ``entry``-th Chunk Index record of the summary at another offset.

    MCAP spec: the Footer (29 bytes before the closing 8-byte magic) starts with the opcode,
    the record length and ``summary_start``; a Chunk Index body starts with
    ``message_start_time, message_end_time, chunk_start_offset``.
    """
    data = bytearray(file.read_bytes())
    footer = len(data) - 8 - 29
    assert data[footer] == 0x02
    (pos,) = struct.unpack_from("<Q", data, footer + 9)
    seen = 0
    while data[pos] != 0x02:
        opcode, length = struct.unpack_from("<BQ", data, pos)
        if opcode == 0x08:
            if seen == entry:
                struct.pack_into("<Q", data, pos + 9 + 16, chunk_start_offset)
                file.write_bytes(bytes(data))
                return
            seen += 1
        pos += 9 + length
    raise AssertionError(f"no chunk index entry {entry}")


def test_chunk_index_entry_naming_another_chunk_yields_each_message_once(tmp_path: Path) -> None:
    """The index is trusted only as far as the data confirms it: the chunk it names twice is
    read once, the chunk it no longer names is read too, and the disagreement is reported."""
    file = copy_bag(SAMPLE_BAG, tmp_path / "bag")
    intact = mcap_messages(file)
    chunks = chunk_indexes(file)
    _rewrite_chunk_index_entry(file, 5, chunks[6].chunk_start_offset)
    records, bad = _read(file.parent)
    assert keys(records) == intact
    assert _in_stamp_order(records)
    (report,) = bad
    assert report.reason == "corrupt_index" and report.path == str(file)
    assert report.offset == chunks[5].chunk_start_offset
    assert f"no entry names the chunk at byte {chunks[5].chunk_start_offset}" in report.detail
    assert f"names the chunk at byte {chunks[6].chunk_start_offset}" in report.detail


def test_cut_file_with_a_zeroed_chunk_resumes_after_it(tmp_path: Path) -> None:
    """No summary says where the records are (the file is cut short): the walk finds the
    records after the zeros, and the message index records after the zeroed chunk count it."""
    file = copy_bag(SAMPLE_BAG, tmp_path / "bag")
    chunks = chunk_indexes(file)
    zeroed, cut = chunks[3], chunks[10]
    lost = mcap_messages(file, zeroed)
    kept = sum((mcap_messages(file, c) for c in chunks[:10] if c is not zeroed), Counter[Key]())
    with file.open("r+b") as f:
        f.seek(zeroed.chunk_start_offset)
        f.write(bytes(zeroed.chunk_length))
    os.truncate(file, cut.chunk_start_offset + cut.chunk_length // 2)
    records, bad = _read(file.parent)
    assert keys(records) == kept
    assert [(b.reason, b.offset, b.lost) for b in bad] == [
        ("corrupt_chunk", zeroed.chunk_start_offset, sum(lost.values())),
        ("truncated", cut.chunk_start_offset, None),
    ]


# -- MCAP: a drive recorded by fusionrt sim carries chunk CRCs ----------------------------------


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s drive written by ``fusionrt sim``: three zstd chunks."""
    config = SimConfig(
        duration_s=3.0,
        seed=5,
        camera_width=320,
        camera_height=180,
        lidar_beams=16,
        lidar_columns=200,
        jpeg_quality=60,
    )
    return record_drive(config, tmp_path_factory.mktemp("sim") / "drive", workers=1).bag


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_flipped_bytes_in_a_sim_chunk_are_reported_never_replayed(
    sim_bag: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any byte flipped inside a chunk's zstd data (bit rot, a bad copy): the chunk is reported
    lost with its count and no altered message is replayed. (zstd itself notices only some
    flips; the others decompress to altered bytes, which only the chunk's CRC can tell.)"""
    file = copy_bag(sim_bag, tmp_path_factory.mktemp("flip") / "bag")
    intact = mcap_messages(file)
    chunks = chunk_indexes(file)
    chunk = chunks[data.draw(st.integers(0, len(chunks) - 1), label="chunk")]
    lost = mcap_messages(file, chunk)
    start = chunk_data_offset(chunk)
    where = data.draw(st.integers(start, start + chunk.compressed_size - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")
    original = file.read_bytes()[start : start + chunk.compressed_size]
    with file.open("r+b") as f:
        f.seek(where)
        byte = f.read(1)[0]
        f.seek(where)
        f.write(bytes([byte ^ mask]))
    flipped = file.read_bytes()[start : start + chunk.compressed_size]
    records, bad = _read(file.parent)
    if _decompressed(flipped) == _decompressed(original):
        # a few bits of a zstd frame do not reach its output: nothing was altered, nothing lost
        assert keys(records) == intact and not bad
        return
    assert keys(records) == intact - lost
    assert [(b.reason, b.offset, b.lost) for b in bad] == [
        ("corrupt_chunk", chunk.chunk_start_offset, sum(lost.values()))
    ]


def _decompressed(frame: bytes) -> bytes | None:
    """A zstd frame's output, ``None`` when it does not decompress."""
    try:
        return zstandard.ZstdDecompressor().decompressobj().decompress(frame)
    except zstandard.ZstdError:
        return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_zeroed_stretch_of_the_data_section_is_accounted_for(
    sim_bag: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Zeros anywhere from the first chunk to the summary (chunks, message indexes, both): no
    message is replayed twice or altered, every chunk the zeros miss replays whole, and where
    the file says how many messages were lost, replayed + lost = written."""
    file = copy_bag(sim_bag, tmp_path_factory.mktemp("zeros") / "bag")
    intact = mcap_messages(file)
    chunks = chunk_indexes(file)
    per_chunk = [mcap_messages(file, chunk) for chunk in chunks]
    first = chunks[0].chunk_start_offset
    end = max(max(c.message_index_offsets.values()) for c in chunks) + 1000
    start = data.draw(st.integers(first, end - 1), label="start")
    stop = data.draw(st.integers(start + 1, min(end, start + 600_000)), label="stop")
    with file.open("r+b") as f:
        f.seek(start)
        f.write(bytes(stop - start))
    records, bad = _read(file.parent)
    got = keys(records)
    assert not got - intact  # nothing altered, nothing twice
    for chunk, messages in zip(chunks, per_chunk, strict=True):
        if (
            stop <= chunk.chunk_start_offset
            or start >= chunk.chunk_start_offset + chunk.chunk_length
        ):
            assert not messages - got
    if all(b.lost is not None for b in bad if b.reason in ("corrupt_chunk", "truncated")):
        assert sum(got.values()) + sum(b.lost or 0 for b in bad) == sum(intact.values())


def _index_chunk_uncompressed(tmp_path: Path) -> tuple[Path, ChunkIndex]:
    """A bag with uncompressed chunks (so bytes of the records can be hit by hand)."""
    bag = write_bag(tmp_path / "bag", drive(3.0), "mcap")
    file = storage_file(bag)
    return file, chunk_indexes(file)[0]


def test_record_length_damage_without_crc_keeps_what_the_message_index_confirms(
    tmp_path: Path,
) -> None:
    """No CRC (rosbags writes none): a record length inside a chunk is overwritten, so the
    records after it no longer parse. The messages before it, which the chunk's message index
    confirms, are replayed; the rest are reported with their count."""
    file, chunk = _index_chunk_uncompressed(tmp_path)
    intact = mcap_messages(file)
    records_start = chunk_data_offset(chunk)
    data = bytearray(file.read_bytes())
    # Walk the chunk's records (opcode, length, body) to the 40th message record.
    pos, messages = records_start, 0
    while messages < 40:
        opcode, length = struct.unpack_from("<BQ", data, pos)
        messages += opcode == 0x05
        if messages < 40:
            pos += 9 + length
    struct.pack_into("<Q", data, pos + 1, 7)  # too short for a message: what follows is garbage
    file.write_bytes(bytes(data))
    records, bad = _read(file.parent)
    assert set(keys(records)) <= set(intact) and max(keys(records).values()) == 1
    assert len(records) == 39  # the messages before the damaged record
    (report,) = bad
    assert report.reason == "corrupt_chunk" and report.offset == chunk.chunk_start_offset
    assert report.lost == sum(intact.values()) - len(records)


# -- sqlite3 ---------------------------------------------------------------------------------


def _sqlite3_copy(messages: list[Written], bag: Path) -> Path:
    """``messages`` in a sqlite3 bag written by rosbags; returns its file."""
    return storage_file(write_bag(bag, messages, "sqlite3"))


@pytest.fixture(scope="module")
def sample_sqlite3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample drive's 7952 messages in a sqlite3 bag written by rosbags (18 MB)."""
    bag = tmp_path_factory.mktemp("sqlite3") / "bag"
    store = typestore()
    writer = Writer(bag, version=9, storage_plugin=StoragePlugin.SQLITE3)
    with Reader(SAMPLE_BAG) as reader, writer:
        conns = {
            c.id: writer.add_connection(c.topic, c.msgtype, typestore=store)
            for c in reader.connections
        }
        for conn, stamp, data in reader.messages():
            writer.write(conns[conn.id], stamp, data)
    return bag


@pytest.fixture(scope="module")
def mixed_sqlite3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sqlite3 bag: 266 small messages and 24 of 20 kB (overflow chains)."""
    big = [
        Written(
            "/camera/big",
            COMPRESSED_IMAGE,
            1_700_000_000_000_000_000 + i * 83_000_000,
            bytes([i]) * 20_000,
        )
        for i in range(24)
    ]
    return write_bag(
        tmp_path_factory.mktemp("mixed") / "bag",
        sorted(drive(2.0) + big, key=lambda w: w.stamp_ns),
        "sqlite3",
    )


def _rows(file: Path) -> dict[int, tuple[str, int, bytes]]:
    """``{row id: (topic, timestamp, data)}`` of an intact rosbag2 database, read with SQL."""
    with sqlite3.connect(file) as db:
        topics = dict(db.execute("SELECT id, name FROM topics"))
        return {
            rowid: (topics[topic], stamp, data)
            for rowid, topic, stamp, data in db.execute(
                "SELECT id, topic_id, timestamp, data FROM messages"
            )
        }


def _pages_of_rows(file: Path) -> dict[int, list[int]]:
    """``{row id: the pages its bytes are on}`` of an intact database: its ``messages`` leaf
    page (SQLite's dbstat table says which pages those are), then its overflow chain (the
    first 4 bytes of an overflow page name the next one)."""
    with sqlite3.connect(file) as db:
        try:
            leaves = {
                n
                for (n,) in db.execute(
                    "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf'"
                )
            }
        except sqlite3.OperationalError:  # pragma: no cover - SQLite built without dbstat
            pytest.skip("this SQLite has no dbstat table")
    out: dict[int, list[int]] = {}
    with file.open("rb") as f:
        pages = PageFile(f, read_header(f.read(100)), file.stat().st_size)
        for number in sorted(leaves):
            page = pages.page(number)
            assert page is not None
            for _, cell in pages.leaf_cells(number, page):
                chain, following = [number], cell.overflow
                while following:
                    chain.append(following)
                    overflow = pages.page(following)
                    assert overflow is not None
                    (following,) = struct.unpack(">I", overflow[:4])
                out[cell.rowid] = chain
    return out


def _zero_page(file: Path, number: int) -> None:
    size = read_header(file.read_bytes()[:100]).page_size
    with file.open("r+b") as f:
        f.seek((number - 1) * size)
        f.write(bytes(size))


def test_sqlite3_with_its_table_root_zeroed_reads_the_leaf_pages(
    tmp_path: Path, mixed_sqlite3: Path
) -> None:
    """Bit rot in the page every SQL query of the messages table starts from: SQL reads
    nothing, the leaf pages hold every row."""
    file = copy_bag(mixed_sqlite3, tmp_path / "bag")
    rows = _rows(file)
    with sqlite3.connect(file) as db:
        ((root,),) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'")
    _zero_page(file, root)
    records, bad = _read(file.parent)
    assert [(r.topic, r.stamp_ns, bytes(r.data)) for r in records] == sorted(
        rows.values(), key=lambda row: row[1]
    )
    (report,) = bad
    assert report.reason == "corrupt_index" and "malformed" in report.detail


def test_sqlite3_row_unreadable_mid_replay_costs_that_row(
    tmp_path: Path, mixed_sqlite3: Path
) -> None:
    """An overflow page of one row is zeroed: SQL fails on that row halfway through the
    replay; the rest comes from the pages, after the last row SQL gave, never twice."""
    file = copy_bag(mixed_sqlite3, tmp_path / "bag")
    rows = _rows(file)
    chains = _pages_of_rows(file)
    victim = sorted(rowid for rowid, chain in chains.items() if len(chain) >= 3)[10]
    _zero_page(file, chains[victim][1])  # its chain now ends early
    records: list[RawRecord] = []
    when: dict[str, int] = {}
    with RosbagSource(
        file.parent, on_bad_record=lambda b: when.setdefault(b.reason, len(records))
    ) as source:
        records.extend(source.records())
        bad = list(source.bad_records)
    assert 0 < when["corrupt_index"] < len(records)  # SQL gave up halfway through
    expected = sorted((row[1], rowid) for rowid, row in rows.items() if rowid != victim)
    assert [(r.stamp_ns, r.offset) for r in records] == expected
    assert all((r.topic, r.stamp_ns, bytes(r.data)) == rows[r.offset] for r in records)
    assert [(b.reason, b.offset, b.lost) for b in bad] == [
        ("corrupt_index", None, None),
        ("corrupt_record", victim, 1),
    ]


def _check_cut(intact: Path, tmp: Path, fraction: float) -> tuple[int, int]:
    """Cut a copy of the sqlite3 bag ``intact`` at ``fraction`` of its size and check that
    exactly the rows whose pages all lie before the cut replay, byte-exact and in order, and
    that the others are reported lost. Returns (rows replayed, rows written)."""
    file = copy_bag(intact, tmp)
    rows, chains = _rows(file), _pages_of_rows(file)
    cut = int(file.stat().st_size * fraction)
    pages_left = cut // read_header(file.read_bytes()[:100]).page_size
    readable = {rowid for rowid, chain in chains.items() if max(chain) <= pages_left}
    os.truncate(file, cut)
    records, bad = _read(file.parent)
    assert {r.offset for r in records} == readable
    assert [(r.topic, r.stamp_ns, bytes(r.data)) for r in records] == [
        rows[r.offset] for r in records
    ]
    order = [(r.stamp_ns, r.offset) for r in records]
    assert order == sorted(order)
    assert bad[0].reason == "truncated" and bad[0].offset == cut
    lost: Counter[int] = Counter()
    for report in bad[1:]:
        assert report.reason == "corrupt_record" and report.offset is not None and report.lost
        lost.update(range(report.offset, report.offset + report.lost))
    assert set(lost) == set(rows) - readable and max(lost.values(), default=1) == 1
    return len(records), len(rows)


def test_sqlite3_cut_at_47_percent_replays_every_row_left(
    tmp_path: Path, sample_sqlite3: Path
) -> None:
    """The b-tree's interior pages are written last, so a copy cut at 47 % lets SQL read no
    row at all; the ~3800 rows whose pages are all before the cut replay, in stamp order, and
    the other ~4150 are reported lost, with their row ids."""
    file = copy_bag(sample_sqlite3, tmp_path / "sql")
    os.truncate(file, int(file.stat().st_size * 0.47))
    with sqlite3.connect(f"file:{file}?mode=ro&immutable=1", uri=True) as db:
        db.execute("PRAGMA writable_schema=ON")
        with pytest.raises(sqlite3.DatabaseError):
            db.execute("SELECT id, data FROM messages ORDER BY id").fetchall()
    replayed, written = _check_cut(sample_sqlite3, tmp_path / "bag", 0.47)
    assert (written, replayed > 3700) == (7952, True)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(0.05, 0.999))
def test_sqlite3_cut_anywhere_accounts_for_every_row(
    tmp_path_factory: pytest.TempPathFactory, mixed_sqlite3: Path, fraction: float
) -> None:
    """Cut at any byte, small rows and rows with overflow chains alike."""
    _check_cut(mixed_sqlite3, tmp_path_factory.mktemp("cut") / "bag", fraction)
