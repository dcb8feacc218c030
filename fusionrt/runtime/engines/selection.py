"""Choosing a backend (``--backend auto``) and saying what is available (``fusionrt backends``).

``auto`` picks **tensorrt** when the ``tensorrt`` and ``pycuda`` packages and a CUDA GPU are
present, else **torch on CUDA** when a CUDA build of torch, a GPU and the model's PyTorch module
are present, else **onnxruntime**. Deciding imports neither torch nor TensorRT: packages are
found with ``importlib.util.find_spec``, torch's CUDA build from its version tag, the GPU through
the CUDA driver (:mod:`cuda_probe`). Only the chosen backend's runtime is ever imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fusionrt.runtime.engines.base import Engine, NetworkSource
from fusionrt.runtime.engines.cuda_probe import cuda_device_count
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine
from fusionrt.runtime.engines.tensorrt import TensorRTEngine
from fusionrt.runtime.engines.torch import TorchEngine, torch_distribution, torch_wheel_has_cuda
from fusionrt.runtime.errors import ConfigError, EngineError
from fusionrt.runtime.options import check_options

BUILTIN_BACKENDS: tuple[type[Engine], ...] = (TensorRTEngine, TorchEngine, OnnxRuntimeEngine)


def torch_cuda_availability() -> tuple[bool, str]:
    """Whether torch could run on a GPU here, decided without importing torch."""
    version = torch_distribution()
    if version is None:
        return False, "no torch package"
    if not torch_wheel_has_cuda(version):
        return False, f"torch {version} is a build without CUDA"
    count, reason = cuda_device_count()
    if count == 0:
        return False, reason
    return True, f"torch {version}, {reason}"


@dataclass(frozen=True)
class Choice:
    """The backend ``auto`` chose, the options it implies, and why."""

    backend: type[Engine]
    options: dict[str, Any]
    reason: str


def choose_backend(source: NetworkSource | None = None) -> Choice:
    """The ``auto`` rule (module doc). ``source`` tells whether a PyTorch module exists."""
    trt_ok, trt_reason = TensorRTEngine.availability()
    if trt_ok and (source is None or source.onnx_path is not None):
        return Choice(TensorRTEngine, {}, f"tensorrt: {trt_reason}")
    torch_ok, torch_reason = torch_cuda_availability()
    has_module = source is None or source.torch_module is not None
    if torch_ok and has_module:
        return Choice(TorchEngine, {"device": "cuda"}, f"torch on CUDA: {torch_reason}")
    why = f"tensorrt unavailable ({trt_reason}); torch on CUDA unavailable ({torch_reason})"
    if torch_ok and not has_module:
        why = f"tensorrt unavailable ({trt_reason}); the model has no PyTorch module"
    return Choice(OnnxRuntimeEngine, {}, f"onnxruntime: {why}")


def resolve_backend(name: str, registry: Any = None) -> type[Engine]:
    """The backend class called ``name`` (built-in, or registered by a plugin)."""
    for backend in BUILTIN_BACKENDS:
        if backend.name == name:
            return backend
    if registry is not None:
        info = registry.component("backend", name)
        cls: type[Engine] = info.cls
        return cls
    known = ", ".join(b.name for b in BUILTIN_BACKENDS)
    raise EngineError(f"no backend named {name!r} (built-in backends: {known}, or 'auto')")


def open_engine(
    source: NetworkSource,
    backend: str = "auto",
    registry: Any = None,
    *,
    per_backend: Mapping[str, Mapping[str, Any]] | None = None,
    **options: Any,
) -> Engine:
    """Create the engine for ``source`` on ``backend`` (``auto``: see :func:`choose_backend`).

    ``options`` go to whichever backend runs; ``per_backend[name]`` is added only when the
    backend called ``name`` runs (a pipeline file's ``backend.per_backend``). Both are checked
    against the backends' ``option_specs`` first, every ``per_backend`` section included, so a
    misspelt TensorRT option shows on a machine without TensorRT: a ``ConfigError`` at
    ``backend.options.KEY`` or ``backend.per_backend.NAME.KEY``.
    """
    implied: Mapping[str, Any] = {}
    if backend == "auto":
        choice = choose_backend(source)
        cls, implied = choice.backend, choice.options
    else:
        cls = resolve_backend(backend, registry)
    options = check_backend_options(cls, options, "backend.options")
    sections = {
        name: check_backend_options(
            cls if name == cls.name else resolve_backend(name, registry),
            section,
            f"backend.per_backend.{name}",
        )
        for name, section in (per_backend or {}).items()
    }
    if backend != "auto":
        available, reason = cls.availability()
        if not available:
            raise EngineError(f"backend {backend!r} is not available here: {reason}")
    return cls.from_source(source, **{**implied, **options, **sections.get(cls.name, {})})


def check_backend_options(
    cls: type[Engine], options: Mapping[str, Any], key: str
) -> dict[str, Any]:
    """``options`` checked against ``cls.option_specs`` (``ConfigError`` at ``key.NAME``);
    passed through when the backend declares none."""
    if cls.option_specs is None:
        return dict(options)
    try:
        return check_options(cls.option_specs, options, owner=f"{cls.name} backend")
    except ConfigError as exc:
        raise ConfigError(exc.message, key=f"{key}.{exc.context['key']}") from None


@dataclass(frozen=True)
class BackendStatus:
    """One line of ``fusionrt backends``."""

    name: str
    available: bool
    reason: str
    plugin: str = "fusionrt"


def backend_report(registry: Any = None) -> tuple[list[BackendStatus], Choice]:
    """Every backend (built-in and plugin) with its availability, and what ``auto`` picks."""
    rows: list[BackendStatus] = []
    seen = set()
    components = registry.components("backend") if registry is not None else []
    for info in components:
        ok, reason = info.cls.availability()
        rows.append(BackendStatus(info.name, ok, reason, info.plugin.distribution))
        seen.add(info.name)
    for backend in BUILTIN_BACKENDS:
        if backend.name not in seen:
            ok, reason = backend.availability()
            rows.append(BackendStatus(backend.name, ok, reason))
    cuda_ok, cuda_reason = torch_cuda_availability()
    rows.append(BackendStatus("torch (cuda)", cuda_ok, cuda_reason))
    return rows, choose_backend()
