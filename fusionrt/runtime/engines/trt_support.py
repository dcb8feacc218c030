"""TensorRT readiness of an ONNX model, checked without TensorRT (``fusionrt trt-check``).

The rules are those of TensorRT's ONNX parser as documented in onnx/onnx-tensorrt
``docs/operators.md`` (the matrix of TensorRT 10.15: operator, supported types, restrictions)
and its changelog, with the stricter limits of **TensorRT 10.3**, the version JetPack 6 ships:

* opsets: TensorRT 10.0 documents opsets 9–20 and 10.15 documents 9–24; for ``trt10.3`` we
  keep the 10.0 ceiling (20), for ``trt10`` 24;
* operators added after 10.3: Blackman/Hamming/HannWindow and tensor ``axes`` of Pad (10.4),
  STFT (10.5), dynamic Squeeze/Unsqueeze axes (10.7), dynamic CumSum axis (10.8), opset-21
  GroupNormalization and opset-18 ScatterND fixes (10.9), UINT8 Q/DQ constants (10.10),
  integer Pow and Einsum ellipsis/diagonal/broadcasting (10.12), Attention (10.14),
  RotaryEmbedding, RMSNormalization, TensorScatter (10.15);
* ScatterElements is imported through a plugin since 10.3: it "forces a plugin".

fusionrt adds its own rule: **no data-dependent output shapes** (NonZero, NonMaxSuppression,
Unique, Compress) and static input/output shapes, because engines preallocate every buffer
once. Nodes in a non-ONNX domain would need a plugin and fail too.

Findings are errors (the build would fail or need a plugin) or warnings (limited support,
e.g. DOUBLE cast down to FLOAT). ``check_onnx`` returns a per-op table and the offending nodes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fusionrt.runtime.engines.onnx_file import load_onnx_model
from fusionrt.runtime.errors import EngineError

Target = Literal["trt10.3", "trt10"]
TARGETS: tuple[str, ...] = ("trt10.3", "trt10")
MAX_OPSET: dict[str, int] = {"trt10.3": 20, "trt10": 24}
MIN_OPSET = 9

# Operator | supported types (TensorRT 10.15 matrix). B = FP32, FP16, BF16; I = INT32, INT64.
_MATRIX = """
Abs: B I | Acos: B | Acosh: B | Add: B I | And: BOOL | ArgMax: B I | ArgMin: B I | Asin: B |
Asinh: B | Atan: B | Atanh: B | Attention: B INT8 FP8 | AveragePool: B |
BatchNormalization: B | BlackmanWindow: FP32 FP16 | Cast: B I UINT8 BOOL |
CastLike: B I UINT8 BOOL | Ceil: B | Celu: B | Clip: B | Concat: B I BOOL |
Constant: B FP8 FP4 INT4 I BOOL | ConstantOfShape: B FP8 FP4 INT4 I BOOL | Conv: B |
ConvTranspose: B | Cos: B | Cosh: B | CumSum: B | DeformConv: FP32 FP16 |
DepthToSpace: B I | DequantizeLinear: INT8 FP8 FP4 INT4 | Div: B I | Dropout: B | Einsum: B |
Elu: B | Equal: B I | Erf: B | Exp: B | Expand: B I BOOL | EyeLike: B I BOOL |
Flatten: B I BOOL | Floor: B | Gather: B I BOOL | GatherElements: B I BOOL |
GatherND: B I BOOL | Gelu: B INT8 I | Gemm: B | GlobalAveragePool: B | GlobalLpPool: B |
GlobalMaxPool: B | Greater: B I | GreaterOrEqual: B I | GridSample: FP32 FP16 |
GroupNormalization: B | GRU: B | HammingWindow: FP32 FP16 | HannWindow: FP32 FP16 |
HardSigmoid: B | HardSwish: B | Hardmax: B | Identity: B I BOOL | If: B I BOOL |
ImageScaler: B | InstanceNormalization: B | IsInf: B | IsNaN: B I | LayerNormalization: B |
LeakyRelu: B | Less: B I | LessOrEqual: B I | Log: B | LogSoftmax: B | Loop: B I BOOL | LRN: B |
LSTM: B | LpNormalization: B | LpPool: B | MatMul: B | Max: B I | MaxPool: B |
Mean: B FP8 I | MeanVarianceNormalization: B | Min: B I | Mish: FP32 FP16 | Mod: B I |
Mul: B I | Neg: B I | NonMaxSuppression: FP32 FP16 | NonZero: FP32 FP16 | Not: BOOL |
OneHot: B I BOOL | Or: BOOL | Pad: B I | ParametricSoftplus: B | Pow: B I | PRelu: B |
QuantizeLinear: B | RandomNormal: B | RandomNormalLike: B | RandomUniform: B |
RandomUniformLike: B | Range: B I | Reciprocal: B | ReduceL1: B I | ReduceL2: B I |
ReduceLogSum: B I | ReduceLogSumExp: B I | ReduceMax: B I | ReduceMean: B I | ReduceMin: B I |
ReduceProd: B I | ReduceSum: B I | ReduceSumSquare: B I | Relu: B I | Reshape: B I BOOL |
Resize: B | ReverseSequence: B I BOOL | RMSNormalization: B | RNN: B | RoiAlign: FP32 FP16 |
RotaryEmbedding: B | Round: B | STFT: FP32 | ScaledTanh: B | Scan: B | Scatter: B I |
ScatterElements: B I | ScatterND: B I | Selu: B | Shape: B I BOOL | Shrink: B I | Sigmoid: B |
Sign: B I | Sin: B | Sinh: B | Size: B I BOOL | Slice: B I BOOL | Softmax: B | Softplus: B |
Softsign: B | SpaceToDepth: B I | Split: B I BOOL | Sqrt: B | Squeeze: B I BOOL | Sub: B I |
Sum: B I | Tan: B | Tanh: B | TensorScatter: B INT32 | ThresholdedRelu: B | Tile: B I BOOL |
TopK: B I | Transpose: B I BOOL | Trilu: B I BOOL | Unsqueeze: B I BOOL | Upsample: B |
Where: B I BOOL | Xor: BOOL
"""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Operators the matrix marks "N" (not supported by TensorRT's ONNX parser).
UNSUPPORTED_OPS: frozenset[str] = _words(
    """
    AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im
    CenterCropPad Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear
    ImageDecoder MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial
    NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv
    QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase
    SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence
    StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique
    """
)

#: Operators whose output shape depends on the data: refused (engines preallocate buffers).
DATA_DEPENDENT_OPS: frozenset[str] = frozenset(
    {"NonZero", "NonMaxSuppression", "Unique", "Compress"}
)

#: Operators the parser imports through a plugin (ScatterElements since TensorRT 10.3).
PLUGIN_OPS: dict[str, str] = {"ScatterElements": "imported through a TensorRT plugin since 10.3"}

#: Operators first supported after TensorRT 10.3 (version that added them).
ADDED_AFTER_10_3: dict[str, str] = {
    "BlackmanWindow": "10.4",
    "HammingWindow": "10.4",
    "HannWindow": "10.4",
    "STFT": "10.5",
    "Attention": "10.14",
    "RotaryEmbedding": "10.15",
    "RMSNormalization": "10.15",
    "TensorScatter": "10.15",
}

#: Operators whose matrix types are those of their output (their inputs are shapes or sizes).
OUTPUT_TYPED_OPS: frozenset[str] = frozenset(
    {"BlackmanWindow", "HammingWindow", "HannWindow", "ConstantOfShape", "RandomNormal",
     "RandomUniform"}
)  # fmt: skip

RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
REDUCE_OPS = frozenset(
    op for op in _MATRIX.replace("|", " ").replace(":", " ").split() if op.startswith("Reduce")
)

_TYPE_GROUPS = {"B": ("FP32", "FP16", "BF16"), "I": ("INT32", "INT64")}


def _parse_matrix(text: str) -> dict[str, frozenset[str]]:
    table = {}
    for entry in text.split("|"):
        if not entry.strip():
            continue
        op, _, types = entry.partition(":")
        expanded: list[str] = []
        for token in types.split():
            expanded.extend(_TYPE_GROUPS.get(token, (token,)))
        table[op.strip()] = frozenset(expanded)
    return table


SUPPORTED_TYPES: dict[str, frozenset[str]] = _parse_matrix(_MATRIX)

#: ONNX TensorProto data type numbers → the matrix's type names.
ONNX_TYPE_NAMES: dict[int, str] = {
    1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
    8: "STRING", 9: "BOOL", 10: "FP16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64",
    14: "COMPLEX64", 15: "COMPLEX128", 16: "BF16", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8",
    21: "UINT4", 22: "INT4", 23: "FP4",
}  # fmt: skip

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem of one node (or of the graph, with ``node`` empty)."""

    severity: Severity
    node: str
    op: str
    message: str

    def __str__(self) -> str:
        where = f"node {self.node!r} ({self.op})" if self.node else "graph"
        return f"{self.severity}: {where}: {self.message}"


