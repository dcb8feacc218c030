"""Reading an ONNX file a user names (``trt-check``, ``quantize``): one ``EngineError``.

``onnx.load`` raises protobuf's ``DecodeError`` for garbage or a truncated file, ``OSError``
for a folder; the commands report each as one line naming the file instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fusionrt.runtime.errors import EngineError

__all__ = ["load_onnx_model"]


def load_onnx_model(path: str | Path) -> Any:
    """The ``onnx.ModelProto`` of ``path``; ``EngineError`` naming the file if it is none."""
    try:
        import onnx  # noqa: PLC0415  (a dev/train extra: imported only by the commands that read graphs)
    except ImportError:
        raise EngineError(
            "reading an ONNX graph needs the onnx package (pip install onnx)"
        ) from None
    where = str(path)
    try:
        return onnx.load(where)
    except FileNotFoundError:
        raise EngineError("ONNX file not found", file=where) from None
    except Exception as exc:  # protobuf's DecodeError, OSError, onnx's own errors
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise EngineError(f"not a readable ONNX file: {reason}", file=where) from None
