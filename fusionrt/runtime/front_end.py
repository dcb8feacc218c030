"""Building a run's front end from a pipeline file: plugins, sensors, model, source, rig,
ground truth and the synchroniser, assembled into a
:class:`~fusionrt.runtime.assembly.FrameAssembler`.

Shared by the pipeline (``fusionrt run``) and by tools that need the model's feeds from a
recording (INT8 calibration). Every mistake is a :class:`ConfigError` naming the pipeline file
and the key (``sensors.cam_front.options``, ``model.name``...). Nothing is left to fail
silently later: the drive is opened by the source that can read it
(:mod:`~fusionrt.runtime.source_select`), a sensor topic the recording lacks is an error at
``sensors.NAME.topic`` with the nearest recorded topic, a run without a rig is an error unless
the pipeline says ``sensors_in_ego_frame: true``, and a model whose geometry assumes a
road-level ego refuses a rig whose ego is elsewhere (``CalibrationError``) and warns about one
that does not say.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionrt.runtime.assembly import FaultCallback, FrameAssembler, SensorBinding
from fusionrt.runtime.components import Model, Source
from fusionrt.runtime.config import ComponentConfig, PipelineConfig
from fusionrt.runtime.errors import ConfigError, FusionError, PluginError, SourceError
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import CLASS_NAMES
from fusionrt.runtime.registry import PluginInfo, Registry
from fusionrt.runtime.sensor import PreprocessContext, Sensor
from fusionrt.runtime.source_select import open_source
from fusionrt.runtime.sync import LatestSpec, Synchronizer
from fusionrt.runtime.truth import GroundTruthSource, StreamedGroundTruth

__all__ = [
    "FrontEnd",
    "LiveSources",
    "build_front_end",
    "component_class",
    "open_live_sources",
    "open_source",
    "register_config_plugins",
]

logger = logging.getLogger("fusionrt.front_end")


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


@dataclass
class FrontEnd:
    """The components in front of the engine, built from a pipeline file and a drive.

    ``ground_truth`` is the drive's (``None`` without any, in a live run, or when not asked for).
    ``models`` are the pipeline's models by instance name; ``model`` is the first.
    """

    model: Model
    sensors: list[Sensor]
    source: Source
    rig: Any
    assembler: FrameAssembler
    ground_truth: GroundTruthSource | None = None
    models: dict[str, Model] = field(default_factory=dict)


def build_front_end(
    config: PipelineConfig,
    drive: Path | None,
    registry: Registry,
    *,
    ground_truth: bool = True,
    on_fault: FaultCallback | None = None,
    on_stale: Callable[[str, int | None, int], None] | None = None,
    source_kind: str | None = None,
) -> FrontEnd:
    """Model, sensors, source, rig, ground truth (if ``ground_truth``) and the frame assembler
    of ``config`` on ``drive``: decode → synchronise → preprocess → feed.

    ``drive`` is opened by the registered source that can read it, or by the source named
    ``source_kind`` (:func:`~fusionrt.runtime.source_select.open_source`). ``drive`` ``None``
    builds a live run (``fusionrt serve``): the sensors' live sources
    (:func:`open_live_sources`) and the rig of the pipeline's ``rig:`` key. Shared by
    :class:`Pipeline` and by tools that need the model's feeds from a recording (INT8
    calibration). The caller closes ``source``.
    """
    register_config_plugins(registry, config)
    sensors = [_sensor(registry, config, i) for i in range(len(config.sensors))]
    models = _models(registry, config)
    model = next(iter(models.values()))
    if drive is None:
        if config.rig is None and not config.sensors_in_ego_frame:
            raise ConfigError(
                "a live run needs the pipeline's rig (there is no drive folder to take it from), "
                "or sensors_in_ego_frame: true",
                file=str(config.path),
                key="rig",
            )
        source: Source = open_live_sources(config, registry)
    else:
        topics = [t for s in config.sensors for t in s.topics]
        source = open_source(drive, registry, topics, source_kind)
    try:
        recorded = source.recorded_topics()
        _check_topics(config, recorded)
        rig = _rig(config, source, model)
        truth = None
        # a drive with no topic at all is empty or broken, not misconfigured: the run says so
        if ground_truth and drive is not None and (recorded is None or recorded):
            truth = _ground_truth(config, source, model)
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
    return FrontEnd(model, sensors, source, rig, assembler, truth, models)


def _models(registry: Registry, config: PipelineConfig) -> dict[str, Model]:
    """The pipeline's models by instance name; several must share one geometry (their
    sensors' tensors are preprocessed once, for all of them)."""
    single = len(config.models) == 1 and config.fuser is None
    models: dict[str, Model] = {}
    for mc in config.models:
        key = "model" if single else f"models.{mc.instance}"
        cls = component_class(registry, config, "model", mc.name, f"{key}.name")
        try:
            models[mc.instance] = cls(**dict(mc.options))
        except (FusionError, TypeError) as exc:
            raise _option_error(exc, config, f"{key}.options") from None
        first = next(iter(models.values()))
        if models[mc.instance].geometry != first.geometry:
            raise ConfigError(
                f"model {mc.instance!r} declares another geometry (BEV grid, image size) than "
                f"{next(iter(models))!r}: models of one pipeline share one preprocessing, so "
                "they must share one geometry",
                file=str(config.path),
                key=f"{key}.name",
            )
    return models


