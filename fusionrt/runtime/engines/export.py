"""torch → ONNX export with verification: what ``fusionrt export`` runs.

* **Opset 17**, fixed. It is the newest opset every deployment target parses: TensorRT 8.5/8.6
  (JetPack 5) stops at 17, TensorRT 10.3 (JetPack 6) at 20, ONNX Runtime ≥ 1.14 covers it;
  it has native ``LayerNormalization`` and the opset-13 Squeeze/Unsqueeze/ReduceSum forms
  whose axes are constant inputs TensorRT wants. Newer opsets buy nothing our networks use.
* Static shapes: the inputs are the model's ``TensorSpec`` s, no dynamic axes; input and output
  names are the specs' names.
* The TorchScript-based exporter (``dynamo=False``): it exports opset 17 directly and needs no
  onnxscript; the dynamo exporter starts at opset 18.
* Simplified with onnxslim (constant folding, dead-node removal, shape folding), then
  ``onnx.checker.check_model(full_check=True)``.
* Verified on every export: ONNX Runtime's outputs match PyTorch's on sample inputs within
  ``|onnx - torch| <= atol + rtol * |torch|`` elementwise (defaults atol 1e-4, rtol 1e-3: FP32
  results differ only by summation order and ORT's conv/batch-norm folding, typically ≤ 1e-5).
  The report gives the max absolute and relative error per output; a mismatch is an
  ``ExportVerificationError`` naming the output.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.engines.base import check_specs_match
from fusionrt.runtime.errors import EngineError
from fusionrt.runtime.messages import TensorSpec

DEFAULT_OPSET = 17
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3

Feed = dict[str, np.ndarray]


class ExportVerificationError(EngineError):
    """The exported ONNX model does not reproduce the reference outputs within tolerance."""


@dataclass(frozen=True)
class OutputComparison:
    """Worst error of one output over all samples."""

    name: str
    max_abs: float
    max_rel: float
    within_tolerance: bool


@dataclass
class VerificationReport:
    """ONNX Runtime vs the reference, per output, over ``samples`` feeds."""

    samples: int
    atol: float
    rtol: float
    outputs: list[OutputComparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.within_tolerance for o in self.outputs)

    def summary(self) -> str:
        parts = [
            f"{o.name}: max abs {o.max_abs:.2e}, max rel {o.max_rel:.2e}"
            + ("" if o.within_tolerance else " MISMATCH")
            for o in self.outputs
        ]
        return f"{self.samples} sample(s), atol {self.atol:g}, rtol {self.rtol:g}: " + "; ".join(
            parts
        )


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it checked it."""

    path: Path
    opset: int
    input_specs: list[TensorSpec]
    output_specs: list[TensorSpec]
    nodes_exported: int
    nodes_simplified: int
    verification: VerificationReport | None


