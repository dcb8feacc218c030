"""Post-training INT8 quantisation to a TensorRT-ready Q/DQ ONNX (``fusionrt quantize``).

ONNX Runtime's static quantiser writes explicit QuantizeLinear/DequantizeLinear pairs
(``QuantFormat.QDQ``) that TensorRT's explicit-quantisation (strongly typed) mode builds:

* signed int8, symmetric (zero point 0) for activations and weights — TensorRT requires
  ``zero_point == 0`` and has no uint8 Q/DQ before 10.10 (S8S8 is also ONNX Runtime's
  recommended CPU format: on x86 it converts each int8 pair to uint8 for its U8S8 kernels);
* per-channel weights (axis 0 of Conv weights), per-tensor activations;
* Q/DQ on the inputs and the output of the compute ops (Conv, ConvTranspose, Gemm, MatMul):
  ONNX Runtime fuses DQ → Conv → Q into one int8 kernel, TensorRT fuses it likewise. Putting
  Q/DQ on the inputs only (NVIDIA's usual placement) leaves ONNX Runtime running float convs
  on dequantised weights (1.38× FP32 on the reference model); Q/DQ on the pointwise ops too
  (Add, Mul, Concat) adds more Q/DQ than it saves and, on the reference model's lift mask and
  FiLM, costs 14.7 mAP points — measured in ``benchmarks/int8_bench.py --explore``;
* float consumers of a quantised tensor (e.g. a residual Add beside a Conv) read the float
  tensor, not the shared DQ: see :func:`route_float_consumers_around_qdq`;
* biases stay float (``QuantizeBias: False``): an int32 DequantizeLinear is not a type
  TensorRT's DequantizeLinear accepts;
* named nodes (typically the detection head's output layers, the most precision-sensitive) can
  be kept in float with ``keep_float``: exact names or name prefixes.

Calibration reads the frames you give: feeds of the model's inputs, from ``.npz`` files or from
a recorded drive (:mod:`~fusionrt.runtime.engines.calibration_feeds`). Activation ranges default
to the 99.999th percentile of their histogram (less sensitive to rare outliers than min/max).
The result still runs in ONNX Runtime, so accuracy and latency are measured here;
``check_onnx`` must pass on it before a TensorRT build.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusionrt.runtime.engines.onnx_file import load_onnx_model
from fusionrt.runtime.errors import EngineError

#: Operator types whose inputs and outputs get Q/DQ pairs.
QUANTIZED_OPS: tuple[str, ...] = ("Conv", "ConvTranspose", "Gemm", "MatMul")

CalibrationMethod = Literal["minmax", "percentile", "entropy"]
#: Activation range calibration: min/max (moving average over frames), the 99.999th percentile
#: of each tensor's histogram, or the KL-divergence (entropy) threshold.
CALIBRATION_METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")


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
    rerouted_inputs: int
    method: str


def _matching_nodes(model: Any, keep_float: Sequence[str]) -> list[str]:
    names = [node.name for node in model.graph.node]
    kept = [n for n in names if any(n == k or n.startswith(k) for k in keep_float)]
    unknown = [k for k in keep_float if not any(n == k or n.startswith(k) for n in names)]
    if unknown:
        raise EngineError(f"keep_float names match no node: {unknown}", example_nodes=names[:8])
    return kept


def check_calibration_feeds(
    model: Any, feeds: Sequence[Mapping[str, np.ndarray]], where: str
) -> None:
    """``EngineError`` naming the frame and input where a feed does not match the graph inputs
    (names, static shapes, dtypes) of the ONNX ``model``."""
    from onnx import helper  # noqa: PLC0415

    initializers = {t.name for t in model.graph.initializer}
    expected: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
        expected[value.name] = (shape, np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)))
    for index, feed in enumerate(feeds):
        missing = sorted(set(expected) - set(feed))
        extra = sorted(set(feed) - set(expected))
        if missing or extra:
            raise EngineError(
                "calibration frame does not match the model's inputs",
                file=where,
                frame=index,
                missing=missing,
                unexpected=extra,
            )
        for name, (shape, dtype) in expected.items():
            array = np.asarray(feed[name])
            fits = len(array.shape) == len(shape) and all(
                want in (-1, got) for want, got in zip(shape, array.shape, strict=True)
            )
            if not fits or array.dtype != dtype:
                raise EngineError(
                    "calibration input has the wrong shape or dtype",
                    file=where,
                    frame=index,
                    input=name,
                    expected=f"{shape} {dtype}",
                    got=f"{array.shape} {array.dtype}",
                )


def route_float_consumers_around_qdq(model: Any, quantized_ops: Sequence[str]) -> int:
    """Let float nodes read a quantised tensor itself rather than its shared DequantizeLinear.

    The quantiser hands every consumer of a quantised tensor the output of its one DQ node. When
    a float node (a residual Add) shares that DQ with a Conv, ONNX Runtime cannot convert the
    shared int8 pair to uint8 (it does so pair by pair, for a Q with one DQ) and runs the Conv in
    float: the residual U-Net's ``down.0`` conv took 0.65 ms instead of 0.12 ms. Rewired here:
    float consumers of a pair that also feeds a quantised op, where a float node produced the
    tensor (rewiring a Conv's output would break that Conv's own DQ → Conv → Q unit). They get
    exact values; TensorRT sees the same Q/DQ on every quantised input. Returns the number of
    inputs rewired (``model`` is changed in place).
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewired = 0
    for dq in model.graph.node:
        q = producer.get(dq.input[0]) if dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear":
            continue
        source = q.input[0]
        origin = producer.get(source)
        if origin is not None and origin.op_type in quantized_ops:
            continue
        users = consumers.get(dq.output[0], [])
        if not any(u.op_type in quantized_ops for u in users):
            continue
        for user in users:
            if user.op_type in quantized_ops:
                continue
            for index, name in enumerate(user.input):
                if name == dq.output[0]:
                    user.input[index] = source
                    rewired += 1
    return rewired


