"""INT8 Q/DQ: float consumers routed around shared pairs (so ONNX Runtime fuses every Conv),
calibration feeds checked against the graph, and ``fusionrt quantize --drive`` on the reference
model with frames of the bundled sample drive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionrt.plugins.models.reference.model import ONNX_PATH, ReferenceModel
from fusionrt.runtime import cli
from fusionrt.runtime.engines.int8 import quantize_int8
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.trt_support import check_onnx
from fusionrt.runtime.errors import EngineError

ROOT = Path(__file__).resolve().parents[3]
DRIVE = ROOT / "examples" / "drives" / "sample"
PIPELINE = ROOT / "examples" / "pipelines" / "sample.yaml"
OUTPUT_LAYERS = ["/network/heatmap", "/network/regression"]


def residual_net(path: Path) -> Path:
    """x → conv_a → relu → conv_b → add(relu, conv_b) → conv_out: a residual Add beside a Conv."""
    rng = np.random.default_rng(0)

    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "wb", "bb"], ["b"], name="conv_b", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["r", "b"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "wo", "bo"], ["y"], name="conv_out"),
    ]
    weights = [
        weight("wa", (8, 4, 3, 3)), weight("ba", (8,)), weight("wb", (8, 8, 3, 3)),
        weight("bb", (8,)), weight("wo", (2, 8, 1, 1)), weight("bo", (2,)),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 16, 16])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ort_optimised_ops(path: Path, tmp_path: Path) -> list[str]:
    """Operator types of the graph ONNX Runtime actually runs (all optimisations on)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / f"{path.stem}.ort.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]


@pytest.fixture(scope="module")
def residual_frames() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((1, 4, 16, 16)).astype(np.float32)} for _ in range(8)]


def test_float_consumers_read_the_float_tensor_and_every_conv_runs_int8(tmp_path, residual_frames):
    out = tmp_path / "residual.int8.onnx"
    report = quantize_int8(residual_net(tmp_path / "residual.onnx"), out, residual_frames)
    assert report.rerouted_inputs == 1 and report.quantized_nodes == 3
    model = onnx.load(str(out))
    node = {n.name: n for n in model.graph.node}
    assert node["add"].input[0] == "r"  # the Relu output itself, not the shared DQ
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    for conv in ("conv_a", "conv_b", "conv_out"):
        assert producers[node[conv].input[0]] == "DequantizeLinear", conv
    assert check_onnx(out).ok
    ops = ort_optimised_ops(out, tmp_path)
    assert ops.count("QLinearConv") == 3 and "Conv" not in ops and "FusedConv" not in ops

    # Unrouted (what ONNX Runtime's quantiser writes), the Add shares conv_b's DQ: conv_b float.
    shared = tmp_path / "shared.int8.onnx"
    net = tmp_path / "residual.onnx"
    unrouted = quantize_int8(net, shared, residual_frames, route_float_consumers=False)
    assert unrouted.rerouted_inputs == 0
    add = next(n for n in onnx.load(str(shared)).graph.node if n.name == "add")
    assert add.input[0].endswith("_DequantizeLinear_Output")
    assert ort_optimised_ops(shared, tmp_path).count("QLinearConv") == 2


def test_calibration_frames_that_do_not_fit_the_graph_name_frame_and_input(
    tmp_path, residual_frames
):
    net = residual_net(tmp_path / "residual.onnx")
    out = tmp_path / "q.onnx"
    wrong_shape = [*residual_frames[:2], {"x": np.zeros((1, 4, 8, 8), np.float32)}]
    with pytest.raises(EngineError, match="wrong shape or dtype") as info:
        quantize_int8(net, out, wrong_shape)
    assert info.value.context["frame"] == 2 and info.value.context["input"] == "x"
    with pytest.raises(EngineError, match="wrong shape or dtype"):
        quantize_int8(net, out, [{"x": residual_frames[0]["x"].astype(np.float64)}])
    with pytest.raises(EngineError, match="does not match the model's inputs") as names:
        quantize_int8(net, out, [{"image": residual_frames[0]["x"]}])
    assert names.value.context["missing"] == ["x"]
    assert names.value.context["unexpected"] == ["image"]
    with pytest.raises(EngineError, match="unknown calibration method"):
        quantize_int8(net, out, residual_frames, method="mse")  # type: ignore[arg-type]
    assert not out.exists()


def test_quantize_the_reference_model_on_frames_of_the_sample_drive(tmp_path, capsys):
    out = tmp_path / "reference.int8.onnx"
    code = cli.main(
        ["quantize", str(ONNX_PATH), "-o", str(out), "--drive", str(DRIVE),
         "--pipeline", str(PIPELINE), "--frames", "8", "--stride", "10",
         "--keep-float", OUTPUT_LAYERS[0], "--keep-float", OUTPUT_LAYERS[1]]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "8 calibration frames (percentile)" in printed and "trt-check: PASSED" in printed
    assert "2 kept in float" in printed
    # The INT8 model finds what FP32 finds: every confident FP32 detection has an INT8 one of
    # the same class within 0.5 m, on the shipped frames of a held-out drive.
    model = ReferenceModel()
    matched = confident = 0
    with OnnxRuntimeEngine(ONNX_PATH) as fp32, OnnxRuntimeEngine(out) as int8:
        for feed in model.sample_feeds():
            want = model.postprocess(fp32.infer(feed), 0)
            got = model.postprocess(int8.infer(feed), 0)
            sure = want.scores >= 0.5
            for box, label in zip(want.boxes[sure], want.labels[sure], strict=True):
                same = got.labels == label
                distance = np.linalg.norm(got.boxes[same, :2] - box[:2], axis=1)
                matched += bool(distance.size and distance.min() < 0.5)
                confident += 1
    assert confident >= 20 and matched >= 0.9 * confident, (matched, confident)


def test_quantize_takes_frames_from_exactly_one_place(tmp_path, capsys):
    out = str(tmp_path / "q.onnx")
    assert cli.main(["quantize", str(ONNX_PATH), "-o", out, "--drive", str(DRIVE)]) != 0
    assert "--drive needs --pipeline" in capsys.readouterr().err
    frames = tmp_path / "frames"
    frames.mkdir()
    args = ["quantize", str(ONNX_PATH), "-o", out, "--calibration", str(frames)]
    assert cli.main([*args, "--pipeline", str(PIPELINE)]) != 0
    assert "--pipeline goes with --drive" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not both
        cli.main([*args, "--drive", str(DRIVE)])
    assert "not allowed with argument" in capsys.readouterr().err