def compare_outputs(
    got: Sequence[Mapping[str, np.ndarray]],
    expected: Sequence[Mapping[str, np.ndarray]],
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> VerificationReport:
    """Compare per-sample outputs (``got`` against the reference ``expected``)."""
    report = VerificationReport(len(expected), atol, rtol)
    if not expected:
        return report
    for name in expected[0]:
        max_abs = max_rel = 0.0
        ok = True
        for mine, reference in zip(got, expected, strict=True):
            a = np.asarray(mine[name], dtype=np.float64)
            b = np.asarray(reference[name], dtype=np.float64)
            if a.shape != b.shape:
                raise ExportVerificationError(
                    f"output {name!r} has shape {a.shape}, the reference {b.shape}"
                )
            diff = np.abs(a - b)
            max_abs = max(max_abs, float(diff.max(initial=0.0)))
            max_rel = max(max_rel, float((diff / np.maximum(np.abs(b), 1e-12)).max(initial=0.0)))
            ok = ok and bool(np.all(diff <= atol + rtol * np.abs(b)))
        report.outputs.append(OutputComparison(name, max_abs, max_rel, ok))
    return report


def verify_onnx(
    onnx_path: str | Path,
    reference: Callable[[Feed], Mapping[str, np.ndarray]],
    samples: Sequence[Feed],
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    raise_on_mismatch: bool = True,
) -> VerificationReport:
    """Run ``samples`` through ONNX Runtime and ``reference``; compare (see the module doc)."""
    from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine  # noqa: PLC0415

    if not samples:
        raise EngineError("verification needs at least one sample feed")
    with OnnxRuntimeEngine(onnx_path) as engine:
        got = [engine.infer(feed) for feed in samples]
    expected = [dict(reference(feed)) for feed in samples]
    report = compare_outputs(got, expected, atol=atol, rtol=rtol)
    if raise_on_mismatch and not report.ok:
        bad = [o.name for o in report.outputs if not o.within_tolerance]
        raise ExportVerificationError(
            f"ONNX Runtime does not match the reference for output(s) {bad}: {report.summary()}",
            file=str(onnx_path),
        )
    return report


def torch_reference(
    module: Any, input_specs: Sequence[TensorSpec], output_names: Sequence[str]
) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """A reference function running ``module`` eagerly on CPU (feed → named outputs)."""
    from fusionrt.runtime.engines.torch import TorchEngine  # noqa: PLC0415

    outputs = [TensorSpec(name, (1,)) for name in output_names]  # shapes unchecked here
    engine = TorchEngine(module, list(input_specs), outputs)
    return engine.infer_unchecked


def export_onnx(
    module: Any,
    input_specs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec] | Sequence[str],
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    samples: Sequence[Feed] | None = None,
    verify: bool = True,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
) -> ExportReport:
    """Export ``module`` to ``path`` (see the module doc); returns what was written and checked.

    ``outputs`` are the output specs, or only their names (shapes and dtypes are then taken
    from a run of the module). ``samples`` default to one all-zero feed and two seeded random
    feeds; pass real frames where you have them.
    """
    import onnx  # noqa: PLC0415
    import torch  # noqa: PLC0415

    path = Path(path)
    input_specs = list(input_specs)
    declared = [o for o in outputs if isinstance(o, TensorSpec)]
    output_names = [o if isinstance(o, str) else o.name for o in outputs]
    module = module.eval()
    reference = torch_reference(module, input_specs, output_names)
    zero_feed = {s.name: s.zeros() for s in input_specs}
    found = [TensorSpec(n, tuple(a.shape), a.dtype.name) for n, a in reference(zero_feed).items()]
    output_specs: list[TensorSpec] = found
    if declared:
        check_specs_match(declared, found, what="output", where="the torch module")
        output_specs = declared
    args = tuple(torch.as_tensor(zero_feed[s.name]) for s in input_specs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=[s.name for s in input_specs],
                output_names=output_names,
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
                export_params=True,
            )
        except Exception as exc:
            raise EngineError(f"torch.onnx.export failed: {exc}", file=str(path)) from exc
    model = onnx.load(str(path))
    nodes_exported = len(model.graph.node)
    if simplify:
        import onnxslim  # noqa: PLC0415

        with contextlib.redirect_stdout(io.StringIO()):
            model = onnxslim.slim(model)
        onnx.save(model, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise EngineError(f"onnx.checker rejected the export: {exc}", file=str(path)) from exc
    from fusionrt.runtime.engines.onnxruntime import onnx_specs  # noqa: PLC0415

    found_inputs, found_outputs = onnx_specs(path)
    check_specs_match(input_specs, found_inputs, what="input", where=str(path))
    check_specs_match(output_specs, found_outputs, what="output", where=str(path))
    verification = None
    if verify:
        if samples is None:
            samples = [zero_feed, *random_feeds(input_specs, 2)]
        verification = verify_onnx(path, reference, samples, atol=atol, rtol=rtol)
    return ExportReport(
        path=path,
        opset=opset,
        input_specs=input_specs,
        output_specs=output_specs,
        nodes_exported=nodes_exported,
        nodes_simplified=len(model.graph.node),
        verification=verification,
    )


def random_feeds(specs: Sequence[TensorSpec], count: int, seed: int = 0) -> list[Feed]:
    """``count`` seeded random feeds: N(0, 1) floats, 0/1 integers and booleans."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {}
        for spec in specs:
            dtype = np.dtype(spec.dtype)
            if dtype.kind == "f":
                feed[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
            else:
                feed[spec.name] = rng.integers(0, 2, spec.shape).astype(dtype)
        feeds.append(feed)
    return feeds
