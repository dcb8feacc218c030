"""A real simulated drive through frame assembly, ground truth pairing and ``fusionrt eval``."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from fusionrt import ConfigError
from fusionrt.plugins.models.reference.drives import (
    detectable,
    drive_bag,
    iter_drive_frames,
    read_ground_truth,
)
from fusionrt.plugins.models.reference.eval import comparison
from fusionrt.plugins.models.reference.eval.cli import add_commands
from fusionrt.plugins.models.reference.eval.report import combine, markdown
from fusionrt.plugins.models.reference.eval.runner import SENSOR_FAILURE, drive_condition
from fusionrt.plugins.models.reference.layout import SENSORS
from fusionrt.plugins.models.reference.model import ReferenceModel


def test_every_ground_truth_sweep_gets_a_frame_and_the_failed_radar_is_masked(short_drive):
    truths = read_ground_truth(short_drive / "bag")
    model = ReferenceModel()
    frames = list(iter_drive_frames(short_drive, model.make_feed))
    assert len(frames) == len(truths) >= 20
    assert [f.truth.stamp_ns for f in frames] == [t.stamp_ns for t in truths]
    radar = [f.assembled.feed["modality_mask"][2] for f in frames]
    stamps = np.array([f.assembled.frame.stamp_ns for f in frames]) - frames[0].truth.stamp_ns
    assert 0.0 in radar and 1.0 in radar  # the failure window 1-2 s, radar present outside it
    assert all(m == 1.0 for m, t in zip(radar, stamps, strict=True) if t < 0.8e9)
    assert any(detectable(f.truth.boxes, f.truth.visibility).any() for f in frames)
    assert drive_condition(short_drive) == SENSOR_FAILURE


def test_fusionrt_eval_writes_the_fixed_interface(short_drive, tmp_path):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    out = tmp_path / "eval.json"
    args = parser.parse_args(
        [
            "eval",
            "--drive",
            str(short_drive),
            "--backend",
            "onnxruntime",
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    assert set(result["map"]) == {"overall", "car", "pedestrian", "cyclist"}
    assert result["frames"] >= 20 and SENSOR_FAILURE in result["conditions"]
    fixed = {"all", "camera", "lidar", "radar", "lidar+camera", "all-but-text"}
    assert fixed <= set(result["ablation"])
    point = result["operating_point"]  # the threshold of the highest F1 at 2 m
    assert 0.01 <= point["score_threshold"] <= 0.99 and 0.0 <= point["f1"] <= 1.0
    assert point["distance_m"] == 2.0 and point["ground_truth"] > 0
    args = parser.parse_args(
        [
            "eval",
            "--drive",
            str(short_drive),
            "--modalities",
            "lidar",
            "--json",
            str(out),
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    only = json.loads(out.read_text())
    assert "ablation" not in only and only["modalities"] == ["lidar"]
    assert only["map"]["overall"] == result["ablation"]["lidar"]  # the same masked run
    (tmp_path / "eval_fused.json").write_text(json.dumps(result))
    (tmp_path / "eval_only-lidar.json").write_text(json.dumps(only))
    summary = combine(tmp_path)
    assert summary["baselines"]["lidar"]["overall"] == only["map"]["overall"]
    assert summary["shipped"]["operating_point"] == point
    table = markdown(summary)
    assert "| all-but-text |" in table and "| lidar only |" in table


def test_eval_rejects_a_directory_that_is_not_a_drive(tmp_path):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(
        ["eval", "--drive", str(tmp_path), "--json", str(tmp_path / "o.json"), "--quiet"]
    )
    with pytest.raises(ConfigError, match="not a recorded drive"):
        args.func(args)


def test_a_drive_whose_bag_lost_its_metadata_yaml_is_still_evaluated(short_drive, tmp_path):
    """A recorder that died before writing metadata.yaml leaves only the storage files: the
    rosbag source reads them, so eval does too (it refused: "no bag/metadata.yaml")."""
    drive = tmp_path / "crashed"
    shutil.copytree(short_drive, drive)
    (drive / "bag" / "metadata.yaml").unlink()
    assert drive_bag(drive) == drive / "bag"
    frames = list(iter_drive_frames(drive, ReferenceModel().make_feed))
    assert len(frames) == len(read_ground_truth(short_drive / "bag"))


def test_a_drive_yaml_alias_bomb_is_refused_naming_it(tmp_path, alias_bomb):
    manifest = tmp_path / "drive.yaml"
    manifest.write_text(f"config:\n  condition: fog\n  failures: {alias_bomb()}\n")
    with pytest.raises(ConfigError, match="expand to more than") as info:
        drive_condition(tmp_path)
    assert info.value.context["file"] == str(manifest)


def test_decision_level_fusion_is_calibrated_on_other_drives_and_reported(short_drive, tmp_path):
    """The single-sensor members here are the shipped network masked to one sensor (the real
    per-sensor models are tested in test_shipped); the calibration is measured on a cached
    drive through ``calibrate`` and read back by ``fusionrt eval``."""
    from fusionrt.plugins.models.reference.eval.decision import (
        DecisionCalibration,
        calibrate,
        member_model,
    )
    from fusionrt.plugins.models.reference.model import ONNX_PATH
    from fusionrt.plugins.models.reference.train.data import cache_drive
    from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine

    cached = cache_drive(short_drive, tmp_path / "frames" / "short.npz")
    with OnnxRuntimeEngine(ONNX_PATH) as engine:
        models = {s: (member_model(s, ONNX_PATH), engine.infer) for s in SENSORS}
        result = calibrate([cached], models)
    assert set(result.weights) == set(SENSORS)
    assert result.weights["lidar"] > result.weights["camera"]  # lidar is right more often
    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps(result.to_json()))
    assert DecisionCalibration.load(calibration).weights == result.weights

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    out = tmp_path / "eval.json"
    argv = [
        "eval",
        "--drive",
        str(short_drive),
        "--json",
        str(out),
        "--quiet",
        "--decision",
        "--calibration",
        str(calibration),
        "--compare",
        f"again={ONNX_PATH}",
        *(a for s in SENSORS for a in ("--decision-onnx", f"{s}={ONNX_PATH}")),
    ]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    got = json.loads(out.read_text())
    assert set(got["decision_level"]) == {"wbf", "probabilistic"}
    for fuser in ("wbf", "probabilistic"):
        assert 0.0 < got["decision_level"][fuser] <= 1.0
        assert SENSOR_FAILURE in got["decision_level_by_condition"][fuser]
    single = got["single_sensor_by_condition"]
    assert single["lidar"]["overall"] == got["ablation"]["lidar"]  # the same masked network
    assert got["compare_by_condition"]["again"]["overall"] == got["map"]["overall"]
    # the comparison report reads these outputs: one seed per row here, no spread
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("eval_standard.json", "eval_degraded.json"):
        (runs / name).write_text(out.read_text())
    # a network compared in a pass of its own joins the table
    other = {"compare_by_condition": {"more-s0": got["compare_by_condition"]["again"]}}
    for name in ("eval_standard_compare-more.json", "eval_degraded_compare-more.json"):
        (runs / name).write_text(json.dumps(other))
    summary = comparison.combine(runs)
    rows = summary["rows"]
    assert rows["decision wbf"]["mean"]["overall"] == got["decision_level"]["wbf"]
    assert rows["feature again"]["mean"]["overall"] == got["map"]["overall"]
    assert rows["feature more"]["mean"]["overall"] == got["map"]["overall"]
    assert rows["lidar"]["seeds"] == 1 and rows["lidar"]["std"]["overall"] is None
    assert "| decision probabilistic | 1 |" in comparison.markdown(summary)
    # a second seed's decision pass joins the same rows, and its -s1 network the concat row
    seed1 = {**got, "compare_by_condition": {"concat-s1": got["compare_by_condition"]["again"]}}
    for name in ("eval_standard_decision-s1.json", "eval_degraded_decision-s1.json"):
        (runs / name).write_text(json.dumps(seed1))
    rows = comparison.combine(runs)["rows"]
    for name in ("lidar", "camera", "radar", "decision wbf", "feature concat"):
        assert rows[name]["seeds"] == 2 and rows[name]["std"]["overall"] == 0.0
    seed1_probabilistic = rows["decision probabilistic"]["runs"][1]
    probabilistic = got["decision_level_by_condition"]["probabilistic"]
    assert seed1_probabilistic[SENSOR_FAILURE] == probabilistic[SENSOR_FAILURE] is not None
    with pytest.raises(ConfigError, match=r"NAME=FILE\.onnx"):
        args = parser.parse_args([*argv[:6], "--compare", "no-equals-sign"])
        args.func(args)


def test_explain_plot_marks_the_failure_and_a_silent_sensor_contributes_nothing(
    short_drive, tmp_path
):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    out = tmp_path / "eval.json"
    args = parser.parse_args(
        [
            "eval",
            "--drive",
            str(short_drive),
            "--json",
            str(out),
            "--quiet",
            "--modalities",
            "camera,lidar,radar,text",
            "--explain-plot",
            str(tmp_path / "plots"),
        ]
    )
    assert args.func(args) == 0
    series = json.loads(out.read_text())["explanations"][str(short_drive)]
    assert (tmp_path / "plots" / f"{short_drive.name}.png").stat().st_size > 10_000
    t = np.array(series["t_s"])
    radar = np.array(series["drop_one"]["radar"])
    silent = (t > 1.05) & (t < 1.95)  # the radar fails from 1 s to 2 s: no message, no share
    assert silent.any() and np.all(radar[silent] == 0.0)
    assert np.mean(series["drop_one"]["lidar"]) > 0.1
    assert series["fusion_weights"] == {}  # the shipped network fuses by concatenation
