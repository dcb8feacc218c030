"""Inference backends behind one interface: ONNX Runtime, PyTorch and TensorRT.

Only the interface is imported here (``fusionrt.runtime.components`` imports it); each backend
module imports its heavy package (onnxruntime, torch, tensorrt + pycuda) lazily, so choosing a
backend never loads another one's runtime. ``selection`` picks one (``--backend auto``).
"""

from fusionrt.runtime.engines.base import Engine, NetworkSource, check_feed

__all__ = ["Engine", "NetworkSource", "check_feed"]
