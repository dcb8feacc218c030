"""Result files (atomic writes, validity for resume), chunk planning and drive lists: no Ray."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pq = pytest.importorskip("pyarrow.parquet")

from fusionrt.fleet import results  # noqa: E402
from fusionrt.fleet.chunks import plan_chunks  # noqa: E402
from fusionrt.fleet.drives import resolve_drives  # noqa: E402
from fusionrt.fleet.results import (  # noqa: E402
    DriveTables,
    detection_columns,
    drive_is_complete,
    empty_summary,
    read_results,
    table_path,
    write_drive,
)
from fusionrt.runtime.errors import ConfigError  # noqa: E402


def _tables(drive: str, frames: int = 3, per_frame: int = 2) -> DriveTables:
    stamps = np.repeat(np.arange(frames, dtype=np.int64) * 100_000_000, per_frame)
    count = len(stamps)
    boxes = np.arange(count * 7, dtype=np.float32).reshape(count, 7)
    detections = detection_columns(
        drive,
        stamps,
        boxes,
        np.zeros(count, np.int64),
        np.full(count, 0.5, np.float32),
        class_names=("car",),
    )
    latencies = {
        "drive": [drive] * frames,
        "stamp_ns": np.arange(frames, dtype=np.int64) * 100_000_000,
        "stage": ["infer"] * frames,
        "ms": np.linspace(1.0, 2.0, frames),
    }
    summary = empty_summary(drive, f"/drives/{drive}", "clear")
    summary.update(status="ok", error="", frames=frames, attempts=1, chunks=1)
    return DriveTables(drive, detections, latencies, summary)


def test_written_drive_is_complete_and_reads_back(tmp_path):
    write_drive(tmp_path, _tables("a"))
    write_drive(tmp_path, DriveTables.failed("b", "/drives/b", "DecodeError: bad", attempts=3))
    assert drive_is_complete(tmp_path, "a")
    assert not drive_is_complete(tmp_path, "b")  # failed drives are run again
    fleet = read_results(tmp_path)
    assert fleet.summary.num_rows == 2 and fleet.detections.num_rows == 6
    assert fleet.summary.to_pylist()[0]["detection_rows"] == 6


@pytest.mark.parametrize("damage", ["truncate", "delete", "other_rows", "summary_gone"])
def test_damaged_drive_is_not_complete(tmp_path, damage):
    write_drive(tmp_path, _tables("a"))
    detections = table_path(tmp_path, "detections", "a")
    if damage == "truncate":
        detections.write_bytes(detections.read_bytes()[:-20])
    elif damage == "delete":
        detections.unlink()
    elif damage == "other_rows":  # a whole file, but from another run
        results.write_parquet_atomic(pq.read_table(detections).slice(0, 2), detections)
    else:
        table_path(tmp_path, "summary", "a").unlink()
    assert not drive_is_complete(tmp_path, "a")
    assert read_results(tmp_path).detections.num_rows == 0


def test_crash_between_temp_write_and_rename_leaves_no_torn_file(tmp_path, monkeypatch):
    write_drive(tmp_path, _tables("a", frames=3))
    old = pq.read_table(table_path(tmp_path, "detections", "a"))

    class Crash(BaseException):
        pass

    def crash(src, dst):
        assert src.name.startswith(".") and src.stat().st_size > 0  # the new file was written
        raise Crash

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(Crash):
        write_drive(tmp_path, _tables("a", frames=5))
    monkeypatch.undo()
    assert pq.read_table(table_path(tmp_path, "detections", "a")).equals(old)
    assert not list(tmp_path.rglob(".*.tmp"))  # the temporary is cleaned up
    # the summary (commit record) went first, so the half-redone drive is not complete
    assert not drive_is_complete(tmp_path, "a")
    # a temporary left by a killed process is ignored by readers
    (tmp_path / "detections" / ".a.parquet.999.tmp").write_bytes(b"PAR1 torn")
    write_drive(tmp_path, _tables("a", frames=5))
    assert drive_is_complete(tmp_path, "a")
    assert read_results(tmp_path).detections.num_rows == 10


@given(
    first=st.integers(0, 10**12),
    length_ns=st.integers(0, 60 * 10**9),
    chunk_s=st.floats(0.05, 30.0),
    stamps=st.lists(st.integers(-(10**9), 61 * 10**9), max_size=30),
)
def test_every_frame_belongs_to_exactly_one_chunk(first, length_ns, chunk_s, stamps):
    context = 10**9
    windows = plan_chunks(first, first + length_ns, chunk_s, context)
    assert [w.index for w in windows] == list(range(len(windows)))
    for offset in stamps:
        owners = [w for w in windows if w.owns(first + offset)]
        assert len(owners) == 1
        w = owners[0]
        if w.read_start_ns is not None:
            assert w.read_start_ns == w.start_ns - context
        if w.read_stop_ns is not None:
            assert w.read_stop_ns == w.stop_ns + context


def test_chunk_length_must_be_positive():
    with pytest.raises(ConfigError, match="chunk"):
        plan_chunks(0, 10, 0.0, 1)


def test_drives_from_glob_and_list_file(tmp_path):
    for name in ("x/d1", "y/d1", "y/d2"):
        (tmp_path / name / "bag").mkdir(parents=True)
        (tmp_path / name / "bag" / "metadata.yaml").touch()
    (tmp_path / "y" / "notes").mkdir()
    (tmp_path / "y" / "empty" / "bag").mkdir(parents=True)  # no bag in it: not a drive
    (tmp_path / "z" / "k1" / "velodyne").mkdir(parents=True)  # a KITTI folder is a drive too
    refs = resolve_drives(str(tmp_path / "*" / "*"))
    assert [r.drive for r in refs] == ["x__d1", "y__d1", "y__d2", "z__k1"]  # d1 twice: paths
    listing = tmp_path / "drives.txt"
    listing.write_text("# the fleet\ny/d2\n\nx/d1  # first\n")
    assert [r.drive for r in resolve_drives(str(listing))] == ["d1", "d2"]
    listing.write_text("y/missing\n")
    with pytest.raises(ConfigError, match="line=1"):
        resolve_drives(str(listing))
    with pytest.raises(ConfigError, match="no drive matches"):
        resolve_drives(str(tmp_path / "nothing*"))
