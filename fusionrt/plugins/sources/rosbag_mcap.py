"""One MCAP storage file of a ROS 2 bag, checked against its own indexes as it is read.

An MCAP file indexes itself twice: after each chunk, message index records list its messages
(channel, log time, offset); the summary at the end lists the chunks (chunk index: offset,
length, time range). Power loss, bad copies and bit rot damage data and indexes alike, so
neither is trusted on its own word:

* **Opening** walks the data section record by record, reading record heads, chunk heads and
  the message index records (about 1.5 % of the file). The chunks found there are what is
  replayed, each exactly once. The summary's chunk index is checked against them, and an
  entry naming no chunk or the wrong chunk, or a chunk no entry names, is reported once
  (``corrupt_index``). Where the index says a chunk starts but the bytes are not a chunk
  record (a zero-filled chunk), that chunk is reported (``corrupt_chunk``, with the message
  count its message index gives) and the walk resumes at the next record the index knows.
  Without a summary (a file cut short) the walk is the only index: it stops at the cut
  (``truncated``) and resumes after damage at the next chunk head.
* **Loading** a chunk decompresses it, checks its CRC when it has one, parses its records
  and compares its messages with its message index (channel, log time and offset of each).
  A chunk whose CRC fails or that does not decompress is lost whole. Without a CRC only the
  messages that the records and the index agree on are yielded (two independent structures
  agreeing is the best evidence left) and the others are reported with their count; where
  the CRC verifies the records, the records win and a disagreeing index is reported.
* **Order**: by log time, a chunk being loaded when the replay reaches its first log time
  (so about one chunk is in memory); in write order when a topic's log time steps back
  (:class:`~fusionrt.plugins.sources.rosbag_storage.LogTimeSteps`, fed from the message
  indexes read at opening).

**Offsets**: the byte offset of the chunk record holding a message, of the message record for
a message outside any chunk.
"""

from __future__ import annotations

import heapq
import os
import zlib
from collections.abc import Callable, Collection, Generator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Channel, ChunkIndex, Schema

from fusionrt.plugins.sources import BadRecord
from fusionrt.plugins.sources.mcap_format import (
    MAGIC,
    OP_CHANNEL,
    OP_CHUNK,
    OP_MESSAGE,
    OP_MESSAGE_INDEX,
    OP_NAMES,
    OP_SCHEMA,
    RECORD_HEAD,
    ChunkHead,
    chunk_records,
    decompress,
    message_index_entries,
    parse_message,
    read_chunk_head,
    read_summary_start,
)
from fusionrt.plugins.sources.mcap_walk import FoundChunk, walk
from fusionrt.plugins.sources.rosbag_storage import (
    DEFINITION_ENCODINGS,
    STEP_TOLERANCE_NS,
    Connection,
    Entry,
    LogTimeSteps,
    Report,
    StorageUnreadable,
)

__all__ = ["McapStorage"]

#: A message index record larger than this is not taken for one (16 bytes per message).
_MAX_INDEX_RECORD = 1 << 28
# A loaded message: (channel id, log time, data).
_Loaded = tuple[int, int, bytes]


@dataclass(frozen=True, slots=True)
class _ChunkRef:
    """Where messages are: a chunk as the walk found it, or one message outside any chunk."""

    start_ns: int
    end_ns: int
    offset: int  # of the record's opcode byte
    channel_ids: frozenset[int] | None  # None: unknown (no complete message index)
    loose: bool = False  # a single message record, not a chunk
    index_span: tuple[int, int] | None = None  # (start, end) of its complete message index
    count: int | None = None  # messages its message index lists


def _times(start: int, end: int) -> str:
    return f"log times {start}..{end}"


