"""Per-frame explanations (``--explain``): each modality's contribution to the reference model's
detections, written to the JSONL, the MCAP and the report; a missing sensor contributes 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from pipeline_support import make_drive, pipeline_dict, write_pipeline

from fusionrt.plugins.sinks.mcap import TOPIC_EXPLANATIONS
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.run_cli import report_of
from fusionrt.sim.conditions import Failure


@pytest.fixture(scope="module")
def radar_fails(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_drive(tmp_path_factory.mktemp("radar_fails"), Failure("radar_front", 0.8, 1.6))


def _reference(data: dict) -> dict:
    data = dict(data, plugins=[])
    data["model"] = {"name": "reference", "options": {"score_threshold": 0.2}}
    data["sinks"] = [{"name": "jsonl"}, {"name": "mcap"}]
    return data


def _run(tmp_path: Path, drive: Path, data: dict, *, explain: bool):
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    out = tmp_path / "out"
    result = Pipeline(
        config, drive, Registry.create(entry_points=False), RunOptions(out_dir=out, explain=explain)
    ).run()
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    return result, lines, out / "run.mcap"


def test_explain_attributes_each_frame_and_a_missing_sensor_contributes_zero(tmp_path, radar_fails):
    result, lines, mcap = _run(tmp_path, radar_fails, _reference(pipeline_dict()), explain=True)
    drop_one = [line["explanations"]["drop_one"] for line in lines]
    assert all(set(d) == {"camera", "lidar", "radar", "text"} for d in drop_one)
    silent = ["radar_front" in line["missing"] for line in lines]
    assert any(silent) and not all(silent)
    for contribution, radar_missing in zip(drop_one, silent, strict=True):
        if radar_missing:
            assert contribution["radar"] == 0.0  # masking what is not there changes nothing
        assert contribution["text"] == 0.0  # this pipeline has no text sensor
    # the detections lean on the lidar: masking it costs more score than masking the camera
    assert np.mean([d["lidar"] for d in drop_one]) > np.mean([d["camera"] for d in drop_one])
    assert all("explain" in line["latency_ms"] for line in lines)
    report = report_of(result)["explanations"]["drop_one"]
    assert report["lidar"] == pytest.approx(np.mean([d["lidar"] for d in drop_one]), abs=1e-3)
    with mcap.open("rb") as stream:
        plotted = [
            json.loads(message.data)
            for _, channel, message in make_reader(stream).iter_messages()
            if channel.topic == TOPIC_EXPLANATIONS
        ]
    assert [p["drop_one"]["lidar"] for p in plotted] == pytest.approx(
        [d["lidar"] for d in drop_one], abs=1e-4
    )
    assert (
        plotted[0]["timestamp"]["sec"] * 10**9 + plotted[0]["timestamp"]["nsec"]
        == (lines[0]["stamp_ns"])
    )


def test_without_explain_a_concat_network_costs_nothing_extra(tmp_path, radar_fails):
    result, lines, _ = _run(tmp_path, radar_fails, _reference(pipeline_dict()), explain=False)
    assert all("explanations" not in line and "explain" not in line["latency_ms"] for line in lines)
    assert report_of(result)["explanations"] == {}


def test_several_models_explain_under_their_instance_names(tmp_path, radar_fails):
    data = _reference(pipeline_dict())
    model = data.pop("model")
    data["models"] = {
        "lidar_model": dict(model, options={**model["options"], "modalities": "lidar"}),
        "radar_model": dict(model, options={**model["options"], "modalities": "radar"}),
    }
    data["fuser"] = {"name": "wbf"}
    result, lines, _ = _run(tmp_path, radar_fails, data, explain=True)
    for line in lines:
        explained = line["explanations"]
        assert set(explained["lidar_model/drop_one"]) == {"lidar"}
        if "radar_front" in line["missing"]:  # the radar model sat the frame out
            assert "radar_model/drop_one" not in explained
        else:
            assert set(explained["radar_model/drop_one"]) == {"radar"}
    assert result.models_without_input["radar_model"] == sum(
        "radar_front" in line["missing"] for line in lines
    )
