"""The Engine interface: feed checks, specs, lifecycle, registration, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest

from fusionrt import EngineError, TensorSpec
from fusionrt.runtime.components import COMPONENT_BASES
from fusionrt.runtime.engines.base import Engine, NetworkSource, check_feed, check_specs_match
from fusionrt.runtime.registry import Registry

SPECS = [TensorSpec("image", (1, 3, 4, 4)), TensorSpec("mask", (1, 3), "int64")]


def good_feed():
    return {"image": np.zeros((1, 3, 4, 4), np.float32), "mask": np.ones((1, 3), np.int64)}


def test_a_matching_feed_passes():
    check_feed(good_feed(), SPECS)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda f: f.pop("mask"), ["lacks", "mask"]),
        (lambda f: f.update(extra=np.zeros(1)), ["unknown", "extra"]),
        (
            lambda f: f.update(image=np.zeros((1, 3, 4, 5), np.float32)),
            ["'image'", "expected='(1, 3, 4, 4) float32'", "got='(1, 3, 4, 5) float32'"],
        ),
        (
            lambda f: f.update(image=np.zeros((1, 3, 4, 4), np.float64)),
            ["'image'", "expected='(1, 3, 4, 4) float32'", "got='(1, 3, 4, 4) float64'"],
        ),
        (lambda f: f.update(mask=[[1, 1, 1]]), ["'mask'", "numpy array", "got='list'"]),
    ],
    ids=["missing", "extra", "shape", "dtype", "not-an-array"],
)
def test_a_bad_feed_names_the_input_expected_and_got(change, words):
    feed = good_feed()
    change(feed)
    with pytest.raises(EngineError) as info:
        check_feed(feed, SPECS, engine="demo")
    message = str(info.value)
    assert "engine='demo'" in message
    for word in words:
        assert word in message


class EchoEngine(Engine):
    """A minimal engine: doubles its one input."""

    name: ClassVar[str] = "echo-test"

    def __init__(self) -> None:
        self.closed = 0

    @classmethod
    def from_source(cls, source, **options):
        return cls()

    @property
    def input_specs(self):
        return [TensorSpec("x", (2,))]

    @property
    def output_specs(self):
        return [TensorSpec("y", (2,))]

    def infer_unchecked(self, feed):
        return {"y": feed["x"] * 2}

    def close(self):
        self.closed += 1


def test_infer_checks_the_feed_then_runs():
    with EchoEngine() as engine:
        assert engine.infer({"x": np.ones(2, np.float32)})["y"].tolist() == [2, 2]
        with pytest.raises(EngineError, match="'x'"):
            engine.infer({"x": np.ones(3, np.float32)})
    assert engine.closed == 1


def test_backends_register_against_the_engine_base(make_distribution):
    assert COMPONENT_BASES["backend"] is Engine
    make_distribution(
        "acme-npu",
        {"acme_npu": "acme_npu_plugin"},
        {
            "acme_npu_plugin": """
            from fusionrt import hookimpl
            from fusionrt.runtime.engines.base import Engine

            class NpuEngine(Engine):
                name = "acme-npu"
                @classmethod
                def from_source(cls, source, **options): return cls()
                input_specs = property(lambda self: [])
                output_specs = property(lambda self: [])
                def infer_unchecked(self, feed): return {}

            @hookimpl
            def fusionrt_backends():
                return [NpuEngine]
            """
        },
    )
    registry = Registry.create(builtins=("fusionrt.runtime.engines.plugin",))
    names = [c.name for c in registry.components("backend")]
    assert names == ["acme-npu", "onnxruntime", "tensorrt", "torch"]


def test_network_source_refuses_dynamic_shapes_and_duplicate_names():
    with pytest.raises(EngineError, match="static shapes"):
        NetworkSource((TensorSpec("x", (1, -1)),), ())
    with pytest.raises(EngineError, match="used twice"):
        NetworkSource((TensorSpec("x", (1,)),), (TensorSpec("x", (1,)),))


def test_spec_mismatch_names_the_tensor():
    with pytest.raises(EngineError, match=r"input 'x' of model\.onnx differs") as info:
        check_specs_match(
            [TensorSpec("x", (1, 3))], [TensorSpec("x", (1, 4))], what="input", where="model.onnx"
        )
    assert "(1, 4)" in str(info.value)


def test_the_onnxruntime_run_path_never_imports_torch_or_tensorrt(sample_onnx, feeds):
    """`--backend auto` on this machine picks ONNX Runtime and loads no other runtime."""
    np.savez(sample_onnx.with_suffix(".npz"), **feeds[0])
    code = f"""
import sys, numpy as np
from fusionrt.runtime.engines.selection import open_engine
from fusionrt.runtime.engines.base import NetworkSource
from fusionrt.runtime.engines.onnxruntime import onnx_specs
inputs, outputs = onnx_specs({str(sample_onnx)!r})
source = NetworkSource(tuple(inputs), tuple(outputs), onnx_path={str(sample_onnx)!r})
with open_engine(source, "auto") as engine:
    out = engine.infer(dict(np.load({str(sample_onnx.with_suffix(".npz"))!r})))
print(type(engine).__name__, sorted(out), "torch" in sys.modules, "tensorrt" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "OnnxRuntimeEngine",
        "['box_regression',",
        "'heatmap',",
        "'velocity']",
        "False",
        "False",
    ]
