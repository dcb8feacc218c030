"""Every backend available here gives the same outputs on real feeds within tolerance."""

from __future__ import annotations

import dataclasses
import inspect
import time

import numpy as np
import pytest

from fusionrt import ConfigError, EngineError
from fusionrt.runtime.engines import sample_net
from fusionrt.runtime.engines.base import NetworkSource
from fusionrt.runtime.engines.cache import BuildOptions
from fusionrt.runtime.engines.export import compare_outputs
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.selection import choose_backend, open_engine
from fusionrt.runtime.engines.tensorrt import TensorRTEngine
from fusionrt.runtime.engines.torch import TorchEngine, torch_wheel_has_cuda

# FP32 backends differ only by summation order and ORT's conv/batch-norm folding.
ATOL, RTOL = 1e-4, 1e-3


@pytest.fixture(scope="module")
def source(sample_onnx, sample_module):
    return NetworkSource(
        sample_net.INPUT_SPECS,
        sample_net.OUTPUT_SPECS,
        onnx_path=sample_onnx,
        torch_module=lambda: sample_module,
    )


@pytest.fixture(scope="module")
def reference(source, feeds):
    """PyTorch eager on CPU: the numerical reference."""
    with open_engine(source, "torch") as engine:
        return [engine.infer(feed) for feed in feeds]


def assert_same(outputs, reference):
    report = compare_outputs(outputs, reference, atol=ATOL, rtol=RTOL)
    assert report.ok, report.summary()


@pytest.mark.parametrize("io_binding", [False, True], ids=["run", "io-binding"])
def test_onnxruntime_matches_torch_eager(source, feeds, reference, io_binding):
    with open_engine(source, "onnxruntime", io_binding=io_binding) as engine:
        assert isinstance(engine, OnnxRuntimeEngine)
        assert engine.providers == ["CPUExecutionProvider"]
        outputs = [engine.infer(feed) for feed in feeds]
    assert [list(o) for o in outputs] == [["heatmap", "box_regression", "velocity"]] * len(feeds)
    assert_same(outputs, reference)


@pytest.mark.slow
def test_torch_compile_matches_eager(source, feeds, reference):
    """torch.compile (inductor, CPU) compiles this network in about 35 s here: one test."""
    started = time.perf_counter()
    with open_engine(source, "torch", compile=True) as engine:
        assert isinstance(engine, TorchEngine) and engine.compiled
        outputs = [engine.infer(feed) for feed in feeds]
    assert time.perf_counter() - started < 300
    assert_same(outputs, reference)


def test_torch_engine_checks_declared_outputs(sample_module):
    engine = TorchEngine(sample_module, sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS)
    engine.check_outputs()
    wrong = (
        *sample_net.OUTPUT_SPECS[:2],
        sample_net.OUTPUT_SPECS[2].__class__("velocity", (1, 3, 64, 64)),
    )
    with pytest.raises(EngineError, match="velocity"):
        TorchEngine(sample_module, sample_net.INPUT_SPECS, wrong).check_outputs()


def test_onnxruntime_refuses_specs_that_differ_from_the_file(sample_onnx):
    inputs = list(sample_net.INPUT_SPECS)
    inputs[0] = inputs[0].__class__("camera_image", (1, 3, 100, 100))
    with pytest.raises(EngineError, match="camera_image") as info:
        OnnxRuntimeEngine(sample_onnx, inputs)
    assert "(1, 3, 100, 100)" in str(info.value) and "(1, 3, 160, 288)" in str(info.value)


def test_each_backend_says_what_it_needs(sample_onnx, sample_module):
    only_onnx = NetworkSource(
        sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, onnx_path=sample_onnx
    )
    only_torch = NetworkSource(
        sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, torch_module=lambda: sample_module
    )
    with pytest.raises(EngineError, match="PyTorch module"):
        open_engine(only_onnx, "torch")
    with pytest.raises(EngineError, match="ONNX file"):
        open_engine(only_torch, "onnxruntime")
    with pytest.raises(EngineError, match="no backend named 'tpu'"):
        open_engine(only_onnx, "tpu")


def test_closed_engines_refuse_to_run(source, feeds):
    engine = open_engine(source, "onnxruntime")
    engine.close()
    engine.close()  # idempotent
    with pytest.raises(EngineError, match="closed"):
        engine.infer(feeds[0])


