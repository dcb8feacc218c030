"""The shipped artefacts: the ONNX reproduces the weights, the card describes these files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from fusionrt.plugins.models.reference.model import (
    MODEL_CARD_PATH,
    ONNX_PATH,
    WEIGHTS_PATH,
    ReferenceModel,
)
from fusionrt.runtime.engines.export import compare_outputs
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.trt_support import check_onnx


def test_the_shipped_onnx_reproduces_the_shipped_weights():
    pytest.importorskip("torch")
    from fusionrt.runtime.engines.export import torch_reference

    model = ReferenceModel()
    samples = model.sample_feeds()
    reference = torch_reference(
        model.torch_module(), model.input_specs(), ["heatmap", "regression"]
    )
    expected = [reference(feed) for feed in samples]
    with OnnxRuntimeEngine(ONNX_PATH) as engine:
        got = [engine.infer(feed) for feed in samples]
    report = compare_outputs(got, expected)
    assert report.ok, report.summary()
    # the fused and the masked sample frames give different outputs: the mask is live
    assert not np.allclose(expected[0]["heatmap"], expected[1]["heatmap"])


def test_the_model_card_describes_the_shipped_files():
    card = json.loads(MODEL_CARD_PATH.read_text())
    assert card["onnx_sha256"] == hashlib.sha256(ONNX_PATH.read_bytes()).hexdigest()
    assert card["weights_sha256"] == hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest()
    for key in ("train_config", "train_wall_s", "code", "params", "flops", "eval"):
        assert key in card, key
    fixed = {"all", "camera", "lidar", "radar", "lidar+camera", "all-but-text"}
    assert fixed <= set(card["eval"]["ablation"])


def test_the_shipped_onnx_is_tensorrt_ready_and_small():
    assert check_onnx(ONNX_PATH).ok
    assert ONNX_PATH.stat().st_size + WEIGHTS_PATH.stat().st_size < 8_000_000


def test_the_runtime_runs_the_shipped_network_on_onnxruntime_without_torch_in_the_model():
    model = ReferenceModel()
    with OnnxRuntimeEngine.from_source(model.network_source()) as engine:
        outputs = engine.infer(model.sample_feeds()[0])
    detections = model.postprocess(outputs, 0)
    assert detections.boxes.shape[1] == 7 and np.all(detections.scores >= 0.05)