class McapStorage:
    """One MCAP file: its channels and verified chunks (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        file_index: int,
        report: Report,
        step_tolerance_ns: int = STEP_TOLERANCE_NS,
    ) -> None:
        self.path = path
        self.file_index = file_index
        self._report = report
        self.connections: dict[int, Connection] = {}
        self._schemas: dict[int, Schema] = {}
        self._chunks: list[_ChunkRef] = []
        self._walk_counts: dict[int, int] = {}
        self._steps = LogTimeSteps(step_tolerance_ns)
        self.counts: dict[int, int] | None = None
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise StorageUnreadable(f"cannot open: {exc.strerror or exc}") from None
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            if self._file.read(len(MAGIC)) != MAGIC:
                raise StorageUnreadable("not an MCAP file (no MCAP magic at its start)")
            self._open()
        except BaseException:
            self._file.close()
            raise

    # opening -----------------------------------------------------------------------------

    def _open(self) -> None:
        summary: Any = None
        summary_error: Exception | None = None
        summary_start = read_summary_start(self._file, self._size)
        if summary_start:
            try:
                self._file.seek(0)
                summary = SeekingReader(self._file).get_summary()
            except Exception as exc:  # a damaged summary: anything can fail while parsing
                summary_error = exc
        if summary is not None:
            for schema in summary.schemas.values():
                self._schemas[schema.id] = schema
            for channel in summary.channels.values():
                self._add_channel(channel)
        entries: list[ChunkIndex] = list(summary.chunk_indexes) if summary is not None else []
        found = walk(self._file, self._size, summary_start, entries)
        for opcode, pos, length in found.definitions:
            self._read_definition(opcode, pos, length)
        for damage in found.damage:
            self._report(
                BadRecord(
                    "corrupt_record",
                    f"bytes {damage.start}..{damage.stop} are not MCAP records; the chunk index "
                    "places no chunk there, so no message is lost",
                    path=str(self.path),
                    offset=damage.start,
                )
            )
        places = sorted(
            [(c.offset, c) for c in found.chunks] + [(pos, length) for pos, length in found.loose],
            key=lambda item: item[0],
        )
        for pos, item in places:
            if isinstance(item, FoundChunk):
                self._index_chunk(item, summarised=summary is not None)
            else:
                self._add_loose(pos, item)
        if found.cut is not None:
            pos, cut = found.cut
            self._report(
                BadRecord(
                    "truncated",
                    f"{cut}; the messages stored from there on are lost",
                    path=str(self.path),
                    offset=pos,
                )
            )
        if entries:
            self._check_chunk_index(entries, found.chunks)
        if summary is not None and summary.statistics is not None:
            self.counts = dict(summary.statistics.channel_message_counts)
        else:
            self.counts = dict(self._walk_counts)
        if summary_error is not None:
            self._report(
                BadRecord(
                    "corrupt_index",
                    f"the MCAP summary is unreadable ({summary_error}); the file was scanned",
                    path=str(self.path),
                )
            )
        self._steps.report(
            str(self.path), {c.id: c.topic for c in self.connections.values()}, self._report
        )

    def _index_chunk(self, found: FoundChunk, summarised: bool) -> None:
        """Turn a chunk the walk found into a :class:`_ChunkRef`, or report it lost."""
        index = self._read_index(found)
        listed = None if index is None else sum(len(e) for e in index.values())
        complete = index is not None and found.index_complete
        if found.head is None:
            self._lost_chunk(found, listed if complete else None)
            return
        head = found.head
        start, end = head.start_ns, head.end_ns
        for channel_id, entries in (index or {}).items():
            times = entries["log_time"].astype(np.int64)
            start, end = min(start, int(times.min())), max(end, int(times.max()))
            within = entries["offset"].astype(np.int64)
            self._steps.feed(channel_id, times, found.offset, within)
        span = None
        if complete and found.indexes:
            last, length = found.indexes[-1]
            span = (found.indexes[0][0], last + RECORD_HEAD.size + length)
        ref = _ChunkRef(
            start,
            end,
            found.offset,
            frozenset(index) if complete and index is not None else None,
            index_span=span,
            count=listed if complete else None,
        )
        if complete and index is not None:
            for channel_id, entries in index.items():
                self._count(channel_id, len(entries))
        if not summarised:
            # No summary: the channels are declared inside the chunks, so read each now
            # (silently: a damaged chunk is reported when the replay reaches it).
            loaded = self._parse(ref, head)
            if loaded is not None and not complete:
                for channel_id, times in _by_channel(loaded).items():
                    self._count(channel_id, len(times))
                    if index is None:
                        self._steps.feed(channel_id, times, found.offset)
        self._chunks.append(ref)

    def _read_index(self, found: FoundChunk) -> dict[int, Any] | None:
        """``{channel: entries sorted by offset}`` of the message index records after a chunk;
        ``None`` when there are none or one is unreadable."""
        if not found.indexes:
            return None
        index: dict[int, Any] = {}
        for pos, length in found.indexes:
            if length > _MAX_INDEX_RECORD:
                return None
            self._file.seek(pos + RECORD_HEAD.size)
            try:
                channel_id, entries = message_index_entries(self._file.read(length))
            except ValueError:
                return None
            if channel_id in index:
                entries = np.concatenate((index[channel_id], entries))
            index[channel_id] = entries
        return {
            channel_id: entries[np.argsort(entries["offset"], kind="stable")]
            for channel_id, entries in index.items()
            if len(entries)
        }

    def _lost_chunk(self, found: FoundChunk, count: int | None) -> None:
        """Report a chunk whose record is damaged (bytes that are not a chunk)."""
        stop = found.offset + found.length
        if found.entry is not None:
            times = _times(found.entry.message_start_time, found.entry.message_end_time)
            what = (
                f"bytes {found.offset}..{stop} are not the chunk record the chunk index says "
                f"starts there ({times})"
            )
            lost = "its messages are lost" if count is None else f"its {count} messages are lost"
        else:
            what = f"bytes {found.offset}..{stop} are not MCAP records (zeroed or overwritten)"
            lost = (
                "the messages stored there, if any, are lost (the file does not say how many)"
                if count is None
                else f"the message index records after them list {count} messages, lost"
            )
        self._report(
            BadRecord(
                "corrupt_chunk",
                f"{what}; {lost}",
                path=str(self.path),
                offset=found.offset,
                stamp_ns=None if found.entry is None else found.entry.message_start_time,
                lost=count,
            )
        )

    def _count(self, channel_id: int, n: int) -> None:
        self._walk_counts[channel_id] = self._walk_counts.get(channel_id, 0) + n

    def _read_definition(self, opcode: int, pos: int, length: int) -> None:
        try:
            self._file.seek(pos + RECORD_HEAD.size)
            stream = ReadDataStream(BytesIO(self._file.read(length)))
            record = Schema.read(stream) if opcode == OP_SCHEMA else Channel.read(stream)
            self._add_records([record])
        except Exception as exc:  # a damaged record: anything can fail while parsing
            self._report(
                BadRecord(
                    "corrupt_record",
                    f"{OP_NAMES[opcode]} record unreadable: {exc}",
                    path=str(self.path),
                    offset=pos,
                )
            )

    def _add_loose(self, pos: int, length: int) -> None:
        self._file.seek(pos + RECORD_HEAD.size)
        try:
            channel_id, log_time, _ = parse_message(memoryview(self._file.read(min(length, 22))))
        except ValueError:
            return
        self._chunks.append(_ChunkRef(log_time, log_time, pos, frozenset({channel_id}), True))
        self._count(channel_id, 1)
        self._steps.feed(channel_id, np.array([log_time], np.int64), pos)

    def _check_chunk_index(self, entries: list[ChunkIndex], chunks: list[FoundChunk]) -> None:
        """Report, once, every way the summary's chunk index disagrees with the chunks found."""
        found = {c.offset: c for c in chunks if c.head is not None}
        damaged = {c.offset for c in chunks if c.head is None}
        named: set[int] = set()
        problems: list[tuple[int, str]] = []
        for entry in entries:
            offset = entry.chunk_start_offset
            if offset in damaged:
                continue  # reported as a damaged chunk
            times = _times(entry.message_start_time, entry.message_end_time)
            chunk = found.get(offset)
            head = None if chunk is None else chunk.head
            if chunk is None or head is None:
                problems.append(
                    (offset, f"the entry for {times} names byte {offset}, where no chunk starts")
                )
            elif (entry.message_start_time, entry.message_end_time, entry.chunk_length) != (
                head.start_ns,
                head.end_ns,
                chunk.length,
            ):
                problems.append(
                    (
                        offset,
                        f"the entry for {times} ({entry.chunk_length} bytes) names the chunk at "
                        f"byte {offset}, which holds {_times(head.start_ns, head.end_ns)} "
                        f"({chunk.length} bytes)",
                    )
                )
            elif offset in named:
                problems.append((offset, f"two entries name the chunk at byte {offset}"))
            else:
                named.add(offset)
        for offset, chunk in sorted(found.items()):
            if offset not in named and chunk.head is not None:
                times = _times(chunk.head.start_ns, chunk.head.end_ns)
                problems.append((offset, f"no entry names the chunk at byte {offset} ({times})"))
        if problems:
            problems.sort()
            listed = "; ".join(text for _, text in problems[:6])
            more = f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
            self._report(
                BadRecord(
                    "corrupt_index",
                    f"the chunk index disagrees with the chunk records: {listed}{more}; the "
                    "chunks are read as found in the file, each once",
                    path=str(self.path),
                    offset=problems[0][0],
                )
            )

    # channels -----------------------------------------------------------------------------

    def _add_records(self, records: Collection[Any]) -> None:
        for record in records:
            if isinstance(record, Schema):
                self._schemas.setdefault(record.id, record)
            elif isinstance(record, Channel) and record.id not in self.connections:
                self._add_channel(record)

    def _add_channel(self, channel: Channel) -> None:
        schema = self._schemas.get(channel.schema_id)
        definition = None
        if schema is not None and schema.encoding in DEFINITION_ENCODINGS:
            definition = schema.data.decode("utf-8", "replace")
        self.connections[channel.id] = Connection(
            channel.id,
            channel.topic,
            schema.name if schema is not None else "",
            channel.message_encoding,
            definition,
        )

    # time range ---------------------------------------------------------------------------

    @property
    def first_stamp_ns(self) -> int | None:
        return min((c.start_ns for c in self._chunks), default=None)

    @property
    def last_stamp_ns(self) -> int | None:
        return max((c.end_ns for c in self._chunks), default=None)

    @property
    def write_order(self) -> bool:
        """Whether the file is replayed in write order (its log time steps back)."""
        return self._steps.first is not None

    # messages -----------------------------------------------------------------------------

    def messages(
        self, start_ns: int, stop_ns: int, wanted: Callable[[Connection], bool]
    ) -> Generator[Entry, None, None]:
        """Messages with ``start_ns <= log time < stop_ns`` of wanted connections, in order:
        log-time order, or write order when the file's log time steps back."""
        skip = {cid for cid, conn in self.connections.items() if not wanted(conn)}
        refs = [
            ref
            for ref in self._chunks
            if ref.end_ns >= start_ns
            and ref.start_ns < stop_ns
            and (ref.channel_ids is None or not ref.channel_ids <= skip)
        ]
        if self.write_order:
            for ref in sorted(refs, key=lambda r: r.offset):
                for i, (channel_id, log_time, data) in enumerate(self._load(ref)):
                    conn = self._connection(channel_id, ref.offset, log_time)
                    if conn is not None and wanted(conn) and start_ns <= log_time < stop_ns:
                        yield log_time, self.file_index, ref.offset, i, conn, data
            return
        heap: list[tuple[int, int, int, Any, Any]] = [
            (ref.start_ns, ref.offset, -1, None, ref) for ref in refs
        ]
        heapq.heapify(heap)
        while heap:
            stamp, offset, index, conn, item = heapq.heappop(heap)
            if index >= 0:
                yield stamp, self.file_index, offset, index, conn, item
                continue
            for i, (channel_id, log_time, data) in enumerate(self._load(item)):
                if not start_ns <= log_time < stop_ns:
                    continue
                conn = self._connection(channel_id, offset, log_time)
                if conn is not None and wanted(conn):
                    heapq.heappush(heap, (log_time, offset, i, conn, data))

    def _connection(self, channel_id: int, offset: int, log_time: int) -> Connection | None:
        conn = self.connections.get(channel_id)
        if conn is None:
            self._report(
                BadRecord(
                    "unknown_channel",
                    f"message of channel {channel_id}, which the file never declares",
                    path=str(self.path),
                    offset=offset,
                    stamp_ns=log_time,
                )
            )
        return conn

    # loading and checking a chunk ---------------------------------------------------------

    def _load(self, ref: _ChunkRef) -> list[_Loaded]:
        """The messages of one chunk that can be verified, in file order; reports the rest."""
        f = self._file
        f.seek(ref.offset)
        opcode, length = RECORD_HEAD.unpack(f.read(RECORD_HEAD.size))
        if ref.loose:
            try:
                return [parse_message(memoryview(f.read(length)))]
            except ValueError as exc:
                self._lost(ref, str(exc), ref.count)
                return []
        head = read_chunk_head(f, ref.offset, length)
        if opcode != OP_CHUNK or head is None:  # changed since the walk
            self._lost(ref, "no longer a chunk record", ref.count)
            return []
        loaded = self._parse(ref, head, report=True)
        return [] if loaded is None else loaded

    def _parse(self, ref: _ChunkRef, head: ChunkHead, report: bool = False) -> list[_Loaded] | None:
        """Decompress, check and parse a chunk; ``None`` when none of it can be trusted.

        Reports (when ``report``) what is lost and where the index and the records disagree.
        """
        self._file.seek(head.data_offset)
        try:
            data = self._file.read(head.data_size)
            records = decompress(head.compression, data, head.uncompressed_size)
        except ValueError as exc:
            if report:
                self._lost(ref, str(exc), ref.count)
            return None
        if head.crc and zlib.crc32(records) != head.crc:
            if report:
                self._lost(ref, "its records fail their CRC", ref.count)
            return None
        parsed, broken = self._records(records)
        return self._verify(ref, parsed, broken, crc_ok=bool(head.crc), report=report)

    def _records(self, records: bytes) -> tuple[list[tuple[int, int, int, bytes]], str | None]:
        """``(offset in chunk, channel, log time, data)`` of each message record of a chunk's
        records, up to where they break off (and why, ``None`` if they do not)."""
        parsed: list[tuple[int, int, int, bytes]] = []
        definitions: list[Any] = []
        broken: str | None = None
        try:
            for offset, opcode, body in chunk_records(records):
                if opcode == OP_MESSAGE:
                    parsed.append((offset, *parse_message(body)))
                elif opcode in (OP_SCHEMA, OP_CHANNEL):
                    stream = ReadDataStream(BytesIO(bytes(body)))
                    definitions.append(
                        Schema.read(stream) if opcode == OP_SCHEMA else Channel.read(stream)
                    )
        except Exception as exc:  # a damaged record: anything can fail while parsing
            broken = str(exc) or type(exc).__name__
        self._add_records(definitions)
        return parsed, broken

    def _verify(
        self,
        ref: _ChunkRef,
        parsed: list[tuple[int, int, int, bytes]],
        broken: str | None,
        *,
        crc_ok: bool,
        report: bool,
    ) -> list[_Loaded]:
        """The parsed messages that can be trusted: all of them where the CRC verified the
        records or there is no index to check them with; else those the index confirms."""
        expected = self._index_of(ref)
        if expected is None:
            loaded = [(c, t, d) for _, c, t, d in parsed]
            if report:
                if broken is not None:
                    self._lost(ref, f"its records break off ({broken})", None)
                self._check_range(ref, loaded)
            return loaded
        agreed = [m for m in parsed if expected.get((m[1], m[0])) == m[2]]
        lost, extra = len(expected) - len(agreed), len(parsed) - len(agreed)
        if crc_ok:
            if report and (lost or extra):
                self._report(
                    BadRecord(
                        "corrupt_index",
                        "the message index of the chunk disagrees with its records, which "
                        f"their CRC verifies ({lost} listed messages missing, {extra} not "
                        "listed); the records are read",
                        path=str(self.path),
                        offset=ref.offset,
                    )
                )
            if report and broken is not None:
                self._lost(ref, f"its records break off ({broken})", lost)
            return [(c, t, d) for _, c, t, d in parsed]
        if report and (lost or extra or broken):
            self._lost(
                ref,
                (f"its records break off ({broken}); " if broken else "")
                + f"{lost} of the {len(expected)} messages its message index lists are not "
                "in its records"
                + (f" and {extra} records it does not list are skipped" if extra else "")
                + " (no CRC to tell which is right)",
                lost,
            )
        return [(c, t, d) for _, c, t, d in agreed]

    def _index_of(self, ref: _ChunkRef) -> dict[tuple[int, int], int] | None:
        """``{(channel, offset in chunk): log time}`` from the chunk's message index records."""
        if ref.index_span is None:
            return None
        start, end = ref.index_span
        self._file.seek(start)
        data = self._file.read(end - start)
        expected: dict[tuple[int, int], int] = {}
        try:
            for _, opcode, body in chunk_records(data):
                if opcode == OP_MESSAGE_INDEX:
                    channel_id, entries = message_index_entries(bytes(body))
                    for log_time, offset in entries.tolist():
                        expected[(channel_id, offset)] = log_time
        except ValueError:
            return None
        return expected

    def _check_range(self, ref: _ChunkRef, loaded: list[_Loaded]) -> None:
        """Report a chunk (without a message index) whose messages lie outside its times."""
        outside = sum(not ref.start_ns <= t <= ref.end_ns for _, t, _ in loaded)
        if outside:
            self._report(
                BadRecord(
                    "corrupt_index",
                    f"{outside} messages of the chunk lie outside its stated "
                    f"{_times(ref.start_ns, ref.end_ns)}; they may come out of order",
                    path=str(self.path),
                    offset=ref.offset,
                )
            )

    def _lost(self, ref: _ChunkRef, why: str, count: int | None) -> None:
        """Report messages of a chunk lost (``count``: how many, ``None``: unknown)."""
        lost = (
            f"{count} messages are lost"
            if count is not None
            else "how many messages are lost is unknown (no message index)"
        )
        self._report(
            BadRecord(
                "corrupt_chunk",
                f"chunk damaged: {why}; {lost}",
                path=str(self.path),
                offset=ref.offset,
                stamp_ns=ref.start_ns,
                lost=count,
            )
        )

    def close(self) -> None:
        self._file.close()


def _by_channel(loaded: list[_Loaded]) -> dict[int, Any]:
    """Log times per channel, in file order."""
    out: dict[int, list[int]] = {}
    for channel_id, log_time, _ in loaded:
        out.setdefault(channel_id, []).append(log_time)
    return {c: np.array(times, np.int64) for c, times in out.items()}
