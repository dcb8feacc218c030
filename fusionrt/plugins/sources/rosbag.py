"""ROS 2 bags as a replay source: MCAP and sqlite3 storage, split bags merged by time.

:class:`RosbagSource` yields one :class:`~fusionrt.RawRecord` per recorded message: the topic,
the **raw CDR bytes** as recorded, the ``msgtype`` (``sensor_msgs/msg/PointCloud2``...), the
storage file (``path``) and where the message is in it (``offset``). It does not deserialize:
the sensors do.

**Order.** Records come in the order of their *log time* — the time the recorder received
the message, which rosbag2 stores as the message timestamp (MCAP ``log_time``, the sqlite3
``timestamp`` column) — and that is ``RawRecord.stamp_ns``. A message's header stamp (the
sensor's own acquisition time) can differ and arrive out of order; the sensors read it when
they decode. Equal log times keep the order in which they were written (file, then position).

**Streaming.** Memory stays constant however long the bag. MCAP: the chunk index says each
chunk's time range; a chunk is read when the replay reaches its first log time and its messages
wait in a heap until their turn, so only the chunks overlapping the current time are in memory
(about one chunk, 1 MiB or so, for a recorder writing in time order). sqlite3: a cursor walks
the ``timestamp`` index and each message's bytes are fetched by row id. The files of a split bag
(``metadata.yaml`` lists several) are merged lazily with :func:`heapq.merge`.

**Bad recordings** are reported as :class:`~fusionrt.plugins.sources.BadRecord` s, and the
replay goes on with what can be read:

* a truncated MCAP file (no footer, the last chunk cut): the file is scanned and indexed up to
  the cut (``truncated``, offset = where the cut record starts); every complete chunk replays;
* an MCAP chunk that does not decompress, fails its CRC or does not parse: ``corrupt_chunk``
  (offset = the chunk), the other chunks replay;
* a truncated or damaged sqlite3 file: ``truncated`` (offset = the file size) when the file is
  shorter than its header says, then ``corrupt_record`` for each message that cannot be read
  (offset = its row id) or where the timestamp index breaks off;
* a topic whose type has no known definition (neither in fusionrt's typestore,
  :func:`fusionrt.plugins.ros_types.typestore`, nor in the bag) or whose serialization is not
  CDR: every message of it is reported (``unknown_type`` / ``unsupported_encoding``, with
  topic, offset and stamp) instead of yielded;
* a storage file that cannot be opened at all: ``unreadable``.

A message whose bytes are not a valid message of its type is not the reader's to detect: the
sensor's ``decode`` raises a ``DecodeError`` naming the topic, path and offset.

**Offsets** (``RawRecord.offset``, ``BadRecord.offset``): in an MCAP file, the byte offset of
the chunk record holding the message (of the message record itself for a message outside any
chunk; ``mcap info`` / ``mcap cat`` find it); in a sqlite3 file, the message's row id
(``messages.id``). With the topic and the stamp it identifies the message.

**Layouts read**: a bag directory with ``metadata.yaml`` (rosbag2 versions 1-9; compression
modes ``file`` and ``message``, zstd), a directory without it (a recorder that crashed before
writing it: its ``*.mcap`` / ``*.db3`` files are read in name order), or one ``.mcap`` /
``.db3`` file.

**Rig**: ``rig=`` (a :class:`~fusionrt.calibration.Rig` or a YAML path), else ``rig.yaml`` in
the bag directory, else ``rig.yaml`` beside it (in its parent directory), else none.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import sqlite3
import struct
from collections.abc import Callable, Collection, Generator, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path, PurePath
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import quote

import yaml
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import breakup_chunk

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.ros_types import typestore as fusionrt_typestore
from fusionrt.plugins.sources import BadRecord, RecordedSource, TopicInfo, load_rig
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.messages import RawRecord

__all__ = ["RosbagSource"]

logger = logging.getLogger("fusionrt.sources.rosbag")

_INT64_MAX = 2**63 - 1
_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = (
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x0F,
)
_OP_NAMES = {
    _OP_SCHEMA: "schema",
    _OP_CHANNEL: "channel",
    _OP_MESSAGE: "message",
    _OP_CHUNK: "chunk",
}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DEFINITION_ENCODINGS = ("ros2msg", "ros2idl")

Report = Callable[[BadRecord], None]


@dataclass(frozen=True, slots=True)
class _Connection:
    """A topic as one storage file declares it."""

    id: int
    topic: str
    msgtype: str
    encoding: str
    definition: str


# A message as a storage yields it: (stamp_ns, file index, offset, index, connection, data).
# The first four fields are unique within a bag, so tuples order without comparing the rest.
_Entry = tuple[int, int, int, int, _Connection, bytes]


class _Unreadable(Exception):
    """A storage file that cannot be read at all."""


# -- MCAP -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ChunkRef:
    """Where messages are in an MCAP file: a chunk, or one message outside any chunk."""

    start_ns: int
    end_ns: int
    offset: int  # of the record's opcode byte
    channel_ids: frozenset[int] | None  # None: unknown (no message index)
    loose: bool = False  # a single message record, not a chunk


class _McapStorage:
    """One MCAP file: its channels and chunk index (from the summary, or rebuilt by a scan)."""

    def __init__(self, path: Path, file_index: int, report: Report) -> None:
        self.path = path
        self.file_index = file_index
        self._report = report
        self.connections: dict[int, _Connection] = {}
        self._schemas: dict[int, Schema] = {}
        self._chunks: list[_ChunkRef] = []
        self.counts: dict[int, int] | None = None
        try:
            self._file = path.open("rb")
        except OSError as exc:
            raise _Unreadable(f"cannot open: {exc.strerror or exc}") from None
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            if self._file.read(8) != _MCAP_MAGIC:
                raise _Unreadable("not an MCAP file (no MCAP magic at its start)")
            self._index()
        except BaseException:
            self._file.close()
            raise

    # index -----------------------------------------------------------------------------------

    def _index(self) -> None:
        summary: Any = None
        summary_error: Exception | None = None
        try:
            self._file.seek(0)
            summary = SeekingReader(self._file).get_summary()
        except Exception as exc:  # a cut or damaged summary: anything can fail while parsing
            summary_error = exc
        if summary is not None and summary.chunk_indexes:
            for schema in summary.schemas.values():
                self._schemas[schema.id] = schema
            for channel in summary.channels.values():
                self._add_channel(channel)
            for chunk in summary.chunk_indexes:
                ids = frozenset(chunk.message_index_offsets) or None
                self._chunks.append(
                    _ChunkRef(
                        chunk.message_start_time,
                        chunk.message_end_time,
                        chunk.chunk_start_offset,
                        ids,
                    )
                )
            if summary.statistics is not None:
                self.counts = dict(summary.statistics.channel_message_counts)
        else:
            self._scan(summary_error)

    def _scan(self, summary_error: Exception | None) -> None:
        """Rebuild the index by reading the data section record by record, up to a cut."""
        f = self._file
        pos = 8
        f.seek(pos)
        counts: dict[int, int] = {}
        complete = False
        cut = ""
        while True:
            head = f.read(9)
            if len(head) < 9:
                cut = f"the file ends at byte {self._size} without the MCAP footer"
                break
            opcode = head[0]
            (length,) = struct.unpack_from("<Q", head, 1)
            if opcode in (_OP_FOOTER, _OP_DATA_END):
                complete = True
                break
            body = pos + 9
            if body + length > self._size:
                cut = (
                    f"the file ends at byte {self._size}, inside a "
                    f"{_OP_NAMES.get(opcode, f'opcode 0x{opcode:02x}')} record of {length} "
                    f"bytes starting at byte {pos}"
                )
                break
            if opcode == _OP_CHUNK:
                self._scan_chunk(pos, f.read(length), counts)
            elif opcode in (_OP_SCHEMA, _OP_CHANNEL):
                try:
                    self._add_records([_parse_record(opcode, f.read(length))])
                except Exception as exc:  # a damaged record: anything can fail while parsing
                    self._report(
                        BadRecord(
                            "corrupt_record",
                            f"{_OP_NAMES[opcode]} record unreadable: {exc}",
                            path=str(self.path),
                            offset=pos,
                        )
                    )
            elif opcode == _OP_MESSAGE and length >= 22:
                channel_id, _, log_time = struct.unpack("<HIQ", f.read(14))
                self._chunks.append(_ChunkRef(log_time, log_time, pos, None, loose=True))
                counts[channel_id] = counts.get(channel_id, 0) + 1
            pos = body + length
            f.seek(pos)
        self.counts = counts
        if not complete:
            self._report(
                BadRecord(
                    "truncated",
                    f"{cut}; the messages stored from there on are lost",
                    path=str(self.path),
                    offset=pos,
                )
            )
        elif summary_error is not None:
            self._report(
                BadRecord(
                    "corrupt_index",
                    f"the MCAP summary is unreadable ({summary_error}); the file was scanned",
                    path=str(self.path),
                )
            )

    def _scan_chunk(self, pos: int, body: bytes, counts: dict[int, int]) -> None:
        try:
            chunk = Chunk.read(ReadDataStream(BytesIO(body)))
            records = breakup_chunk(chunk, validate_crc=True)
        except Exception as exc:  # corrupt compressed data can raise anything
            self._report(_corrupt_chunk(self.path, pos, exc))
            return
        self._add_records(records)
        ids: set[int] = set()
        for record in records:
            if isinstance(record, Message):
                ids.add(record.channel_id)
                counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
        self._chunks.append(
            _ChunkRef(chunk.message_start_time, chunk.message_end_time, pos, frozenset(ids))
        )

    def _add_records(self, records: Collection[Any]) -> None:
        for record in records:
            if isinstance(record, Schema):
                self._schemas.setdefault(record.id, record)
            elif isinstance(record, Channel) and record.id not in self.connections:
                self._add_channel(record)

    def _add_channel(self, channel: Channel) -> None:
        schema = self._schemas.get(channel.schema_id)
        definition = ""
        if schema is not None and schema.encoding in _DEFINITION_ENCODINGS:
            definition = schema.data.decode("utf-8", "replace")
        self.connections[channel.id] = _Connection(
            channel.id,
            channel.topic,
            schema.name if schema is not None else "",
            channel.message_encoding,
            definition,
        )

    # time range --------------------------------------------------------------------------------

    @property
    def first_stamp_ns(self) -> int | None:
        return min((c.start_ns for c in self._chunks), default=None)

    @property
    def last_stamp_ns(self) -> int | None:
        return max((c.end_ns for c in self._chunks), default=None)

    # messages ----------------------------------------------------------------------------------

    def messages(
        self, start_ns: int, stop_ns: int, wanted: Callable[[_Connection], bool]
    ) -> Generator[_Entry, None, None]:
        """Messages with ``start_ns <= log time < stop_ns`` of wanted connections, in order."""
        skip = {cid for cid, conn in self.connections.items() if not wanted(conn)}
        heap: list[tuple[int, int, int, Any, Any]] = [
            (ref.start_ns, ref.offset, -1, None, ref)
            for ref in self._chunks
            if ref.end_ns >= start_ns
            and ref.start_ns < stop_ns
            and (ref.channel_ids is None or not ref.channel_ids <= skip)
        ]
        heapq.heapify(heap)
        while heap:
            stamp, offset, index, conn, item = heapq.heappop(heap)
            if index >= 0:
                yield stamp, self.file_index, offset, index, conn, item
                continue
            try:
                loaded = self._load(item)
            except Exception as exc:  # corrupt compressed data can raise anything
                self._report(_corrupt_chunk(self.path, offset, exc))
                continue
            for i, message in enumerate(loaded):
                if not start_ns <= message.log_time < stop_ns:
                    continue
                conn = self.connections.get(message.channel_id)
                if conn is None:
                    self._report(
                        BadRecord(
                            "unknown_channel",
                            f"message of channel {message.channel_id}, which the file never "
                            "declares",
                            path=str(self.path),
                            offset=offset,
                            stamp_ns=message.log_time,
                        )
                    )
                elif wanted(conn):
                    heapq.heappush(heap, (message.log_time, offset, i, conn, message.data))

    def _load(self, ref: _ChunkRef) -> list[Message]:
        """The messages of one chunk (or the one loose message), in file order."""
        self._file.seek(ref.offset)
        (length,) = struct.unpack("<Q", self._file.read(9)[1:])
        if ref.offset + 9 + length > self._size:
            raise _Unreadable(f"record of {length} bytes runs past the end of the file")
        stream = ReadDataStream(self._file)  # bounded by the check above
        if ref.loose:
            return [Message.read(stream, length)]
        records = breakup_chunk(Chunk.read(stream), validate_crc=True)
        self._add_records(records)  # channels declared inside chunks (a scanned file)
        return [record for record in records if isinstance(record, Message)]

    def close(self) -> None:
        self._file.close()


def _parse_record(opcode: int, body: bytes) -> Any:
    stream = ReadDataStream(BytesIO(body))
    return Schema.read(stream) if opcode == _OP_SCHEMA else Channel.read(stream)


def _corrupt_chunk(path: Path, offset: int, exc: Exception) -> BadRecord:
    detail = str(exc) or type(exc).__name__
    return BadRecord(
        "corrupt_chunk",
        f"chunk unreadable, its messages are skipped: {detail}",
        path=str(path),
        offset=offset,
    )


# -- sqlite3 ----------------------------------------------------------------------------------


class _Sqlite3Storage:
    """One rosbag2 sqlite3 file, read-only; tolerates a cut file and unreadable rows."""

    def __init__(self, path: Path, file_index: int, report: Report) -> None:
        self.path = path
        self.file_index = file_index
        self._report = report
        truncated = self._check_size()
        uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _Unreadable(f"cannot open the database: {exc}") from None
        try:
            if truncated:
                # SQLite refuses a file shorter than its header says unless the schema is
                # "writable"; the connection is read-only, so nothing can be written.
                self._db.execute("PRAGMA writable_schema=ON")
            rows = self._db.execute(
                "SELECT id, name, type, serialization_format FROM topics"
            ).fetchall()
            definitions = self._definitions()
        except sqlite3.Error as exc:
            self._db.close()
            raise _Unreadable(f"not a readable rosbag2 database: {exc}") from None
        self.connections = {
            int(cid): _Connection(int(cid), name, msgtype, fmt, definitions.get(msgtype, ""))
            for cid, name, msgtype, fmt in rows
        }
        self._counts: dict[int, int] | None = None
        self.first_stamp_ns, self.last_stamp_ns = self._time_range()

    def _check_size(self) -> bool:
        """Whether the file is shorter than its header says (reported as ``truncated``)."""
        try:
            with self.path.open("rb") as f:
                header = f.read(100)
                size = os.fstat(f.fileno()).st_size
        except OSError as exc:
            raise _Unreadable(f"cannot open: {exc.strerror or exc}") from None
        if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
            raise _Unreadable("not an SQLite database (no SQLite header)")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        expected = page_size * int.from_bytes(header[28:32], "big")
        if size >= expected:
            return False
        self._report(
            BadRecord(
                "truncated",
                f"the database file has {size} bytes, its header says {expected}; "
                "the messages stored past the cut are lost",
                path=str(self.path),
                offset=size,
            )
        )
        return True

    def _definitions(self) -> dict[str, str]:
        """Message definitions stored in the bag (schema version 4 and later)."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if "message_definitions" not in tables:
            return {}
        rows = self._db.execute(
            "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"
        )
        return {name: text for name, encoding, text in rows if encoding in _DEFINITION_ENCODINGS}

    def _time_range(self) -> tuple[int | None, int | None]:
        try:
            low, high = self._db.execute(
                "SELECT (SELECT MIN(timestamp) FROM messages), "
                "(SELECT MAX(timestamp) FROM messages)"
            ).fetchone()
        except sqlite3.Error:
            return None, None
        return low, high

    @property
    def counts(self) -> dict[int, int] | None:
        """Messages per connection id (counted once, on first use)."""
        if self._counts is None:
            try:
                rows = self._db.execute(
                    "SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id"
                ).fetchall()
            except sqlite3.Error:
                return None
            self._counts = {int(cid): int(n) for cid, n in rows}
        return self._counts

    def messages(
        self, start_ns: int, stop_ns: int, wanted: Callable[[_Connection], bool]
    ) -> Generator[_Entry, None, None]:
        """Messages with ``start_ns <= timestamp < stop_ns`` of wanted connections, in order.

        A cursor walks the ``timestamp`` index; each message is fetched by row id, so a row
        that cannot be read costs that row only. Where the walk itself breaks off it resumes
        after the last row read, and gives up when it breaks off again without progress.
        """
        ids = [cid for cid, conn in self.connections.items() if wanted(conn)]
        if not ids:
            return
        fetch = "SELECT topic_id, data FROM messages WHERE id = ?"
        if len(ids) < len(self.connections):
            fetch += f" AND topic_id IN ({', '.join('?' * len(ids))})"
        else:
            ids = []
        last: tuple[int, int] | None = None
        failed_at: tuple[int, int] | None = (-1, -1)
        while True:
            if last is None:
                walk = self._db.execute(
                    "SELECT timestamp, id FROM messages WHERE timestamp >= ? AND timestamp < ? "
                    "ORDER BY timestamp, id",
                    (start_ns, stop_ns),
                )
            else:
                walk = self._db.execute(
                    "SELECT timestamp, id FROM messages WHERE (timestamp, id) > (?, ?) "
                    "AND timestamp < ? ORDER BY timestamp, id",
                    (*last, stop_ns),
                )
            try:
                for stamp, rowid in walk:
                    last = (stamp, rowid)
                    entry = self._fetch(fetch, ids, stamp, rowid)
                    if entry is not None:
                        yield entry
                return
            except sqlite3.DatabaseError as exc:
                stop = failed_at == last
                self._report(
                    BadRecord(
                        "corrupt_record",
                        "the timestamp index breaks off "
                        + ("at its start" if last is None else "after this row")
                        + f" ({exc}); "
                        + ("the rest of the file is skipped" if stop else "resuming"),
                        path=str(self.path),
                        offset=None if last is None else last[1],
                        stamp_ns=None if last is None else last[0],
                    )
                )
                if stop:
                    return
                failed_at = last

    def _fetch(self, fetch: str, ids: list[int], stamp: int, rowid: int) -> _Entry | None:
        """One message by row id; ``None`` if the filter leaves it out or it is unreadable."""
        try:
            row = self._db.execute(fetch, (rowid, *ids)).fetchone()
        except sqlite3.DatabaseError as exc:
            problem, conn = str(exc), None
        else:
            if row is None:
                return None  # a topic the filter leaves out
            topic_id, data = row
            conn = self.connections.get(topic_id) if isinstance(topic_id, int) else None
            if conn is not None and isinstance(data, bytes):
                return stamp, self.file_index, rowid, 0, conn, data
            problem = f"topic id {topic_id!r} and {type(data).__name__} data"
        self._report(
            BadRecord(
                "corrupt_record",
                f"message row unreadable: {problem}",
                path=str(self.path),
                topic=None if conn is None else conn.topic,
                offset=rowid,
                stamp_ns=stamp,
            )
        )
        return None

    def close(self) -> None:
        self._db.close()


