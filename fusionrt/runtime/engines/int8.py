"""Post-training INT8 quantisation to a TensorRT-ready Q/DQ ONNX (``fusionrt quantize``).

ONNX Runtime's static quantiser writes explicit QuantizeLinear/DequantizeLinear pairs
(``QuantFormat.QDQ``) with the placement TensorRT's explicit-quantisation mode wants:

* signed int8, symmetric (zero point 0) for activations and weights — TensorRT requires
  ``zero_point == 0`` and has no uint8 Q/DQ before 10.10;
* per-channel weights (axis 0 of Conv weights), per-tensor activations;
* Q/DQ only on the inputs of compute ops (Conv, ConvTranspose, Gemm, MatMul): TensorRT fuses
  them into int8 kernels and propagates int8 through the pointwise ops itself;
* biases stay float (``QuantizeBias: False``): an int32 DequantizeLinear is not a type
  TensorRT's DequantizeLinear accepts;
* named nodes (typically the detection head, the most precision-sensitive layers) can be kept
  in float with ``keep_float``: exact names or name prefixes.

Calibration reads the frames you give (feeds of the model's inputs, e.g. from a recorded
drive). The result still runs in ONNX Runtime (which fuses Q/DQ into int8 kernels on CPU), so
accuracy and latency are measured here; ``check_onnx`` must pass on it before a TensorRT build.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusionrt.runtime.errors import EngineError

#: Operator types whose inputs get Q/DQ pairs.
QUANTIZED_OPS: tuple[str, ...] = ("Conv", "ConvTranspose", "Gemm", "MatMul")

CalibrationMethod = Literal["minmax", "percentile", "entropy"]


def _calibration_reader(feeds: Sequence[Mapping[str, np.ndarray]]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader  # noqa: PLC0415

    class FeedReader(CalibrationDataReader):
        """Hands ``feeds`` to the calibrator one by one (and again after ``rewind``)."""

        def __init__(self) -> None:
            self._iterator: Iterator[Mapping[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(self._iterator, None)
            return None if feed is None else dict(feed)

        def rewind(self) -> None:
            self._iterator = iter(feeds)

    return FeedReader()


class _DropPreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@dataclass(frozen=True)
class QuantizationReport:
    """What :func:`quantize_int8` wrote."""

    path: Path
    calibration_frames: int
    quantized_nodes: int
    float_nodes: tuple[str, ...]
    qdq_pairs: int


def _matching_nodes(model: Any, keep_float: Sequence[str]) -> list[str]:
    names = [node.name for node in model.graph.node]
    kept = [n for n in names if any(n == k or n.startswith(k) for k in keep_float)]
    unknown = [k for k in keep_float if not any(n == k or n.startswith(k) for n in names)]
    if unknown:
        raise EngineError(f"keep_float names match no node: {unknown}", example_nodes=names[:8])
    return kept


def quantize_int8(
    onnx_path: str | Path,
    output_path: str | Path,
    calibration_feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    keep_float: Sequence[str] = (),
    method: CalibrationMethod = "minmax",
    per_channel: bool = True,
) -> QuantizationReport:
    """Write a symmetric-int8 Q/DQ model of ``onnx_path`` to ``output_path`` (module doc)."""
    import onnx  # noqa: PLC0415
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationMethod as OrtCalibration,
    )
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # noqa: PLC0415

    if not calibration_feeds:
        raise EngineError("INT8 calibration needs at least one frame")
    onnx_path, output_path = Path(onnx_path), Path(output_path)
    model = onnx.load(str(onnx_path))
    float_nodes = _matching_nodes(model, keep_float) if keep_float else []
    methods = {
        "minmax": OrtCalibration.MinMax,
        "percentile": OrtCalibration.Percentile,
        "entropy": OrtCalibration.Entropy,
    }
    if method not in methods:
        raise EngineError(f"unknown calibration method {method!r} (one of {sorted(methods)})")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    quiet = _DropPreprocessAdvice()
    root.addFilter(quiet)  # ORT advises "pre-processing" on the root logger at every call
    try:
        quantize_static(
            str(onnx_path),
            str(output_path),
            _calibration_reader(calibration_feeds),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes,
            calibrate_method=methods[method],
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "CalibMovingAverage": method == "minmax",
            },
        )
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"ONNX Runtime quantisation failed: {exc}", file=str(onnx_path)) from exc
    finally:
        root.removeFilter(quiet)
    quantized = onnx.load(str(output_path))
    ops = [node.op_type for node in quantized.graph.node]
    qdq_pairs = ops.count("QuantizeLinear")
    compute = [
        n
        for n in quantized.graph.node
        if n.op_type in QUANTIZED_OPS and n.name not in set(float_nodes)
    ]
    return QuantizationReport(
        path=output_path,
        calibration_frames=len(calibration_feeds),
        quantized_nodes=len(compute),
        float_nodes=tuple(float_nodes),
        qdq_pairs=qdq_pairs,
    )
