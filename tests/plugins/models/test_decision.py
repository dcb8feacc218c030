"""Decision-level configuration errors: one line naming the file or the option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionrt import ConfigError
from fusionrt.plugins.models.reference import model as reference
from fusionrt.plugins.models.reference.eval.cli import named_paths
from fusionrt.plugins.models.reference.eval.decision import (
    DecisionCalibration,
    fusions,
    member_model,
)
from fusionrt.plugins.models.reference.model import ReferenceModel


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "decision calibration not found"),
        ("{not json", "not a decision calibration"),
        (json.dumps({"models": {"lidar": {"wbf_weight": 0.7}}}), "not a decision calibration"),
        (json.dumps([1, 2]), "not a decision calibration"),
    ],
)
def test_a_bad_calibration_file_is_named(tmp_path, content, message):
    path = tmp_path / "calibration.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        DecisionCalibration.load(path)
    assert info.value.context["file"] == str(path)


def test_a_calibration_must_cover_every_fused_model():
    with pytest.raises(ConfigError, match=r"no model for \['radar'\]"):
        fusions(DecisionCalibration({}, {}), ["radar"])


def test_named_paths_and_variants():
    assert named_paths(["a=x.onnx", "b=dir/y.onnx"], "compare") == {
        "a": Path("x.onnx"),
        "b": Path("dir/y.onnx"),
    }
    with pytest.raises(ConfigError, match="NAME=FILE"):
        named_paths(["=x.onnx"], "compare")
    with pytest.raises(ConfigError, match="variant"):
        ReferenceModel(variant="sonar")
    assert ReferenceModel(variant="radar").modalities == ("radar", "can")
    assert ReferenceModel(["lidar", "radar"], variant="radar").modalities == ("radar", "can")


def test_a_variant_that_is_not_installed_is_named_before_any_engine_opens(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "VARIANTS_DIR", tmp_path / "variants")
    with pytest.raises(ConfigError, match="lidar variant of the reference model is not installed"):
        ReferenceModel(variant="lidar").network_source()
    with pytest.raises(ConfigError, match=r"--decision-onnx radar=FILE\.onnx") as info:
        member_model("radar")
    assert info.value.context["file"] == str(tmp_path / "variants" / "radar.onnx")


def test_a_single_sensor_model_fed_only_context_contributes_nothing():
    model = ReferenceModel(modalities="lidar")
    tensors = {spec.name: spec.zeros() for spec in model.input_specs()}
    assert not model.contributes(model.make_feed(tensors, {"can": True, "text": True}))
    assert not model.contributes(model.make_feed(tensors, {"camera": True, "can": True}))
    dense = dict(tensors, lidar_bev=np.ones_like(tensors["lidar_bev"]))
    assert model.contributes(model.make_feed(dense, {"lidar": True, "can": True}))
