"""Pipeline YAML → validated, frozen configuration objects.

A pipeline file names what a run is made of (see ``examples/pipelines/sample.yaml`` and
``docs/pipeline.md``)::

    rig: rig.yaml                     # optional; relative to this file, else the drive's own
    # sensors_in_ego_frame: true      # instead of a rig: the sensors' data needs none
    plugins: [my_package.my_plugin]   # optional; modules registered for this run
    sensors:                          # rig name -> sensor plugin, topic(s) and options
      lidar_top: {plugin: lidar, topic: /sensors/lidar_top/points}
    sync:
      policy: collector               # approximate_time | collector
      reference: lidar_top
      tolerance_ms: 60                # policy parameters, in ms where they are durations
      latest: {can: {max_age_ms: 200}}
    model: {name: reference, options: {}}   # or several: models + fuser (decision-level fusion)
    backend:                          # auto | onnxruntime | torch | tensorrt | a plugin's
      name: auto
      options: {}                     # for whichever backend runs
      per_backend: {onnxruntime: {intra_op_threads: 1}}   # only when that backend runs
    sinks: [{name: jsonl}, {name: mcap}, {name: video, options: {png: false}}]
    ground_truth: {topic: /ground_truth/actors}   # optional: evaluate against it
    runtime: {workers: 2, infer_workers: 1, queue_size: 4, deadline_ms: 150,
              plugin_timeout_ms: 5000, quarantine_after: 3}

Every error is a :class:`ConfigError` naming the file and the key path
(``sensors.cam_front.topic``). In the ``options`` of sensors, the model, the backend and sinks,
a string that starts with ``./`` or ``../`` is a path relative to the pipeline file and is
made absolute, so a pipeline works from any working directory. Durations in the file are
milliseconds (``*_ms``); the objects hold nanoseconds (``*_ns``) where the runtime takes them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fusionrt.runtime.errors import ConfigError, brief
from fusionrt.runtime.safe_yaml import read_yaml

SYNC_POLICIES = ("approximate_time", "collector")

#: The longest duration a file may give: its nanoseconds still fit the int64 stamps.
MAX_DURATION_MS = 1e12


@dataclass(frozen=True, slots=True)
class ComponentConfig:
    """A named component (model, backend, sink, live source) and its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """One sensor instance: its rig name, plugin, topics and plugin options, and in a live run
    the live source it reads (``None``: the pipeline's ``live:`` transport) and how many of its
    records may wait before the oldest is dropped (``None``: ``live.queue_size``)."""

    name: str
    plugin: str
    topics: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    source: ComponentConfig | None = None
    queue_size: int | None = None


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """How ``fusionrt serve`` receives: the live source that sensors without a ``source`` of
    their own read (``transport: zenoh`` is ROS 2 over Zenoh, the ``ros2`` source), its options
    (for Zenoh: ``domain_id``, ``mode``, ``connect``, ``listen``, ``multicast_scouting``), and
    how many records each topic may queue before the oldest is dropped."""

    source: str = "ros2"
    options: Mapping[str, Any] = field(default_factory=dict)
    queue_size: int = 8


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """The synchroniser: policy, reference sensor, policy keywords (ns) and latest streams."""

    policy: str
    reference: str | None
    parameters: Mapping[str, Any]
    latest: Mapping[str, Mapping[str, Any]]
    expected_periods_ns: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """The backend (``auto`` or a name), options for whichever backend runs, and options added
    only when a given backend runs (``per_backend``): with ``auto`` one file serves a CPU
    machine (ONNX Runtime threads) and a GPU one (TensorRT precision)."""

    name: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)
    per_backend: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Threads, queue bounds and the real-time deadline.

    ``workers``: preprocess threads (sensor groups run in parallel); ``infer_workers``:
    inference threads, each with its own engine instance (frames are inferred concurrently and
    written in order); ``queue_size``: frames in flight between stages (bounds memory);
    ``deadline_ms``: in real-time mode, a frame older than this (since its newest message
    arrived) when inference could start is dropped. ``plugin_timeout_ms``: the most a sensor
    plugin's ``decode`` or ``preprocess`` call may take; a call past it is abandoned (its
    message or frame loses that sensor, reported ``plugin_timeout``), and after ``quarantine_after``
    such timeouts the sensor is no longer called for the rest of the run.
    """

    workers: int = 2
    infer_workers: int = 1
    queue_size: int = 4
    deadline_ms: float = 200.0
    plugin_timeout_ms: float = 5000.0
    quarantine_after: int = 3


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One model of a pipeline: its instance name, the registered model, its options and the
    backend it runs on (``None``: the pipeline's ``backend``)."""

    instance: str
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    backend: BackendConfig | None = None


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """A validated pipeline file.

    ``models`` are the pipeline's models (one for ``model:``, several for ``models:``, whose
    detections the ``fuser`` combines); ``model`` is the first of them.
    """

    path: Path
    sensors: tuple[SensorConfig, ...]
    sync: SyncConfig
    model: ComponentConfig
    backend: BackendConfig
    sinks: tuple[ComponentConfig, ...]
    runtime: RuntimeConfig
    rig: Path | None = None
    plugins: tuple[str, ...] = ()
    ground_truth_topic: str | None = None
    live: LiveConfig | None = None
    #: The pipeline runs without a rig: its sensors' data is already in the ego frame.
    sensors_in_ego_frame: bool = False
    models: tuple[ModelConfig, ...] = ()
    fuser: ComponentConfig | None = None

    def sensor_names(self) -> tuple[str, ...]:
        """Rig names of the sensors, in file order."""
        return tuple(s.name for s in self.sensors)


