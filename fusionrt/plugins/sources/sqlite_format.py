"""The SQLite database file format, as far as reading table rows from a damaged file needs.

Source: "Database File Format", https://www.sqlite.org/fileformat2.html — the database header
(section 1.3), b-tree pages (1.6), cell payload and overflow pages (1.6, 1.7), the record
format (2.1) and the freelist (1.5). All integers are big-endian.

SQLite reaches a table's rows only through its b-tree, from the root page down. When a file is
cut, the interior pages written last are often past the cut while most leaf pages are not (a
rosbag2 file cut at 47 % keeps ~45 % of its rows on leaf pages nobody can reach), and SQL then
reads nothing. SQLite's recovery extension (``sqlite3_recover``) reads the leaf pages directly,
but neither Python's ``sqlite3`` module nor apsw exposes it, hence this module: it walks the
pages that are present and decodes table-leaf and index-leaf cells.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "MAGIC",
    "PAGE_INDEX_LEAF",
    "PAGE_TABLE_LEAF",
    "DbHeader",
    "LeafCell",
    "PageFile",
    "Value",
    "decode_record",
    "is_blob",
    "is_int",
    "read_header",
    "record_types",
]

MAGIC = b"SQLite format 3\x00"
PAGE_INDEX_LEAF = 0x0A
PAGE_TABLE_LEAF = 0x0D
_HEADER_SIZE = 100
_MAX_OVERFLOW_PAGES = 1 << 20  # a chain longer than this loops (a 4 GiB value at 4 KiB pages)

Value = int | float | bytes | str | None


@dataclass(frozen=True, slots=True)
class DbHeader:
    """The fields of the 100-byte database header that page reading needs."""

    page_size: int
    usable_size: int  # page size less the bytes reserved at the end of each page
    page_count: int  # as the header says; the file may be shorter
    freelist_trunk: int
    freelist_count: int


def read_header(data: bytes) -> DbHeader:
    """The header at the start of a database file; ``ValueError`` if it is not one."""
    if len(data) < _HEADER_SIZE or not data.startswith(MAGIC):
        raise ValueError("not an SQLite database (no SQLite header)")
    (page_size,) = struct.unpack_from(">H", data, 16)
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise ValueError(f"page size {page_size} is not a power of two from 512 to 65536")
    reserved = data[20]
    page_count, trunk, free = struct.unpack_from(">III", data, 28)
    return DbHeader(page_size, page_size - reserved, page_count, trunk, free)


@dataclass(frozen=True, slots=True)
class LeafCell:
    """One cell of a leaf page: its payload's size, the part stored on the page, and the
    first overflow page holding the rest (0: none). ``rowid`` is ``None`` in an index."""

    rowid: int | None
    payload_size: int
    local: bytes
    overflow: int


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A varint (1 to 9 bytes, 7 bits each, the ninth 8) and the position after it."""
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            raise ValueError("a varint runs past the end of its page")
        byte = data[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    if pos + 8 >= len(data):
        raise ValueError("a varint runs past the end of its page")
    return (value << 8) | data[pos + 8], pos + 9


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


class PageFile:
    """The pages of an SQLite file that are present, read without SQLite."""

    def __init__(self, f: BinaryIO, header: DbHeader, size: int) -> None:
        self.header = header
        self.pages_present = size // header.page_size
        self._f = f

    def page(self, number: int) -> bytes | None:
        """Page ``number`` (from 1); ``None`` when the file does not hold it whole."""
        if not 1 <= number <= self.pages_present:
            return None
        self._f.seek((number - 1) * self.header.page_size)
        data = self._f.read(self.header.page_size)
        return data if len(data) == self.header.page_size else None

    def pages(self, batch: int = 256) -> Iterator[tuple[int, bytes]]:
        """Every page present, in file order, read ``batch`` pages at a time."""
        size = self.header.page_size
        for first in range(1, self.pages_present + 1, batch):
            self._f.seek((first - 1) * size)
            data = self._f.read(size * batch)
            for i in range(len(data) // size):
                yield first + i, data[i * size : (i + 1) * size]

    def free_pages(self) -> set[int]:
        """The pages on the freelist that can be read (their content is stale)."""
        free: set[int] = set()
        trunk, seen = self.header.freelist_trunk, 0
        while trunk and trunk not in free and seen <= self.header.freelist_count:
            page = self.page(trunk)
            if page is None:
                break
            free.add(trunk)
            following, count = struct.unpack_from(">II", page, 0)
            count = min(count, (len(page) - 8) // 4)
            free.update(struct.unpack_from(f">{count}I", page, 8))
            seen += count + 1
            trunk = following
        return free

    @staticmethod
    def kind(number: int, page: bytes) -> int:
        """A page's type byte (after the database header on page 1)."""
        return page[_HEADER_SIZE if number == 1 else 0]

    def leaf_cells(self, number: int, page: bytes) -> list[tuple[int, LeafCell]]:
        """``(position, cell)`` of each cell of a table or index leaf page; ``[]`` for
        another page.

        Raises ``ValueError`` for a leaf page whose cells do not fit in it.
        """
        start = _HEADER_SIZE if number == 1 else 0
        kind = page[start]
        if kind not in (PAGE_TABLE_LEAF, PAGE_INDEX_LEAF):
            return []
        (count,) = struct.unpack_from(">H", page, start + 3)
        pointers = start + 8
        if pointers + 2 * count > self.header.usable_size:
            raise ValueError(f"{count} cells do not fit in page {number}")
        cells = []
        for (pos,) in struct.iter_unpack(">H", page[pointers : pointers + 2 * count]):
            if not pointers + 2 * count <= pos < self.header.usable_size:
                raise ValueError(f"a cell pointer of page {number} points outside its cells")
            cells.append((pos, self.cell(number, page, pos)))
        return cells

    def cell(self, number: int, page: bytes, pos: int) -> LeafCell:
        """The leaf cell at ``pos`` of page ``number``; ``ValueError`` if it does not fit."""
        kind = self.kind(number, page)
        if kind not in (PAGE_TABLE_LEAF, PAGE_INDEX_LEAF):
            raise ValueError(f"page {number} is no longer a leaf page")
        usable = self.header.usable_size
        payload_size, pos = _varint(page, pos)
        rowid = None
        if kind == PAGE_TABLE_LEAF:
            raw, pos = _varint(page, pos)
            rowid = _signed(raw)
            most = usable - 35
        else:
            most = (usable - 12) * 64 // 255 - 23
        least = (usable - 12) * 32 // 255 - 23
        local = payload_size
        if payload_size > most:
            spill = least + (payload_size - least) % (usable - 4)
            local = spill if spill <= most else least
        end = pos + local
        overflow = 0
        if local < payload_size:
            if end + 4 > usable:
                raise ValueError("a cell runs past the end of its page")
            (overflow,) = struct.unpack_from(">I", page, end)
        elif end > usable:
            raise ValueError("a cell runs past the end of its page")
        return LeafCell(rowid, payload_size, page[pos:end], overflow)

    def payload(self, cell: LeafCell) -> bytes:
        """A cell's whole payload, following its overflow chain.

        Raises ``ValueError`` naming the overflow page that is missing or wrong.
        """
        parts = [cell.local]
        have = len(cell.local)
        page_number, pages = cell.overflow, 0
        while have < cell.payload_size:
            page = self.page(page_number) if page_number else None
            pages += 1
            if page is None or pages > _MAX_OVERFLOW_PAGES:
                raise ValueError(f"overflow page {page_number} is missing")
            (page_number,) = struct.unpack_from(">I", page, 0)
            chunk = page[4 : min(self.header.usable_size, 4 + cell.payload_size - have)]
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)


def record_types(payload: bytes) -> tuple[list[int], int]:
    """The serial types of a record's columns and where its body starts.

    Raises ``ValueError`` when the header does not fit in ``payload``.
    """
    size, pos = _varint(payload, 0)
    if size > len(payload) or size < pos:
        raise ValueError(f"a record header of {size} bytes in {len(payload)}")
    types = []
    while pos < size:
        serial, pos = _varint(payload, pos)
        types.append(serial)
    if pos != size:
        raise ValueError("a record header runs past its stated size")
    return types, size


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _size(serial: int) -> int:
    if serial in _INT_SIZES:
        return _INT_SIZES[serial]
    if serial == 7:
        return 8
    if serial >= 12:
        return (serial - 12) // 2
    if serial in (10, 11):
        raise ValueError(f"reserved serial type {serial}")
    return 0


def is_int(serial: int) -> bool:
    """Whether a column of this serial type holds an integer."""
    return 1 <= serial <= 6 or serial in (8, 9)


def is_blob(serial: int) -> bool:
    """Whether a column of this serial type holds a BLOB."""
    return serial >= 12 and serial % 2 == 0


def decode_record(payload: bytes, types: list[int], body: int, columns: int) -> list[Value]:
    """The first ``columns`` values of a record (``payload`` may hold only its start)."""
    values: list[Value] = []
    pos = body
    for serial in types[:columns]:
        size = _size(serial)
        if pos + size > len(payload):
            raise ValueError("a record's value runs past its payload")
        raw = payload[pos : pos + size]
        if serial == 0:
            values.append(None)
        elif serial in _INT_SIZES:
            values.append(int.from_bytes(raw, "big", signed=True))
        elif serial == 7:
            values.append(struct.unpack(">d", raw)[0])
        elif serial in (8, 9):
            values.append(serial - 8)
        elif serial % 2 == 0:
            values.append(bytes(raw))
        else:
            values.append(raw.decode("utf-8", "replace"))
        pos += size
    return values
