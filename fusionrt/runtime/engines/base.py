"""The one inference interface: :class:`Engine`, the feed checks and :class:`NetworkSource`.

Every backend (ONNX Runtime, PyTorch, TensorRT, or a third party's) subclasses :class:`Engine`
and is registered through the ``fusionrt_backends`` hook. An engine runs one network with static
input and output :class:`~fusionrt.runtime.messages.TensorSpec` s: ``infer(feed)`` takes a dict of
named numpy arrays and returns a dict of named numpy arrays, always in ``output_specs`` order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from fusionrt.runtime.errors import EngineError
from fusionrt.runtime.messages import TensorSpec
from fusionrt.runtime.options import Option


@dataclass(frozen=True)
class NetworkSource:
    """Where a backend gets the network from: an ONNX file, a PyTorch module factory, or both.

    ``torch_module`` is a zero-argument callable returning the ``torch.nn.Module`` (called only
    by the PyTorch backend, so nothing else imports torch). Its ``forward`` takes the inputs
    positionally in ``input_specs`` order and returns the outputs as a tuple in
    ``output_specs`` order, or as a dict keyed by output name.
    """

    input_specs: tuple[TensorSpec, ...]
    output_specs: tuple[TensorSpec, ...]
    onnx_path: Path | None = None
    torch_module: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_specs", tuple(self.input_specs))
        object.__setattr__(self, "output_specs", tuple(self.output_specs))
        if self.onnx_path is not None:
            object.__setattr__(self, "onnx_path", Path(self.onnx_path))
        names = [s.name for s in (*self.input_specs, *self.output_specs)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise EngineError(f"tensor names used twice in the specs: {duplicates}")
        for spec in (*self.input_specs, *self.output_specs):
            if any(not isinstance(d, int) or d <= 0 for d in spec.shape):
                raise EngineError(
                    "engines take static shapes only (every dimension a positive int)",
                    tensor=spec.name,
                    shape=spec.shape,
                )


class Engine(ABC):
    """An inference engine: runs one network on one kind of hardware.

    Subclasses implement :meth:`from_source`, the two spec properties and
    :meth:`infer_unchecked`; :meth:`infer` checks the feed against ``input_specs`` first.
    Engines are context managers; :meth:`close` releases their memory and is idempotent.
    ``option_specs`` declares the keywords :meth:`from_source` takes (the pipeline file's
    ``backend.options``), checked by :func:`~fusionrt.runtime.engines.selection.open_engine`;
    ``None`` leaves a backend to check its own.
    """

    name: ClassVar[str]
    option_specs: ClassVar[Mapping[str, Option] | None] = None
    #: Whether :meth:`infer` checks every feed (names, shapes, dtypes) before running it.
    check_feeds: bool = True

    @classmethod
    def availability(cls) -> tuple[bool, str]:
        """Whether this backend can run on this machine, and why not if it cannot.

        Must be cheap and must not import heavy optional packages it does not need to.
        """
        return True, "available"

    @classmethod
    @abstractmethod
    def from_source(cls, source: NetworkSource, **options: Any) -> Engine:
        """Build or load the engine for ``source``; options are backend-specific keywords."""

    @property
    @abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The engine's inputs."""

    @property
    @abstractmethod
    def output_specs(self) -> list[TensorSpec]:
        """The engine's outputs."""

    @abstractmethod
    def infer_unchecked(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network on a feed already known to match ``input_specs``."""

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network on one feed of named inputs; ``EngineError`` on a bad feed."""
        if self.check_feeds:
            check_feed(feed, self.input_specs, engine=self.name)
        return self.infer_unchecked(feed)

    def close(self) -> None:
        """Release the engine's memory (idempotent)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_feed(
    feed: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], *, engine: str | None = None
) -> None:
    """Raise ``EngineError`` naming the input, expected and got, unless ``feed`` matches ``specs``.

    Every spec needs an array of exactly its shape and dtype; extra names are an error too
    (a misspelt input would otherwise be silently replaced by nothing).
    """
    expected_names = [s.name for s in specs]
    missing = [n for n in expected_names if n not in feed]
    if missing:
        raise EngineError(
            f"feed lacks input(s) {missing}",
            engine=engine,
            expected=expected_names,
            got=sorted(feed),
        )
    extra = sorted(set(feed) - set(expected_names))
    if extra:
        raise EngineError(
            f"feed has unknown input(s) {extra}",
            engine=engine,
            expected=expected_names,
        )
    for spec in specs:
        array = feed[spec.name]
        if not isinstance(array, np.ndarray):
            raise EngineError(
                f"input {spec.name!r} must be a numpy array",
                engine=engine,
                input=spec.name,
                got=type(array).__name__,
            )
        if tuple(array.shape) != tuple(spec.shape) or array.dtype != np.dtype(spec.dtype):
            raise EngineError(
                f"input {spec.name!r} has the wrong shape or dtype",
                engine=engine,
                input=spec.name,
                expected=f"{tuple(spec.shape)} {np.dtype(spec.dtype).name}",
                got=f"{tuple(array.shape)} {array.dtype.name}",
            )


def check_specs_match(
    declared: Sequence[TensorSpec], found: Sequence[TensorSpec], *, what: str, where: str
) -> None:
    """Raise ``EngineError`` unless the ``found`` specs (from a file) equal the ``declared`` ones.

    Names, order-independent; shapes and dtypes exactly. ``what`` is "input" or "output",
    ``where`` names the file or engine the ``found`` specs come from.
    """
    declared_by_name = {s.name: s for s in declared}
    found_by_name = {s.name: s for s in found}
    if set(declared_by_name) != set(found_by_name):
        raise EngineError(
            f"{what} names of {where} differ from the declared specs",
            declared=sorted(declared_by_name),
            found=sorted(found_by_name),
        )
    for name, spec in declared_by_name.items():
        other = found_by_name[name]
        if tuple(other.shape) != tuple(spec.shape) or np.dtype(other.dtype) != np.dtype(spec.dtype):
            raise EngineError(
                f"{what} {name!r} of {where} differs from its declared spec",
                expected=f"{tuple(spec.shape)} {np.dtype(spec.dtype).name}",
                got=f"{tuple(other.shape)} {np.dtype(other.dtype).name}",
            )
