"""One sqlite3 storage file of a ROS 2 bag (rosbag2's ``messages`` table), read-only.

An intact file is read with SQL: opening reads the ``(topic, timestamp)`` of every row once,
in row id order (to count the topics and find clock steps), then a cursor walks the
``timestamp`` index and each message's bytes are fetched by row id. When the file is shorter
than its header says (a copy or a recorder cut short), or SQL finds it malformed, SQL reaches
little or nothing (the interior b-tree pages written last are lost, and every row sits below
one of them), so the pages that are present are read directly (:mod:`.sqlite_format`):
every table-leaf cell that is a ``messages`` row is found, its ``(timestamp, row id)`` kept in
memory (about 40 bytes a row), and its bytes fetched when its turn comes, in the same order.
What cannot be read is reported:

* ``truncated`` (offset = the file size) when the file is shorter than its header says;
* ``corrupt_record`` per run of row ids that no page holds any more (offset = the first row
  id, ``lost`` = the count): rosbag2 numbers rows 1, 2, 3... as it writes them, so a gap is a
  lost row; rows after the last one found are counted from ``metadata.yaml`` when it says how
  many the file holds;
* ``corrupt_record`` for a row whose bytes cannot be read (a missing overflow page).

**Order**: by ``timestamp``, equal ones by row id (write order); in write order (row id) when a
topic's log time steps back (:class:`~fusionrt.plugins.sources.rosbag_storage.LogTimeSteps`).
**Offsets**: the message's row id (``messages.id``).
"""

from __future__ import annotations

import os
import sqlite3
from array import array
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from fusionrt.plugins.sources import BadRecord
from fusionrt.plugins.sources.rosbag_storage import (
    DEFINITION_ENCODINGS,
    STEP_TOLERANCE_NS,
    Connection,
    Entry,
    LogTimeSteps,
    Report,
    StorageUnreadable,
)
from fusionrt.plugins.sources.sqlite_format import (
    PageFile,
    decode_record,
    is_blob,
    is_int,
    read_header,
    record_types,
)

__all__ = ["Sqlite3Storage"]

_COLUMNS = ("id", "topic_id", "timestamp", "data")


class _Rows:
    """The ``messages`` rows found on the pages present: ``(timestamp, id, topic, page, cell
    position)`` each, as arrays; their bytes are read when their turn comes."""

    def __init__(self, table: npt.NDArray[np.int64]) -> None:
        self.stamps: npt.NDArray[np.int64] = table[:, 0]
        self.ids: npt.NDArray[np.int64] = table[:, 1]
        self.topics: npt.NDArray[np.int64] = table[:, 2]
        self.pages: npt.NDArray[np.int64] = table[:, 3]
        self.cells: npt.NDArray[np.int64] = table[:, 4]

    def __len__(self) -> int:
        return len(self.ids)