def test_auto_picks_onnxruntime_without_a_gpu(source, monkeypatch):
    from fusionrt.runtime.engines import cuda_probe, selection

    monkeypatch.setattr(selection, "cuda_device_count", lambda: (0, "no CUDA device"))
    monkeypatch.setattr(
        selection.TensorRTEngine, "availability", classmethod(lambda cls: (False, "no tensorrt"))
    )
    choice = choose_backend(source)
    assert choice.backend is OnnxRuntimeEngine
    assert "no tensorrt" in choice.reason
    assert cuda_probe.cuda_device_count.__name__ == "cuda_device_count"


def test_auto_prefers_tensorrt_then_torch_cuda(source, monkeypatch):
    from fusionrt.runtime.engines import selection

    monkeypatch.setattr(
        selection.TensorRTEngine, "availability", classmethod(lambda cls: (True, "ok"))
    )
    assert choose_backend(source).backend.name == "tensorrt"
    monkeypatch.setattr(
        selection.TensorRTEngine, "availability", classmethod(lambda cls: (False, "none"))
    )
    monkeypatch.setattr(selection, "torch_cuda_availability", lambda: (True, "cuda torch"))
    choice = choose_backend(source)
    assert choice.backend is TorchEngine and choice.options == {"device": "cuda"}
    no_module = NetworkSource(source.input_specs, source.output_specs, onnx_path=source.onnx_path)
    assert choose_backend(no_module).backend is OnnxRuntimeEngine


@pytest.mark.parametrize(
    ("version", "cuda"),
    [("2.13.0+cpu", False), ("2.4.0+cu121", True), ("2.4.0", True), ("2.4.0+rocm6.1", False)],
)
def test_torch_cuda_build_is_read_from_the_version_tag(version, cuda):
    assert torch_wheel_has_cuda(version) is cuda


def test_outputs_are_fresh_arrays(source, feeds):
    """A caller may keep outputs across frames: no backend hands out a reused buffer."""
    with open_engine(source, "onnxruntime") as engine:
        first = engine.infer(feeds[0])
        kept = {k: v.copy() for k, v in first.items()}
        engine.infer(feeds[2])
    for name, value in kept.items():
        np.testing.assert_array_equal(first[name], value)


@pytest.mark.parametrize(
    ("backend", "options", "per_backend", "key"),
    [
        ("onnxruntime", {"bogus": 1}, None, "backend.options.bogus"),
        ("onnxruntime", {"intra_op_threads": "four"}, None, "backend.options.intra_op_threads"),
        ("onnxruntime", {"intra_op_threads": 0}, None, "backend.options.intra_op_threads"),
        ("onnxruntime", {"device": "npu"}, None, "backend.options.device"),
        (
            "onnxruntime",
            {},
            {"onnxruntime": {"io_binding": "yes"}},
            "backend.per_backend.onnxruntime.io_binding",
        ),
        # a typo for the GPU machine shows on this one, where TensorRT does not run
        (
            "onnxruntime",
            {},
            {"tensorrt": {"precison": "fp16"}},
            "backend.per_backend.tensorrt.precison",
        ),
        ("onnxruntime", {}, {"torch": {"threads": -1}}, "backend.per_backend.torch.threads"),
    ],
)
def test_backend_options_are_checked_at_their_key(source, backend, options, per_backend, key):
    with pytest.raises(ConfigError) as info:
        open_engine(source, backend, per_backend=per_backend, **options)
    assert info.value.context == {"key": key}
    assert repr(key.rsplit(".", 1)[1]) in info.value.message


def test_checked_backend_options_reach_the_engine(source):
    per_backend = {"onnxruntime": {"intra_op_threads": 2}, "tensorrt": {"precision": "fp16"}}
    with open_engine(source, "onnxruntime", per_backend=per_backend, io_binding=True) as engine:
        assert isinstance(engine, OnnxRuntimeEngine) and engine.io_binding
        assert engine._session.get_session_options().intra_op_num_threads == 2


@pytest.mark.parametrize("cls", [OnnxRuntimeEngine, TorchEngine], ids=lambda c: c.name)
def test_declared_defaults_are_the_constructor_defaults(cls):
    keywords = {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keywords == {name: spec.default for name, spec in cls.option_specs.items()}


def test_tensorrt_declares_its_build_options_and_their_defaults():
    declared = {name: spec.default for name, spec in TensorRTEngine.option_specs.items()}
    build = {f.name: f.default for f in dataclasses.fields(BuildOptions)}
    assert declared == {
        **build,
        "cache_dir": None,
        "engine_path": None,
        "force_rebuild": False,
        "cuda_graph": False,
        "device": 0,
    }