# -- the source -------------------------------------------------------------------------------

_Storage = _McapStorage | _Sqlite3Storage
_STORAGE_BY_SUFFIX: dict[str, type[_McapStorage] | type[_Sqlite3Storage]] = {
    ".mcap": _McapStorage,
    ".db3": _Sqlite3Storage,
}


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


class RosbagSource(RecordedSource):
    """A ROS 2 bag (MCAP or sqlite3) replayed in log-time order; see the module docstring.

    ``path`` is a bag directory or one ``.mcap`` / ``.db3`` file. Options: ``topics`` (keep
    only these), ``start_ns`` / ``stop_ns`` (log-time bounds, ``stop_ns`` exclusive), ``rig``
    (a Rig or YAML path; default: ``rig.yaml`` in or beside the bag), ``typestore`` (the
    rosbags typestore whose types count as known; default fusionrt's), ``on_bad_record``,
    ``max_bad_records``.
    """

    name = "rosbag"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        topics: Collection[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        rig: Rig | str | os.PathLike[str] | None = None,
        typestore: Any = None,
        on_bad_record: Callable[[BadRecord], None] | None = None,
        max_bad_records: int = 1000,
    ) -> None:
        super().__init__(
            topics=topics,
            start_ns=start_ns,
            stop_ns=stop_ns,
            on_bad_record=on_bad_record,
            max_bad_records=max_bad_records,
        )
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError("no ROS 2 bag at this path", path=str(self.path))
        self._known_types: Collection[str] = (typestore or fusionrt_typestore()).types
        self._rig_arg = rig
        self._rig: Rig | None = None
        self._rig_loaded = False
        self._tmpdir: TemporaryDirectory[str] | None = None
        self._metadata: dict[str, Any] = {}
        files, compression = self._storage_files()
        self._decompress_messages = compression == "message"
        self._storages: list[_Storage] = []
        self._display_paths: dict[int, str] = {}
        for index, file in enumerate(files):
            self._open_storage(index, file, compression == "file")
        if not self._storages:
            self.close()
            raise DecodeError(
                "no readable storage file in the bag "
                f"({'; '.join(str(b) for b in self.bad_records) or 'no .mcap or .db3 file'})",
                path=str(self.path),
            )
        self._problems: dict[tuple[int, int], str | None] = {}
        self._topics: dict[str, TopicInfo] | None = None
        self._check_topic_filter({c.topic for s in self._storages for c in s.connections.values()})

    # opening ---------------------------------------------------------------------------------

    def _storage_files(self) -> tuple[list[Path], str]:
        """The bag's storage files in order, and its compression mode (``''``, file, message)."""
        if self.path.is_file():
            return [self.path], "file" if self.path.suffix == ".zstd" else ""
        meta_path = self.path / "metadata.yaml"
        if meta_path.is_file():
            try:
                info = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
                info = info["rosbag2_bagfile_information"]
                files = [self.path / PurePath(name).name for name in info["relative_file_paths"]]
                mode = str(info.get("compression_mode") or "").lower()
                mode = "" if mode == "none" else mode
                fmt = str(info.get("compression_format") or "zstd").lower()
                if mode and fmt != "zstd":
                    raise ConfigError(
                        f"compression format {fmt!r} is not supported (zstd is)",
                        path=str(meta_path),
                        key="compression_format",
                    )
                self._metadata = info
                return files, mode
            except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
                self.bad.report(
                    BadRecord(
                        "corrupt_index",
                        f"metadata.yaml unreadable ({type(exc).__name__}: {exc}); "
                        "reading the storage files found in the directory",
                        path=str(meta_path),
                    )
                )
        files = sorted(
            (p for p in self.path.iterdir() if p.suffix in _STORAGE_BY_SUFFIX),
            key=_natural_key,
        )
        compressed = sorted(
            (p for p in self.path.iterdir() if p.name.endswith((".mcap.zstd", ".db3.zstd"))),
            key=_natural_key,
        )
        if compressed and not files:
            return compressed, "file"
        return files, ""

    def _open_storage(self, index: int, file: Path, decompress_file: bool) -> None:
        display = str(file)
        try:
            if decompress_file:
                file = self._decompressed(file)
            storage_type = _STORAGE_BY_SUFFIX.get(file.suffix)
            if storage_type is None:
                raise _Unreadable(f"unknown storage file suffix {file.suffix!r}")
            storage = storage_type(file, index, self.bad.report)
        except (_Unreadable, OSError, zstandard.ZstdError) as exc:
            self.bad.report(BadRecord("unreadable", str(exc), path=display))
            return
        self._storages.append(storage)
        self._display_paths[index] = display

    def _decompressed(self, file: Path) -> Path:
        """A zstd-compressed storage file (compression mode ``file``) decompressed to a temp dir."""
        if self._tmpdir is None:
            self._tmpdir = TemporaryDirectory(prefix="fusionrt-bag-")
        target = Path(self._tmpdir.name) / file.name.removesuffix(".zstd")
        with file.open("rb") as src, target.open("wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
        return target

    # description -----------------------------------------------------------------------------

    def _problem(self, storage_index: int, conn: _Connection) -> str | None:
        """Why a connection's messages cannot be yielded (``None``: they can)."""
        key = (storage_index, conn.id)
        if key not in self._problems:
            problem = None
            if conn.encoding != "cdr":
                problem = "unsupported_encoding"
            elif not conn.msgtype or (
                conn.msgtype not in self._known_types and not conn.definition.strip()
            ):
                problem = "unknown_type"
            self._problems[key] = problem
        return self._problems[key]

    def topics(self) -> dict[str, TopicInfo]:
        """Every topic of the bag with its msgtype and count (from metadata.yaml when present)."""
        if self._topics is None:
            listed = {
                entry["topic_metadata"]["name"]: int(entry["message_count"])
                for entry in self._metadata.get("topics_with_message_count") or []
            }
            counts: dict[str, int | None] = {}
            types: dict[str, str] = {}
            known: dict[str, bool] = {}
            for storage in self._storages:
                storage_counts = storage.counts
                for conn in storage.connections.values():
                    types.setdefault(conn.topic, conn.msgtype)
                    ok = self._problem(storage.file_index, conn) is None
                    known[conn.topic] = known.get(conn.topic, True) and ok
                    n = None if storage_counts is None else storage_counts.get(conn.id, 0)
                    previous = counts.get(conn.topic, 0)
                    counts[conn.topic] = None if n is None or previous is None else previous + n
            self._topics = {
                topic: TopicInfo(
                    topic, types[topic], listed.get(topic, counts[topic]), known[topic]
                )
                for topic in sorted(types)
            }
        return self._topics

    @property
    def storage_paths(self) -> list[str]:
        """The storage files being read, in the bag's order."""
        return [self._display_paths[s.file_index] for s in self._storages]

    @property
    def first_stamp_ns(self) -> int | None:
        """Log time of the bag's first message."""
        return min(
            (s.first_stamp_ns for s in self._storages if s.first_stamp_ns is not None), default=None
        )

    @property
    def last_stamp_ns(self) -> int | None:
        """Log time of the bag's last message."""
        return max(
            (s.last_stamp_ns for s in self._storages if s.last_stamp_ns is not None), default=None
        )

    def rig(self) -> Rig | None:
        """The rig given, else ``rig.yaml`` in or beside the bag (loaded once), else ``None``."""
        if not self._rig_loaded:
            rig = self._rig_arg
            if rig is None:
                candidates = [self.path.parent / "rig.yaml"]
                if self.path.is_dir():
                    candidates.insert(0, self.path / "rig.yaml")
                rig = next((p for p in candidates if p.is_file()), None)
            self._rig = load_rig(rig)
            self._rig_loaded = True
        return self._rig

    # records ---------------------------------------------------------------------------------

    def _wanted(self, conn: _Connection) -> bool:
        return self.wants(conn.topic)

    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        low = -_INT64_MAX - 1 if start_ns is None else start_ns
        high = _INT64_MAX if stop_ns is None else stop_ns
        streams = [s.messages(low, high, self._wanted) for s in self._storages]
        if not streams:
            return
        merged: Iterator[_Entry] = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        decompressor = zstandard.ZstdDecompressor() if self._decompress_messages else None
        for stamp, file_index, offset, _, conn, stored in merged:
            path = self._display_paths[file_index]
            problem = self._problem(file_index, conn)
            if problem is not None:
                self.bad.report(
                    BadRecord(
                        problem,
                        f"topic type {conn.msgtype!r} has no known definition"
                        if problem == "unknown_type"
                        else f"serialization {conn.encoding!r} is not CDR",
                        path=path,
                        topic=conn.topic,
                        offset=offset,
                        stamp_ns=stamp,
                    )
                )
                continue
            data = stored
            if decompressor is not None:
                try:
                    data = decompressor.decompressobj().decompress(stored)
                except zstandard.ZstdError as exc:
                    self.bad.report(
                        BadRecord(
                            "corrupt_record",
                            f"message does not decompress (zstd): {exc}",
                            path=path,
                            topic=conn.topic,
                            offset=offset,
                            stamp_ns=stamp,
                        )
                    )
                    continue
            yield RawRecord(conn.topic, stamp, data, conn.msgtype, path, offset)

    def close(self) -> None:
        """Close the storage files and remove decompressed copies."""
        for storage in getattr(self, "_storages", []):
            storage.close()
        self._storages = []
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
