"""Per-frame explanations on real frames: drop-one attribution with the shipped network, fusion
weights of an attention network; a masked sensor contributes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.explain import (
    drop_one_attribution,
    fusion_weight_contributions,
    peaks,
)
from fusionrt.plugins.models.reference.model import SAMPLE_FRAME_PATH, ReferenceModel
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    with np.load(SAMPLE_FRAME_PATH) as z:
        return {name: z[name] for name in z.files}


ALL = dict.fromkeys(layout.MODALITIES, True)


def test_drop_one_attribution_of_the_shipped_model(sample):
    model = ReferenceModel()
    with OnnxRuntimeEngine.from_source(model.network_source()) as engine:
        full = drop_one_attribution(engine.infer, model, sample, ALL)
        without_radar = drop_one_attribution(engine.infer, model, sample, ALL | {"radar": False})
        lidar_only = ReferenceModel(["lidar"])
        only = drop_one_attribution(engine.infer, lidar_only, sample, ALL)
    assert set(full) == {"camera", "lidar", "radar", "text"}
    # the lidar carries this model (docs/model.md: 0.205 mAP without it): a large drop
    assert full["lidar"] > 0.2 and full["lidar"] > max(full["camera"], full["radar"])
    assert without_radar["radar"] == 0.0  # a missing sensor contributes nothing
    assert set(only) == {"lidar"}  # a model explains only the modalities it uses
    with OnnxRuntimeEngine.from_source(model.network_source()) as engine:
        outputs = engine.infer(model.make_feed(sample, ALL))
        assert model.explain(outputs) == {}  # concat fusion: no weights, and no extra inference
        again = model.explain(outputs, infer=engine.infer, tensors=sample, present=ALL)
    assert again == {"drop_one": full}


def test_nothing_detected_nothing_to_explain(sample):
    model = ReferenceModel()
    calls = []

    def infer(feed):
        calls.append(feed)
        return {layout.HEATMAP: np.zeros((3, 64, 64), np.float32)}

    assert drop_one_attribution(infer, model, sample, ALL) == dict.fromkeys(
        ("camera", "lidar", "radar", "text"), 0.0
    )
    assert len(calls) == 1  # no extra inference when there is nothing to explain


def test_fusion_weights_average_over_occupied_cells():
    heatmap = np.zeros((3, 64, 64), np.float32)
    heatmap[0, 10, 10] = heatmap[1, 20, 30] = 0.8
    weights = np.zeros((3, 64, 64), np.float32)
    weights[0] = 0.2
    weights[1] = 0.7
    weights[1, 20, 30] = 0.5
    weights[2] = 1.0 - weights[0] - weights[1]
    got = fusion_weight_contributions({"heatmap": heatmap, "fusion_weights": weights})
    assert got == pytest.approx({"camera": 0.2, "lidar": 0.6, "radar": 0.2})
    assert fusion_weight_contributions({"heatmap": heatmap}) == {}
    empty = fusion_weight_contributions({"heatmap": heatmap * 0, "fusion_weights": weights})
    assert empty["lidar"] == pytest.approx(weights[1].mean())
    assert [a.tolist() for a in peaks(heatmap)] == [[0, 1], [10, 20], [10, 30]]


def test_an_attention_networks_weights_drop_to_zero_for_a_masked_sensor(sample):
    torch = pytest.importorskip("torch")
    from fusionrt.plugins.models.reference.network import (
        NetworkConfig,
        ReferenceExportNetwork,
        ReferenceNetwork,
    )

    torch.manual_seed(0)
    network = ReferenceNetwork(NetworkConfig(fusion="attention")).eval()
    module = ReferenceExportNetwork(network).eval()
    names = [s.name for s in layout.output_specs(fusion_weights=True)]

    def infer(feed):
        with torch.no_grad():
            out = module(*(torch.as_tensor(feed[s.name]) for s in layout.input_specs()))
        return {n: o.numpy() for n, o in zip(names, out, strict=True)}

    model = ReferenceModel()
    for sensor in layout.SENSORS:
        present = ALL | {sensor: False}
        got = fusion_weight_contributions(infer(model.make_feed(sample, present)), threshold=0.0)
        assert got[sensor] == 0.0
        assert sum(got.values()) == pytest.approx(1.0)
