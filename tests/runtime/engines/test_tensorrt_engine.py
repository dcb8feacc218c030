"""TensorRT backend. The GPU tests skip cleanly without tensorrt, pycuda or a CUDA device.

On a GPU machine (``pip install 'fusionrt[tensorrt]'``) they build engines from the sample
network's ONNX export, run them and compare with ONNX Runtime; they check the engine cache
(second open is a hit, a stale engine is refused) and the CUDA-graph path.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fusionrt import EngineError
from fusionrt.runtime.engines import sample_net
from fusionrt.runtime.engines.base import NetworkSource
from fusionrt.runtime.engines.cuda_probe import cuda_device_count
from fusionrt.runtime.engines.export import compare_outputs
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.tensorrt import TensorRTEngine, tensorrt_availability

AVAILABLE, REASON = tensorrt_availability()
needs_tensorrt = pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT backend: {REASON}")


def test_availability_says_precisely_why_not():
    available, reason = TensorRTEngine.availability()
    if importlib.util.find_spec("tensorrt") is None:
        assert not available and reason.startswith("no tensorrt package")
    elif importlib.util.find_spec("pycuda") is None:
        assert not available and reason.startswith("no pycuda package")
    elif cuda_device_count()[0] == 0:
        assert not available and "CUDA" in reason
    else:
        assert available


@pytest.mark.skipif(AVAILABLE, reason="checks the error raised where TensorRT is missing")
def test_opening_without_tensorrt_is_a_clear_error(sample_onnx):
    source = NetworkSource(sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, onnx_path=sample_onnx)
    with pytest.raises(EngineError, match="the TensorRT backend is not available here: no "):
        TensorRTEngine.from_source(source)


@pytest.fixture(scope="module")
def source(sample_onnx):
    return NetworkSource(sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, onnx_path=sample_onnx)


@pytest.fixture(scope="module")
def ort_reference(sample_onnx, feeds):
    with OnnxRuntimeEngine(sample_onnx) as engine:
        return [engine.infer(f) for f in feeds]


@pytest.mark.gpu
@pytest.mark.tensorrt
@needs_tensorrt
@pytest.mark.parametrize("cuda_graph", [False, True], ids=["stream", "cuda-graph"])
def test_fp32_engine_matches_onnxruntime(source, feeds, ort_reference, tmp_path, cuda_graph):
    if cuda_graph and importlib.util.find_spec("cuda") is None:
        pytest.skip("CUDA-graph capture needs cuda-python")
    with TensorRTEngine.from_source(source, cache_dir=tmp_path, cuda_graph=cuda_graph) as engine:
        assert [s.name for s in engine.output_specs] == ["heatmap", "box_regression", "velocity"]
        outputs = [engine.infer(f) for f in feeds]
        again = engine.infer(feeds[0])
    # TF32 convolutions are on by default on Ampere+: 1e-2 absolute on these magnitudes.
    report = compare_outputs(outputs, ort_reference, atol=1e-2, rtol=1e-2)
    assert report.ok, report.summary()
    for name in again:
        np.testing.assert_array_equal(again[name], outputs[0][name])


@pytest.mark.gpu
@pytest.mark.tensorrt
@needs_tensorrt
def test_the_engine_is_cached_and_a_stale_one_refused(source, sample_onnx, feeds, tmp_path):
    from fusionrt.runtime.engines.cache import BuildOptions, EngineCache
    from fusionrt.runtime.engines.tensorrt import prebuild_engine

    path, status = prebuild_engine(sample_onnx, BuildOptions(), cache_dir=tmp_path)
    assert status == "built" and path.is_file()
    path_again, status_again = prebuild_engine(sample_onnx, BuildOptions(), cache_dir=tmp_path)
    assert (path_again, status_again) == (path, "hit")
    assert len(EngineCache(tmp_path).entries()) == 1
    assert any(p.name.startswith("timing-") for p in tmp_path.iterdir())
    with pytest.raises(EngineError, match="stale"):  # built fp32, asked for another workspace
        TensorRTEngine.from_source(source, engine_path=path, workspace_mib=2048)
    with TensorRTEngine.from_source(source, engine_path=path) as engine:
        assert engine.infer(feeds[0])["heatmap"].shape == (1, 3, 64, 64)


@pytest.mark.gpu
@pytest.mark.tensorrt
@needs_tensorrt
def test_fp16_and_int8_engines_stay_close(source, int8_onnx, feeds, ort_reference, tmp_path):
    import tensorrt as trt

    if hasattr(trt.BuilderFlag, "FP16"):
        with TensorRTEngine.from_source(source, cache_dir=tmp_path, precision="fp16") as engine:
            outputs = [engine.infer(f) for f in feeds]
        heat = compare_outputs(outputs, ort_reference, atol=5e-2, rtol=0.0).outputs[0]
        assert heat.within_tolerance, heat
    int8_source = NetworkSource(
        sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, onnx_path=int8_onnx
    )
    with TensorRTEngine.from_source(int8_source, cache_dir=tmp_path, precision="int8") as engine:
        outputs = [engine.infer(f) for f in feeds]
    heat = compare_outputs(outputs, ort_reference, atol=5e-2, rtol=0.0).outputs[0]
    assert heat.within_tolerance, heat


@pytest.mark.gpu
@pytest.mark.tensorrt
@needs_tensorrt
def test_parser_errors_are_surfaced(tmp_path):
    from onnx import TensorProto, helper

    from fusionrt.runtime.engines.cache import BuildOptions
    from fusionrt.runtime.engines.tensorrt import build_serialized_engine

    node = helper.make_node("Det", ["x"], ["d"], name="determinant")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(EngineError, match="ONNX parser rejected the model") as info:
        build_serialized_engine(model.SerializeToString(), BuildOptions())
    assert "Det" in str(info.value) or "determinant" in str(info.value)