class _Reader:
    """Typed access to a YAML mapping that raises ConfigErrors naming file and key path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, file=str(self.path), key=key)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, f"{key or 'the file'} must be a mapping, got {_kind(value)}")
        return {str(k): v for k, v in value.items()}

    def only(self, mapping: Mapping[str, Any], allowed: tuple[str, ...], key: str) -> None:
        unknown = sorted(set(mapping) - set(allowed))
        if unknown:
            where = f"{key}.{unknown[0]}" if key else unknown[0]
            raise self.error(where, f"unknown key {brief(unknown[0])}; known: {', '.join(allowed)}")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"{key} must be a non-empty string, got {_kind(value)}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"{key} must be true or false, got {_kind(value)}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.error(key, f"{key} must be one of {', '.join(choices)}, got {_kind(value)}")
        return str(value)

    def number(
        self,
        value: Any,
        key: str,
        *,
        minimum: float = 0.0,
        maximum: float = math.inf,
        integer: bool = False,
    ) -> Any:
        """A finite int (or float unless ``integer``) in ``[minimum, maximum]``; never a bool."""
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not minimum <= value <= maximum:
            what = "an integer" if integer else "a finite number"
            bound = f">= {minimum:g}" if maximum == math.inf else f"in [{minimum:g}, {maximum:g}]"
            raise self.error(key, f"{key} must be {what} {bound}, got {_kind(value)}")
        return value

    def duration_ns(self, value: Any, key: str) -> int:
        """Milliseconds in the file (finite, >= 0) as integer nanoseconds."""
        return round(self.number(value, key, maximum=MAX_DURATION_MS) * 1_000_000)


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {brief(value)}" if value is not None else "nothing"


#: How a policy parameter of the file becomes the Synchronizer's keyword: ``(name, value)``.
_Param = Callable[[_Reader, Any, str], Any]


def _duration(r: _Reader, value: Any, key: str) -> int:
    return r.duration_ns(value, key)


def _count(minimum: int) -> _Param:
    return lambda r, value, key: r.number(value, key, minimum=minimum, integer=True)


def _flag(r: _Reader, value: Any, key: str) -> bool:
    return r.boolean(value, key)


def _ratio(r: _Reader, value: Any, key: str) -> float:
    return float(r.number(value, key))


def _interpolation(r: _Reader, value: Any, key: str) -> str:
    return r.choice(value, key, ("hold", "linear"))


#: Per-policy parameters the file may give, each with its type and bounds.
_APPROX_PARAMS: dict[str, _Param] = {
    "queue_size": _count(1),
    "max_interval_ms": _duration,
    "age_penalty": _ratio,
}
_COLLECTOR_PARAMS: dict[str, _Param] = {
    "period_ms": _duration,
    "phase_ms": _duration,
    "tolerance_ms": _duration,
    "timeout_ms": _duration,
    "queue_size": _count(1),
    "emit_empty": _flag,
}
_LATEST_PARAMS: dict[str, _Param] = {
    "max_age_ms": _duration,
    "interpolation": _interpolation,
    "history": _count(2),
}


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read and validate a pipeline YAML file."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except ConfigError as exc:  # unreadable, not UTF-8, not YAML, an alias bomb
        raise ConfigError(f"pipeline file: {exc.message}", **exc.context) from None
    return pipeline_from_dict(data, path)


def pipeline_from_dict(data: Any, path: str | Path) -> PipelineConfig:
    """Validate an already-parsed pipeline mapping; ``path`` anchors relative paths and errors."""
    path = Path(path)
    r = _Reader(path)
    top = r.mapping(data, "")
    allowed = (
        "rig",
        "plugins",
        "sensors",
        "sync",
        "model",
        "models",
        "fuser",
        "backend",
        "sinks",
        "runtime",
        "live",
    )
    r.only(top, (*allowed, "ground_truth", "sensors_in_ego_frame"), "")
    rig = None
    if top.get("rig") is not None:
        rig = (path.parent / r.string(top["rig"], "rig")).resolve()
        if not rig.is_file():
            raise r.error("rig", f"no rig file at {rig}")
    in_ego = r.boolean(top.get("sensors_in_ego_frame", False), "sensors_in_ego_frame")
    if in_ego and rig is not None:
        raise r.error(
            "sensors_in_ego_frame",
            "sensors_in_ego_frame: true says the run needs no rig, but the file names one (rig)",
        )
    plugins_raw = top.get("plugins") or []
    if not isinstance(plugins_raw, list):
        raise r.error("plugins", "plugins must be a list of module names")
    plugins = tuple(r.string(p, f"plugins[{i}]") for i, p in enumerate(plugins_raw))
    sensors = _sensors(r, top.get("sensors"))
    names = tuple(s.name for s in sensors)
    sync = _sync(r, top.get("sync"), names)
    models, fuser = _models(r, top)
    model = ComponentConfig(models[0].name, models[0].options)
    backend = _backend(r, top.get("backend"))
    sinks_raw = top.get("sinks") or []
    if not isinstance(sinks_raw, list):
        raise r.error("sinks", "sinks must be a list of {name, options}")
    sinks = tuple(_component(r, s, f"sinks[{i}]", default=None) for i, s in enumerate(sinks_raw))
    gt = r.mapping(top.get("ground_truth"), "ground_truth")
    r.only(gt, ("topic",), "ground_truth")
    gt_topic = r.string(gt["topic"], "ground_truth.topic") if "topic" in gt else None
    return PipelineConfig(
        path=path,
        sensors=sensors,
        sync=sync,
        model=model,
        backend=backend,
        sinks=sinks,
        runtime=_runtime(r, top.get("runtime")),
        rig=rig,
        plugins=plugins,
        ground_truth_topic=gt_topic,
        live=None if top.get("live") is None else _live(r, top["live"]),
        sensors_in_ego_frame=in_ego,
        models=models,
        fuser=fuser,
    )


def _models(r: _Reader, top: Mapping[str, Any]) -> tuple[tuple[ModelConfig, ...], Any]:
    """``model:`` (one) or ``models:`` (several, instance name -> {name, options, backend},
    fused by ``fuser:``); every mistake a ConfigError at its key."""
    if ("model" in top) == ("models" in top):
        raise r.error("model", "a pipeline needs exactly one of model (one) or models (several)")
    if "model" in top:
        single = _component(r, top["model"], "model", default=None)
        if top.get("fuser") is not None:
            raise r.error("fuser", "a fuser combines several models: use models, not model")
        return (ModelConfig(single.name, single.name, single.options),), None
    raw = r.mapping(top["models"], "models")
    if not raw:
        raise r.error("models", "models names at least one model")
    models = []
    for instance, spec in raw.items():
        key = f"models.{instance}"
        d = r.mapping(spec, key)
        r.only(d, ("name", "options", "backend"), key)
        component = _component(r, {k: v for k, v in d.items() if k != "backend"}, key, default=None)
        backend = None if d.get("backend") is None else _backend(r, d["backend"], f"{key}.backend")
        models.append(ModelConfig(instance, component.name, component.options, backend))
    fuser = None
    if top.get("fuser") is not None:
        fuser = _component(r, top["fuser"], "fuser", default=None)
    elif len(models) > 1:
        raise r.error("fuser", "several models need a fuser to combine their detections")
    return tuple(models), fuser


def _anchor_paths(value: Any, base: Path) -> Any:
    """``value`` with every ``./…`` or ``../…`` string made absolute against ``base``."""
    if isinstance(value, str) and value.startswith(("./", "../")):
        return str((base / value).resolve())
    if isinstance(value, list):
        return [_anchor_paths(item, base) for item in value]
    if isinstance(value, dict):
        return {key: _anchor_paths(item, base) for key, item in value.items()}
    return value


def _options(r: _Reader, value: Any, key: str) -> MappingProxyType[str, Any]:
    """A component's options, read-only, relative paths anchored at the pipeline file."""
    return MappingProxyType(_anchor_paths(r.mapping(value, key), r.path.parent))


