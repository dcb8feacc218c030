"""The shipped artefacts: the ONNX reproduces the weights, the card describes these files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from fusionrt.plugins.models.reference.model import (
    DEFAULT_SCORE_THRESHOLD,
    MODEL_CARD_PATH,
    ONNX_PATH,
    WEIGHTS_PATH,
    ReferenceModel,
)
from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.runtime.engines.export import compare_outputs
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.trt_support import check_onnx
from fusionrt.runtime.messages import SensorMessage
from fusionrt.runtime.sensor import PreprocessContext


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
    assert detections.boxes.shape[1] == 7
    assert np.all(detections.scores >= DEFAULT_SCORE_THRESHOLD)


def test_the_default_score_threshold_is_the_evaluations_operating_point():
    card = json.loads(MODEL_CARD_PATH.read_text())
    point = card["eval"]["shipped"]["operating_point"]
    assert ReferenceModel().score_threshold == point["score_threshold"] == DEFAULT_SCORE_THRESHOLD
    assert point["f1"] > 0.9 and point["distance_m"] == 2.0  # what the model card states


def _cloud(xyz: np.ndarray) -> np.ndarray:
    cloud = np.zeros(len(xyz), [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    for axis, name in enumerate("xyz"):
        cloud[name] = xyz[:, axis]
    cloud["intensity"] = 0.5
    return cloud


@pytest.fixture(scope="module")
def engine():
    with OnnxRuntimeEngine.from_source(ReferenceModel().network_source()) as opened:
        yield opened


TINY_CLOUDS = {
    "empty": np.zeros((0, 3)),
    "3 points ahead": np.array([[5.0, 0.0, 0.5], [10.0, 0.0, 0.5], [20.0, 0.0, 0.5]]),
    "3 points, a car's size": np.array([[12.0, 3.0, 0.4], [12.5, 3.4, 0.9], [13.0, 2.6, 1.2]]),
    "40 points scattered": np.random.default_rng(1).uniform([-10, -30, -1], [50, 30, 2], (40, 3)),
}
PRESENT = {
    "lidar alone": {"lidar": True},
    "lidar and CAN": {"lidar": True, "can": True},
    "every sensor, the others silent": dict.fromkeys(
        ("camera", "lidar", "radar", "text", "can"), True
    ),
}


@pytest.mark.parametrize("present", PRESENT.values(), ids=PRESENT.keys())
@pytest.mark.parametrize("points", TINY_CLOUDS.values(), ids=TINY_CLOUDS.keys())
def test_an_empty_or_tiny_cloud_gives_no_boxes(engine, points, present):
    # at 0.05 the network's answer to a few stray points became up to 100 boxes
    model = ReferenceModel()
    sensor = LidarSensor()
    context = PreprocessContext(geometry=model.geometry)
    tensors = sensor.preprocess(SensorMessage("lidar", 0, _cloud(points), "lidar"), context)
    feed = model.make_feed(tensors, present)
    assert feed["modality_mask"][1] == 0  # too few cells for a lidar sweep
    detections = model.postprocess(engine.infer(feed), 0)
    assert len(detections) == 0, detections.scores


def test_a_real_sweep_still_gives_boxes(engine):
    model = ReferenceModel()
    feed = model.sample_feeds()[1]  # the held-out frame with only its lidar (and CAN)
    assert feed["modality_mask"].tolist() == [0, 1, 0, 0, 1]
    assert len(model.postprocess(engine.infer(feed), 0)) > 3
