"""The sensor contract: what every sensor plugin, built-in or third-party, implements.

A sensor has two halves. ``decode`` turns one :class:`RawRecord` into a :class:`SensorMessage`
(cheaply: a numpy view of the recorded bytes where the format allows) and ``preprocess`` turns
a message into the model inputs it declares with ``tensor_specs``. Both are on the per-message
path and are called directly by the runtime, never through a hook.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.messages import RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option, resolve_options

if TYPE_CHECKING:  # the calibration package imports the runtime, not the other way round
    from fusionrt.calibration.rig import Rig


class Modality(str, enum.Enum):
    """What kind of data a sensor produces; the model masks inputs per modality."""

    CAMERA = "camera"
    LIDAR = "lidar"
    RADAR = "radar"
    TEXT = "text"
    CAN = "can"
    OTHER = "other"


class NonFinitePolicy(str, enum.Enum):
    """What a sensor does with NaN / inf values in its payload (checked by the conformance kit).

    ``DROP``: the affected elements are removed or zeroed, outputs are finite.
    ``RAISE``: ``preprocess`` raises :class:`~fusionrt.DecodeError`.
    ``NOT_APPLICABLE``: the payload cannot hold non-finite values (images, text).
    """

    DROP = "drop"
    RAISE = "raise"
    NOT_APPLICABLE = "not_applicable"


@dataclass(slots=True)
class PreprocessContext:
    """What ``preprocess`` may use besides the message: the model's geometry and the rig.

    ``sensor_names`` lists the rig names of the sensor instances whose messages arrive (several
    cameras batch into one tensor). ``reference_stamp_ns`` is the fused frame's stamp.
    ``ego_poses`` optionally maps stamps to 4×4 ego → world poses for motion compensation.
    """

    geometry: ModelGeometry = field(default_factory=ModelGeometry)
    rig: Rig | None = None
    sensor_names: Sequence[str] = ()
    reference_stamp_ns: int | None = None
    ego_poses: Any = None
    cache: dict[str, Any] = field(default_factory=dict)


class Sensor(ABC):
    """Base class of sensor plugins.

    Class attributes: ``name`` is the component name used in pipeline files (``camera``),
    ``modality`` says what it produces, ``nonfinite`` declares its NaN/inf handling,
    ``option_specs`` the options it takes (name → :class:`~fusionrt.runtime.options.Option`:
    default, type, bounds; none by default). An instance is bound to one rig sensor
    (``instance``, e.g. ``cam_front``) and one topic; its checked options, defaults filled in,
    are :attr:`options`.
    """

    name: ClassVar[str]
    modality: ClassVar[Modality]
    nonfinite: ClassVar[NonFinitePolicy] = NonFinitePolicy.DROP
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType({})

    def __init__(self, instance: str | None = None, topic: str = "", **options: Any) -> None:
        """Bind the sensor; ``ConfigError`` (``key`` = the option) for an unknown option or a
        value that does not fit its declaration."""
        self.instance = instance or self.name
        self.topic = topic
        self.options: dict[str, Any] = resolve_options(
            self.option_specs,
            options,
            owner=f"{self.name} sensor {self.instance!r}",
            sensor=self.instance,
        )

    @abstractmethod
    def decode(self, raw: RawRecord) -> SensorMessage:
        """Turn recorded bytes into a message; raise ``DecodeError`` naming what and where."""

    @abstractmethod
    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """The model inputs ``preprocess`` returns for this geometry (names, shapes, dtypes)."""

    @abstractmethod
    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """Turn a message into model inputs matching ``tensor_specs``.

        ``message`` is ``None`` when the sensor is missing from the frame: return zeros of the
        declared specs (the model's modality mask says the sensor is absent). Must not mutate
        the message.
        """

    def sample_records(self) -> list[RawRecord]:
        """A few valid records of this sensor's format, for the conformance kit and demos.

        Plugins override this with real sample data shipped with the package.
        """
        return []

    def default_context(self) -> PreprocessContext:
        """A context in which ``sample_records`` can be preprocessed (used by the kit)."""
        return PreprocessContext(sensor_names=(self.instance,))

    def describe(self) -> Mapping[str, Any]:
        """A short description of the instance, for listings."""
        return {"name": self.name, "modality": self.modality.value, "instance": self.instance}