def _sensors(r: _Reader, value: Any) -> tuple[SensorConfig, ...]:
    sensors = r.mapping(value, "sensors")
    if not sensors:
        raise r.error("sensors", "a pipeline needs at least one sensor")
    out: list[SensorConfig] = []
    seen_topics: dict[str, str] = {}
    for name, spec in sensors.items():
        key = f"sensors.{name}"
        d = r.mapping(spec, key)
        r.only(d, ("plugin", "topic", "topics", "options", "source", "queue_size"), key)
        if "plugin" not in d:
            raise r.error(f"{key}.plugin", f"{key} needs a plugin (camera, lidar, radar...)")
        plugin = r.string(d["plugin"], f"{key}.plugin")
        if ("topic" in d) == ("topics" in d):
            raise r.error(f"{key}.topic", f"{key} needs exactly one of topic or topics")
        if "topic" in d:
            topics: tuple[str, ...] = (r.string(d["topic"], f"{key}.topic"),)
        else:
            raw = d["topics"]
            if not isinstance(raw, list) or not raw:
                raise r.error(f"{key}.topics", f"{key}.topics must be a non-empty list")
            topics = tuple(r.string(t, f"{key}.topics[{i}]") for i, t in enumerate(raw))
        for topic in topics:
            if topic in seen_topics:
                raise r.error(
                    f"{key}.topic", f"topic {topic!r} is already read by {seen_topics[topic]!r}"
                )
            seen_topics[topic] = name
        source = None
        if d.get("source") is not None:
            source = _component(r, d["source"], f"{key}.source", default=None)
        options = _options(r, d.get("options"), f"{key}.options")
        queue_size = None
        if d.get("queue_size") is not None:
            queue_size = r.number(d["queue_size"], f"{key}.queue_size", minimum=1, integer=True)
        out.append(SensorConfig(name, plugin, topics, options, source, queue_size))
    return tuple(out)


