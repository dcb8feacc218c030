"""The fleet's results on disk: three Parquet tables, one file per drive in each, written
atomically, and the validity check that resume relies on.

Layout of ``RESULTS_DIR`` (each folder reads as one table: ``pyarrow.parquet.read_table(dir)``)::

    detections/<drive>.parquet   drive, stamp_ns, class, x, y, z, l, w, h, yaw, score
    latencies/<drive>.parquet    drive, stamp_ns, stage, ms          (one row per frame and stage)
    summary/<drive>.parquet      one row: see SUMMARY_SCHEMA

Boxes are in the ego frame (metres, yaw in radians); ``stamp_ns`` is the frame's reference stamp
on the common clock. Every file is written to a hidden temporary file in the same folder, flushed
to disk and renamed over the final name (``os.replace``), so a reader or a crash never sees a torn
file; readers skip the hidden temporaries (pyarrow ignores names starting with ``.``). The summary
is the commit record of a drive: it is removed before a drive is redone and written last, and it
holds the row counts of the drive's two other files, so :func:`drive_is_complete` can tell a
finished drive from one whose files were cut, lost or left from an older run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusionrt.runtime.report import MAP_KEYS

DETECTIONS, LATENCIES, SUMMARY = "detections", "latencies", "summary"
STATUS_OK, STATUS_FAILED = "ok", "failed"

DETECTIONS_SCHEMA = pa.schema(
    [
        ("drive", pa.string()),
        ("stamp_ns", pa.int64()),
        ("class", pa.string()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("z", pa.float32()),
        ("l", pa.float32()),
        ("w", pa.float32()),
        ("h", pa.float32()),
        ("yaw", pa.float32()),
        ("score", pa.float32()),
    ]
)
LATENCIES_SCHEMA = pa.schema(
    [("drive", pa.string()), ("stamp_ns", pa.int64()), ("stage", pa.string()), ("ms", pa.float64())]
)
STAGE_PERCENTILES = pa.struct(
    [("stage", pa.string()), ("p50_ms", pa.float64()), ("p99_ms", pa.float64())]
)
SUMMARY_SCHEMA = pa.schema(
    [
        ("drive", pa.string()),
        ("path", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("frames", pa.int64()),
        ("dropped", pa.int64()),
        *[(f"map_{key}", pa.float64()) for key in MAP_KEYS],
        ("condition", pa.string()),
        ("stages", pa.list_(STAGE_PERCENTILES)),
        ("attempts", pa.int64()),
        ("chunks", pa.int64()),
        ("detection_rows", pa.int64()),
        ("latency_rows", pa.int64()),
        ("drive_s", pa.float64()),
        ("wall_s", pa.float64()),
        ("backend", pa.string()),
    ]
)
_SCHEMAS = {DETECTIONS: DETECTIONS_SCHEMA, LATENCIES: LATENCIES_SCHEMA, SUMMARY: SUMMARY_SCHEMA}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def drive_file_name(drive: str) -> str:
    """The file name of a drive's results (its id with path separators and odd characters
    replaced); ids are made unique by :func:`fusionrt.fleet.drives.drive_ids`."""
    return _UNSAFE.sub("_", drive).lstrip(".") + ".parquet"


@dataclass
class DriveTables:
    """One drive's rows, column-wise, ready to be written."""

    drive: str
    detections: dict[str, Any]
    latencies: dict[str, Any]
    summary: dict[str, Any]

    @classmethod
    def failed(
        cls,
        drive: str,
        path: str,
        error: str,
        *,
        attempts: int,
        chunks: int = 1,
        condition: str = "unknown",
    ) -> DriveTables:
        """The tables of a drive that could not be replayed: no rows, the error in the summary."""
        summary = empty_summary(drive, path, condition)
        summary.update(status=STATUS_FAILED, error=error, attempts=attempts, chunks=chunks)
        return cls(
            drive, empty_columns(DETECTIONS_SCHEMA), empty_columns(LATENCIES_SCHEMA), summary
        )


def empty_columns(schema: pa.Schema) -> dict[str, Any]:
    """Columns of ``schema`` with no rows."""
    return {name: [] for name in schema.names}


def empty_summary(drive: str, path: str, condition: str) -> dict[str, Any]:
    """A summary row with every value unset (``None``), its identity filled in."""
    row: dict[str, Any] = dict.fromkeys(SUMMARY_SCHEMA.names)
    row.update(drive=drive, path=path, condition=condition, stages=[])
    return row


