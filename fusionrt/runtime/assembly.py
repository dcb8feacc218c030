"""Frame assembly: recorded records → decoded messages → synchronised frames → the model's feed.

This is the front half of the hot path, written once and shared by the pipeline (which runs
the preprocess groups on worker threads and times every stage) and by anything else that needs
model inputs from a recording, such as the reference model's dataset builder. Everything here
is deterministic: the same records give the same feeds.

Faults never stop the assembly: an undecodable record, a plugin that raises in ``decode`` or
``preprocess``, a ``preprocess`` result that breaks the sensor's declared tensor specs (wrong
shape or dtype: ``bad_tensor``) or holds NaN / infinity (``nonfinite_input``), a message the
synchroniser drops — each is reported once through ``on_fault`` (the signature of the
``fusionrt_sensor_fault`` hook) and counted; the sensor is then missing from that frame (zeros
plus a 0 in the model's modality mask), and the assembly goes on. A sensor named in
:attr:`FrameAssembler.quarantined` (the pipeline puts there a plugin that kept hanging) is not
called any more: its records are counted as ``quarantined``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fusionrt.runtime.errors import ConfigError, DecodeError, StampError
from fusionrt.runtime.messages import Frame, RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.metrics import LatencyRecorder
from fusionrt.runtime.sensor import PreprocessContext, Sensor
from fusionrt.runtime.sync import DropReason, Synchronizer

FaultCallback = Callable[[str, "int | None", str, str], None]
FeedBuilder = Callable[[Mapping[str, np.ndarray], Mapping[str, bool]], dict[str, np.ndarray]]


@dataclass(frozen=True, slots=True)
class SensorBinding:
    """One sensor instance of a pipeline and the topics it reads.

    ``sensor.instance`` is the sensor's rig name; it names the sensor in frames and reports.
    """

    sensor: Sensor
    topics: tuple[str, ...]

    @property
    def name(self) -> str:
        """The instance (rig) name."""
        return self.sensor.instance


@dataclass(frozen=True, slots=True)
class PreprocessGroup:
    """Sensors preprocessed by one call: one sensor, or several that batch into one tensor.

    Several instances of a plugin class with ``preprocess_batch`` (cameras) form one group;
    the first instance fills every slot of the batch.
    """

    bindings: tuple[SensorBinding, ...]

    @property
    def stage(self) -> str:
        """Timing stage name, e.g. ``preprocess.camera``."""
        return f"preprocess.{type(self.bindings[0].sensor).name}"


@dataclass(slots=True)
class AssembledFrame:
    """A synchronised frame and the model feed built from it."""

    frame: Frame
    feed: dict[str, np.ndarray]
    present: dict[str, bool]
    faults: dict[str, str] = field(default_factory=dict)


def preprocess_groups(bindings: Sequence[SensorBinding]) -> list[PreprocessGroup]:
    """Group bindings whose sensors batch together (same class with ``preprocess_batch``)."""
    groups: dict[object, list[SensorBinding]] = {}
    for binding in bindings:
        cls = type(binding.sensor)
        key: object = cls if hasattr(cls, "preprocess_batch") else binding.name
        groups.setdefault(key, []).append(binding)
    return [PreprocessGroup(tuple(members)) for members in groups.values()]


class FrameAssembler:
    """Turns a stream of :class:`RawRecord` s into :class:`AssembledFrame` s, serially.

    ``bindings`` map topics to sensor instances; ``synchronizer`` decides the frames (its
    ``on_drop`` is pointed at ``on_fault``); ``build_feed(tensors, present)`` turns the
    sensors' tensors and the present modalities into the model's feed (a model's ``make_feed``).
    """

    def __init__(
        self,
        bindings: Sequence[SensorBinding],
        synchronizer: Synchronizer,
        build_feed: FeedBuilder,
        context: PreprocessContext,
        *,
        on_fault: FaultCallback | None = None,
        recorder: LatencyRecorder | None = None,
    ) -> None:
        self.bindings = tuple(bindings)
        self._by_topic: dict[str, SensorBinding] = {}
        for binding in self.bindings:
            for topic in binding.topics:
                if topic in self._by_topic:
                    raise ConfigError(
                        f"topic {topic!r} is bound to both {self._by_topic[topic].name!r} "
                        f"and {binding.name!r}"
                    )
                self._by_topic[topic] = binding
        self._by_name = {b.name: b for b in self.bindings}
        if len(self._by_name) != len(self.bindings):
            raise ConfigError("two sensors of the pipeline share one instance name")
        self.groups = preprocess_groups(self.bindings)
        self.synchronizer = synchronizer
        self.build_feed = build_feed
        self.context = context
        if not context.sensor_names:
            context.sensor_names = tuple(self._by_name)
        self.on_fault = on_fault
        self.recorder = recorder or LatencyRecorder(enabled=False)
        self.faults: Counter[tuple[str, str]] = Counter()
        self.unrouted_topics: Counter[str] = Counter()
        self.quarantined: set[str] = set()
        self._specs = {id(g): self._group_specs(g) for g in self.groups}
        synchronizer.on_drop = self._sync_dropped

    def _group_specs(self, group: PreprocessGroup) -> dict[str, TensorSpec]:
        specs = group.bindings[0].sensor.tensor_specs(self.context)
        return {spec.name: spec for spec in specs}

    # -- faults ---------------------------------------------------------------------------

    def fault(self, sensor: str, stamp_ns: int | None, reason: str, detail: str) -> None:
        """Count and report one lost message (or a sensor missing from a frame by fault)."""
        self.faults[(sensor, reason)] += 1
        if self.on_fault is not None:
            self.on_fault(sensor, stamp_ns, reason, detail)

    def _sync_dropped(self, sensor: str, stamp_ns: int | None, reason: str, detail: str) -> None:
        self.fault(sensor, stamp_ns, str(reason), detail)

    # -- stages ---------------------------------------------------------------------------

    def decode(self, record: RawRecord) -> SensorMessage | None:
        """Decode one record with the sensor bound to its topic; ``None`` if lost (reported)."""
        binding = self._by_topic.get(record.topic)
        if binding is None:
            self.unrouted_topics[record.topic] += 1
            return None
        if binding.name in self.quarantined:
            self.fault(binding.name, record.stamp_ns, "quarantined", "its plugin kept hanging")
            return None
        sensor = binding.sensor
        try:
            with self.recorder.time(f"decode.{type(sensor).name}"):
                return sensor.decode(record)
        except StampError as exc:  # the message is readable, its stamp is not believable
            self.fault(binding.name, record.stamp_ns, DropReason.IMPLAUSIBLE_STAMP, str(exc))
        except DecodeError as exc:
            self.fault(binding.name, record.stamp_ns, "decode_error", str(exc))
        except Exception as exc:  # a plugin bug is isolated to its message
            detail = f"{type(sensor).__qualname__}.decode raised {type(exc).__name__}: {exc}"
            self.fault(binding.name, record.stamp_ns, "plugin_raised", detail)
        return None

    def synchronise(self, message: SensorMessage) -> list[Frame]:
        """Push a decoded message into the synchroniser; the frames it completes."""
        with self.recorder.time("sync"):
            return self.synchronizer.push(message)

    def preprocess_group(self, group: PreprocessGroup, frame: Frame) -> dict[str, np.ndarray]:
        """Run one group's preprocess on ``frame`` and check what it returns against the
        sensor's tensor specs; a plugin that raises or breaks its specs yields its zeros."""
        first = group.bindings[0].sensor
        try:
            with self.recorder.time(group.stage):
                if len(group.bindings) > 1 or hasattr(first, "preprocess_batch"):
                    batch = {b.name: frame.messages.get(b.name) for b in group.bindings}
                    outputs = dict(first.preprocess_batch(batch, self.context))  # type: ignore[attr-defined]
                else:
                    outputs = dict(
                        first.preprocess(frame.messages.get(first.instance), self.context)
                    )
        except Exception as exc:  # isolate the plugin: its inputs are zeros, the frame goes on
            detail = f"{type(first).__qualname__}.preprocess raised {type(exc).__name__}: {exc}"
            return self.mask_group(group, frame, "plugin_raised", detail)
        problem = self._check_outputs(group, outputs)
        if problem is not None:
            return self.mask_group(group, frame, *problem)
        return outputs

    def _check_outputs(
        self, group: PreprocessGroup, outputs: Mapping[str, np.ndarray]
    ) -> tuple[str, str] | None:
        """``(reason, detail)`` when ``outputs`` break the group's specs or are not finite."""
        specs = self._specs[id(group)]
        stage = type(group.bindings[0].sensor).__qualname__
        if set(outputs) != set(specs):
            return "bad_tensor", (
                f"{stage}.preprocess returned inputs {sorted(outputs)}, declared {sorted(specs)}"
            )
        for name, spec in specs.items():
            array = outputs[name]
            if not isinstance(array, np.ndarray) or not spec.matches(array):
                got = (
                    f"{array.dtype} {tuple(array.shape)}"
                    if isinstance(array, np.ndarray)
                    else type(array).__name__
                )
                return "bad_tensor", (
                    f"{stage}.preprocess returned {name} as {got}, declared "
                    f"{spec.dtype} {tuple(spec.shape)}"
                )
            # one reduction per input: NaN and infinity propagate through a float64 sum
            if array.dtype.kind == "f" and not math.isfinite(float(array.sum(dtype=np.float64))):
                bad = int(array.size - np.count_nonzero(np.isfinite(array)))
                if bad:
                    return "nonfinite_input", (
                        f"{stage}.preprocess returned {name} with {bad} NaN or infinite values"
                    )
        return None

    def mask_group(
        self, group: PreprocessGroup, frame: Frame, reason: str, detail: str
    ) -> dict[str, np.ndarray]:
        """Mark the group's sensors missing from ``frame`` for ``reason`` (reported once per
        sensor that had a message) and return the group's zeros."""
        for binding in group.bindings:
            if frame.messages.get(binding.name) is not None:
                frame.missing[binding.name] = reason
                frame.messages[binding.name] = None
                self.fault(binding.name, frame.stamp_ns, reason, detail)
        return {name: spec.zeros() for name, spec in self._specs[id(group)].items()}

    def gather(
        self, frame: Frame, tensors_by_group: Sequence[Mapping[str, np.ndarray]]
    ) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
        """The groups' tensors merged, and which modalities have a message in ``frame``."""
        tensors: dict[str, np.ndarray] = {}
        for outputs in tensors_by_group:
            tensors.update(outputs)
        present: dict[str, bool] = {}
        for binding in self.bindings:
            modality = binding.sensor.modality.value
            here = frame.messages.get(binding.name) is not None
            present[modality] = present.get(modality, False) or here
        return tensors, present

    def assemble(
        self, frame: Frame, tensors_by_group: Sequence[Mapping[str, np.ndarray]]
    ) -> AssembledFrame:
        """Merge the groups' tensors into the model feed, with the present modalities."""
        tensors, present = self.gather(frame, tensors_by_group)
        feed = self.build_feed(tensors, present)
        return AssembledFrame(frame, feed, present, dict(frame.missing))

    def preprocess(self, frame: Frame) -> AssembledFrame:
        """All groups of ``frame``, serially, then the feed."""
        return self.assemble(frame, [self.preprocess_group(g, frame) for g in self.groups])

    # -- the whole front half -------------------------------------------------------------

    def push(self, record: RawRecord) -> list[AssembledFrame]:
        """One record in; the frames it completes, assembled."""
        message = self.decode(record)
        if message is None:
            return []
        return [self.preprocess(frame) for frame in self.synchronise(message)]

    def flush(self) -> list[AssembledFrame]:
        """End of input: the frames the synchroniser can still form, assembled."""
        return [self.preprocess(frame) for frame in self.synchronizer.flush()]
