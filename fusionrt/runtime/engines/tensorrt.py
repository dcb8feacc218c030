"""TensorRT backend (extra ``tensorrt``): build from ONNX, cache, run with pycuda buffers.

Written to the TensorRT 10 Python API and valid on 11:

* build: ``trt.Builder`` → ``create_network(flags)`` (explicit batch is the default since 10;
  ``STRONGLY_TYPED`` for Q/DQ INT8 networks) → ``trt.OnnxParser.parse`` with every parser error
  surfaced → builder config (workspace pool limit, optimisation level, FP16 flag where the
  builder has one and ``platform_has_fast_fp16`` — both are gone in TensorRT 11, which only
  builds strongly typed networks: an FP16 build there needs an FP16 ONNX) → timing cache
  loaded, used and saved → ``build_serialized_network``;
* run: ``trt.Runtime.deserialize_cuda_engine`` → ``create_execution_context``; tensors by name
  (``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``, ``set_tensor_address``);
  page-locked host buffers (``cuda.pagelocked_empty``) and device buffers (``cuda.mem_alloc``)
  allocated once; H2D copies, ``execute_async_v3`` and D2H copies on one ``cuda.Stream``;
  optional CUDA-graph capture of the execution through the cuda-python runtime bindings.

tensorrt, pycuda and cuda-python are imported only when an engine is built or loaded.
Engines are cached by :mod:`fusionrt.runtime.engines.cache`: never rebuilt at every start,
never run when stale.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrt.runtime.engines.base import Engine, NetworkSource, check_specs_match
from fusionrt.runtime.engines.cache import (
    PRECISIONS,
    BuildOptions,
    EngineCache,
    EngineIngredients,
    Platform,
    load_engine_file,
)
from fusionrt.runtime.engines.cuda_probe import cuda_device_count, cuda_driver_version
from fusionrt.runtime.errors import EngineError
from fusionrt.runtime.messages import TensorSpec
from fusionrt.runtime.options import Option

log = logging.getLogger(__name__)


def tensorrt_availability() -> tuple[bool, str]:
    """Whether the TensorRT backend can run here, and precisely why not."""
    if importlib.util.find_spec("tensorrt") is None:
        return False, "no tensorrt package (pip install 'fusionrt[tensorrt]', or JetPack's)"
    if importlib.util.find_spec("pycuda") is None:
        return False, "no pycuda package (pip install pycuda)"
    count, reason = cuda_device_count()
    if count == 0:
        return False, reason
    return True, f"tensorrt + pycuda, {reason}"


def _import_tensorrt() -> Any:
    available, reason = tensorrt_availability()
    if not available:
        raise EngineError(f"the TensorRT backend is not available here: {reason}")
    import tensorrt as trt  # noqa: PLC0415  (optional dependency, imported on use)

    return trt


def _import_pycuda() -> Any:
    import pycuda.driver as cuda  # noqa: PLC0415  (optional dependency, imported on use)

    cuda.init()
    return cuda


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart  # noqa: PLC0415  (cuda-python >= 12.6)
    except ImportError:
        try:
            from cuda import cudart  # noqa: PLC0415  (older)
        except ImportError:
            raise EngineError(
                "CUDA-graph capture needs the cuda-python bindings (pip install cuda-python)"
            ) from None
    return cudart


def _make_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` that forwards to logging and keeps errors for our exceptions."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return _Logger()


def current_platform(device: int = 0) -> Platform:
    """TensorRT version, CUDA driver version, GPU name and compute capability of ``device``."""
    trt = _import_tensorrt()
    cuda = _import_pycuda()
    gpu = cuda.Device(device)
    major, minor = gpu.compute_capability()
    return Platform(
        tensorrt_version=str(trt.__version__),
        cuda_version=cuda_driver_version() or ".".join(map(str, cuda.get_version())),
        gpu_name=str(gpu.name()),
        compute_capability=(int(major), int(minor)),
    )


# -- build ----------------------------------------------------------------------------------


def describe_parser_error(error: Any) -> str:
    """One line per ``IParserError``: node index, name and operator when known, and desc."""
    parts = []
    node = error.node()
    if node >= 0:
        parts.append(f"node {node}")
    for attribute in ("node_name", "node_operator"):
        getter = getattr(error, attribute, None)  # TensorRT >= 9
        value = getter() if getter is not None else ""
        if value:
            parts.append(f"{attribute.replace('node_', '')} {value!r}")
    where = f" ({', '.join(parts)})" if parts else ""
    return f"{error.code()}{where}: {error.desc()}"


def build_serialized_engine(
    onnx_bytes: bytes,
    options: BuildOptions,
    *,
    timing_cache: Path | None = None,
    onnx_path: Path | None = None,
) -> bytes:
    """Build a serialized engine (plan) from ONNX bytes; ``EngineError`` with every cause."""
    trt = _import_tensorrt()
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if options.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    where = str(onnx_path) if onnx_path else None
    if not parser.parse(onnx_bytes):
        errors = [describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(
            f"TensorRT's ONNX parser rejected the model ({len(errors)} error(s)): "
            + " | ".join(errors),
            file=where,
        )
    if options.precision == "int8":
        layer_types = {network.get_layer(i).type for i in range(network.num_layers)}
        if trt.LayerType.QUANTIZE not in layer_types:
            raise EngineError(
                "int8 needs a Q/DQ ONNX (fusionrt quantize writes one); TensorRT 11 has no "
                "implicit INT8 calibration",
                file=where,
            )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.builder_optimization_level
    if options.precision == "fp16":
        fp16_flag = getattr(trt.BuilderFlag, "FP16", None)
        if fp16_flag is None or options.strongly_typed:
            raise EngineError(
                f"TensorRT {trt.__version__} builds strongly typed networks only (no "
                "BuilderFlag.FP16): convert the ONNX to FP16 first (ModelOpt AutoCast) and "
                "build it as fp32",
                file=where,
            )
        if not getattr(builder, "platform_has_fast_fp16", True):
            raise EngineError("this GPU has no fast FP16; build with --precision fp32")
        config.set_flag(fp16_flag)
    cache_bytes = b""
    if timing_cache is not None and timing_cache.is_file():
        cache_bytes = timing_cache.read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):
        log.warning(
            "timing cache %s does not match this TensorRT/GPU; starting empty", timing_cache
        )
        config.set_timing_cache(config.create_timing_cache(b""), False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(
            "TensorRT's builder failed: " + (" | ".join(logger.errors) or "see the log"),
            file=where,
        )
    if timing_cache is not None:
        serialized = config.get_timing_cache().serialize()
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = timing_cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(bytes(serialized))
        os.replace(tmp, timing_cache)
    return bytes(plan)


def prebuild_engine(
    onnx_path: str | Path,
    options: BuildOptions,
    *,
    cache_dir: str | Path | None = None,
    force: bool = False,
    device: int = 0,
) -> tuple[Path, str]:
    """Build (or find) the cached engine of ``onnx_path``: (engine file, "hit"/"built"/...)."""
    onnx_path = Path(onnx_path)
    onnx_bytes = onnx_path.read_bytes()
    platform = current_platform(device)
    cache = EngineCache(cache_dir)
    ingredients = EngineIngredients.for_onnx(onnx_bytes, platform, options)
    result = cache.get_or_build(
        ingredients,
        lambda: build_serialized_engine(
            onnx_bytes,
            options,
            timing_cache=cache.timing_cache_path(platform),
            onnx_path=onnx_path,
        ),
        model_name=onnx_path.stem,
        force=force,
    )
    return result.path, result.status


# -- run ------------------------------------------------------------------------------------


@dataclass
class _Binding:
    spec: TensorSpec
    host: np.ndarray  # page-locked
    device: Any  # pycuda DeviceAllocation


class TensorRTEngine(Engine):
    """Runs a serialized TensorRT engine with buffers allocated once and one CUDA stream."""

    name: ClassVar[str] = "tensorrt"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "precision": Option("fp32", str, choices=PRECISIONS),
        "workspace_mib": Option(1024, int, minimum=1),
        "strongly_typed": Option(False, bool),
        "builder_optimization_level": Option(3, int, minimum=0, maximum=5),
        "profiles": Option((), list, item=list),
        "cache_dir": Option(None, Path, nullable=True),
        "engine_path": Option(None, Path, nullable=True),
        "force_rebuild": Option(False, bool),
        "cuda_graph": Option(False, bool),
        "device": Option(0, int, minimum=0),
    }

    def __init__(
        self,
        plan: bytes,
        input_specs: Sequence[TensorSpec] | None = None,
        output_specs: Sequence[TensorSpec] | None = None,
        *,
        device: int = 0,
        cuda_graph: bool = False,
    ) -> None:
        trt = _import_tensorrt()
        cuda = _import_pycuda()
        self._cuda = cuda
        self._cuda_context = cuda.Device(device).retain_primary_context()
        self._cuda_context.push()
        self._graph_exec: Any = None
        self._cudart: Any = None
        try:
            self._logger = _make_logger(trt)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(plan)
            if self._engine is None:
                raise EngineError(
                    "TensorRT could not deserialize the engine: "
                    + (" | ".join(self._logger.errors) or "see the log")
                )
            self._context = self._engine.create_execution_context()
            self._inputs: list[_Binding] = []
            self._outputs: list[_Binding] = []
            for index in range(self._engine.num_io_tensors):
                name = self._engine.get_tensor_name(index)
                shape = tuple(int(d) for d in self._engine.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise EngineError("engine has a dynamic dimension", tensor=name, shape=shape)
                dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
                host = cuda.pagelocked_empty(shape, dtype)
                allocation = cuda.mem_alloc(max(host.nbytes, 1))
                self._context.set_tensor_address(name, int(allocation))
                binding = _Binding(TensorSpec(name, shape, dtype.name), host, allocation)
                is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                (self._inputs if is_input else self._outputs).append(binding)
            self._stream = cuda.Stream()
            found_in = [b.spec for b in self._inputs]
            found_out = [b.spec for b in self._outputs]
            if input_specs is not None:
                check_specs_match(input_specs, found_in, what="input", where="the engine")
                order = {s.name: i for i, s in enumerate(input_specs)}
                self._inputs.sort(key=lambda b: order[b.spec.name])
            if output_specs is not None:
                check_specs_match(output_specs, found_out, what="output", where="the engine")
                order = {s.name: i for i, s in enumerate(output_specs)}
                self._outputs.sort(key=lambda b: order[b.spec.name])
            if cuda_graph:
                self._capture_graph()
        except BaseException:
            self._release()
            self._cuda_context.pop()
            self._cuda_context.detach()
            raise
        self._cuda_context.pop()

    def _capture_graph(self) -> None:
        """Capture ``execute_async_v3`` into a CUDA graph (copies stay outside the graph)."""
        cudart = _import_cudart()
        stream = self._stream.handle
        # One plain run first: TensorRT allocates and initialises what it needs lazily.
        if not self._context.execute_async_v3(stream):
            raise EngineError("execute_async_v3 failed before CUDA-graph capture")
        self._stream.synchronize()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        _cuda_check(cudart.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
        captured = self._context.execute_async_v3(stream)
        graph = _cuda_check(cudart.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        if not captured:
            raise EngineError("execute_async_v3 failed during CUDA-graph capture")
        self._graph_exec = _cuda_check(cudart.cudaGraphInstantiate(graph, 0), "instantiate")
        _cuda_check(cudart.cudaGraphDestroy(graph), "cudaGraphDestroy")
        self._cudart = cudart

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        return tensorrt_availability()

    @classmethod
    def from_source(cls, source: NetworkSource, **options: Any) -> TensorRTEngine:
        """Load the cached engine of ``source.onnx_path`` (building it on a miss).

        Options: ``precision`` (fp32/fp16/int8), ``workspace_mib``, ``cache_dir``,
        ``engine_path`` (a prebuilt engine file: refused if stale, never rebuilt),
        ``force_rebuild``, ``cuda_graph``, ``device``.
        """
        if source.onnx_path is None:
            raise EngineError("the tensorrt backend needs the model's ONNX file", engine=cls.name)
        device = int(options.pop("device", 0))
        cuda_graph = bool(options.pop("cuda_graph", False))
        engine_path = options.pop("engine_path", None)
        cache_dir = options.pop("cache_dir", None)
        force = bool(options.pop("force_rebuild", False))
        build_options = BuildOptions(**options)
        onnx_bytes = source.onnx_path.read_bytes()
        ingredients = EngineIngredients.for_onnx(
            onnx_bytes, current_platform(device), build_options
        )
        if engine_path is not None:
            plan = load_engine_file(engine_path, ingredients)
        else:
            cache = EngineCache(cache_dir)
            result = cache.get_or_build(
                ingredients,
                lambda: build_serialized_engine(
                    onnx_bytes,
                    build_options,
                    timing_cache=cache.timing_cache_path(ingredients.platform),
                    onnx_path=source.onnx_path,
                ),
                model_name=source.onnx_path.stem,
                force=force,
            )
            if result.status != "hit":
                log.info("engine %s: %s %s", result.path, result.status, result.reason)
            plan = result.payload
        return cls(
            plan, source.input_specs, source.output_specs, device=device, cuda_graph=cuda_graph
        )

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [b.spec for b in self._inputs]

    @property
    def output_specs(self) -> list[TensorSpec]:
        return [b.spec for b in self._outputs]

    def infer_unchecked(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if getattr(self, "_context", None) is None:
            raise EngineError("engine is closed", engine=self.name)
        cuda, stream = self._cuda, self._stream
        self._cuda_context.push()
        try:
            for binding in self._inputs:
                np.copyto(binding.host, feed[binding.spec.name])
                cuda.memcpy_htod_async(binding.device, binding.host, stream)
            if self._graph_exec is not None:
                _cuda_check(self._cudart.cudaGraphLaunch(self._graph_exec, stream.handle), "launch")
            elif not self._context.execute_async_v3(stream.handle):
                raise EngineError(
                    "execute_async_v3 failed: " + (" | ".join(self._logger.errors) or "see log")
                )
            for binding in self._outputs:
                cuda.memcpy_dtoh_async(binding.host, binding.device, stream)
            stream.synchronize()
            return {b.spec.name: b.host.copy() for b in self._outputs}
        finally:
            self._cuda_context.pop()

    def _release(self) -> None:
        if self._graph_exec is not None and self._cudart is not None:
            self._cudart.cudaGraphExecDestroy(self._graph_exec)
        self._graph_exec = None
        for binding in getattr(self, "_inputs", []) + getattr(self, "_outputs", []):
            binding.device.free()
        self._inputs, self._outputs = [], []
        self._context = None
        self._engine = None
        self._runtime = None

    def close(self) -> None:
        if getattr(self, "_context", None) is None:
            return
        self._cuda_context.push()
        try:
            self._stream.synchronize()
            self._release()
        finally:
            self._cuda_context.pop()
            self._cuda_context.detach()


def _cuda_check(result: Any, what: str) -> Any:
    """cuda-python returns ``(err, *values)``: raise on error, return the value(s)."""
    err, *values = result
    if int(err) != 0:
        raise EngineError(f"CUDA error in {what}: {err}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)