def detection_columns(
    drive: str,
    stamps_ns: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """The detections table's columns for N detections (``boxes`` N×7: x y z l w h yaw)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 7)
    names = [class_names[i] if 0 <= i < len(class_names) else str(i) for i in labels.tolist()]
    columns: dict[str, Any] = {
        "drive": [drive] * len(names),
        "stamp_ns": np.asarray(stamps_ns, np.int64),
        "class": names,
    }
    for index, key in enumerate(("x", "y", "z", "l", "w", "h", "yaw")):
        columns[key] = boxes[:, index]
    columns["score"] = np.asarray(scores, np.float32)
    return columns


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` so that ``path`` is either absent, the old file or the whole
    new one: temporary file beside it, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def table_path(results_dir: Path, table: str, drive: str) -> Path:
    """Where ``drive``'s rows of ``table`` lie."""
    return Path(results_dir) / table / drive_file_name(drive)


def write_drive(results_dir: Path, tables: DriveTables) -> None:
    """Write one drive's three files: the summary (the commit record) removed first and written
    last, with the row counts of the other two."""
    summary_path = table_path(results_dir, SUMMARY, tables.drive)
    summary_path.unlink(missing_ok=True)
    counts = {}
    for name, columns in ((DETECTIONS, tables.detections), (LATENCIES, tables.latencies)):
        table = pa.table(columns, schema=_SCHEMAS[name])
        write_parquet_atomic(table, table_path(results_dir, name, tables.drive))
        counts[name] = table.num_rows
    row = {
        **tables.summary,
        "detection_rows": counts[DETECTIONS],
        "latency_rows": counts[LATENCIES],
    }
    summary = pa.Table.from_pylist([row], schema=SUMMARY_SCHEMA)
    write_parquet_atomic(summary, summary_path)


def read_summary_row(results_dir: Path, drive: str) -> dict[str, Any] | None:
    """The drive's summary row, ``None`` when absent or unreadable."""
    path = table_path(results_dir, SUMMARY, drive)
    if not path.is_file():
        return None
    try:
        rows = pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException):
        return None
    return rows[0] if len(rows) == 1 else None


def drive_is_complete(results_dir: Path, drive: str) -> bool:
    """Whether ``drive`` finished (status ok) and its files are whole: each one's Parquet footer
    reads, its schema is the table's and its row count is the one the summary recorded."""
    row = read_summary_row(results_dir, drive)
    if row is None or row.get("status") != STATUS_OK:
        return False
    expected = {DETECTIONS: row.get("detection_rows"), LATENCIES: row.get("latency_rows")}
    for name, rows in expected.items():
        try:
            metadata = pq.read_metadata(table_path(results_dir, name, drive))
            schema = pq.read_schema(table_path(results_dir, name, drive))
        except (OSError, pa.ArrowException):
            return False
        if metadata.num_rows != rows or not schema.equals(_SCHEMAS[name]):
            return False
    return True


@dataclass
class FleetTables:
    """The three tables of a results folder (complete drives and failed ones)."""

    detections: pa.Table
    latencies: pa.Table
    summary: pa.Table
    skipped_files: list[Path] = field(default_factory=list)


def read_results(results_dir: Path) -> FleetTables:
    """Every drive's rows: the summaries of all drives, the detections and latencies of the
    complete ones (an incomplete drive's leftovers are skipped and listed)."""
    results_dir = Path(results_dir)
    summaries = []
    parts: Mapping[str, list[pa.Table]] = {DETECTIONS: [], LATENCIES: []}
    skipped: list[Path] = []
    for path in sorted((results_dir / SUMMARY).glob("*.parquet")):
        try:
            row = pq.read_table(path, schema=SUMMARY_SCHEMA)
        except (OSError, pa.ArrowException):
            skipped.append(path)
            continue
        drive = row.column("drive")[0].as_py()
        summaries.append(row)
        if row.column("status")[0].as_py() != STATUS_OK:
            continue
        if not drive_is_complete(results_dir, drive):
            skipped.append(path)
            summaries.pop()
            continue
        for name, tables in parts.items():
            tables.append(
                pq.read_table(table_path(results_dir, name, drive), schema=_SCHEMAS[name])
            )

    def concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
        return pa.concat_tables(tables) if tables else schema.empty_table()

    return FleetTables(
        concat(parts[DETECTIONS], DETECTIONS_SCHEMA),
        concat(parts[LATENCIES], LATENCIES_SCHEMA),
        concat(summaries, SUMMARY_SCHEMA),
        skipped,
    )