def _convert(
    r: _Reader, params: Mapping[str, Any], table: Mapping[str, _Param], key: str
) -> dict[str, Any]:
    """Each parameter checked by its table entry; ``*_ms`` become ``*_ns``."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        converted = table[name](r, value, f"{key}.{name}")
        out[name[:-3] + "_ns" if name.endswith("_ms") else name] = converted
    return out


def _per_sensor_ns(r: _Reader, value: Any, key: str, names: tuple[str, ...]) -> dict[str, int]:
    """A ``{sensor: milliseconds}`` mapping as nanoseconds, every name a pipeline sensor."""
    out: dict[str, int] = {}
    for name, ms in r.mapping(value, key).items():
        if name not in names:
            raise r.error(f"{key}.{name}", f"{name!r} is not a sensor of this pipeline")
        out[name] = r.duration_ns(ms, f"{key}.{name}")
    return out


def _sync(r: _Reader, value: Any, names: tuple[str, ...]) -> SyncConfig:
    d = r.mapping(value, "sync")
    policy = r.string(d.get("policy", "collector"), "sync.policy")
    if policy not in SYNC_POLICIES:
        raise r.error(
            "sync.policy", f"unknown policy {policy!r}; known: {', '.join(SYNC_POLICIES)}"
        )
    table = _APPROX_PARAMS if policy == "approximate_time" else _COLLECTOR_PARAMS
    common = ("policy", "reference", "latest", "expected_periods_ms")
    per_sensor = ("min_period_ms",) if policy == "collector" else ()
    r.only(d, (*common, *table, *per_sensor), "sync")
    reference = None
    if d.get("reference") is not None:
        reference = r.string(d["reference"], "sync.reference")
        if reference not in names:
            raise r.error("sync.reference", f"{reference!r} is not a sensor of this pipeline")
    params = _convert(r, {k: v for k, v in d.items() if k in table}, table, "sync")
    if "min_period_ms" in d:
        params["min_period_ns"] = _per_sensor_ns(r, d["min_period_ms"], "sync.min_period_ms", names)
    latest_raw = r.mapping(d.get("latest"), "sync.latest")
    latest: dict[str, Mapping[str, Any]] = {}
    for name, spec in latest_raw.items():
        key = f"sync.latest.{name}"
        if name not in names:
            raise r.error(key, f"{name!r} is not a sensor of this pipeline")
        if name == reference:
            raise r.error(key, "the reference sensor cannot be a latest stream")
        spec_d = r.mapping(spec, key)
        r.only(spec_d, tuple(_LATEST_PARAMS), key)
        latest[name] = MappingProxyType(_convert(r, spec_d, _LATEST_PARAMS, key))
    periods = _per_sensor_ns(r, d.get("expected_periods_ms"), "sync.expected_periods_ms", names)
    return SyncConfig(
        policy, reference, MappingProxyType(params), MappingProxyType(latest), periods
    )


def _component(r: _Reader, value: Any, key: str, *, default: str | None) -> ComponentConfig:
    if value is None and default is not None:
        return ComponentConfig(default)
    if isinstance(value, str):
        return ComponentConfig(r.string(value, key))
    d = r.mapping(value, key)
    r.only(d, ("name", "options"), key)
    if "name" not in d:
        raise r.error(f"{key}.name", f"{key} needs a name")
    name = r.string(d["name"], f"{key}.name")
    return ComponentConfig(name, _options(r, d.get("options"), f"{key}.options"))


def _backend(r: _Reader, value: Any, key: str = "backend") -> BackendConfig:
    if value is None or isinstance(value, str):
        component = _component(r, value, key, default="auto")
        return BackendConfig(component.name)
    d = r.mapping(value, key)
    per_backend_raw = r.mapping(d.get("per_backend"), f"{key}.per_backend")
    per_backend = {
        name: _options(r, options, f"{key}.per_backend.{name}")
        for name, options in per_backend_raw.items()
    }
    component = _component(
        r, {k: v for k, v in d.items() if k != "per_backend"}, key, default="auto"
    )
    return BackendConfig(component.name, component.options, MappingProxyType(per_backend))


def _runtime(r: _Reader, value: Any) -> RuntimeConfig:
    d = r.mapping(value, "runtime")
    r.only(
        d,
        (
            "workers",
            "infer_workers",
            "queue_size",
            "deadline_ms",
            "plugin_timeout_ms",
            "quarantine_after",
        ),
        "runtime",
    )
    defaults = RuntimeConfig()
    return RuntimeConfig(
        workers=r.number(
            d.get("workers", defaults.workers), "runtime.workers", minimum=1, integer=True
        ),
        infer_workers=r.number(
            d.get("infer_workers", defaults.infer_workers),
            "runtime.infer_workers",
            minimum=1,
            integer=True,
        ),
        queue_size=r.number(
            d.get("queue_size", defaults.queue_size), "runtime.queue_size", minimum=1, integer=True
        ),
        deadline_ms=float(
            r.number(
                d.get("deadline_ms", defaults.deadline_ms),
                "runtime.deadline_ms",
                minimum=1,
                maximum=MAX_DURATION_MS,
            )
        ),
        plugin_timeout_ms=float(
            r.number(
                d.get("plugin_timeout_ms", defaults.plugin_timeout_ms),
                "runtime.plugin_timeout_ms",
                minimum=1,
                maximum=MAX_DURATION_MS,
            )
        ),
        quarantine_after=r.number(
            d.get("quarantine_after", defaults.quarantine_after),
            "runtime.quarantine_after",
            minimum=1,
            integer=True,
        ),
    )


#: ``live.transport`` names: a transport, or any registered live source's own name.
LIVE_TRANSPORTS = {"zenoh": "ros2"}
_ZENOH_MODES = ("peer", "client")
_ENDPOINT = re.compile(r"^[a-z][a-z0-9-]*/\S+$")


def _live(r: _Reader, value: Any) -> LiveConfig:
    d = r.mapping(value, "live")
    transport = r.string(d.get("transport", "zenoh"), "live.transport")
    options = {k: v for k, v in d.items() if k not in ("transport", "queue_size")}
    queue_size = r.number(d.get("queue_size", 8), "live.queue_size", minimum=1, integer=True)
    if transport != "zenoh":  # a third-party live source validates its own options
        return LiveConfig(
            transport, MappingProxyType(_anchor_paths(options, r.path.parent)), queue_size
        )
    r.only(d, ("transport", "queue_size", *ZENOH_OPTIONS), "live")
    return LiveConfig(
        LIVE_TRANSPORTS[transport],
        MappingProxyType(zenoh_options(options, file=r.path, key="live")),
        queue_size,
    )


#: The options of the ``zenoh`` transport, with their defaults.
ZENOH_OPTIONS: dict[str, Any] = {
    "domain_id": 0,
    "mode": "peer",
    "connect": [],
    "listen": [],
    "multicast_scouting": False,
}


def zenoh_options(options: Mapping[str, Any], *, file: Path, key: str) -> dict[str, Any]:
    """The Zenoh transport's options with their defaults, validated (every mistake a
    ConfigError naming ``file`` and the key under ``key``)."""
    r = _Reader(file)
    out: dict[str, Any] = {**ZENOH_OPTIONS, **options}
    domain = r.number(out["domain_id"], f"{key}.domain_id", minimum=0, integer=True)
    if domain > 232:
        raise r.error(f"{key}.domain_id", f"{key}.domain_id must be 0..232, got {domain}")
    mode = out["mode"]
    if mode not in _ZENOH_MODES:
        raise r.error(f"{key}.mode", f"{key}.mode must be peer or client, got {brief(mode)}")
    for name in ("connect", "listen"):
        endpoints = out[name]
        if not isinstance(endpoints, list):
            raise r.error(f"{key}.{name}", f"{key}.{name} must be a list of endpoints")
        for index, endpoint in enumerate(endpoints):
            where = f"{key}.{name}[{index}]"
            if not isinstance(endpoint, str) or not _ENDPOINT.match(endpoint):
                raise r.error(
                    where,
                    f"{where} must be an endpoint like tcp/127.0.0.1:7447, got {brief(endpoint)}",
                )
    if not isinstance(out["multicast_scouting"], bool):
        raise r.error(
            f"{key}.multicast_scouting", f"{key}.multicast_scouting must be true or false"
        )
    out["connect"], out["listen"] = list(out["connect"]), list(out["listen"])
    return out
