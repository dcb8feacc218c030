"""Base classes of the component kinds a plugin can contribute besides sensors.

Sources read recorded or live data, sinks write results, models own their geometry, weights and
postprocess, fusers combine several models' detections, backends run a model's network (their
base, :class:`Engine`, lives in ``fusionrt.runtime.engines.base``). Each class has a ``name``
unique within its kind; the registry checks every registered class against the base of its kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, TypeVar

import numpy as np

from fusionrt.runtime.engines.base import Engine
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.messages import Detections, Frame, RawRecord, TensorSpec
from fusionrt.runtime.options import Option, resolve_options
from fusionrt.runtime.sensor import Sensor
from fusionrt.runtime.truth import GroundTruthSource

_SourceT = TypeVar("_SourceT", bound="Source")

__all__ = ["COMPONENT_BASES", "Fuser", "Model", "Sink", "Source"]


class Source(ABC):
    """Yields :class:`RawRecord` s of a recorded drive (or a live input) in stamp order.

    A context manager: leaving the ``with`` block calls :meth:`close`.

    **A recorded source** says which paths it reads (:meth:`can_open`, described in words by
    ``opens``) and is built as ``cls(path, topics=topics)``: ``topics`` the topics the run
    needs (``None``: all). ``fusionrt run --source PATH`` opens ``PATH`` with the one
    registered source whose :meth:`can_open` says yes (``--source-kind NAME`` chooses one).
    It may give the recording's calibration (:meth:`rig`), ego poses (:meth:`ego_poses`), its
    topics (:meth:`recorded_topics`, against which the run checks the pipeline's) and ground
    truth (:meth:`ground_truth`, which the run evaluates against). A live input
    (:class:`~fusionrt.runtime.live.LiveSource`) opens no path.
    """

    name: ClassVar[str]
    #: What paths this source reads, in a few words (listed when no source can open a path).
    opens: ClassVar[str] = ""

    @classmethod
    def can_open(cls, path: Path) -> bool:
        """Whether this source reads the drive at ``path``: a cheap look at the path (names,
        a few small files), not a parse; opening may still fail on a broken drive. Must not
        raise. The default says no (a source that opens no path)."""
        return False

    @abstractmethod
    def records(self) -> Iterator[RawRecord]:
        """The records, oldest first; a streaming iterator (constant memory)."""

    def rig(self) -> Any:
        """The recording's calibration (a ``fusionrt.calibration.Rig``), ``None`` without one."""
        return None

    def ego_poses(self) -> Any:
        """Recorded ego → world poses (``stamps_ns``, ``poses`` K×4×4), ``None`` without them."""
        return None

    def recorded_topics(self) -> Collection[str] | None:
        """Every topic the recording holds, whichever were asked for; ``None`` when the source
        cannot tell (a live input): the run then cannot check the pipeline's topics."""
        return None

    def ground_truth(
        self, class_names: Sequence[str], topic: str | None = None
    ) -> GroundTruthSource | None:
        """The recording's ground truth, ``None`` without any.

        Boxes in the rig's ego frame at stamps of the common clock; ``labels`` index
        ``class_names`` (the model's), objects of other classes are left out. Ground truth in
        files is an :class:`~fusionrt.runtime.truth.IndexedGroundTruth`; ground truth among
        the recording's records a :class:`~fusionrt.runtime.truth.StreamedGroundTruth`, whose
        ``topics`` :meth:`records` yields from then on (the run hands those records to it, not
        to a sensor). ``topic`` is the pipeline's ``ground_truth.topic``: the topic to read it
        from, for a source that carries ground truth on topics (a ``ConfigError`` with ``key``
        ``ground_truth.topic`` when the recording has no such topic); other sources ignore it.
        """
        return None

    def close(self) -> None:
        """Release files and handles; called once when the run ends."""

    def __enter__(self: _SourceT) -> _SourceT:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Sink(ABC):
    """Receives every frame's detections; flushes what it wrote on ``close``.

    ``live_transport`` (optional): the name of a live source whose transport the sink speaks
    (the ``ros2`` sink: ``"ros2"``); in a pipeline whose ``live:`` section uses that source,
    the sink's options default to that section's, so both share one session.
    """

    name: ClassVar[str]
    live_transport: ClassVar[str | None] = None

    @abstractmethod
    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Write one frame's results."""

    def close(self) -> None:
        """Flush and close; called once, also on Ctrl-C."""


class Model(ABC):
    """A fused perception model: its geometry, its input/output specs and its postprocess.

    ``option_specs`` declares the options a pipeline file may give (``model.options``); a model
    that takes options calls ``super().__init__(**options)``, which checks them (``ConfigError``
    with ``key`` = the option) and keeps them, defaults filled in, in :attr:`options`.
    ``road_level_ego`` says that the model's geometry (BEV height range, lift heights, the
    heights it regresses) assumes the rig's ego frame on the road (ISO 8855): a run then
    refuses a rig that declares its ego elsewhere (``CalibrationError``: a lidar-centred ego
    would lift every box by the lidar's height) and warns about a rig that declares nothing.
    """

    name: ClassVar[str]
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})
    road_level_ego: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = resolve_options(
            self.option_specs, options, owner=f"model {self.name!r}"
        )

    @property
    @abstractmethod
    def geometry(self) -> ModelGeometry:
        """The geometry sensor plugins preprocess for."""

    @abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """The network's inputs."""

    @abstractmethod
    def output_specs(self) -> list[TensorSpec]:
        """The network's outputs."""

    @abstractmethod
    def postprocess(self, outputs: Mapping[str, np.ndarray], stamp_ns: int) -> Detections:
        """Turn network outputs into detections in the ego frame.

        With ``runtime.infer_workers`` > 1 this and :meth:`make_feed` run on several threads
        at once: keep no state between calls.
        """

    def make_feed(
        self, tensors: Mapping[str, np.ndarray], present: Mapping[str, bool]
    ) -> dict[str, np.ndarray]:
        """The network's feed from the sensors' tensors and the present modalities.

        ``present`` maps modality names (``camera``, ``lidar``...) to whether any sensor of that
        modality has a message in the frame. The default passes the declared inputs through
        and gives zeros for inputs no sensor produced; models with a modality mask override it.
        """
        return {
            spec.name: tensors[spec.name] if spec.name in tensors else spec.zeros()
            for spec in self.input_specs()
        }

    def explain(
        self,
        outputs: Mapping[str, np.ndarray],
        *,
        infer: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]] | None = None,
        tensors: Mapping[str, np.ndarray] | None = None,
        present: Mapping[str, bool] | None = None,
    ) -> dict[str, dict[str, float]]:
        """How much each modality contributed to this frame's ``outputs``, per measure.

        What the model can read from its own outputs (a fusion layer's weights) costs
        nothing; ``infer``, the frame's sensor ``tensors`` and ``present`` come only when the
        run asks for more (``--explain``), for measures that run the network again (masking
        one modality at a time). Called on the inference threads. Default: ``{}``.
        """
        return {}

    def contributes(self, feed: Mapping[str, np.ndarray]) -> bool:
        """Whether ``feed`` (from :meth:`make_feed`) holds sensor data the model detects from.

        With a fuser, a model that does not contribute to a frame gives ``None`` there (it is
        not run, and it is counted) rather than boxes guessed from context alone, such as a
        single-sensor model fed only the CAN bus. Default: ``True``.
        """
        return True


class Fuser(ABC):
    """Decision-level fusion: combines the detections of a pipeline's models, frame by frame.

    Constructed as ``cls(models=INSTANCE_NAMES, **options)`` (the pipeline's ``fuser:``
    options), so it can check per-model options (weights, calibrations) against the models.
    """

    name: ClassVar[str]

    @abstractmethod
    def fuse(self, detections: Mapping[str, Detections | None], stamp_ns: int) -> Detections:
        """One frame's fused detections from each model's, by model instance name.

        A model whose sensors had nothing in the frame is ``None``: it contributes nothing
        (never stale boxes). Called from several inference threads at once: keep no state
        between calls.
        """


COMPONENT_BASES: dict[str, type[Any]] = {
    "sensor": Sensor,
    "source": Source,
    "sink": Sink,
    "model": Model,
    "backend": Engine,
    "fuser": Fuser,
}
