"""Building a run's front end from a pipeline file: plugins, sensors, model, source, rig and
the synchroniser, assembled into a :class:`~fusionrt.runtime.assembly.FrameAssembler`.

Shared by the pipeline (``fusionrt run``) and by tools that need the model's feeds from a
recording (INT8 calibration). Every mistake is a :class:`ConfigError` naming the pipeline file
and the key (``sensors.cam_front.options``, ``model.name``...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.assembly import FaultCallback, FrameAssembler, SensorBinding
from fusionrt.runtime.components import Model, Source
from fusionrt.runtime.config import ComponentConfig, PipelineConfig
from fusionrt.runtime.errors import ConfigError, FusionError, PluginError, SourceError
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.registry import PluginInfo, Registry
from fusionrt.runtime.sensor import PreprocessContext, Sensor
from fusionrt.runtime.sync import LatestSpec, Synchronizer
from fusionrt.runtime.truth import GroundTruthBoxes

__all__ = [
    "FrontEnd",
    "LiveSources",
    "build_front_end",
    "component_class",
    "decode_ground_truth",
    "open_live_sources",
    "open_source",
    "register_config_plugins",
]


def register_config_plugins(registry: Registry, config: PipelineConfig) -> None:
    """Register the modules listed under ``plugins:`` (skipping those already registered)."""
    import importlib  # noqa: PLC0415

    known = {p.name for p in registry.plugins()}
    for index, module_name in enumerate(config.plugins):
        if module_name in known:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"cannot import plugin module: {exc}",
                file=str(config.path),
                key=f"plugins[{index}]",
            ) from None
        registry.register(module, PluginInfo(module_name, "fusionrt", "", None, module_name))


def open_source(path: Path, registry: Registry, topics: Sequence[str] | None) -> Source:
    """The drive at ``path``: a ROS 2 bag folder or file, or a drive folder holding ``bag/``;
    only ``topics`` of it (``None``: all)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("no drive at this path", path=str(path))
    bag = path
    if path.is_dir() and (path / "bag").is_dir() and not (path / "metadata.yaml").exists():
        bag = path / "bag"
    is_bag = bag.suffix in (".mcap", ".db3") or (bag.is_dir() and (bag / "metadata.yaml").exists())
    if not is_bag:
        raise ConfigError(
            "cannot tell what kind of drive this is (expected a ROS 2 bag folder, an .mcap or "
            ".db3 file, or a folder holding bag/)",
            path=str(path),
        )
    cls = registry.component("source", "rosbag").cls
    source: Source = cls(bag, topics=None if topics is None else list(topics))
    return source


def component_class(
    registry: Registry, config: PipelineConfig, kind: str, name: str, key: str
) -> Any:
    """The class registered as ``kind`` ``name``; a ConfigError at ``key`` if there is none."""
    try:
        return registry.component(kind, name).cls
    except PluginError as exc:
        raise ConfigError(str(exc), file=str(config.path), key=key) from None


def _sensor(registry: Registry, config: PipelineConfig, index: int) -> Sensor:
    sc = config.sensors[index]
    key = f"sensors.{sc.name}"
    cls = component_class(registry, config, "sensor", sc.plugin, f"{key}.plugin")
    try:
        sensor: Sensor = cls(sc.name, sc.topics[0], **dict(sc.options))
    except (FusionError, TypeError) as exc:
        raise _option_error(exc, config, f"{key}.options") from None
    return sensor


def _option_error(exc: Exception, config: PipelineConfig, options_key: str) -> ConfigError:
    """A component constructor's error as a ConfigError at ``options_key`` — down to the
    option itself when the error names it (``exc.context["key"]``)."""
    if isinstance(exc, FusionError):
        option = exc.context.get("key")
        key = options_key if option is None else f"{options_key}.{option}"
        return ConfigError(exc.message, file=str(config.path), key=key)
    return ConfigError(str(exc), file=str(config.path), key=options_key)


def _synchronizer(
    config: PipelineConfig, rig: Any, on_stale: Callable[[str, int | None, int], None] | None
) -> Synchronizer:
    sync = config.sync
    names = config.sensor_names()
    latest = {name: LatestSpec(**dict(params)) for name, params in sync.latest.items()}
    primary = [n for n in names if n not in latest]
    if not primary:
        raise ConfigError(
            "every sensor is a latest stream; at least one must drive the frames",
            file=str(config.path),
            key="sync.latest",
        )
    offsets = {}
    if rig is not None:
        offsets = {n: rig.sensors[n].time_offset_ns for n in names if n in rig.sensors}
    options: dict[str, Any] = {
        "latest": latest or None,
        "time_offsets_ns": offsets,
        "expected_periods_ns": dict(sync.expected_periods_ns),
        "on_stale": on_stale,
    }
    params = dict(sync.parameters)
    try:
        if sync.policy == "approximate_time":
            return Synchronizer.approximate_time(
                primary, reference=sync.reference, **params, **options
            )
        return Synchronizer.collector(primary, reference=sync.reference, **params, **options)
    except (FusionError, ValueError) as exc:
        raise ConfigError(str(exc), file=str(config.path), key="sync") from None


