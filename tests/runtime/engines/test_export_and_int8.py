"""Export verification (and that it catches a mismatch); INT8 Q/DQ runs here and is TRT-ready."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fusionrt import EngineError, TensorSpec
from fusionrt.runtime.engines import sample_net
from fusionrt.runtime.engines.export import (
    DEFAULT_OPSET,
    ExportVerificationError,
    compare_outputs,
    export_onnx,
    torch_reference,
    verify_onnx,
)
from fusionrt.runtime.engines.int8 import quantize_int8
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine, onnx_specs
from fusionrt.runtime.engines.trt_support import check_onnx


def test_the_export_has_the_specs_names_opset_and_passes_the_checker(sample_onnx):
    model = onnx.load(str(sample_onnx))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [DEFAULT_OPSET]
    inputs, outputs = onnx_specs(sample_onnx)
    assert [(s.name, s.shape, s.dtype) for s in inputs] == [
        (s.name, s.shape, s.dtype) for s in sample_net.INPUT_SPECS
    ]
    assert [s.name for s in outputs] == ["heatmap", "box_regression", "velocity"]
    assert not any(n.op_type == "BatchNormalization" for n in model.graph.node)  # folded


def test_the_export_report_states_the_errors(tmp_path, sample_module, feeds):
    report = export_onnx(
        sample_module,
        sample_net.INPUT_SPECS,
        ["heatmap", "box_regression", "velocity"],
        tmp_path / "m.onnx",
        samples=feeds[:2],
    )
    verification = report.verification
    assert verification is not None and verification.ok and verification.samples == 2
    assert {o.name for o in verification.outputs} == {"heatmap", "box_regression", "velocity"}
    assert all(o.max_abs < 1e-4 for o in verification.outputs)
    assert report.nodes_simplified < report.nodes_exported
    assert report.output_specs == list(sample_net.OUTPUT_SPECS)
    assert "max abs" in verification.summary()


def test_verification_catches_a_deliberate_mismatch(sample_onnx, feeds):
    """A reference with one perturbed weight must fail, naming the outputs that differ."""
    import torch

    tampered = sample_net.SampleBevNet()
    with torch.no_grad():
        tampered.head_box.bias[3] += 0.01
    reference = torch_reference(
        tampered, sample_net.INPUT_SPECS, ["heatmap", "box_regression", "velocity"]
    )
    with pytest.raises(ExportVerificationError) as info:
        verify_onnx(sample_onnx, reference, feeds[:2])
    message = str(info.value)
    assert "['box_regression']" in message and "MISMATCH" in message
    assert "max abs 1.00e-02" in message
    report = verify_onnx(sample_onnx, reference, feeds[:1], raise_on_mismatch=False)
    assert [o.name for o in report.outputs if not o.within_tolerance] == ["box_regression"]


def test_export_refuses_outputs_that_differ_from_the_specs(tmp_path, sample_module):
    wrong = (*sample_net.OUTPUT_SPECS[:2], TensorSpec("velocity", (1, 2, 32, 32)))
    with pytest.raises(EngineError, match="velocity"):
        export_onnx(sample_module, sample_net.INPUT_SPECS, wrong, tmp_path / "x.onnx")


def test_compare_outputs_uses_atol_plus_rtol():
    ref = [{"y": np.array([1.0, 100.0])}]
    assert compare_outputs([{"y": np.array([1.00005, 100.05])}], ref).ok
    assert not compare_outputs([{"y": np.array([1.0, 100.2])}], ref).ok


def test_int8_qdq_model_runs_in_onnxruntime_and_passes_trt_check(int8_onnx, sample_onnx, feeds):
    model = onnx.load(str(int8_onnx))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    for node in model.graph.node:  # symmetric int8, zero points all zero
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = next(t for t in model.graph.initializer if t.name == node.input[2])
            assert zero.data_type == onnx.TensorProto.INT8
            assert not onnx.numpy_helper.to_array(zero).any()
    head_inputs = {i for n in model.graph.node if n.name.startswith("/head_") for i in n.input}
    assert not any(i.endswith("_DequantizeLinear_Output") for i in head_inputs)  # head in float
    report = check_onnx(int8_onnx)
    assert report.ok, [str(f) for f in report.errors]
    with OnnxRuntimeEngine(int8_onnx) as int8, OnnxRuntimeEngine(sample_onnx) as fp32:
        quantised = [int8.infer(f) for f in feeds]
        reference = [fp32.infer(f) for f in feeds]
    heat = compare_outputs(quantised, reference, atol=0.02, rtol=0.0)
    assert heat.outputs[0].name == "heatmap" and heat.outputs[0].within_tolerance, heat.summary()
    peak = [np.unravel_index(np.argmax(r["heatmap"]), r["heatmap"].shape) for r in reference]
    for out, ref, where in zip(quantised, reference, peak, strict=True):
        assert abs(out["heatmap"][where] - ref["heatmap"][where]) < 0.02


def test_int8_refuses_unknown_float_nodes_and_empty_calibration(tmp_path, sample_onnx, feeds):
    with pytest.raises(EngineError, match="match no node"):
        quantize_int8(sample_onnx, tmp_path / "q.onnx", feeds, keep_float=["/no_such_head"])
    with pytest.raises(EngineError, match="at least one frame"):
        quantize_int8(sample_onnx, tmp_path / "q.onnx", [])
