"""``fusionrt bench``: the five hot-path figures come out of one run, consistently."""

from __future__ import annotations

import math

import pytest
from pipeline_support import pipeline_dict, write_pipeline

from fusionrt.runtime.bench import bench


def test_bench_reports_the_five_figures(tmp_path, drive, registry):
    pipeline = write_pipeline(tmp_path / "p.yaml", pipeline_dict(sinks=[{"name": "jsonl"}]))
    results = bench(pipeline, drive, registry, workers=2, max_frames=8, rate=4.0)
    assert results["frames"] == 8 and results["backend"] == "onnxruntime"
    overhead = results["a_overhead"]
    assert overhead["bare_stage_sum_per_frame_ms"] > 0 and overhead["stage_time_ratio"] > 0
    cpu_ratio = overhead["pipeline_cpu_per_frame_ms"] / overhead["bare_cpu_per_frame_ms"]
    assert overhead["ratio"] == pytest.approx(cpu_ratio, rel=0.02)
    serial = results["b_pipelined_vs_serial"]
    assert serial["speedup"] > 0 and serial["pipelined_wall_s"] > 0
    plain_s, piped_s = serial["serial_backend_defaults_wall_s"], serial["pipelined_wall_s"]
    rounding = 0.0005 / plain_s + 0.0005 / piped_s + 1e-3  # both are rounded to 1 ms
    assert serial["speedup_vs_serial_backend_defaults"] == pytest.approx(
        plain_s / piped_s, rel=rounding
    )
    realtime = results["c_realtime_factor"]
    # drive_s and wall_s are rounded to 1 ms: allow for that in the ratio
    rounding = 0.0005 / realtime["wall_s"] + 0.0005 / realtime["drive_s"]
    expected = realtime["drive_s"] / realtime["wall_s"]
    assert realtime["factor"] == pytest.approx(expected, rel=rounding + 1e-3)
    jitter = results["d_jitter"]
    assert math.isfinite(jitter["p99_over_p50"]) and jitter["p99_over_p50"] >= 1.0
    # processing is end to end less the synchroniser's hold: never longer
    assert 0 < jitter["processing"]["p50_ms"] <= jitter["end_to_end"]["p50_ms"]
    assert jitter["processing"]["max_ms"] <= jitter["end_to_end"]["max_ms"]
    assert len(results["samples_ms"]["infer"]) == 8
    sinks = results["e_sinks"]
    assert sinks["sinks"] == ["jsonl"] and sinks["realtime_factor"] > 0
    assert sinks["realtime_factor_no_sinks"] == realtime["factor"]
