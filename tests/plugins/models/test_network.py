"""The torch network: shapes, masking, losses and the ONNX export of a fresh network."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fusionrt.plugins.models.reference import layout  # noqa: E402
from fusionrt.plugins.models.reference.network import (  # noqa: E402
    NetworkConfig,
    ReferenceExportNetwork,
    ReferenceNetwork,
)
from fusionrt.plugins.models.reference.train.losses import (  # noqa: E402
    cross_modal_contrastive_loss,
    focal_heatmap_loss,
    regression_l1_loss,
)
from fusionrt.runtime import cli  # noqa: E402
from fusionrt.runtime.engines.export import export_onnx, random_feeds  # noqa: E402
from fusionrt.runtime.engines.trt_support import check_onnx  # noqa: E402


def _inputs(seed: int = 0) -> list:
    feed = random_feeds(layout.input_specs(), 1, seed)[0]
    feed["text_tokens"] = np.arange(layout.GEOMETRY.token_length, dtype=np.int64)
    feed[layout.MODALITY_MASK] = np.ones(len(layout.MODALITIES), np.float32)
    return [torch.as_tensor(feed[s.name]) for s in layout.input_specs()]


@pytest.mark.parametrize("fusion", ["concat", "gated", "attention"])
def test_outputs_have_the_declared_shapes(fusion):
    module = ReferenceExportNetwork(ReferenceNetwork(NetworkConfig(fusion=fusion))).eval()
    with torch.no_grad():
        outputs = module(*_inputs())
    specs = layout.output_specs(fusion_weights=fusion != "concat")
    assert [tuple(o.shape) for o in outputs] == [s.shape for s in specs]
    heatmap = outputs[0]
    assert float(heatmap.min()) >= 0.0 and float(heatmap.max()) <= 1.0


@pytest.mark.parametrize("fusion", ["gated", "attention"])
@pytest.mark.parametrize("missing", layout.SENSORS)
def test_a_missing_sensor_gets_zero_fusion_weight(fusion, missing):
    torch.manual_seed(1)
    module = ReferenceExportNetwork(ReferenceNetwork(NetworkConfig(fusion=fusion))).eval()
    inputs = _inputs()
    inputs[-1][layout.MODALITIES.index(missing)] = 0.0
    with torch.no_grad():
        weights = module(*inputs)[2]
    gone = layout.SENSORS.index(missing)
    assert float(weights[gone].abs().max()) == 0.0
    kept = [i for i in range(len(layout.SENSORS)) if i != gone]
    assert float(weights[kept].min()) > 0.0
    if fusion == "attention":  # a distribution over the present modalities, per cell
        torch.testing.assert_close(weights.sum(dim=0), torch.ones(weights.shape[1:]))


@pytest.mark.parametrize("fusion", ["concat", "attention"])
def test_a_masked_modality_cannot_influence_the_output(fusion):
    torch.manual_seed(0)
    module = ReferenceExportNetwork(ReferenceNetwork(NetworkConfig(fusion=fusion))).eval()
    inputs = _inputs()
    lidar = [s.name for s in layout.input_specs()].index(layout.LIDAR_BEV)
    mask = inputs[-1].clone()
    mask[layout.MODALITIES.index("lidar")] = 0.0
    inputs[-1] = mask
    with torch.no_grad():
        before = module(*inputs)[0]
        inputs[lidar] = inputs[lidar] * 100.0 + 3.0  # garbage from a failed lidar
        after = module(*inputs)[0]
    torch.testing.assert_close(before, after)


def test_losses_prefer_the_right_answer():
    target = torch.zeros(1, 3, 8, 8)
    target[0, 1, 4, 4] = 1.0
    good = target.clamp(0.01, 0.99)
    bad = torch.full_like(target, 0.5)
    assert focal_heatmap_loss(good, target) < focal_heatmap_loss(bad, target)
    pred = torch.zeros(1, 10, 8, 8)
    pred[0, :, 2, 3] = torch.arange(10.0)
    indices = torch.tensor([[2 * 8 + 3]])
    exact = torch.arange(10.0).view(1, 1, 10)
    assert float(regression_l1_loss(pred, indices, exact, torch.ones(1, 1))) == 0.0
    features = torch.randn(2, 16, 8, 8)
    cells = torch.tensor([[0, 1], [0, 9], [1, 30], [1, 63]])
    aligned = cross_modal_contrastive_loss(features, features, cells)
    shuffled = cross_modal_contrastive_loss(features, torch.randn(2, 16, 8, 8), cells)
    assert aligned < shuffled


@pytest.mark.parametrize("fusion", ["gated", "attention"])
def test_a_fresh_network_exports_verified_and_tensorrt_ready(tmp_path, fusion):
    """ONNX Runtime matches PyTorch on the exported file (export_onnx verifies it on random
    feeds) and every node passes ``fusionrt trt-check``'s TensorRT 10.3 rules."""
    module = ReferenceExportNetwork(ReferenceNetwork(NetworkConfig(fusion=fusion))).eval()
    path = tmp_path / "net.onnx"
    report = export_onnx(module, layout.input_specs(), layout.output_specs(True), path)
    assert report.verification is not None and report.verification.ok
    assert check_onnx(path).ok
    assert cli.main(["trt-check", str(path)]) == 0  # what a user runs before deploying