def quantize_int8(
    onnx_path: str | Path,
    output_path: str | Path,
    calibration_feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    keep_float: Sequence[str] = (),
    method: CalibrationMethod = "percentile",
    per_channel: bool = True,
    op_types: Sequence[str] = QUANTIZED_OPS,
    route_float_consumers: bool = True,
    extra_options: Mapping[str, Any] | None = None,
) -> QuantizationReport:
    """Write a symmetric-int8 Q/DQ model of ``onnx_path`` to ``output_path`` (module doc).

    ``route_float_consumers`` (default on) applies :func:`route_float_consumers_around_qdq`;
    ``extra_options`` are ONNX Runtime quantiser options merged over ours, for experiments
    (``benchmarks/int8_bench.py --explore``): the result may no longer suit TensorRT, so check
    it with ``check_onnx``.
    """
    import onnx  # noqa: PLC0415
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationMethod as OrtCalibration,
    )
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static  # noqa: PLC0415

    if not calibration_feeds:
        raise EngineError("INT8 calibration needs at least one frame")
    methods = {
        "minmax": OrtCalibration.MinMax,
        "percentile": OrtCalibration.Percentile,
        "entropy": OrtCalibration.Entropy,
    }
    if method not in CALIBRATION_METHODS:
        raise EngineError(f"unknown calibration method {method!r} (one of {CALIBRATION_METHODS})")
    onnx_path, output_path = Path(onnx_path), Path(output_path)
    model = load_onnx_model(onnx_path)
    check_calibration_feeds(model, calibration_feeds, str(onnx_path))
    float_nodes = _matching_nodes(model, keep_float) if keep_float else []
    output_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    quiet = _DropPreprocessAdvice()
    root.addFilter(quiet)  # ORT advises "pre-processing" on the root logger at every call
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # histogram calibrators print()
            quantize_static(
                str(onnx_path),
                str(output_path),
                _calibration_reader(calibration_feeds),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types),
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
                    **(extra_options or {}),
                },
            )
    except Exception as exc:
        raise EngineError(f"ONNX Runtime quantisation failed: {exc}", file=str(onnx_path)) from exc
    finally:
        root.removeFilter(quiet)
    quantized = onnx.load(str(output_path))
    rerouted = 0
    if route_float_consumers:
        rerouted = route_float_consumers_around_qdq(quantized, op_types)
        onnx.save(quantized, str(output_path))
    ops = [node.op_type for node in quantized.graph.node]
    kept = set(float_nodes)
    compute = [n for n in quantized.graph.node if n.op_type in op_types and n.name not in kept]
    return QuantizationReport(
        path=output_path,
        calibration_frames=len(calibration_feeds),
        quantized_nodes=len(compute),
        float_nodes=tuple(float_nodes),
        qdq_pairs=ops.count("QuantizeLinear"),
        rerouted_inputs=rerouted,
        method=method,
    )
