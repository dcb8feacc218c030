"""Several models in one pipeline (decision-level fusion): each fed by its own sensors, each on
its own engine, their detections combined by a registered fuser, frame by frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipeline_support import make_drive, pipeline_dict, write_pipeline

from fusionrt.plugins.fusers.boxes import weighted_box_fusion
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.messages import CLASS_NAMES, Detections
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry
from fusionrt.sim.conditions import Failure


def _run(tmp_path: Path, drive: Path, data: dict):
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    out = tmp_path / "out"
    result = Pipeline(
        config, drive, Registry.create(entry_points=False), RunOptions(out_dir=out)
    ).run()
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    return result, lines


def _two_models(**fuser_options) -> dict:
    data = pipeline_dict()
    del data["model"]
    data["models"] = {
        "everything": {"name": "toy", "options": {"threshold": 0.5}},
        "radar": {"name": "toy_radar", "options": {"threshold": 0.5}},
    }
    data["fuser"] = {"name": "union", "options": fuser_options}
    return data


def test_one_model_named_under_models_runs_as_the_single_model_pipeline(tmp_path, drive):
    _, single_lines = _run(tmp_path / "a", drive, pipeline_dict())
    data = pipeline_dict()
    data["models"] = {"toy": data.pop("model")}
    _, named_lines = _run(tmp_path / "b", drive, data)
    assert [(x["stamp_ns"], x["detections"]) for x in named_lines] == [
        (x["stamp_ns"], x["detections"]) for x in single_lines
    ]
    assert set(named_lines[0]["latency_ms"]) == set(single_lines[0]["latency_ms"])


def test_each_model_runs_on_its_own_engine_and_the_fuser_combines_them(tmp_path, drive):
    result, lines = _run(tmp_path, drive, _two_models())
    _, everything_lines = _run(tmp_path / "e", drive, pipeline_dict())
    radar_only = _two_models()
    radar_only["models"].pop("everything")
    _, radar_lines = _run(tmp_path / "r", drive, radar_only)
    radar_by_stamp = {x["stamp_ns"]: x["detections"] for x in radar_lines}
    for line, alone in zip(lines, everything_lines, strict=True):
        # the union of the two models' detections, each model exactly as it runs alone
        assert line["detections"] == alone["detections"] + radar_by_stamp[line["stamp_ns"]]
        for stage in ("infer.everything", "infer.radar", "postprocess.radar", "fuse"):
            assert stage in line["latency_ms"]
    assert {"infer.everything", "infer.radar", "fuse"} <= set(result.recorder.summary())
    assert result.models_without_input == {"everything": 0, "radar": 0}


def test_a_model_whose_sensor_is_silent_contributes_nothing(tmp_path_factory):
    drive = make_drive(tmp_path_factory.mktemp("radar_dies"), Failure("radar_front", 0.5, 1.5))
    tmp = tmp_path_factory.mktemp("run")
    result, lines = _run(tmp, drive, _two_models())
    silent = [x for x in lines if "radar_front" in x["missing"]]
    assert silent and result.models_without_input["radar"] == len(silent)
    assert result.models_without_input["everything"] == 0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.pop("fuser"), "fuser"),
        (lambda d: d.update(model={"name": "toy"}), "model"),
        (lambda d: d.update(fuser={"name": "vote"}), "fuser.name"),
        (lambda d: d["models"]["radar"].update(name="nonexistent"), "models.radar.name"),
        (lambda d: d.update(fuser={"name": "union", "options": {"bogus": 1}}), "fuser.options"),
    ],
)
def test_a_mistake_in_the_models_or_fuser_names_its_key(tmp_path, drive, change, key):
    data = _two_models()
    change(data)
    with pytest.raises(ConfigError) as info:
        config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
        Pipeline(config, drive, Registry.create(entry_points=False))
    assert info.value.context["key"] == key


def _detections(line: dict) -> Detections:
    items = line["detections"]
    return Detections(
        line["stamp_ns"],
        np.array([d["box"] for d in items], np.float32).reshape(-1, 7),
        np.array([d["score"] for d in items], np.float32),
        np.array([CLASS_NAMES.index(d["label"]) for d in items], np.int64),
    )


def test_the_builtin_wbf_fuser_fuses_each_frame_as_the_function_does(tmp_path, drive):
    data = _two_models()
    data["fuser"] = {"name": "wbf", "options": {"weights": {"everything": 2.0, "radar": 0.5}}}
    result, lines = _run(tmp_path, drive, data)
    alone = {}
    for name in ("everything", "radar"):
        one = _two_models()
        one["models"] = {name: one["models"][name]}
        one.pop("fuser")
        alone[name] = {x["stamp_ns"]: _detections(x) for x in _run(tmp_path / name, drive, one)[1]}
    assert result.models_without_input == {"everything": 0, "radar": 0}
    fused_any = False
    for line in lines:
        stamp = line["stamp_ns"]
        expected = weighted_box_fusion(
            [alone["everything"][stamp], alone["radar"][stamp]], [2.0, 0.5], stamp_ns=stamp
        )
        got = _detections(line)
        assert got.scores == pytest.approx(expected.scores, abs=1e-3)
        assert got.boxes == pytest.approx(expected.boxes, abs=1e-3)
        assert list(got.labels) == list(expected.labels)
        fused_any |= len(got) < len(alone["everything"][stamp]) + len(alone["radar"][stamp])
    assert fused_any  # some boxes of the two models matched and were merged


def test_one_model_through_a_builtin_fuser_comes_back_unchanged(tmp_path, drive):
    _, single_lines = _run(tmp_path / "a", drive, pipeline_dict())
    for fuser in ("wbf", "probabilistic"):
        data = pipeline_dict()
        data["models"] = {"toy": data.pop("model")}
        data["fuser"] = {"name": fuser}
        _, lines = _run(tmp_path / fuser, drive, data)
        # the same detections, best score first
        for line, alone in zip(lines, single_lines, strict=True):
            assert line["detections"] == sorted(alone["detections"], key=lambda d: -d["score"])


@pytest.mark.parametrize(
    "case",
    [
        ("wbf", {"weights": {"lidar": 1.0}}, "fuser.options.weights", "not models of the"),
        ("wbf", {"weights": {"radar": 0}}, "fuser.options.weights", "must be a number > 0"),
        ("wbf", {"match": "iou"}, "fuser.options.match", "one of"),
        ("probabilistic", {"calibration": "missing.json"}, "fuser.options", "not found"),
        ("probabilistic", {"calibration_keys": {"radar": "x"}}, "fuser.options.calibration", ""),
        ("probabilistic", {"priors": {"radar": 1.5}}, "fuser.options.priors", "probability"),
    ],
)
def test_a_bad_builtin_fuser_option_names_its_key(tmp_path, drive, case):
    fuser, options, key, words = case
    data = _two_models()
    data["fuser"] = {"name": fuser, "options": options}
    with pytest.raises(ConfigError, match=words) as info:
        config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
        Pipeline(config, drive, Registry.create(entry_points=False))
    assert info.value.context["key"] == key
