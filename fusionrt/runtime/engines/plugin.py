"""The built-in backends, registered through the plugin hook like any third-party backend."""

from __future__ import annotations

from fusionrt.runtime.engines.base import Engine
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.tensorrt import TensorRTEngine
from fusionrt.runtime.engines.torch import TorchEngine
from fusionrt.runtime.hookspecs import hookimpl


@hookimpl
def fusionrt_backends() -> list[type[Engine]]:
    """ONNX Runtime, PyTorch and TensorRT (each imports its runtime only when used)."""
    return [OnnxRuntimeEngine, TorchEngine, TensorRTEngine]
