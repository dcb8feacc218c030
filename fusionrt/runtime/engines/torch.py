"""PyTorch backend: eager or ``torch.compile``, CPU or CUDA; the numerical reference.

torch is imported when an engine is created or its availability is asked with
``import_torch=True`` — never at module import — so an edge install (no torch) can list and
select backends without it, and the run path loads torch only when this backend is chosen.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from importlib import metadata
from typing import Any, ClassVar

import numpy as np

from fusionrt.runtime.engines.base import Engine, NetworkSource, check_specs_match
from fusionrt.runtime.errors import EngineError
from fusionrt.runtime.messages import TensorSpec
from fusionrt.runtime.options import Option


def torch_distribution() -> str | None:
    """The installed torch version string (``2.13.0+cpu``...), without importing torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "unknown"


def torch_wheel_has_cuda(version: str) -> bool:
    """Whether a torch wheel of this version string is built with CUDA (from its local tag).

    ``+cpu`` / ``+rocm*`` / ``+xpu`` wheels are not; ``+cuNNN`` wheels and PyPI's untagged Linux
    wheels are.
    """
    local = version.partition("+")[2]
    if not local:
        return True
    return local.startswith("cu")


class TorchEngine(Engine):
    """Runs a ``torch.nn.Module`` with inputs in ``input_specs`` order (see ``NetworkSource``)."""

    name: ClassVar[str] = "torch"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "device": Option("cpu", str),
        "compile": Option(False, bool),
        "compile_mode": Option(None, str, nullable=True),
        "threads": Option(None, int, minimum=1, nullable=True),
    }

    def __init__(
        self,
        module: Any,
        input_specs: list[TensorSpec] | tuple[TensorSpec, ...],
        output_specs: list[TensorSpec] | tuple[TensorSpec, ...],
        *,
        device: str = "cpu",
        compile: bool = False,
        compile_mode: str | None = None,
        threads: int | None = None,
    ) -> None:
        import torch  # noqa: PLC0415  (only when this backend is chosen)

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(
                "device 'cuda' asked but torch sees no CUDA device",
                engine=self.name,
                torch=torch.__version__,
            )
        if threads is not None:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        self.compiled = compile
        module = module.to(self.device).eval()
        self._module: Any = (
            torch.compile(module, mode=compile_mode, dynamic=False) if compile else module
        )
        self._inputs = list(input_specs)
        self._outputs = list(output_specs)
        self._output_names = [s.name for s in self._outputs]

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        version = torch_distribution()
        if version is None:
            return False, "no torch package (pip install 'fusionrt[train]')"
        return True, f"torch {version}"

    @classmethod
    def from_source(cls, source: NetworkSource, **options: Any) -> TorchEngine:
        if source.torch_module is None:
            raise EngineError(
                "the torch backend needs the model's PyTorch module (the model plugin's "
                "torch_module factory); this source has only an ONNX file",
                engine=cls.name,
            )
        return cls(source.torch_module(), source.input_specs, source.output_specs, **options)

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def infer_unchecked(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._module is None:
            raise EngineError("engine is closed", engine=self.name)
        torch = self._torch
        with torch.inference_mode():
            args = [torch.as_tensor(feed[s.name], device=self.device) for s in self._inputs]
            result = self._module(*args)
            if isinstance(result, Mapping):
                values = [result[name] for name in self._output_names]
            elif isinstance(result, torch.Tensor):
                values = [result]
            else:
                values = list(result)
            if len(values) != len(self._output_names):
                raise EngineError(
                    f"module returned {len(values)} outputs, specs declare "
                    f"{len(self._output_names)}",
                    engine=self.name,
                    outputs=self._output_names,
                )
            return {
                name: value.detach().to("cpu").numpy()
                for name, value in zip(self._output_names, values, strict=True)
            }

    def check_outputs(self) -> None:
        """Run zeros through the module and check the outputs against ``output_specs``."""
        outputs = self.infer({s.name: s.zeros() for s in self._inputs})
        found = [TensorSpec(n, tuple(a.shape), a.dtype.name) for n, a in outputs.items()]
        check_specs_match(self._outputs, found, what="output", where="the torch module")

    def close(self) -> None:
        self._module = None