@dataclass(frozen=True)
class OpRow:
    """One row of the per-op table."""

    op: str
    count: int
    status: Literal["ok", "warning", "error"]
    types: tuple[str, ...]
    detail: str


@dataclass
class SupportReport:
    """The result of :func:`check_onnx`: per-op table and findings."""

    path: str
    target: str
    opset: int
    rows: list[OpRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def offending_nodes(self) -> list[str]:
        """Names of the nodes with errors, in graph order, without repeats."""
        return list(dict.fromkeys(f.node for f in self.errors if f.node))


class _Graph:
    """What the rules need to know about the model: types, constants, producers."""

    def __init__(self, model: Any) -> None:
        import onnx  # noqa: PLC0415  (export-time dependency, not an edge one)
        from onnx import numpy_helper  # noqa: PLC0415

        self.numpy_helper = numpy_helper
        graph = model.graph
        self.types: dict[str, int] = {}
        for value in (*graph.input, *graph.output, *graph.value_info):
            if value.type.HasField("tensor_type"):
                self.types[value.name] = value.type.tensor_type.elem_type
        self.initializers = {t.name: t for t in graph.initializer}
        for tensor in graph.initializer:
            self.types[tensor.name] = tensor.data_type
        self.constants: dict[str, Any] = dict(self.initializers)
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self.constants[node.output[0]] = attribute.t
                        self.types[node.output[0]] = attribute.t.data_type
        self.graph_io = {v.name for v in (*graph.input, *graph.output)}
        self.onnx = onnx

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant(self, name: str) -> Any:
        return self.numpy_helper.to_array(self.constants[name])

    def type_name(self, name: str) -> str | None:
        number = self.types.get(name)
        return ONNX_TYPE_NAMES.get(number) if number else None


def _attributes(node: Any) -> dict[str, Any]:
    import onnx  # noqa: PLC0415

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _node_rules(node: Any, graph: _Graph, target: str, opset: int) -> Iterable[tuple[str, str]]:
    """(severity, message) for each documented restriction ``node`` breaks."""
    op = node.op_type
    attrs = _attributes(node)
    inputs = list(node.input)
    strict = target == "trt10.3"

    def optional_input(index: int) -> str:
        return inputs[index] if len(inputs) > index else ""

    def needs_constant(index: int, what: str) -> Iterable[tuple[str, str]]:
        name = optional_input(index)
        if name and not graph.is_constant(name):
            yield "error", f"{what} must be a build-time constant (initializer)"

    if op in ("MaxPool", "AveragePool", "LpPool"):
        kernel = attrs.get("kernel_shape", ())
        if len(kernel) not in (2, 3):
            yield "error", f"only 2D or 3D pooling is supported (kernel_shape {list(kernel)})"
        if any(d != 1 for d in attrs.get("dilations", ())):
            yield "error", "dilations must be empty or all ones"
        if op == "MaxPool" and len([o for o in node.output if o]) > 1:
            yield "error", "the Indices output of MaxPool is unsupported"
    elif op == "Resize":
        mode = _text(attrs.get("mode", "nearest"))
        coordinate = _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        nearest = _text(attrs.get("nearest_mode", "round_prefer_floor"))
        if mode not in RESIZE_MODES:
            yield "error", f"resize mode {mode!r} unsupported (nearest, linear)"
        if coordinate not in RESIZE_COORDINATE_MODES:
            yield "error", f"coordinate_transformation_mode {coordinate!r} unsupported"
        if mode == "nearest" and nearest not in RESIZE_NEAREST_MODES:
            yield "error", f"nearest_mode {nearest!r} unsupported"
        if attrs.get("antialias", 0):
            yield "error", "antialiasing is not supported"
        if _text(attrs.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
            yield "error", "only the 'stretch' aspect ratio policy is supported"
    elif op == "TopK":
        if attrs.get("sorted", 1) != 1:
            yield "error", "sorted must be 1"
        k_name = optional_input(1)
        if k_name and graph.is_constant(k_name):
            if int(graph.constant(k_name).reshape(-1)[0]) >= 3840:
                yield "error", "K must be less than 3840"
        else:
            yield "error", "K must be a build-time constant (data-dependent output shape)"
    elif op in ("QuantizeLinear", "DequantizeLinear"):
        zero_point = optional_input(2)
        if zero_point:
            if not graph.is_constant(zero_point):
                yield "error", "zero point must be a constant"
            elif graph.constant(zero_point).any():
                yield "error", "zero point must be zero (symmetric quantization)"
            zp_type = graph.type_name(zero_point)
            if zp_type == "UINT8" and strict:
                yield "error", "UINT8 Q/DQ needs TensorRT 10.10+ (int8 symmetric works on 10.3)"
        if not graph.is_constant(optional_input(1)):
            yield "error", "scale must be a constant"
    elif op in ("Squeeze", "Unsqueeze"):
        yield from needs_constant(1, "axes")
    elif op == "CumSum":
        yield from needs_constant(1, "axis")
    elif op in REDUCE_OPS:
        yield from needs_constant(1, "axes")
    elif op == "OneHot":
        yield from needs_constant(1, "depth")
    elif op == "Dropout":
        training = optional_input(2)
        if training and (not graph.is_constant(training) or bool(graph.constant(training))):
            yield "error", "is_training must be an initializer evaluating to False"
    elif op == "ScatterND":
        if _text(attrs.get("reduction", "none")) != "none":
            yield "error", "reduction other than 'none' is not supported"
        if strict and opset >= 18:
            yield "warning", "opset-18+ ScatterND was fixed in TensorRT 10.9"
    elif op == "LayerNormalization":
        if len([o for o in node.output if o]) > 1:
            yield "error", "only the first output Y is supported"
    elif op == "Constant":
        if {"sparse_value", "value_string", "value_strings"} & set(attrs):
            yield "error", "sparse and string constants are unsupported"
    elif op == "Einsum" and strict:
        equation = _text(attrs.get("equation", "")).replace(" ", "")
        operands = equation.split("->")[0].split(",")
        if "..." in equation or any(len(set(o)) != len(o) for o in operands):
            yield "error", "Einsum ellipsis/diagonal needs TensorRT 10.12+"
    elif op == "Pad" and strict and optional_input(3):
        yield "error", "tensor axes for Pad need TensorRT 10.4+"
    elif op == "GroupNormalization" and strict and opset >= 21:
        yield "error", "opset-21 GroupNormalization needs TensorRT 10.9+"


def check_onnx(path: str | Path, target: str = "trt10.3") -> SupportReport:
    """Check every node of the ONNX file at ``path`` against TensorRT's parser rules."""
    if target not in TARGETS:
        raise EngineError(f"unknown TensorRT target {target!r} (one of {TARGETS})")
    path = Path(path)
    model = load_onnx_model(path)
    import onnx  # noqa: PLC0415  (present: load_onnx_model needs it)

    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # shape inference is best effort; the types then come from I/O
        message = f"shape inference failed ({exc}); types unchecked"
        return _check_model(model, path, target, [Finding("warning", "", "", message)])
    return _check_model(model, path, target, [])


def _check_model(model: Any, path: Path, target: str, findings: list[Finding]) -> SupportReport:
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    report = SupportReport(str(path), target, opset, findings=list(findings))
    if not MIN_OPSET <= opset <= MAX_OPSET[target]:
        report.findings.append(
            Finding(
                "error", "", "", f"opset {opset} outside {MIN_OPSET}–{MAX_OPSET[target]} ({target})"
            )
        )
    graph = _Graph(model)
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
            report.findings.append(
                Finding("error", "", "", f"tensor {value.name!r} has a dynamic shape {shape}")
            )
    per_op: dict[str, list[Finding]] = {}
    counts: Counter[str] = Counter()
    types_seen: dict[str, set[str]] = {}
    for index, node in enumerate(model.graph.node):
        op = node.op_type
        name = node.name or f"{op}_{index}"
        counts[op] += 1
        node_findings = list(
            _check_node(node, name, graph, target=target, opset=opset, types_seen=types_seen)
        )
        per_op.setdefault(op, []).extend(node_findings)
        report.findings.extend(node_findings)
    for op, count in sorted(counts.items()):
        found = per_op.get(op, [])
        status: Literal["ok", "warning", "error"] = "ok"
        if any(f.severity == "error" for f in found):
            status = "error"
        elif found:
            status = "warning"
        messages = list(dict.fromkeys(f.message for f in found))
        detail = "; ".join(messages[:2]) + (
            f" (+{len(messages) - 2} more)" if len(messages) > 2 else ""
        )
        report.rows.append(OpRow(op, count, status, tuple(sorted(types_seen.get(op, ()))), detail))
    return report


def _check_node(
    node: Any,
    name: str,
    graph: _Graph,
    *,
    target: str,
    opset: int,
    types_seen: dict[str, set[str]],
) -> Iterable[Finding]:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        yield Finding("error", name, op, f"custom domain {node.domain!r}: needs a TensorRT plugin")
        return
    if op in DATA_DEPENDENT_OPS:
        yield Finding(
            "error", name, op, "data-dependent output shape (engines need static output shapes)"
        )
        return
    if op in UNSUPPORTED_OPS or op not in SUPPORTED_TYPES:
        yield Finding("error", name, op, "not supported by TensorRT's ONNX parser")
        return
    if op in PLUGIN_OPS:
        yield Finding("error", name, op, f"forces a plugin: {PLUGIN_OPS[op]}")
    added = ADDED_AFTER_10_3.get(op)
    if target == "trt10.3" and added:
        yield Finding("error", name, op, f"needs TensorRT {added}+ (JetPack 6 ships 10.3)")
    primary = next((i for i in node.input if i), None) or (node.output[0] if node.output else "")
    if op in OUTPUT_TYPED_OPS and node.output:
        primary = node.output[0]
    type_name = graph.type_name(primary) if primary else None
    if type_name is not None:
        types_seen.setdefault(op, set()).add(type_name)
        allowed = SUPPORTED_TYPES[op]
        if target == "trt10.3" and op == "Pow":
            allowed = allowed - {"INT32", "INT64"}  # integer Pow: TensorRT 10.12
        if type_name == "DOUBLE":
            yield Finding("warning", name, op, "DOUBLE is cast down to FLOAT by TensorRT")
        elif type_name == "UINT8" and op == "Cast" and primary in graph.graph_io:
            pass  # UINT8 is allowed as a network input/output type
        elif type_name not in allowed:
            yield Finding(
                "error",
                name,
                op,
                f"type {type_name} of {primary!r} unsupported (supported: "
                f"{', '.join(sorted(allowed))})",
            )
    for severity, message in _node_rules(node, graph, target, opset):
        yield Finding(severity, name, op, message)  # type: ignore[arg-type]


def format_report(report: SupportReport) -> str:
    """The per-op table and the offending nodes, as ``fusionrt trt-check`` prints them."""
    from fusionrt.runtime.text_table import format_table  # noqa: PLC0415

    rows = [[r.op, str(r.count), r.status, ",".join(r.types), r.detail] for r in report.rows]
    lines = [
        f"{report.path}: opset {report.opset}, target {report.target}",
        format_table(("op", "nodes", "status", "types", "detail"), rows),
    ]
    graph_findings = [f for f in report.findings if not f.node]
    node_findings = [f for f in report.findings if f.node]
    if graph_findings or node_findings:
        lines.append("")
        lines.extend(str(f) for f in (*graph_findings, *node_findings))
    if report.ok:
        lines.append(f"PASSED: every node is TensorRT-ready ({report.target})")
    else:
        lines.append(
            f"FAILED: {len(report.errors)} error(s); offending nodes: "
            + (", ".join(report.offending_nodes) or "(graph-level)")
        )
    return "\n".join(lines)
