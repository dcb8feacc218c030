"""The fleet on a real two-node Ray cluster (loopback): same results as one drive at a time,
chunks, a worker killed mid-run, failing drives, resume, the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fleet_support import (
    copy_drive,
    corrupt_every_chunk,
    cut_to_header,
    empty_bag,
    pipeline_dict,
    write_pipeline,
)

pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("ray")

from fusionrt.fleet.drives import resolve_drives  # noqa: E402
from fusionrt.fleet.results import drive_is_complete, read_results, table_path  # noqa: E402
from fusionrt.fleet.runner import FleetOptions, run_fleet  # noqa: E402
from fusionrt.fleet.task import PipelineSpec  # noqa: E402
from fusionrt.runtime.pipeline import RunOptions  # noqa: E402
from fusionrt.runtime.registry import Registry  # noqa: E402
from fusionrt.runtime.run_cli import run_pipeline  # noqa: E402


def _fleet(pipeline: Path, drives: str, out: Path, **options) -> object:
    spec = PipelineSpec.load(pipeline)
    return run_fleet(spec, resolve_drives(drives), FleetOptions(out_dir=out, **options))


def _alone(pipeline: Path, drive: Path, tmp: Path):
    registry = Registry.create(entry_points=False)
    return run_pipeline(pipeline, drive, RunOptions(out_dir=tmp, keep_results=True), registry)


def _rows(out: Path, drive: str) -> dict:
    return pq.read_table(table_path(out, "detections", drive)).to_pydict()


def test_fleet_results_equal_running_each_drive_alone(
    fleet_out, drives_dir, pipeline_path, tmp_path
):
    summary = {r["drive"]: r for r in read_results(fleet_out).summary.to_pylist()}
    seen_nodes = set()
    for drive in ("drive_a", "drive_b", "drive_c", "drive_d"):
        result, report = _alone(pipeline_path, drives_dir / drive, tmp_path)
        rows = _rows(fleet_out, drive)
        stamps = [d.stamp_ns for d in result.detections for _ in range(len(d))]
        boxes = np.concatenate([d.boxes for d in result.detections])
        assert rows["stamp_ns"] == stamps and len(stamps) > 0
        fleet_boxes = np.stack([rows[k] for k in ("x", "y", "z", "l", "w", "h", "yaw")], axis=1)
        np.testing.assert_array_equal(fleet_boxes, boxes)
        np.testing.assert_array_equal(
            rows["score"], np.concatenate([d.scores for d in result.detections])
        )
        row = summary[drive]
        assert row["status"] == "ok" and row["attempts"] == 1
        assert row["frames"] == result.frames == report["frames"]
        assert {k: row[f"map_{k}"] for k in report["map"]} == report["map"]
        seen_nodes.add(row["path"])
    # the four drives differ (seeds, conditions), so equality is not trivial
    assert len({tuple(_rows(fleet_out, d)["x"][:20]) for d in summary}) == 4
    assert {summary[d]["condition"] for d in summary} == {"clear", "fog", "night"}


def test_chunked_drives_give_the_same_detections(
    ray_cluster, fleet_out, drives_dir, pipeline_path, tmp_path
):
    out = tmp_path / "chunked"
    outcome = _fleet(pipeline_path, str(drives_dir / "drive_[ab]"), out, chunk_s=0.7)
    assert outcome.exit_code == 0
    for drive in ("drive_a", "drive_b"):
        summary = pq.read_table(table_path(out, "summary", drive)).to_pylist()[0]
        assert summary["chunks"] == 3
        assert _rows(out, drive) == _rows(fleet_out, drive)


def test_killed_worker_is_retried_and_every_drive_lands_once(ray_cluster, drives_dir, tmp_path):
    marker = tmp_path / "crashed"
    pipeline = write_pipeline(
        tmp_path / "crash.yaml", pipeline_dict("toy_crash_once", marker=str(marker))
    )
    out = tmp_path / "out"
    outcome = _fleet(pipeline, str(drives_dir / "drive_*"), out, max_retries=2)
    assert marker.is_file()  # a worker did die
    assert outcome.exit_code == 0 and not outcome.failed
    tables = read_results(out)
    summary = tables.summary.to_pylist()
    assert sorted(r["drive"] for r in summary) == ["drive_a", "drive_b", "drive_c", "drive_d"]
    assert sorted(r["attempts"] for r in summary) == [1, 1, 1, 2]
    for row in summary:  # each drive's frames exactly once
        stamps = [
            s
            for d, s, st in zip(
                *(tables.latencies.column(c).to_pylist() for c in ("drive", "stamp_ns", "stage")),
                strict=True,
            )
            if d == row["drive"] and st == "infer"
        ]
        assert len(stamps) == len(set(stamps)) == row["frames"]


def test_failing_drives_are_recorded_and_the_rest_complete(
    ray_cluster, drives_dir, pipeline_path, tmp_path
):
    fleet = tmp_path / "drives"
    for name in ("drive_a", "drive_b"):
        shutil.copytree(drives_dir / name, fleet / name)
    corrupt = fleet / "drive_corrupt"
    shutil.copytree(drives_dir / "drive_c", corrupt)
    for mcap in (corrupt / "bag").glob("*.mcap"):
        mcap.write_bytes(b"this is not an mcap file" * 100)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "fusionrt.runtime.cli",
        "fleet",
        "run",
        str(pipeline_path),
        "--drives",
        str(fleet / "drive_*"),
        "--out",
        str(out),
        "--address",
        ray_cluster.address,
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "failed drive_corrupt: DecodeError" in done.stdout
    summary = {r["drive"]: r for r in read_results(out).summary.to_pylist()}
    assert summary["drive_corrupt"]["status"] == "failed"
    assert summary["drive_corrupt"]["attempts"] == 1  # a FusionError is not retried
    assert "no readable storage file" in summary["drive_corrupt"]["error"]
    assert all(summary[d]["status"] == "ok" for d in ("drive_a", "drive_b"))

    raising = write_pipeline(tmp_path / "raise.yaml", pipeline_dict("toy_raise"))
    outcome = _fleet(raising, str(fleet / "drive_a"), tmp_path / "raised", max_retries=1)
    assert outcome.exit_code == 1
    row = read_results(tmp_path / "raised").summary.to_pylist()[0]
    # a model that raises is a PluginError naming it: deterministic, so not retried
    assert row["status"] == "failed" and row["attempts"] == 1
    assert row["error"].startswith("PluginError: RaisingModel.postprocess raised RuntimeError")


def test_bags_that_give_no_frame_fail_at_once_and_run_again_next_time(
    ray_cluster, fleet_out, drives_dir, pipeline_path, tmp_path
):
    fleet = tmp_path / "drives"
    copy_drive(drives_dir / "drive_a", fleet / "drive_a")
    cut_to_header(copy_drive(drives_dir / "drive_b", fleet / "header_only"))
    empty_bag(copy_drive(drives_dir / "drive_b", fleet / "empty"))
    corrupt_every_chunk(copy_drive(drives_dir / "drive_b", fleet / "corrupt_chunks"))
    bad = ["corrupt_chunks", "empty", "header_only"]
    for chunk_s in (None, 0.7):
        out = tmp_path / f"out_{chunk_s}"
        outcome = _fleet(pipeline_path, str(fleet / "*"), out, chunk_s=chunk_s)
        assert outcome.exit_code == 1 and outcome.completed == ["drive_a"]
        assert sorted(outcome.failed) == bad
        summary = {r["drive"]: r for r in read_results(out).summary.to_pylist()}
        for drive in bad:
            row = summary[drive]
            assert row["status"] == "failed" and row["attempts"] == 1, row  # deterministic
            assert row["error"].startswith("SourceError: the drive "), row["error"]
            assert not drive_is_complete(out, drive)
        assert "truncated" in summary["header_only"]["error"]
        assert "corrupt_chunk x" in summary["corrupt_chunks"]["error"]

    # a failed drive is never skipped: once its bag is whole again, the next run replays it
    shutil.copy(drives_dir / "drive_b" / "bag" / "bag.mcap", fleet / "header_only" / "bag")
    again = _fleet(pipeline_path, str(fleet / "*"), out, chunk_s=0.7)
    assert again.skipped == ["drive_a"] and again.completed == ["header_only"]
    assert sorted(again.failed) == ["corrupt_chunks", "empty"]
    repaired, original = _rows(out, "header_only"), _rows(fleet_out, "drive_b")
    assert repaired["stamp_ns"] == original["stamp_ns"] and repaired["x"] == original["x"]


def test_resume_skips_complete_drives_and_redoes_broken_ones(
    ray_cluster, drives_dir, pipeline_path, tmp_path
):
    out = tmp_path / "out"
    pattern = str(drives_dir / "drive_[abc]")
    first = _fleet(pipeline_path, pattern, out)
    assert sorted(first.completed) == ["drive_a", "drive_b", "drive_c"]
    before = {d: table_path(out, "summary", d).stat().st_mtime_ns for d in first.completed}
    detections = table_path(out, "detections", "drive_b")
    detections.write_bytes(detections.read_bytes()[: detections.stat().st_size // 2])
    assert not drive_is_complete(out, "drive_b")

    second = _fleet(pipeline_path, pattern, out)
    assert sorted(second.skipped) == ["drive_a", "drive_c"] and second.completed == ["drive_b"]
    assert drive_is_complete(out, "drive_b")
    assert table_path(out, "summary", "drive_a").stat().st_mtime_ns == before["drive_a"]

    forced = _fleet(pipeline_path, pattern, out, force=True)
    assert sorted(forced.completed) == ["drive_a", "drive_b", "drive_c"] and not forced.skipped