class Sqlite3Storage:
    """One rosbag2 sqlite3 file, read-only; see the module docstring."""

    def __init__(
        self,
        path: Path,
        file_index: int,
        report: Report,
        step_tolerance_ns: int = STEP_TOLERANCE_NS,
        expected_count: int | None = None,
    ) -> None:
        self.path = path
        self.file_index = file_index
        self._report = report
        self._expected_count = expected_count
        truncated = self._check_size()
        uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageUnreadable(f"cannot open the database: {exc}") from None
        try:
            if truncated:
                # SQLite refuses a file shorter than its header says unless the schema is
                # "writable"; the connection is read-only, so nothing can be written.
                self._db.execute("PRAGMA writable_schema=ON")
            rows = self._db.execute(
                "SELECT id, name, type, serialization_format FROM topics"
            ).fetchall()
            definitions = self._definitions()
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(messages)")]
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageUnreadable(f"not a readable rosbag2 database: {exc}") from None
        self.connections = {
            int(cid): Connection(int(cid), name, msgtype, fmt, _definition(definitions, msgtype))
            for cid, name, msgtype, fmt in rows
        }
        self._column = {name: columns.index(name) for name in _COLUMNS if name in columns}
        self._steps = LogTimeSteps(step_tolerance_ns)
        #: Messages per connection id, counted while opening.
        self.counts: dict[int, int] = {}
        self._truncated = truncated
        self._rows: _Rows | None = None
        self._pages: PageFile | None = None
        self._page_file: BinaryIO | None = None
        if truncated:
            self._read_pages(find_steps=True)
        else:
            self._find_steps()
        self._steps.report(
            str(self.path), {c.id: c.topic for c in self.connections.values()}, self._report
        )
        self.first_stamp_ns, self.last_stamp_ns = self._time_range()

    # opening -----------------------------------------------------------------------------

    def _check_size(self) -> bool:
        """Whether the file is shorter than its header says (reported as ``truncated``)."""
        try:
            with self.path.open("rb") as f:
                header = read_header(f.read(100))
                size = os.fstat(f.fileno()).st_size
        except OSError as exc:
            raise StorageUnreadable(f"cannot open: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise StorageUnreadable(str(exc)) from None
        expected = header.page_size * header.page_count
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
        return {name: text for name, encoding, text in rows if encoding in DEFINITION_ENCODINGS}

    def _find_steps(self) -> None:
        """Find where a topic's log time steps back, and count the rows of each topic, in one
        pass over the table in row id order (which needs no sort: SQLite's window functions
        took twice as long); the pages are read instead if SQL finds the file malformed."""
        counts: dict[int, int] = {}
        try:
            rows = self._db.execute("SELECT id, topic_id, timestamp FROM messages ORDER BY id")
            while batch := rows.fetchmany(1 << 16):
                for topic, ids, stamps in _by_topic(np.array(batch, np.int64)):
                    self._steps.feed(topic, stamps, ids)
                    counts[topic] = counts.get(topic, 0) + len(ids)
        except sqlite3.DatabaseError as exc:
            self._malformed(exc, find_steps=True)
            return
        self.counts = counts

    def _malformed(self, exc: sqlite3.DatabaseError, find_steps: bool = False) -> None:
        """SQL cannot read the file: report it and read its pages instead."""
        self._report(
            BadRecord(
                "corrupt_index",
                f"SQLite finds the database malformed ({exc}); its pages are read directly",
                path=str(self.path),
            )
        )
        self._read_pages(find_steps)

    def _read_pages(self, find_steps: bool) -> None:
        """Find every ``messages`` row on the pages present; report the rows that are gone.

        ``find_steps``: look for log-time steps in them too (only while opening: the replay
        order must not change under a running replay).
        """
        f = self.path.open("rb")
        try:
            header = read_header(f.read(100))
            pages = PageFile(f, header, os.fstat(f.fileno()).st_size)
            found, listed = self._scan(pages)
        except BaseException:
            f.close()
            raise
        self._page_file, self._pages = f, pages
        rows = self._rows = _Rows(found)
        topics, counts = np.unique(rows.topics, return_counts=True)
        self.counts = dict(zip(topics.tolist(), counts.tolist(), strict=True))
        if find_steps:
            self._steps = LogTimeSteps(self._steps.tolerance_ns)  # SQL may have fed some
            table = np.stack((rows.ids, rows.topics, rows.stamps), axis=1)
            for topic, ids, stamps in _by_topic(table[np.argsort(rows.ids, kind="stable")]):
                self._steps.feed(topic, stamps, ids)
        self._report_gaps(rows.ids, listed)

    def _scan(self, pages: PageFile) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """``(timestamp, id, topic, page, cell position)`` of every readable row, and ``(id,
        timestamp)`` of the rows the timestamp-index pages left list; unique ids, sorted."""
        if any(name not in self._column for name in _COLUMNS):
            raise StorageUnreadable("the messages table lacks a rosbag2 column")
        width = len(self._column)
        topic_at, stamp_at, data_at = (self._column[n] for n in ("topic_id", "timestamp", "data"))
        free = pages.free_pages()
        found, listed = array("q"), array("q")  # flat: 8 bytes a value, whatever the row count
        for number, page in pages.pages():
            if number in free:
                continue
            try:
                cells = pages.leaf_cells(number, page)
            except ValueError:
                continue  # a damaged leaf page: its rows are reported as a gap
            for pos, cell in cells:
                try:
                    types, body = record_types(cell.local)
                    if cell.rowid is None:  # an index entry: (timestamp, row id) in rosbag2
                        if len(types) == 2 and all(map(is_int, types)):
                            stamp, rowid = decode_record(cell.local, types, body, 2)
                            listed.extend((rowid, stamp))  # type: ignore[arg-type]
                        continue
                    if (
                        len(types) != width
                        or not is_int(types[topic_at])
                        or not is_int(types[stamp_at])
                        or not is_blob(types[data_at])
                    ):
                        continue  # a row of another table
                    values = decode_record(cell.local, types, body, max(topic_at, stamp_at) + 1)
                except ValueError:
                    continue
                stamp, topic = values[stamp_at], values[topic_at]
                found.extend((stamp, cell.rowid, topic, number, pos))  # type: ignore[arg-type]
        return _unique(np.frombuffer(found, np.int64).reshape(-1, 5), 1), _unique(
            np.frombuffer(listed, np.int64).reshape(-1, 2), 0
        )

    def _report_gaps(self, found: npt.NDArray[np.int64], listed: npt.NDArray[np.int64]) -> None:
        """Report each run of row ids that no page holds (see the module docstring)."""
        listed_ids, listed_stamps = listed[:, 0], listed[:, 1]
        last_known = max(int(found.max(initial=0)), int(listed_ids.max(initial=0)))
        total = max(self._expected_count or 0, last_known)
        missing = np.setdiff1d(np.arange(1, total + 1), found)
        breaks = np.flatnonzero(np.diff(missing) != 1)
        firsts = missing[np.concatenate(([0], breaks + 1))] if len(missing) else missing
        lasts = missing[np.concatenate((breaks, [len(missing) - 1]))] if len(missing) else missing
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
            low, high = np.searchsorted(listed_ids, [a, b + 1])
            stamps = listed_stamps[low:high]
            indexed = (
                f"; the timestamp index lists {len(stamps)} of them, log times "
                f"{stamps.min()}..{stamps.max()}"
                if len(stamps)
                else ""
            )
            self._report(
                BadRecord(
                    "corrupt_record",
                    f"rows {a}..{b} ({b - a + 1} messages) are lost: no page left holds "
                    f"them{indexed}",
                    path=str(self.path),
                    offset=a,
                    stamp_ns=int(stamps.min()) if len(stamps) else None,
                    lost=b - a + 1,
                )
            )
        if self._truncated and self._expected_count is None:
            self._report(
                BadRecord(
                    "corrupt_record",
                    f"the rows after row {last_known} are lost with the end of the file; "
                    "without metadata.yaml nothing says how many there were",
                    path=str(self.path),
                    offset=last_known + 1,
                )
            )

    def _time_range(self) -> tuple[int | None, int | None]:
        if self._rows is not None:
            if not len(self._rows):
                return None, None
            return int(self._rows.stamps.min()), int(self._rows.stamps.max())
        try:
            low, high = self._db.execute(
                "SELECT (SELECT MIN(timestamp) FROM messages), "
                "(SELECT MAX(timestamp) FROM messages)"
            ).fetchone()
        except sqlite3.Error:
            return None, None
        return low, high

    @property
    def write_order(self) -> bool:
        """Whether the file is replayed in write order (its log time steps back)."""
        return self._steps.first is not None

    # messages -----------------------------------------------------------------------------

    def messages(
        self, start_ns: int, stop_ns: int, wanted: Callable[[Connection], bool]
    ) -> Generator[Entry, None, None]:
        """Messages with ``start_ns <= timestamp < stop_ns`` of wanted connections, in order.

        With SQL until it finds the file malformed, then from the pages, after the last row
        SQL gave (both go in the same order).
        """
        ids = [cid for cid, conn in self.connections.items() if wanted(conn)]
        if not ids:
            return
        after: tuple[int, int] | None = None
        if self._rows is None:
            try:
                for stamp, rowid in self._walk(start_ns, stop_ns, ids):
                    entry = self._fetch(stamp, rowid)
                    after = (stamp, rowid)
                    if entry is not None:
                        yield entry
                return
            except sqlite3.DatabaseError as exc:
                self._malformed(exc)
        yield from self._from_pages(start_ns, stop_ns, set(ids), after)

    def _walk(self, start_ns: int, stop_ns: int, ids: list[int]) -> Iterator[tuple[int, int]]:
        """``(timestamp, id)`` of the rows of ``ids`` in the window, in replay order (SQL)."""
        topics = f" AND topic_id IN ({', '.join('?' * len(ids))})"
        if len(ids) == len(self.connections):
            topics, ids = "", []
        order = "id" if self.write_order else "timestamp, id"
        yield from self._db.execute(
            f"SELECT timestamp, id FROM messages WHERE timestamp >= ? AND timestamp < ?"
            f"{topics} ORDER BY {order}",
            (start_ns, stop_ns, *ids),
        )

    def _fetch(self, stamp: int, rowid: int) -> Entry | None:
        """One message by row id (SQL); ``None``, reported, when its row holds no message."""
        row = self._db.execute("SELECT topic_id, data FROM messages WHERE id = ?", (rowid,))
        topic_id, data = row.fetchone() or (None, None)
        conn = self.connections.get(topic_id) if isinstance(topic_id, int) else None
        if conn is not None and isinstance(data, bytes):
            return stamp, self.file_index, rowid, 0, conn, data
        self._report(
            BadRecord(
                "corrupt_record",
                f"message row unreadable: topic id {topic_id!r} and {type(data).__name__} data",
                path=str(self.path),
                topic=None if conn is None else conn.topic,
                offset=rowid,
                stamp_ns=stamp,
                lost=1,
            )
        )
        return None

    def _from_pages(
        self, start_ns: int, stop_ns: int, ids: set[int], after: tuple[int, int] | None
    ) -> Generator[Entry, None, None]:
        """The rows found on the pages, in replay order, after ``after`` (the last SQL gave)."""
        rows, pages = self._rows, self._pages
        assert rows is not None and pages is not None
        keep = (rows.stamps >= start_ns) & (rows.stamps < stop_ns)
        keep &= np.isin(rows.topics, list(ids))
        if self.write_order:
            order = np.argsort(rows.ids, kind="stable")
            if after is not None:
                keep &= rows.ids > after[1]
        else:
            order = np.lexsort((rows.ids, rows.stamps))
            if after is not None:
                keep &= (rows.stamps > after[0]) | (
                    (rows.stamps == after[0]) & (rows.ids > after[1])
                )
        data_at = self._column["data"]
        for k in order[keep[order]].tolist():
            stamp, rowid, topic_id = int(rows.stamps[k]), int(rows.ids[k]), int(rows.topics[k])
            conn = self.connections.get(topic_id)
            number = int(rows.pages[k])
            try:
                page = pages.page(number)
                if page is None:
                    raise ValueError(f"page {number} is gone")
                payload = pages.payload(pages.cell(number, page, int(rows.cells[k])))
                types, body = record_types(payload)
                data = decode_record(payload, types, body, len(types))[data_at]
            except ValueError as exc:
                problem = str(exc)
            else:
                if conn is not None and isinstance(data, bytes):
                    yield stamp, self.file_index, rowid, 0, conn, data
                    continue
                problem = f"topic id {topic_id} is not in the topics table"
            self._report(
                BadRecord(
                    "corrupt_record",
                    f"message row unreadable: {problem}",
                    path=str(self.path),
                    topic=None if conn is None else conn.topic,
                    offset=rowid,
                    stamp_ns=stamp,
                    lost=1,
                )
            )

    def close(self) -> None:
        self._db.close()
        if self._page_file is not None:
            self._page_file.close()


def _unique(table: npt.NDArray[np.int64], column: int) -> npt.NDArray[np.int64]:
    """The rows of ``table`` with the first of each value in ``column``, sorted by it.

    rosbag2 never updates a row, so a row id found twice (on a page SQLite moved its cells
    from) is the same row twice; it is read once.
    """
    _, first = np.unique(table[:, column], return_index=True)
    return table[first]


def _by_topic(
    table: npt.NDArray[np.int64],
) -> Iterator[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """``(topic, row ids, timestamps)`` per topic of rows ``(id, topic, timestamp)``, each
    topic's rows in the order given."""
    table = table[np.argsort(table[:, 1], kind="stable")]
    starts = np.flatnonzero(np.diff(table[:, 1])) + 1
    for part in np.split(table, starts):
        if len(part):
            yield int(part[0, 1]), part[:, 0], part[:, 2]


def _definition(definitions: dict[str, str], msgtype: str) -> str | None:
    """The stored definition of ``msgtype`` (``None``: none stored).

    rosbag2 stores the definition of a service event topic (``pkg/srv/Name_Event``) under
    the service's type, ``pkg/srv/Name`` (rosbag2_cpp ``LocalMessageDefinitionSource::
    get_full_text`` sets ``topic_type`` to the service type), so that is looked up too.
    """
    if msgtype in definitions:
        return definitions[msgtype]
    if "/srv/" in msgtype and msgtype.endswith("_Event"):
        return definitions.get(msgtype.removesuffix("_Event"))
    return None
