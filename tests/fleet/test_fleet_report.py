"""``fusionrt fleet report``: its numbers against the per-drive reports, the baseline diff."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("ray")

from fusionrt.fleet.report import fleet_report, format_fleet_report  # noqa: E402
from fusionrt.fleet.results import (  # noqa: E402
    SUMMARY_SCHEMA,
    table_path,
    write_parquet_atomic,
)
from fusionrt.runtime import cli  # noqa: E402
from fusionrt.runtime.pipeline import RunOptions  # noqa: E402
from fusionrt.runtime.registry import Registry  # noqa: E402
from fusionrt.runtime.report import MAP_KEYS  # noqa: E402
from fusionrt.runtime.run_cli import run_pipeline  # noqa: E402

DRIVES = ("drive_a", "drive_b", "drive_c", "drive_d")


def test_fleet_numbers_equal_those_of_the_per_drive_reports(
    fleet_out, drives_dir, pipeline_path, tmp_path
):
    reports = {}
    for drive in DRIVES:
        registry = Registry.create(entry_points=False)
        _, reports[drive] = run_pipeline(
            pipeline_path, drives_dir / drive, RunOptions(out_dir=tmp_path), registry
        )
    report = fleet_report(fleet_out)
    assert report["drives"] == {"total": 4, "ok": 4, "failed": 0}
    assert report["frames"] == sum(r["frames"] for r in reports.values())
    for key in MAP_KEYS:
        values = [r["map"][key] for r in reports.values() if r["map"][key] is not None]
        assert report["map"][key] == pytest.approx(np.mean(values))
    fog = reports["drive_b"]["map"]
    assert report["map_by_condition"]["fog"] == pytest.approx(fog)
    # latency percentiles pool every frame of every drive
    e2e = np.concatenate(
        [
            [
                ms
                for stage, ms in zip(*(t[c] for c in ("stage", "ms")), strict=True)
                if stage == "end_to_end"
            ]
            for t in (
                pq.read_table(table_path(fleet_out, "latencies", d)).to_pydict() for d in DRIVES
            )
        ]
    )
    assert len(e2e) == report["frames"]
    assert report["latency"]["end_to_end"]["p99_ms"] == pytest.approx(np.percentile(e2e, 99))
    assert report["latency"]["end_to_end"]["p50_ms"] == pytest.approx(np.percentile(e2e, 50))


def _shift_map(results, drive, delta):
    path = table_path(results, "summary", drive)
    row = pq.read_table(path).to_pylist()[0]
    row["map_overall"] += delta
    import pyarrow as pa

    write_parquet_atomic(pa.Table.from_pylist([row], schema=SUMMARY_SCHEMA), path)


def test_baseline_diff_names_better_and_worse_drives(fleet_out, tmp_path, monkeypatch, capsys):
    current = tmp_path / "current"
    shutil.copytree(fleet_out, current)
    _shift_map(current, "drive_a", +0.1)
    _shift_map(current, "drive_b", -0.05)
    report = fleet_report(current, fleet_out)
    diff = report["baseline"]
    assert diff["better"] == ["drive_a"] and diff["worse"] == ["drive_b"]
    assert diff["unchanged"] == ["drive_c", "drive_d"]
    assert diff["drives"]["drive_a"]["map_delta"] == pytest.approx(0.1)
    assert diff["map_delta"]["overall"] == pytest.approx(0.05 / 4)
    assert "better (1): drive_a" in format_fleet_report(report)

    png, out_json = tmp_path / "plot.png", tmp_path / "report.json"
    code = cli.main(
        [
            "fleet",
            "report",
            str(current),
            "--baseline",
            str(fleet_out),
            "--png",
            str(png),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "worse (1): drive_b" in capsys.readouterr().out
    assert out_json.is_file()
