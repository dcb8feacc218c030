"""Decision-level configuration errors: one line naming the file or the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionrt import ConfigError
from fusionrt.plugins.models.reference.eval.cli import named_paths
from fusionrt.plugins.models.reference.eval.decision import DecisionCalibration, fusions
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
