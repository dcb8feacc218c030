"""The SQLite page reader against databases SQLite itself writes."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusionrt.plugins.sources.sqlite_format import (
    DbHeader,
    PageFile,
    Value,
    decode_record,
    read_header,
    record_types,
)

_values = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 127, 128, 32767, 2**23, 2**31, 2**47, 2**55]),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=9000),  # larger than a page: overflow chains
)


def _rows_from_pages(file: Path) -> dict[int, list[Value]]:
    """Every table-leaf row outside page 1 (the schema), decoded by the page reader."""
    out: dict[int, list[Value]] = {}
    with file.open("rb") as f:
        pages = PageFile(f, read_header(f.read(100)), file.stat().st_size)
        for number, page in pages.pages():
            if number == 1:
                continue
            for _, cell in pages.leaf_cells(number, page):
                if cell.rowid is None:
                    continue
                payload = pages.payload(cell)
                types, body = record_types(payload)
                out[cell.rowid] = decode_record(payload, types, body, len(types))
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.dictionaries(
        st.integers(-(2**63), 2**63 - 1), st.tuples(_values, _values, _values), max_size=40
    ),
    page_size=st.sampled_from([512, 1024, 4096, 65536]),
)
def test_page_reader_decodes_every_row_sqlite_wrote(
    tmp_path_factory: pytest.TempPathFactory,
    rows: dict[int, tuple[Value, Value, Value]],
    page_size: int,
) -> None:
    """Signed 64-bit row ids, every serial type, payloads on one page or spilling over many."""
    file = tmp_path_factory.mktemp("db") / "t.db"
    with contextlib.closing(sqlite3.connect(file)) as db:
        db.execute(f"PRAGMA page_size = {page_size}")
        db.execute("CREATE TABLE t(a, b, c)")  # no affinity: values are stored as given
        db.executemany(
            "INSERT INTO t(rowid, a, b, c) VALUES (?, ?, ?, ?)",
            [(rowid, *values) for rowid, values in rows.items()],
        )
        db.commit()
        stored = {
            rowid: list(values) for rowid, *values in db.execute("SELECT rowid, a, b, c FROM t")
        }
    assert read_header(file.read_bytes()[:100]).page_size == page_size
    assert _rows_from_pages(file) == stored


@given(st.binary(min_size=512, max_size=512), st.integers(1, 2))
def test_damaged_pages_are_a_value_error(page: bytes, number: int) -> None:
    """A damaged page or record is refused with a ValueError, never another exception."""
    pages = PageFile(None, DbHeader(512, 512, 1, 0, 0), 0)
    with contextlib.suppress(ValueError):
        for _, cell in pages.leaf_cells(number, page):
            types, body = record_types(cell.local)
            decode_record(cell.local, types, body, len(types))
