"""TensorRT readiness without TensorRT: the exported model passes, bad models fail by node."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionrt import EngineError
from fusionrt.runtime.engines.trt_support import SUPPORTED_TYPES, UNSUPPORTED_OPS, check_onnx


def save(tmp_path, nodes, inputs, outputs, initializers=(), *, opset=17, name="m"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def value(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_the_exported_sample_network_passes(sample_onnx):
    report = check_onnx(sample_onnx)
    assert report.ok, [str(f) for f in report.findings]
    ops = {row.op: row for row in report.rows}
    assert ops["Conv"].count == 16 and ops["Conv"].status == "ok"
    assert ops["Conv"].types == ("FP32",)
    assert report.opset == 17 and report.target == "trt10.3"


def test_nonzero_fails_naming_the_node(tmp_path):
    path = save(
        tmp_path,
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu0"),
            helper.make_node("NonZero", ["r"], ["idx"], name="where_positive"),
        ],
        [value("x", [1, 16])],
        [value("idx", [2, 16], TensorProto.INT64)],
    )
    report = check_onnx(path)
    assert not report.ok
    assert report.offending_nodes == ["where_positive"]
    (finding,) = report.errors
    assert finding.op == "NonZero" and "data-dependent output shape" in finding.message
    assert {r.op: r.status for r in report.rows} == {"NonZero": "error", "Relu": "ok"}


def test_an_op_tensorrt_does_not_support_fails_naming_the_node(tmp_path):
    path = save(
        tmp_path,
        [helper.make_node("Det", ["x"], ["d"], name="determinant")],
        [value("x", [2, 3, 3])],
        [value("d", [2])],
    )
    report = check_onnx(path)
    assert report.offending_nodes == ["determinant"]
    assert "not supported by TensorRT's ONNX parser" in report.errors[0].message
    assert "Det" in UNSUPPORTED_OPS and "Det" not in SUPPORTED_TYPES


def test_custom_domains_need_a_plugin(tmp_path):
    node = helper.make_node("FusedConv", ["x"], ["y"], name="ort_fused", domain="com.microsoft")
    graph = helper.make_graph([node], "g", [value("x", [1, 4])], [value("y", [1, 4])])
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    report = check_onnx(path)
    assert report.offending_nodes == ["ort_fused"]
    assert "needs a TensorRT plugin" in report.errors[0].message


def test_scatter_elements_forces_a_plugin(tmp_path):
    indices = numpy_helper.from_array(np.zeros((1, 2), np.int64), "indices")
    path = save(
        tmp_path,
        [helper.make_node("ScatterElements", ["x", "indices", "u"], ["y"], name="scatter")],
        [value("x", [1, 4]), value("u", [1, 2])],
        [value("y", [1, 4])],
        [indices],
    )
    assert "forces a plugin" in check_onnx(path).errors[0].message


def test_dynamic_shapes_are_refused(tmp_path):
    path = save(
        tmp_path,
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [value("x", ["batch", 4])],
        [value("y", ["batch", 4])],
    )
    report = check_onnx(path)
    assert not report.ok and report.offending_nodes == []
    assert "dynamic shape ['batch', 4]" in str(report.errors[0])


def test_restrictions_are_checked(tmp_path):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    roi = numpy_helper.from_array(np.zeros(0, np.float32), "roi")
    path = save(
        tmp_path,
        [
            helper.make_node(
                "Resize", ["x", "roi", "scales"], ["y"], name="cubic_up", mode="cubic"
            ),
            helper.make_node(
                "MaxPool", ["y"], ["p"], name="pool1d_like", kernel_shape=[2, 2], dilations=[2, 2]
            ),
        ],
        [value("x", [1, 2, 4, 4])],
        [value("p", [1, 2, 6, 6])],
        [roi, scales],
    )
    report = check_onnx(path)
    messages = {f.node: f.message for f in report.errors}
    assert "resize mode 'cubic' unsupported" in messages["cubic_up"]
    assert "dilations must be empty or all ones" in messages["pool1d_like"]


def test_uint8_and_asymmetric_qdq_are_refused(tmp_path):
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(128, np.uint8), "zero")
    path = save(
        tmp_path,
        [
            helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"], name="q_asym"),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"], name="dq_asym"),
        ],
        [value("x", [1, 4])],
        [value("y", [1, 4])],
        [scale, zero],
    )
    report = check_onnx(path)
    assert report.offending_nodes == ["q_asym", "dq_asym"]
    assert any("zero point must be zero" in f.message for f in report.errors)
    assert any("UINT8" in f.message for f in report.errors)


def test_jetpack6_is_stricter_than_current_tensorrt(tmp_path):
    path = save(
        tmp_path,
        [helper.make_node("HannWindow", ["size"], ["w"], name="window")],
        [value("size", [], TensorProto.INT64)],
        [value("w", [16])],
    )
    strict = check_onnx(path, target="trt10.3")
    assert strict.offending_nodes == ["window"]
    assert "needs TensorRT 10.4+" in strict.errors[0].message
    assert check_onnx(path, target="trt10").ok


def test_opset_outside_the_target_range_fails(tmp_path):
    path = save(
        tmp_path,
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [value("x", [1, 4])],
        [value("y", [1, 4])],
        opset=21,
    )
    assert "opset 21 outside 9–20" in str(check_onnx(path, target="trt10.3").errors[0])
    assert check_onnx(path, target="trt10").ok


def test_unreadable_files_are_engine_errors(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        check_onnx(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(EngineError, match="not a readable ONNX file"):
        check_onnx(tmp_path / "junk.onnx")
    with pytest.raises(EngineError, match="unknown TensorRT target"):
        check_onnx(tmp_path / "junk.onnx", target="trt8")
