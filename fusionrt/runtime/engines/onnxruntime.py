"""ONNX Runtime backend: the embedded default, CPU here (CUDA execution provider where present).

Session options are set for the latency of one frame at a time: ``ORT_ENABLE_ALL`` graph
optimisation (constant folding, conv + batch-norm + activation fusion, NCHWc layout on x86),
sequential execution with ``intra_op_threads`` threads (default: every CPU this process may use),
one inter-op thread, CPU memory arena and memory pattern on (static shapes make the pattern
exact, so after the first run no frame allocates).

IO binding: ``run()`` already wraps numpy inputs without copying on the CPU provider, so binding
buys nothing there — ``benchmarks/engine_bench.py`` measures both and records the figures.
With the CUDA provider, binding (inputs copied once, outputs bound to CPU memory) avoids ORT's
extra staging copies, so ``io_binding=None`` means "on for CUDA, off for CPU".
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrt.runtime.engines.base import Engine, NetworkSource, check_specs_match
from fusionrt.runtime.errors import EngineError
from fusionrt.runtime.messages import TensorSpec
from fusionrt.runtime.options import Option

#: ONNX Runtime's type strings → numpy dtype names.
ORT_TYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def default_thread_count() -> int:
    """CPUs this process may run on (the container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def session_options(intra_op_threads: int | None = None) -> Any:
    """``onnxruntime.SessionOptions`` tuned for single-frame latency (see the module doc)."""
    import onnxruntime as ort  # noqa: PLC0415  (the engines package imports no runtime eagerly)

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads or default_thread_count()
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = True
    options.log_severity_level = 3  # errors only: ORT's warnings go to stderr, not our logs
    return options


def _specs_from(values: Sequence[Any], where: str) -> list[TensorSpec]:
    specs = []
    for value in values:
        dtype = ORT_TYPES.get(value.type)
        if dtype is None:
            raise EngineError(
                f"unsupported tensor type {value.type}", tensor=value.name, file=where
            )
        shape = tuple(value.shape)
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise EngineError(
                "the ONNX model has a dynamic dimension; fusionrt engines take static shapes "
                "(export with fixed input shapes)",
                tensor=value.name,
                shape=shape,
                file=where,
            )
        specs.append(TensorSpec(value.name, shape, dtype))
    return specs


class OnnxRuntimeEngine(Engine):
    """Runs an ONNX file with ONNX Runtime (CPU, or CUDA when asked and available)."""

    name: ClassVar[str] = "onnxruntime"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "intra_op_threads": Option(None, int, minimum=1, nullable=True),
        "device": Option("cpu", str, choices=("cpu", "cuda")),
        "io_binding": Option(None, bool, nullable=True),
    }

    def __init__(
        self,
        onnx_path: str | Path,
        input_specs: Sequence[TensorSpec] | None = None,
        output_specs: Sequence[TensorSpec] | None = None,
        *,
        intra_op_threads: int | None = None,
        device: str = "cpu",
        io_binding: bool | None = None,
    ) -> None:
        import onnxruntime as ort  # noqa: PLC0415

        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise EngineError("ONNX file not found", file=str(self.onnx_path))
        if device not in ("cpu", "cuda"):
            raise EngineError(f"unknown device {device!r} (cpu or cuda)", engine=self.name)
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EngineError(
                    "device 'cuda' needs onnxruntime-gpu (CUDAExecutionProvider is missing)",
                    engine=self.name,
                    providers=ort.get_available_providers(),
                )
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self._session: Any = ort.InferenceSession(
                str(self.onnx_path), session_options(intra_op_threads), providers=providers
            )
        except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph...)
            raise EngineError(
                f"ONNX Runtime could not load the model: {exc}", file=str(self.onnx_path)
            ) from exc
        where = str(self.onnx_path)
        found_inputs = _specs_from(self._session.get_inputs(), where)
        found_outputs = _specs_from(self._session.get_outputs(), where)
        if input_specs is not None:
            check_specs_match(input_specs, found_inputs, what="input", where=where)
        if output_specs is not None:
            check_specs_match(output_specs, found_outputs, what="output", where=where)
        self._inputs = list(input_specs) if input_specs is not None else found_inputs
        self._outputs = list(output_specs) if output_specs is not None else found_outputs
        self._output_names = [s.name for s in self._outputs]
        self.device = device
        self.io_binding = (device == "cuda") if io_binding is None else io_binding
        self._binding: Any = self._session.io_binding() if self.io_binding else None

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("onnxruntime") is None:
            return False, "no onnxruntime package"
        try:
            version = metadata.version("onnxruntime")
        except metadata.PackageNotFoundError:  # onnxruntime-gpu and other distributions
            version = "installed"
        return True, f"onnxruntime {version}"

    @classmethod
    def from_source(cls, source: NetworkSource, **options: Any) -> OnnxRuntimeEngine:
        if source.onnx_path is None:
            raise EngineError(
                "the onnxruntime backend needs the model's ONNX file (fusionrt export writes it)",
                engine=cls.name,
            )
        return cls(source.onnx_path, source.input_specs, source.output_specs, **options)

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        return list(self._outputs)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses."""
        return list(self._session.get_providers())

    def infer_unchecked(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._session is None:
            raise EngineError("engine is closed", engine=self.name)
        if self._binding is None:
            values = self._session.run(self._output_names, dict(feed))
            return dict(zip(self._output_names, values, strict=True))
        binding = self._binding
        for spec in self._inputs:
            binding.bind_cpu_input(spec.name, np.ascontiguousarray(feed[spec.name]))
        for name in self._output_names:
            binding.bind_output(name, "cpu")
        self._session.run_with_iobinding(binding)
        values = binding.copy_outputs_to_cpu()
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        return dict(zip(self._output_names, values, strict=True))

    def close(self) -> None:
        self._binding = None
        self._session = None


def onnx_specs(onnx_path: str | Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The (inputs, outputs) specs of an ONNX file, read through ONNX Runtime."""
    with OnnxRuntimeEngine(onnx_path, intra_op_threads=1) as engine:
        return engine.input_specs, engine.output_specs