def _check_topics(config: PipelineConfig, recorded: Collection[str] | None) -> None:
    """A sensor topic the recording lacks is a ConfigError at its key, with the nearest
    recorded topic (a typo would otherwise mask the sensor in every frame)."""
    if not recorded:  # unknown (a live input), or an empty or broken drive: reported later
        return
    known = sorted(recorded)
    # a topic another sensor reads is not the one this sensor meant
    free = sorted(set(known).difference(t for s in config.sensors for t in s.topics))
    for sc in config.sensors:
        for index, topic in enumerate(sc.topics):
            if topic in recorded:
                continue
            hint = difflib.get_close_matches(topic, free, n=1)
            if hint:
                more = f"; did you mean {hint[0]!r}?"
            else:
                more = f"; it has {', '.join(known[:12])}" + (", ..." if len(known) > 12 else "")
            single = len(sc.topics) == 1
            key = f"sensors.{sc.name}.topic" if single else f"sensors.{sc.name}.topics[{index}]"
            raise ConfigError(
                f"the drive has no topic {topic!r}{more}", file=str(config.path), key=key
            )


def _rig(config: PipelineConfig, source: Source, model: Model) -> Any:
    """The run's rig: the pipeline's ``rig:``, else the drive's; none only when the pipeline
    says ``sensors_in_ego_frame: true``. Checked against the model's ego convention."""
    if config.sensors_in_ego_frame:
        return None
    if config.rig is not None:
        from fusionrt.calibration.rig import Rig  # noqa: PLC0415

        rig = Rig.load(config.rig)
    else:
        rig = source.rig()
    if rig is None:
        raise ConfigError(
            f"no rig: the drive has none ({source.name}) and the pipeline names none. Without "
            "one, lidar points stay in the lidar's frame and cameras cannot be projected: give "
            "rig: PATH, or say sensors_in_ego_frame: true if the data needs no calibration",
            file=str(config.path),
            key="rig",
        )
    if model.road_level_ego:
        where = f"model {config.model.name!r}"
        if not rig.require_road_level(where):
            logger.warning(
                "%s assumes the ego frame on the road, but the rig %s does not declare "
                "ego_height_m: detections are off by the height of its origin if that is not "
                "on the road",
                where,
                rig.source or "of the drive",
            )
    return rig


def _ground_truth(config: PipelineConfig, source: Source, model: Model) -> GroundTruthSource | None:
    """The drive's ground truth for the model's classes; the pipeline's ``ground_truth.topic``
    must name a topic it comes from."""
    class_names = tuple(getattr(model, "class_names", ()) or CLASS_NAMES)
    topic = config.ground_truth_topic
    try:
        truth = source.ground_truth(class_names, topic=topic)
    except ConfigError as exc:
        raise ConfigError(
            exc.message, file=str(config.path), key=exc.context.get("key", "ground_truth.topic")
        ) from None
    if topic is not None and not (isinstance(truth, StreamedGroundTruth) and topic in truth.topics):
        raise ConfigError(
            f"the drive has no ground truth on topic {topic!r} (source {source.name!r}"
            + (" reads its ground truth from the drive's files" if truth is not None else "")
            + ")",
            file=str(config.path),
            key="ground_truth.topic",
        )
    return truth


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