def decode_ground_truth(record: RawRecord, class_names: Sequence[str]) -> GroundTruthBoxes:
    """The simulator's ground-truth message (``fusionrt_msgs/msg/GroundTruth``) as boxes."""
    from fusionrt.plugins.ros_types import typestore  # noqa: PLC0415

    msg: Any = typestore().deserialize_cdr(bytes(record.data), record.msgtype)
    stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    boxes, labels, visibility = [], [], []
    for actor in msg.actors:
        visibility.append(float(getattr(actor, "visibility", 1.0)))
        name = actor.class_name or ""
        label = class_names.index(name) if name in class_names else int(actor.class_id)
        c, s = actor.center, actor.size
        boxes.append([c.x, c.y, c.z, s.x, s.y, s.z, actor.yaw])
        labels.append(label)
    return GroundTruthBoxes(
        stamp,
        np.asarray(boxes, np.float32).reshape(-1, 7),
        np.asarray(labels, np.int64),
        np.asarray(visibility, np.float32),
    )


@dataclass
class FrontEnd:
    """The components in front of the engine, built from a pipeline file and a drive."""

    model: Model
    sensors: list[Sensor]
    source: Source
    rig: Any
    assembler: FrameAssembler


def build_front_end(
    config: PipelineConfig,
    drive: Path | None,
    registry: Registry,
    *,
    ground_truth: bool = True,
    on_fault: FaultCallback | None = None,
    on_stale: Callable[[str, int | None, int], None] | None = None,
) -> FrontEnd:
    """Model, sensors, source (with the ground-truth topic if ``ground_truth``), rig and the
    frame assembler of ``config`` on ``drive``: decode → synchronise → preprocess → feed.

    ``drive`` ``None`` builds a live run (``fusionrt serve``): the sensors' live sources
    (:func:`open_live_sources`) and the rig of the pipeline's ``rig:`` key, which is then
    required. Shared by :class:`Pipeline` and by tools that need the model's feeds from a
    recording (INT8 calibration). The caller closes ``source``.
    """
    register_config_plugins(registry, config)
    sensors = [_sensor(registry, config, i) for i in range(len(config.sensors))]
    model_cls = component_class(registry, config, "model", config.model.name, "model.name")
    try:
        model: Model = model_cls(**dict(config.model.options))
    except (FusionError, TypeError) as exc:
        raise _option_error(exc, config, "model.options") from None
    if drive is None:
        if config.rig is None:
            raise ConfigError(
                "a live run needs the pipeline's rig (there is no drive folder to take it from)",
                file=str(config.path),
                key="rig",
            )
        source: Source = open_live_sources(config, registry)
    else:
        topics = [t for s in config.sensors for t in s.topics]
        if ground_truth and config.ground_truth_topic:
            topics.append(config.ground_truth_topic)
        source = open_source(drive, registry, topics)
    try:
        if config.rig is not None:
            from fusionrt.calibration.rig import Rig  # noqa: PLC0415

            rig = Rig.load(config.rig)
        else:
            rig = source.rig()
        context = PreprocessContext(
            geometry=model.geometry,
            rig=rig,
            sensor_names=config.sensor_names(),
            ego_poses=source.ego_poses(),
        )
        bindings = [
            SensorBinding(sensor, sc.topics)
            for sensor, sc in zip(sensors, config.sensors, strict=True)
        ]
        assembler = FrameAssembler(
            bindings,
            _synchronizer(config, rig, on_stale),
            model.make_feed,
            context,
            on_fault=on_fault,
        )
    except BaseException:
        source.close()
        raise
    return FrontEnd(model, sensors, source, rig, assembler)


class LiveSources(LiveSource):
    """The live sources of one run, started and closed together into one inbox."""

    name = "live"

    def __init__(self, sources: Sequence[LiveSource]) -> None:
        super().__init__([t for source in sources for t in source.topics])
        self.sources = tuple(sources)

    def start(self, inbox: RecordInbox) -> None:
        """Start every source into ``inbox``."""
        for source in self.sources:
            source.start(inbox)

    def close(self) -> None:
        """Close every source (one failing close does not keep the others open)."""
        super().close()
        errors = []
        for source in self.sources:
            try:
                source.close()
            except Exception as exc:
                errors.append(f"{source.name}: {type(exc).__name__}: {exc}")
        if errors:
            raise SourceError(f"closing live sources failed: {'; '.join(errors)}")


def open_live_sources(config: PipelineConfig, registry: Registry) -> LiveSources:
    """The live sources of a pipeline: each sensor's own ``source``, and one source of the
    ``live:`` transport for the sensors without one (their topics together)."""
    shared: list[str] = []
    # (the key naming the source, the key of its options, the component, its topics)
    wanted: list[tuple[str, str, ComponentConfig, tuple[str, ...]]] = []
    for sc in config.sensors:
        if sc.source is None:
            shared.extend(sc.topics)
        else:
            key = f"sensors.{sc.name}.source"
            wanted.append((f"{key}.name", f"{key}.options", sc.source, sc.topics))
    if shared:
        if config.live is None:
            raise ConfigError(
                "a live run needs a live: section (or a source for every sensor)",
                file=str(config.path),
                key="live",
            )
        transport = ComponentConfig(config.live.source, config.live.options)
        wanted.insert(0, ("live.transport", "live", transport, tuple(shared)))
    sources: list[LiveSource] = []
    try:
        for name_key, options_key, component, topics in wanted:
            cls = component_class(registry, config, "source", component.name, name_key)
            if not issubclass(cls, LiveSource):
                raise ConfigError(
                    f"source {component.name!r} reads recordings, not live inputs",
                    file=str(config.path),
                    key=name_key,
                )
            try:
                sources.append(cls(topics=list(topics), **dict(component.options)))
            except (FusionError, TypeError) as exc:
                raise _option_error(exc, config, options_key) from None
    except BaseException:
        for source in sources:
            source.close()
        raise
    return LiveSources(sources)
