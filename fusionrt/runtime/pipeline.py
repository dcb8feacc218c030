"""The hot path of ``fusionrt run``: source → decode → synchronise → preprocess → infer →
postprocess → sinks, with the stages overlapping across frames.

Threads and a pool, joined by bounded queues (``runtime.queue_size`` frames each):

* **ingest** (a daemon thread): reads the source (paced by :class:`Replay` in real-time mode),
  decodes each record and pushes it into the synchroniser (the
  :class:`~fusionrt.runtime.assembly.FrameAssembler`); each completed frame's sensor groups are
  submitted to the **preprocess pool** (``runtime.workers`` daemon threads; groups of one frame
  run in parallel, one group never runs two frames at once) and the frame is queued for
  inference;
* **infer** (``runtime.infer_workers`` threads, each with its own engine instance): waits for
  the frame's groups, builds the model feed, runs the engine and the model's postprocess;
  with several, consecutive frames are inferred at once (engines release the GIL), so the
  model's ``make_feed`` and ``postprocess`` must not keep state between calls;
* **sinks**: one thread puts the frames back in queue order and hands each to every sink, each
  sink writing on a thread of its own (:class:`~fusionrt.runtime.sink_fanout.SinkFanout`); once
  all have written a frame, in frame order, it is scored against the ground truth, its timings
  recorded (``sink`` to the last sink, ``sink.<name>`` each) and ``fusionrt_frame_done`` called;
* the **calling thread** supervises: it waits for the ingest, enforces the plugin deadline and
  turns SIGINT / SIGTERM into a stop (:mod:`fusionrt.runtime.signals`).

So frame n+1 is preprocessed while frame n is inferred and frame n−1 written. In replay mode a
full queue blocks the stage before it (nothing is dropped; frames leave in the order they were
formed, so the output does not depend on the number of workers). In real-time mode (and live)
the ingest never blocks: a frame that finds the inference queue full is dropped
(``queue_full``), and when inference could start a frame is dropped if it is older than
``runtime.deadline_ms`` since its newest message arrived (``deadline``) or if a newer frame is
already waiting (``superseded``: when the run falls behind, the oldest frames go first and the
latency stays bounded).

**Faults cost their own message or frame, never the run.** A plugin that raises, returns
tensors that break its declared specs, or returns NaN / infinity loses that sensor for that
frame (:mod:`~fusionrt.runtime.assembly`). A ``decode`` or ``preprocess`` call that overruns
``runtime.plugin_timeout_ms`` is abandoned on its daemon thread and reported ``plugin_timeout``: for
``decode`` the supervisor hands the source to a fresh ingest thread (the hung one discards its
result when it returns, if ever), for ``preprocess`` the pool replaces the thread; after
``runtime.quarantine_after`` timeouts the sensor is quarantined (:mod:`fusionrt.runtime.watchdog`
explains the choice of threads). A sink or engine that fails stops the run: the sinks are
closed (so their files are readable up to the failure), :attr:`Pipeline.result` holds the
partial result for the report, and the error is raised.

**Bounded memory.** In-flight slots bound the frames between the inference queue and the sinks;
latency samples are a fixed reservoir (:mod:`~fusionrt.runtime.metrics`); detections are
scored as they are written (:mod:`~fusionrt.runtime.truth`) and only counted, unless
``RunOptions.keep_results`` asks to keep them (the fleet does, per chunk).

Timing (monotonic ``perf_counter_ns``): per frame, ``decode.<plugin>`` (the frame's messages),
``sync_wait`` (from the arrival of its first message to the frame's completion),
``sync_hold`` (from the arrival of its newest message to its completion: the synchroniser
waiting for a later message that proves no nearer one will come),
``preprocess.<plugin>``, ``infer``, ``postprocess``, ``sink`` (handed to the sinks until the
last has written it), ``sink.<name>`` (each sink's write) and ``end_to_end`` (from the arrival
of its newest message to the detections leaving the last sink). Nothing here imports
torch: the engine is chosen by :func:`~fusionrt.runtime.engines.selection.open_engine`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.assembly import PreprocessGroup
from fusionrt.runtime.components import Fuser, Model, Sink
from fusionrt.runtime.config import BackendConfig, PipelineConfig
from fusionrt.runtime.engines.base import Engine
from fusionrt.runtime.engines.selection import open_engine, resolve_backend
from fusionrt.runtime.errors import (
    ConfigError,
    EngineError,
    FusionError,
    PluginError,
    SinkError,
    SourceError,
)
from fusionrt.runtime.evaluation import MapReport
from fusionrt.runtime.front_end import build_front_end, component_class
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.health import RunHealth, SensorHealth
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import CLASS_NAMES, Detections, Frame, RawRecord
from fusionrt.runtime.metrics import LatencyRecorder
from fusionrt.runtime.process_stats import peak_rss_mb, process_start_time
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.replay import Replay, ReplayGap
from fusionrt.runtime.sensor import Sensor
from fusionrt.runtime.signals import StopSignals
from fusionrt.runtime.sink_fanout import SinkFanout, sink_error
from fusionrt.runtime.sync.clock import WallClock
from fusionrt.runtime.sync.stamps import TimelineJump
from fusionrt.runtime.truth import GroundTruthBoxes, RunEvaluator, StreamedGroundTruth
from fusionrt.runtime.watchdog import DaemonPool, PluginHealth

__all__ = [
    "PLUGIN_TIMEOUT",
    "ROUTINE_SYNC_DROPS",
    "Pipeline",
    "RunInfo",
    "RunOptions",
    "RunResult",
]

logger = logging.getLogger("fusionrt.pipeline")

_NS_PER_MS = 1e6
_END = object()  # queue sentinel
_POLL_S = 0.05  # how often blocked threads look at the stop flag
_LIVE_TICK_S = 0.005  # a live run advances its clock at least this often while idle
_LOGGED_STALE = 3  # stale reports logged per sensor; the rest are counted
#: Ground truth within this of a frame's stamp is drawn by the sinks.
_SINK_TRUTH_TOLERANCE_NS = 50_000_000
#: Drop reasons of the synchroniser's normal work (a faster sensor's extra messages): counted
#: and reported through the hook like every loss, but logged at debug level, not as warnings.
ROUTINE_SYNC_DROPS = frozenset({"superseded", "outside_interval", "end_of_input", "reset"})
#: Fault reason of a plugin call past ``runtime.plugin_timeout_ms`` (the synchroniser's own
#: ``timeout`` means a frame's deadline passed before a sensor's message came).
PLUGIN_TIMEOUT = "plugin_timeout"


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that override or complete the pipeline file.

    ``keep_results`` keeps every frame's detections and the ground truth in the
    :class:`RunResult` (the fleet scores chunks later; a long run should not). ``source_kind``
    names the source that opens the drive (``--source-kind``; default: the one that can).
    ``duration_s``
    ends a live run after that long (``fusionrt serve --duration``). ``require_data`` makes a
    replay that reads no message of the sensors' topics a :class:`SourceError` (the fleet turns
    it off for one chunk of a drive, which a gap in the recording may leave empty).
    ``max_gap_s``: in real-time mode, the most the replay sleeps through one gap in the
    recording (the rest is skipped and reported; ``None``: sleep through it all).
    ``explain``: each frame also gets the model's costly explanations (drop-one-modality
    attribution: an extra inference per present modality), written with its detections.
    """

    backend: str | None = None
    realtime: bool = False
    rate: float = 1.0
    max_frames: int | None = None
    workers: int | None = None
    infer_workers: int | None = None
    out_dir: Path | None = None
    progress: bool | None = False
    keep_results: bool = False
    duration_s: float | None = None
    require_data: bool = True
    max_gap_s: float | None = 5.0
    source_kind: str | None = None
    explain: bool = False


@dataclass
class RunInfo:
    """What a sink may need besides each frame: given to ``sink.start(info)`` if it has one.

    ``ground_truth(stamp_ns)``: the ground truth near a stamp, if any; ``health()``: a
    snapshot of the run's counts (:class:`~fusionrt.runtime.health.RunHealth`), callable from
    any thread at any time (a live sink publishes diagnostics from it).
    """

    out_dir: Path
    rig: Any
    model: Model
    sensors: Mapping[str, Sensor]
    ground_truth: Callable[[int], GroundTruthBoxes | None]
    health: Callable[[], RunHealth]


@dataclass
class RunResult:
    """Everything the report is made of.

    ``error`` is the one-line error of a run that failed (its partial result), ``signal`` the
    number of the signal that stopped it, ``source_damage`` how many reports of the source
    lost messages of the recording (a damaged file: the run replayed the rest).
    ``detections`` / ``ground_truth`` are filled only with ``RunOptions.keep_results``
    (``ground_truth``: the ground truth each scored frame was matched with, once per stamp);
    ``detection_counts`` counts detections per class index.
    """

    frames: int
    dropped: Counter[str]
    backend: str
    drive_s: float
    wall_s: float
    startup_s: float | None
    peak_rss_mb: float
    recorder: LatencyRecorder
    faults: Counter[tuple[str, str]]
    missing: Counter[str]
    detections: list[Detections] = field(default_factory=list)
    ground_truth: list[GroundTruthBoxes] = field(default_factory=list)
    interrupted: bool = False
    class_names: tuple[str, ...] = ()
    geometry: ModelGeometry | None = None
    detection_counts: Counter[int] = field(default_factory=Counter)
    map_report: MapReport | None = None
    map_note: str = ""
    records: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    signal: int | None = None
    error: str | None = None
    source_damage: int = 0
    timeline_resets: int = 0
    stale: Counter[str] = field(default_factory=Counter)
    models_without_input: dict[str, int] = field(default_factory=dict)
    explanations: dict[str, dict[str, float]] = field(default_factory=dict)
    replay_gaps: int = 0
    replay_skipped_s: float = 0.0


@dataclass
class _Job:
    """A frame between the stages."""

    frame: Frame
    groups: list[Future[tuple[dict[str, np.ndarray], str, int] | None]]
    timings_ms: dict[str, float]
    arrival_first_ns: int
    arrival_newest_ns: int
    detections: Detections | None = None  # None when dropped at the deadline
    seq: int = 0  # place in the inference queue: the sinks see frames in this order
    sink_start_ns: int = 0  # when it was handed to the sinks


@dataclass(frozen=True)
class _LiveStats:
    """A live run's counterpart of the replay's stats: it "replays" in real time."""

    drive_s: float


class _Stopped(Exception):
    """The run stopped while a frame waited for its preprocess: the frame is dropped."""


@dataclass
class _Decoding:
    """What the ingest thread is decoding now, for the supervisor's deadline."""

    generation: int
    sensor: str
    stamp_ns: int
    started: float  # time.monotonic()


# -- the pipeline ------------------------------------------------------------------------


class Pipeline:
    """A configured run: components built from a :class:`PipelineConfig` and a drive.

    Use :meth:`run` once; it closes the source, engine and sinks when it ends (also on a
    signal or an error). ``sinks`` may be given to bypass the file's sink list (benchmarks).
    """

    def __init__(
        self,
        config: PipelineConfig,
        drive: Path | None,
        registry: Registry,
        options: RunOptions = RunOptions(),
        *,
        sinks: Sequence[Sink] | None = None,
    ) -> None:
        self.launch_time = process_start_time()
        self.config = config
        self.options = options
        self.registry = registry
        self.drive = None if drive is None else Path(drive)
        self._fault_lock = threading.Lock()
        self._logged_faults: set[tuple[str, str]] = set()
        self._source_damage = 0  # reports of the source that lost messages of the recording
        front = build_front_end(
            config,
            drive,
            registry,
            on_fault=self._fault,
            on_stale=self._stale,
            source_kind=options.source_kind,
        )
        self.model: Model = front.model
        self.sensors = front.sensors
        self.source = front.source
        self.rig = front.rig
        self.assembler = front.assembler
        self.assembler.synchronizer.on_timeline_reset = self._timeline_reset
        #: the drive's ground truth; streamed ground truth comes as records of its topics
        self.ground_truth = front.ground_truth
        self._truth_topics = frozenset(
            front.ground_truth.topics if isinstance(front.ground_truth, StreamedGroundTruth) else ()
        )
        #: a live run (``drive`` None): records arrive in an inbox, deadlines on the wall clock
        self.live = isinstance(self.source, LiveSource)
        self._realtime = options.realtime or self.live
        self._inbox: RecordInbox | None = None
        self._live_started = 0.0
        self._clock = WallClock()
        self._by_topic = {t: b for b in self.assembler.bindings for t in b.topics}
        #: several models (decision-level fusion): their detections go through the fuser
        self.models: dict[str, Model] = front.models or {config.models[0].instance: self.model}
        self.fuser: Fuser | None = None
        #: per inference thread, an engine per model (instance name)
        self.engine_sets: list[dict[str, Engine]] = []
        self.sinks: list[Sink] = []
        self.class_names = tuple(getattr(self.model, "class_names", ()) or CLASS_NAMES)
        try:
            self._watch_bad_records()
            self.infer_workers = options.infer_workers or config.runtime.infer_workers
            self.workers = options.workers or config.runtime.workers
            if self.infer_workers < 1 or self.workers < 1:
                raise ConfigError(
                    "workers and infer_workers must be at least 1",
                    workers=self.workers,
                    infer_workers=self.infer_workers,
                )
            self._model_inputs = self._sensors_of_models()
            self.engine_sets = self._open_engine_sets(options.backend)
            self.fuser = self._build_fuser()
            self.out_dir = options.out_dir or Path("out")
            self.sinks = list(sinks) if sinks is not None else self._build_sinks()
        except BaseException:
            self._abandon()
            raise
        runtime = config.runtime
        self.queue_size = runtime.queue_size
        self.deadline_ns = int(runtime.deadline_ms * _NS_PER_MS)
        self.plugin_timeout_s = runtime.plugin_timeout_ms / 1e3
        self.plugin_health = PluginHealth(runtime.quarantine_after)
        self.assembler.quarantined = self.plugin_health.quarantined
        self.recorder = LatencyRecorder()
        self.dropped: Counter[str] = Counter()
        self.missing: Counter[str] = Counter()
        self.stale_reports: Counter[str] = Counter()
        self.model_without_input: Counter[str] = Counter()
        #: --explain: every frame's drop-one-modality attribution (extra inferences)
        self.explain = options.explain
        self._explanation_sums: dict[str, dict[str, tuple[float, int]]] = {}
        self.detection_counts: Counter[int] = Counter()
        self.evaluator: RunEvaluator | None = None
        if self.ground_truth is not None:
            self.evaluator = RunEvaluator(
                self.ground_truth,
                self.model.geometry.bev,
                self.class_names,
                on_error=self._truth_error,
                keep=options.keep_results,
            )
        self.result: RunResult | None = None
        self.replay_stats: Any = None
        self._kept: list[Detections] = []
        self._drop_lock = threading.Lock()
        self._queued = 0  # frames put into the inference queue so far
        self._written = 0
        self._records_in = 0  # records of the sensors' topics read from the source
        # frames between the inference queue and the end of the sink thread: bounds memory even
        # while one inference thread is slow and the sink holds the frames that overtook it
        self._slots = threading.Semaphore(self.queue_size + self.infer_workers)
        self._group_locks = {id(g): threading.Lock() for g in self.assembler.groups}
        self._hung_groups: set[int] = set()  # groups whose abandoned call has not returned
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        # (sensor, stamp on the common clock) -> (decode ns, arrival ns, plugin name)
        self._arrivals: dict[tuple[str, int], tuple[int, int, str]] = {}
        self._first_frame_at: float | None = None
        self._started_monotonic = time.monotonic()
        self._decoded: Counter[str] = Counter()  # messages decoded per sensor
        self._last_stamp: dict[str, int] = {}
        self._ingest_done = threading.Event()
        self._generation = 0  # of the ingest thread that owns the source
        self._decoding: _Decoding | None = None
        self._watch_lock = threading.Lock()
        self._records_iter: Iterator[RawRecord] | None = None
        self._pool: DaemonPool | None = None
        self._fanout: SinkFanout | None = None

    # -- construction ---------------------------------------------------------------------

    def _watch_bad_records(self) -> None:
        """Report what the source skips (recorded sources keep a ``bad`` log)."""
        bad_log = getattr(self.source, "bad", None)
        if bad_log is not None:
            for bad in list(bad_log.records):  # reported while the source was being opened
                self._bad_record(bad)
            bad_log.callback = self._bad_record

    @property
    def engines(self) -> list[Engine]:
        """The first model's engine of each inference thread."""
        first = next(iter(self.models))
        return [engines[first] for engines in self.engine_sets]

    @property
    def engine(self) -> Engine:
        """The first model's engine of the first inference thread."""
        return self.engines[0]

    def _open_engine_sets(self, backend_override: str | None) -> list[dict[str, Engine]]:
        """An engine per model for each inference thread (each model on its own backend)."""
        config = self.config
        single = len(config.models) == 1 and config.fuser is None
        sets: list[dict[str, Engine]] = [{} for _ in range(self.infer_workers)]
        try:
            for mc in config.models:
                key = "model" if single else f"models.{mc.instance}"
                backend = mc.backend or config.backend
                backend_key = "backend" if mc.backend is None else f"{key}.backend"
                engines = self._open_engines(
                    self.models[mc.instance],
                    backend_override or backend.name,
                    backend,
                    key,
                    backend_key,
                )
                for engine_set, engine in zip(sets, engines, strict=True):
                    engine_set[mc.instance] = engine
        except BaseException:
            for engine_set in sets:
                for engine in engine_set.values():
                    engine.close()
            raise
        return sets

    def _open_engines(
        self, model: Model, name: str, backend: BackendConfig, key: str, backend_key: str
    ) -> list[Engine]:
        """``infer_workers`` engines of one model on the backend ``name``."""
        config = self.config
        network = getattr(model, "network_source", None)
        if network is None:
            raise ConfigError(
                f"model {type(model).name!r} has no network_source()",
                file=str(config.path),
                key=f"{key}.name",
            )
        for per in backend.per_backend:
            try:
                resolve_backend(per, self.registry)
            except FusionError as exc:
                raise ConfigError(
                    exc.message, file=str(config.path), key=f"{backend_key}.per_backend.{per}"
                ) from None
        source = network()
        engines: list[Engine] = []
        try:
            for _ in range(self.infer_workers):
                engines.append(
                    open_engine(
                        source,
                        name,
                        self.registry,
                        per_backend=backend.per_backend,
                        **dict(backend.options),
                    )
                )
        except ConfigError as exc:
            for engine in engines:
                engine.close()
            if "file" in exc.context:
                raise
            raise ConfigError(exc.message, file=str(config.path), **exc.context) from None
        except BaseException:
            for engine in engines:
                engine.close()
            raise
        return engines

    def _sensors_of_models(self) -> dict[str, tuple[str, ...]]:
        """Per model, the sensors (not sampled latest streams) whose tensors it takes: it
        runs on a frame only when one of them has a message in it."""
        config, context = self.config, self.assembler.context
        latest = set(config.sync.latest)
        produces = {
            b.name: {spec.name for spec in b.sensor.tensor_specs(context)}
            for b in self.assembler.bindings
            if b.name not in latest
        }
        inputs: dict[str, tuple[str, ...]] = {}
        for name, model in self.models.items():
            wanted = {spec.name for spec in model.input_specs()}
            inputs[name] = tuple(s for s, made in produces.items() if made & wanted)
            if not inputs[name] and config.fuser is not None:
                raise ConfigError(
                    f"model {name!r} takes no tensor of the pipeline's sensors",
                    file=str(config.path),
                    key=f"models.{name}",
                )
        return inputs

    def _build_fuser(self) -> Fuser | None:
        """The pipeline's fuser, given its models' instance names."""
        config = self.config
        if config.fuser is None:
            return None
        cls = component_class(self.registry, config, "fuser", config.fuser.name, "fuser.name")
        try:
            fuser: Fuser = cls(models=list(self.models), **dict(config.fuser.options))
        except (FusionError, TypeError) as exc:
            option = exc.context.get("key") if isinstance(exc, FusionError) else None
            message = exc.message if isinstance(exc, FusionError) else str(exc)
            key = "fuser.options" if option is None else f"fuser.options.{option}"
            raise ConfigError(message, file=str(config.path), key=key) from None
        return fuser

    def _build_sinks(self) -> list[Sink]:
        sinks: list[Sink] = []
        for index, sc in enumerate(self.config.sinks):
            cls = component_class(
                self.registry, self.config, "sink", sc.name, f"sinks[{index}].name"
            )
            options = dict(sc.options)
            live = self.config.live
            if live is not None and getattr(cls, "live_transport", None) == live.source:
                # a sink that speaks the live transport shares its settings (and session)
                options = {**live.options, **options}
            try:
                sinks.append(cls(out_dir=self.out_dir, **options))
            except (FusionError, TypeError) as exc:
                for sink in sinks:
                    sink.close()
                raise ConfigError(
                    str(exc), file=str(self.config.path), key=f"sinks[{index}].options"
                ) from None
            except OSError as exc:
                for sink in sinks:
                    sink.close()
                raise SinkError(
                    f"cannot create its output: {exc.strerror or exc}",
                    sink=sc.name,
                    file=exc.filename,
                ) from None
        return sinks

    def _abandon(self) -> None:
        """Close what the constructor opened before it failed (sinks, engines, source)."""
        engines = [e for engine_set in self.engine_sets for e in engine_set.values()]
        for closer in [*(s.close for s in self.sinks), *(e.close for e in engines)]:
            try:
                closer()
            except Exception as exc:  # the constructor's own error is the one to report
                logger.error("closing failed: %s: %s", type(exc).__name__, exc)
        self.source.close()

    # -- faults ---------------------------------------------------------------------------

    def _fault(self, sensor: str, stamp_ns: int | None, reason: str, detail: str) -> None:
        with self._fault_lock:
            key = (sensor, reason)
            if reason not in ROUTINE_SYNC_DROPS and key not in self._logged_faults:
                self._logged_faults.add(key)
                logger.warning(
                    "sensor %s: %s (%s); further ones are counted", sensor, reason, detail
                )
            else:
                logger.debug("sensor %s: %s (%s)", sensor, reason, detail)
            self.registry.hook.fusionrt_sensor_fault(
                sensor=sensor, stamp_ns=stamp_ns, reason=reason, detail=detail
            )

    def _stale(self, sensor: str, last_stamp_ns: int | None, now_ns: int) -> None:
        with self._fault_lock:
            self.stale_reports[sensor] += 1
            count = self.stale_reports[sensor]
            if count <= _LOGGED_STALE:  # a flapping sensor must not flood the log for hours
                more = "; further silences are counted" if count == _LOGGED_STALE else ""
                logger.warning(
                    "sensor %s is stale (last message at %s ns)%s", sensor, last_stamp_ns, more
                )
            self.registry.hook.fusionrt_sensor_stale(
                sensor=sensor, last_stamp_ns=last_stamp_ns, now_ns=now_ns
            )

    def _bad_record(self, bad: Any) -> None:
        if getattr(bad, "loses_data", True):
            self._source_damage += 1
        topic = getattr(bad, "topic", None)
        sensor = next((b.name for b in self.assembler.bindings if topic in b.topics), "source")
        self.assembler.fault(sensor, getattr(bad, "stamp_ns", None), str(bad.reason), str(bad))

    def _timed_out(self, sensor: str, stamp_ns: int | None, what: str) -> None:
        """Report one plugin call past its deadline; quarantine the sensor after repeats."""
        detail = f"{what} took longer than {self.plugin_timeout_s * 1e3:.0f} ms; result discarded"
        self.assembler.fault(sensor, stamp_ns, PLUGIN_TIMEOUT, detail)
        self._count_timeout(sensor)

    def _count_timeout(self, sensor: str) -> None:
        if self.plugin_health.timed_out(sensor):
            logger.error(
                "sensor %s: quarantined after %d timeouts; it is no longer called",
                sensor,
                self.plugin_health.timeouts[sensor],
            )

    def _fail(self, exc: BaseException) -> None:
        """Keep the run's first error and stop every stage."""
        with self._error_lock:
            if self._error is None:
                self._error = exc
        self._stop.set()

    def health(self) -> RunHealth:
        """A snapshot of the run's counts (thread-safe: copies under the GIL)."""
        faults: dict[str, dict[str, int]] = {}
        for (sensor, reason), count in dict(self.assembler.faults).items():
            faults.setdefault(sensor, {})[reason] = count
        stale = set(self.assembler.synchronizer.stale.stale)
        decoded, last = dict(self._decoded), dict(self._last_stamp)
        sensors = {
            name: SensorHealth(
                name,
                messages=decoded.get(name, 0),
                faults=faults.get(name, {}),
                last_stamp_ns=last.get(name),
                stale=name in stale,
                quarantined=self.plugin_health.is_quarantined(name),
            )
            for name in self.config.sensor_names()
        }
        e2e = self.recorder.summary().get("end_to_end", {})
        now = time.monotonic()
        return RunHealth(
            monotonic_s=now,
            uptime_s=now - self._started_monotonic,
            frames=self._written,
            dropped=dict(self.dropped),
            end_to_end_p50_ms=e2e.get("p50_ms"),
            end_to_end_p99_ms=e2e.get("p99_ms"),
            sensors=sensors,
        )

    # -- ground truth -------------------------------------------------------------------

    def ground_truth_near(
        self, stamp_ns: int, tolerance_ns: int = _SINK_TRUTH_TOLERANCE_NS
    ) -> GroundTruthBoxes | None:
        """The ground truth nearest ``stamp_ns`` (within ``tolerance_ns``), if known yet
        (the source's sorted index; a broken label file is reported, and ``None``)."""
        if self.ground_truth is None:
            return None
        try:
            return self.ground_truth.near(stamp_ns, tolerance_ns)
        except Exception as exc:  # a sink must not fail for a broken label file
            self._truth_error(stamp_ns, exc)
            return None

    def _truth_error(self, stamp_ns: int, exc: Exception) -> None:
        """Ground truth that cannot be read costs its frame's evaluation only."""
        self.assembler.fault("ground_truth", stamp_ns, "decode_error", str(exc))

    def _keep_ground_truth(self, record: RawRecord) -> None:
        """A record of streamed ground truth: decoded by the source's ground truth, scored."""
        assert self.evaluator is not None
        try:
            self.evaluator.add_record(record)
        except Exception as exc:  # a broken GT message costs its frame's evaluation only
            self._truth_error(record.stamp_ns, exc)

    # -- ingest (a daemon thread; the supervisor may hand the source to a fresh one) -------

    def _records(self) -> Iterator[RawRecord]:
        mode = "realtime" if self.options.realtime else "fast"
        return Replay(
            self.source,
            mode,
            rate=self.options.rate,
            max_gap_s=self.options.max_gap_s,
            on_gap=self._gap,
            stop_event=self._stop,  # the first signal wakes a replay sleeping through a gap
            progress=self.options.progress,
        )

    def _gap(self, gap: ReplayGap) -> None:
        logger.warning("%s", gap.describe())

    def _timeline_reset(self, jump: TimelineJump) -> None:
        if jump.from_ns is not None:  # the first timeline of the input is no reset
            logger.warning("%s", jump.describe())
            # live: the stamps moved, so the wall clock's offset into them must be learnt anew
            self._clock.reset()

    def _owns_source(self, generation: int) -> bool:
        return self._generation == generation and not self._stop.is_set()

    def _ingest(self, generation: int) -> None:
        """Read, decode and synchronise until the source ends, the run stops, or the
        supervisor gives the source to a fresh thread (``generation`` no longer current)."""
        try:
            if self._consume(generation) and self._owns_source(generation):
                self._flush()
        except BaseException as exc:
            if self._generation == generation:
                self._fail(exc)
        finally:
            if self._generation == generation:
                self._ingest_done.set()

    def _consume(self, generation: int) -> bool:
        """The records loop; ``False`` when it ended early (``max_frames`` or a stop)."""
        if self.live:
            return self._consume_live(generation)
        assert self._records_iter is not None
        for record in self._records_iter:
            arrival = time.perf_counter_ns()
            if not self._owns_source(generation):
                return False
            frames = self._take(generation, record, arrival)
            if frames is None:
                return False
            for frame in frames:
                if not self._submit(self._job(frame, time.perf_counter_ns())):
                    return False
        return True

    def _consume_live(self, generation: int) -> bool:
        """The live loop: take what arrived, or after an idle tick, advance the synchroniser
        on the wall clock so that due frames are emitted and silent sensors go stale."""
        inbox, clock = self._inbox, self._clock
        assert inbox is not None
        sync = self.assembler.synchronizer
        duration = self.options.duration_s
        ends_at = None if duration is None else time.monotonic() + duration
        while self._owns_source(generation):
            if ends_at is not None and time.monotonic() >= ends_at:
                return True
            arrival = inbox.get(_LIVE_TICK_S)
            frames: list[Frame] = []
            if arrival is not None:
                taken = self._take(generation, *arrival)
                if taken is None:
                    return False
                frames = taken
            now = clock.now_ns()
            if now is not None:
                frames.extend(sync.advance(now))
            for frame in frames:
                if not self._submit(self._job(frame, time.perf_counter_ns())):
                    return False
        return False

    def _take(self, generation: int, record: RawRecord, arrival: int) -> list[Frame] | None:
        """Decode one record (under the plugin deadline) and synchronise it; the frames it
        completes, ``None`` when this thread lost the source meanwhile."""
        if record.topic in self._truth_topics:
            self._keep_ground_truth(record)
            return []
        binding = self._by_topic.get(record.topic)
        if binding is not None:
            self._records_in += 1
            with self._watch_lock:
                self._decoding = _Decoding(
                    generation, binding.name, record.stamp_ns, time.monotonic()
                )
        message = self.assembler.decode(record)
        with self._watch_lock:
            if self._generation != generation:
                return None  # declared hung while decoding: the result is discarded
            self._decoding = None
        decode_ns = time.perf_counter_ns() - arrival
        if message is None:
            return []
        assert binding is not None
        stamp = message.stamp_ns + self.assembler.synchronizer.time_offsets_ns.get(
            message.sensor, 0
        )
        self._decoded[message.sensor] += 1
        self._last_stamp[message.sensor] = stamp
        if self.live:
            self._clock.observe(stamp, arrival)
        plugin = type(binding.sensor).name
        self._arrivals[(message.sensor, stamp)] = (decode_ns, arrival, plugin)
        self.recorder.add(f"decode.{plugin}", decode_ns)
        start = time.perf_counter_ns()
        frames = self.assembler.synchronise(message)
        self.recorder.add("sync", time.perf_counter_ns() - start)
        return frames

    def _flush(self) -> None:
        done = time.perf_counter_ns()
        for frame in self.assembler.synchronizer.flush():
            if not self._submit(self._job(frame, done)):
                return

    def _job(self, frame: Frame, done_ns: int) -> _Job:
        timings: dict[str, float] = {}
        first = newest = done_ns
        for name, message in frame.messages.items():
            if message is None:
                continue
            info = self._arrivals.get((name, message.stamp_ns))
            if info is None:
                continue
            decode_ns, arrival_ns, plugin = info
            stage = f"decode.{plugin}"
            timings[stage] = timings.get(stage, 0.0) + decode_ns / _NS_PER_MS
            first = min(first, arrival_ns)
            newest = arrival_ns if newest == done_ns else max(newest, arrival_ns)
            stale = [k for k in self._arrivals if k[0] == name and k[1] <= message.stamp_ns]
            for key in stale:
                del self._arrivals[key]
        timings["sync_wait"] = (done_ns - first) / _NS_PER_MS
        timings["sync_hold"] = (done_ns - newest) / _NS_PER_MS
        return _Job(
            frame,
            [self._start_group(g, frame) for g in self.assembler.groups],
            timings,
            first,
            newest,
        )

    def _start_group(
        self, group: PreprocessGroup, frame: Frame
    ) -> Future[tuple[dict[str, np.ndarray], str, int] | None]:
        """Submit one group's preprocess; a resolved ``None`` future when it must not run
        (every sensor quarantined, or its previous call still hung)."""
        names = [b.name for b in group.bindings]
        if id(group) in self._hung_groups or all(
            self.plugin_health.is_quarantined(n) for n in names
        ):
            skipped: Future[tuple[dict[str, np.ndarray], str, int] | None] = Future()
            skipped.set_result(None)
            return skipped
        assert self._pool is not None
        return self._pool.submit(self._preprocess, group, frame)

    def _preprocess(
        self, group: PreprocessGroup, frame: Frame
    ) -> tuple[dict[str, np.ndarray], str, int]:
        try:
            with self._group_locks[id(group)]:
                start = time.perf_counter_ns()
                tensors = self.assembler.preprocess_group(group, frame)
                return tensors, group.stage, time.perf_counter_ns() - start
        finally:
            self._hung_groups.discard(id(group))  # a call that overran has returned at last

    def _submit(self, job: _Job) -> bool:
        """Queue a frame for inference, holding one of the in-flight slots until the sink
        thread is done with it (waiting in replay mode; dropping it in real-time mode).
        ``False`` when the run must stop (``max_frames`` reached, or a stop)."""
        if not self._realtime:
            while not self._slots.acquire(timeout=_POLL_S):
                if self._stop.is_set():
                    self._drop(job, "stopped")
                    return False
        elif not self._slots.acquire(blocking=False):
            self._drop(job, "queue_full")
            return True
        job.seq = self._queued
        if self._realtime:
            try:
                self._infer_q.put_nowait(job)
            except queue.Full:
                self._slots.release()
                self._drop(job, "queue_full")
                return True
        else:
            while True:
                try:
                    self._infer_q.put(job, timeout=_POLL_S)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        self._slots.release()
                        self._drop(job, "stopped")
                        return False
        self._queued += 1
        max_frames = self.options.max_frames
        return max_frames is None or self._queued < max_frames

    def _drop(self, job: _Job, reason: str) -> None:
        for future in job.groups:
            future.cancel()
        with self._drop_lock:
            self.dropped[reason] += 1
        logger.debug("frame %d dropped: %s", job.frame.stamp_ns, reason)

    # -- supervision (the calling thread) -------------------------------------------------

    def _supervise(self) -> None:
        """Wait for the ingest; enforce the decode deadline; give up on a stop."""
        self._start_ingest()
        while not self._ingest_done.wait(_POLL_S):
            if self._stop.is_set():
                with self._watch_lock:
                    self._generation += 1  # a hung or sleeping ingest thread is left behind
                return
            with self._watch_lock:
                busy = self._decoding
                overdue = busy is not None and (
                    time.monotonic() - busy.started > self.plugin_timeout_s
                )
                if overdue:
                    self._generation += 1
                    self._decoding = None
            if overdue:
                assert busy is not None
                self._timed_out(busy.sensor, busy.stamp_ns, "decode")
                self._start_ingest()

    def _start_ingest(self) -> None:
        threading.Thread(
            target=self._ingest,
            args=(self._generation,),
            name=f"fusionrt-ingest-{self._generation}",
            daemon=True,
        ).start()

    # -- inference and sinks ----------------------------------------------------------------

    def _infer_loop(self, engines: dict[str, Engine], sink_q: queue.Queue[Any]) -> None:
        """One inference thread with its own engines; several take frames from one queue.

        Every frame goes on to the sink thread, inferred or not (dropped at the deadline, or
        after an error), so that it can keep the order and free the frame's slot.
        """
        try:
            while (job := self._infer_q.get()) is not _END:
                try:
                    if self._error is None:
                        self._infer(engines, job)
                except _Stopped:
                    self._drop(job, "stopped")
                except BaseException as exc:  # surfaced by run(); the other stages drain
                    self._fail(exc)
                sink_q.put(job)
        finally:
            sink_q.put(_END)

    def _infer(self, engines: dict[str, Engine], job: _Job) -> None:
        if self._realtime:
            if time.perf_counter_ns() - job.arrival_newest_ns > self.deadline_ns:
                self._drop(job, "deadline")
                return
            if not self._infer_q.empty():
                # behind: a newer frame waits, so this one is dropped (oldest first) and the
                # latency stays bounded instead of a backlog growing
                self._drop(job, "superseded")
                return
        tensors = [
            self._group_tensors(group, future, job)
            for group, future in zip(self.assembler.groups, job.groups, strict=True)
        ]
        merged, present = self.assembler.gather(job.frame, tensors)
        if self.fuser is None:  # one model: its detections are the frame's
            name = next(iter(self.models))
            feed = self.assembler.build_feed(merged, present)
            job.detections = self._run_model(name, engines[name], feed, job, "", merged, present)
            self._count_explanations(job.detections.explanations)
            return
        per_model: dict[str, Detections | None] = {}
        for name, model in self.models.items():
            if any(job.frame.messages.get(s) is not None for s in self._model_inputs[name]):
                feed = model.make_feed(merged, present)
                if model.contributes(feed):
                    per_model[name] = self._run_model(
                        name, engines[name], feed, job, f".{name}", merged, present
                    )
                    continue
            # its sensors have nothing in this frame, or nothing usable: no stale boxes
            per_model[name] = None
            with self._drop_lock:
                self.model_without_input[name] += 1
        start = time.perf_counter_ns()
        try:
            job.detections = self.fuser.fuse(per_model, job.frame.stamp_ns)
        except FusionError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{type(self.fuser).__qualname__}.fuse raised {type(exc).__name__}: {exc}",
                fuser=self.config.fuser.name if self.config.fuser else None,
                stamp_ns=job.frame.stamp_ns,
            ) from exc
        job.timings_ms["fuse"] = (time.perf_counter_ns() - start) / _NS_PER_MS
        fused = job.detections
        passed_through = any(fused is d for d in per_model.values())
        fused.explanations = {  # the fuser's own (if it made new detections), then each model's
            **({} if passed_through else fused.explanations),
            **{
                f"{name}/{measure}": values
                for name, detections in per_model.items()
                if detections is not None
                for measure, values in detections.explanations.items()
            },
        }
        self._count_explanations(fused.explanations)

    def _run_model(  # noqa: PLR0917  (the frame's job and tensors, all needed here)
        self,
        name: str,
        engine: Engine,
        feed: dict[str, np.ndarray],
        job: _Job,
        suffix: str,
        tensors: Mapping[str, np.ndarray],
        present: Mapping[str, bool],
    ) -> Detections:
        """One model's engine, postprocess and explanation on one frame; timings
        ``infer<suffix>``, ``postprocess<suffix>`` and, with ``--explain``,
        ``explain<suffix>``. An engine or plugin call that fails is a one-line error."""
        model = self.models[name]
        start = time.perf_counter_ns()
        try:
            outputs = engine.infer(feed)
        except FusionError:
            raise
        except Exception as exc:
            raise EngineError(
                f"inference failed: {type(exc).__name__}: {exc}",
                backend=engine.name,
                model=name if suffix else None,
                stamp_ns=job.frame.stamp_ns,
            ) from exc
        mid = time.perf_counter_ns()
        try:
            detections = model.postprocess(outputs, job.frame.stamp_ns)
        except FusionError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{type(model).__qualname__}.postprocess raised {type(exc).__name__}: {exc}",
                model=name,
                stamp_ns=job.frame.stamp_ns,
            ) from exc
        end = time.perf_counter_ns()
        job.timings_ms[f"infer{suffix}"] = (mid - start) / _NS_PER_MS
        job.timings_ms[f"postprocess{suffix}"] = (end - mid) / _NS_PER_MS
        # a fusion layer's weights cost nothing; masking modalities runs only with --explain
        try:
            if self.explain:
                detections.explanations = model.explain(
                    outputs, infer=engine.infer, tensors=tensors, present=present
                )
            else:
                detections.explanations = model.explain(outputs)
        except FusionError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{type(model).__qualname__}.explain raised {type(exc).__name__}: {exc}",
                model=name,
                stamp_ns=job.frame.stamp_ns,
            ) from exc
        if self.explain:
            job.timings_ms[f"explain{suffix}"] = (time.perf_counter_ns() - end) / _NS_PER_MS
        return detections

    def _count_explanations(self, explanations: Mapping[str, Mapping[str, float]]) -> None:
        """Add one frame's explanations to the run's sums (the report's means)."""
        if not explanations:
            return
        with self._drop_lock:
            for measure, values in explanations.items():
                sums = self._explanation_sums.setdefault(measure, {})
                for modality, value in values.items():
                    total, count = sums.get(modality, (0.0, 0))
                    sums[modality] = (total + float(value), count + 1)

    def _group_tensors(
        self,
        group: PreprocessGroup,
        future: Future[tuple[dict[str, np.ndarray], str, int] | None],
        job: _Job,
    ) -> dict[str, np.ndarray]:
        """The group's tensors for the frame, or its zeros when its call overran (reported,
        counted towards quarantine) or could not run."""
        frame = job.frame
        done = self._await_group(group, future)
        if done is not None:
            tensors, stage, duration_ns = done
            job.timings_ms[stage] = job.timings_ms.get(stage, 0.0) + duration_ns / _NS_PER_MS
            return tensors
        present = [b.name for b in group.bindings if frame.messages.get(b.name) is not None]
        reason = PLUGIN_TIMEOUT
        if present and all(self.plugin_health.is_quarantined(n) for n in present):
            reason = "quarantined"
        zeros = self.assembler.mask_group(
            group, frame, reason, f"{group.stage} did not answer within the plugin deadline"
        )
        if reason == PLUGIN_TIMEOUT:  # reported by mask_group; counted towards quarantine here
            for name in present:
                self._count_timeout(name)
        return zeros

    def _await_group(
        self, group: PreprocessGroup, future: Future[tuple[dict[str, np.ndarray], str, int] | None]
    ) -> tuple[dict[str, np.ndarray], str, int] | None:
        """The group's result, ``None`` if its call overran the plugin deadline (then
        abandoned); raises :class:`_Stopped` when the run stops meanwhile, so that shutdown
        never waits on a hung plugin."""
        deadline = time.monotonic() + self.plugin_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                return future.result(timeout=max(min(_POLL_S, remaining), 0.0))
            except FutureTimeout:
                if self._stop.is_set():
                    raise _Stopped from None
                if remaining > _POLL_S:
                    continue
            assert self._pool is not None
            self._hung_groups.add(id(group))
            self._pool.abandon(future)
            logger.debug("%s overran the plugin deadline", group.stage)
            return None

    def _order_loop(self, sink_q: queue.Queue[Any]) -> None:
        """Hand frames to the sinks in queue order: inference threads may finish them out of
        order, so early ones wait in ``pending`` (bounded by the in-flight slots, ``_slots``)."""
        assert self._fanout is not None
        pending: dict[int, _Job] = {}
        next_seq = 0
        ends = 0
        while ends < len(self.engine_sets):
            item = sink_q.get()
            if item is _END:
                ends += 1
                continue
            pending[item.seq] = item
            while next_seq in pending:
                job = pending.pop(next_seq)
                next_seq += 1
                if self._error is None and job.detections is not None:
                    job.sink_start_ns = time.perf_counter_ns()
                    self._fanout.submit(job, job.frame, job.detections, job.timings_ms)
                else:
                    self._fanout.skip(job)

    def _frame_written(
        self, job: _Job, written: bool, end_ns: int, sink_ns: dict[str, int]
    ) -> None:
        """A frame every sink has written (or skipped), in frame order: its timings, the
        evaluation, the ``fusionrt_frame_done`` hook; then its in-flight slot is freed."""
        try:
            if written:
                self._account(job, end_ns, sink_ns)
        finally:
            self._slots.release()

    def _account(self, job: _Job, end_ns: int, sink_ns: dict[str, int]) -> None:
        detections = job.detections
        assert detections is not None
        job.timings_ms["sink"] = (end_ns - job.sink_start_ns) / _NS_PER_MS
        for name, duration in sink_ns.items():
            job.timings_ms[f"sink.{name}"] = duration / _NS_PER_MS
        job.timings_ms["end_to_end"] = (end_ns - job.arrival_newest_ns) / _NS_PER_MS
        for stage, ms in job.timings_ms.items():
            if not stage.startswith("decode."):
                self.recorder.add(stage, int(ms * _NS_PER_MS))
        for name, message in job.frame.messages.items():
            if message is None:
                self.missing[name] += 1
        self._written += 1
        self.detection_counts.update(detections.labels.tolist())
        if self.evaluator is not None:
            self.evaluator.add_frame(detections)
        if self.options.keep_results:
            self._kept.append(detections)
        if self._first_frame_at is None:
            self._first_frame_at = time.time()
        self.registry.hook.fusionrt_frame_done(
            frame=job.frame, detections=detections, timings_ms=job.timings_ms
        )

    # -- the run ------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Replay the drive through the pipeline; see the module docstring.

        Returns the result; on a failure (a sink that cannot write, an engine error...) raises
        the error after closing everything, with the partial result in :attr:`result`.
        """
        started_wall = time.time()
        launch = self.launch_time if self.launch_time is not None else started_wall
        info = RunInfo(
            self.out_dir,
            self.rig,
            self.model,
            {s.instance: s for s in self.sensors},
            self.ground_truth_near,
            self.health,
        )
        self._infer_q: queue.Queue[Any] = queue.Queue(self.queue_size)
        sink_q: queue.Queue[Any] = queue.Queue(self.queue_size)
        self._pool = DaemonPool(self.workers, "fusionrt-preprocess")
        infer_threads = [
            threading.Thread(
                target=self._infer_loop, args=(engines, sink_q), name=f"fusionrt-infer-{i}"
            )
            for i, engines in enumerate(self.engine_sets)
        ]
        self._fanout = SinkFanout(self.sinks, self.queue_size, self._frame_written, self._fail)
        sink_thread = threading.Thread(
            target=self._order_loop, args=(sink_q,), name="fusionrt-sink-order"
        )
        wall_start = time.perf_counter()
        with StopSignals(self._stop) as signals:
            try:
                self._start_sinks(info)
                self.registry.hook.fusionrt_configure(config=self.config)
                for thread in [*infer_threads, sink_thread]:
                    thread.start()
                self._open_input()
                self._supervise()
            except BaseException as exc:
                self._fail(exc)
            finally:
                self._finish_threads(infer_threads, sink_thread)
                wall_s = time.perf_counter() - wall_start
                self._close()
                self.registry.hook.fusionrt_unconfigure(config=self.config)
            interrupted = signals.received is not None and self._error is None
            if (
                self._error is None
                and not interrupted
                and not self.live
                and self.options.require_data
            ):
                self._check_drive_had_data()
        self.result = self._result(wall_s, launch, interrupted, signals.received)
        if self._error is not None:
            raise self._error
        return self.result

    def _open_input(self) -> None:
        """Start reading: the replay of the drive, or the live sources into the inbox."""
        if not self.live:
            self._records_iter = self._records()
            return
        capacity = self.config.live.queue_size if self.config.live is not None else 8
        capacities = {
            topic: sc.queue_size
            for sc in self.config.sensors
            if sc.queue_size is not None
            for topic in sc.topics
        }
        self._inbox = RecordInbox(capacity, capacities=capacities, on_drop=self._inbox_dropped)
        self._live_started = time.perf_counter()
        assert isinstance(self.source, LiveSource)
        self.source.start(self._inbox)

    def _inbox_dropped(self, topic: str, reason: str, record: RawRecord) -> None:
        binding = self._by_topic.get(topic)
        sensor = binding.name if binding is not None else "source"
        self.assembler.fault(sensor, record.stamp_ns, reason, f"{topic}: {reason}")

    def _start_sinks(self, info: RunInfo) -> None:
        for sink in self.sinks:
            start = getattr(sink, "start", None)
            if start is not None:
                try:
                    start(info)
                except FusionError:
                    raise
                except Exception as exc:
                    raise sink_error(sink, exc) from exc

    def _finish_threads(
        self, infer_threads: list[threading.Thread], sink: threading.Thread
    ) -> None:
        """End the inference and sink threads (they drain what is queued) and the pool."""
        started = [t for t in infer_threads if t.is_alive()]
        for _ in started:
            self._infer_q.put(_END)
        for thread in started:
            thread.join()
        if sink.is_alive():
            sink.join()
        if self._fanout is not None:
            self._fanout.close()
        if self._pool is not None:
            self._pool.shutdown()
        if self._inbox is not None:
            self._inbox.close()
            self.replay_stats = _LiveStats(time.perf_counter() - self._live_started)
        records = self._records_iter
        if records is not None:
            self.replay_stats = getattr(records, "stats", None)
        close = getattr(records, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # e.g. still iterated by an abandoned ingest thread
                logger.debug("closing the replay: %s: %s", type(exc).__name__, exc)

    def _check_drive_had_data(self) -> None:
        if self._records_in == 0:
            topics = sorted({t for b in self.assembler.bindings for t in b.topics})
            self._fail(
                SourceError(
                    f"the drive holds no messages for the pipeline's topics ({', '.join(topics)})",
                    path=str(self.drive),
                )
            )

    def _close(self) -> None:
        """Close sinks, engines and the source; a sink that cannot finish its file fails the
        run (unless it already failed), the others are only logged."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # one failing close must not keep the others open
                error = sink_error(sink, exc)
                logger.error("%s", error)
                self._fail(error)
        engines = [e for engine_set in self.engine_sets for e in engine_set.values()]
        for closer in [*(e.close for e in engines), self.source.close]:
            try:
                closer()
            except Exception as exc:
                logger.error("closing failed: %s: %s", type(exc).__name__, exc)

    def _result(
        self, wall_s: float, launch: float, interrupted: bool, signum: int | None
    ) -> RunResult:
        stats = self.replay_stats
        report = None if self.evaluator is None else self.evaluator.finish()
        if report is not None:
            note = (
                f"nuScenes-style centre-distance mAP over {report.frames} frames with ground truth"
            )
        elif self.ground_truth is not None and self.ground_truth.count:
            note = "no frame has ground truth at its stamp"
        else:
            note = "the drive has no ground truth"
        error = self._error
        return RunResult(
            frames=self._written,
            dropped=self.dropped,
            backend=", ".join(
                sorted({e.name for engine_set in self.engine_sets for e in engine_set.values()})
            ),
            drive_s=stats.drive_s if stats is not None else 0.0,
            wall_s=wall_s,
            startup_s=None if self._first_frame_at is None else self._first_frame_at - launch,
            peak_rss_mb=peak_rss_mb(),
            recorder=self.recorder,
            faults=Counter(self.assembler.faults),
            missing=self.missing,
            detections=self._kept,
            ground_truth=[] if self.evaluator is None else self.evaluator.kept_truth(),
            interrupted=interrupted,
            class_names=self.class_names,
            geometry=self.model.geometry,
            detection_counts=self.detection_counts,
            map_report=report,
            map_note=note,
            records=self._records_in,
            messages={name: self._decoded[name] for name in self.config.sensor_names()},
            signal=signum,
            error=None if error is None else f"{type(error).__name__}: {error}",
            source_damage=self._source_damage,
            timeline_resets=self.assembler.synchronizer.resets,
            stale=self.stale_reports,
            models_without_input=(
                {name: self.model_without_input[name] for name in self.models}
                if self.fuser is not None
                else {}
            ),
            replay_gaps=getattr(stats, "gaps", 0),
            replay_skipped_s=getattr(stats, "skipped_s", 0.0),
            explanations={
                measure: {m: total / count for m, (total, count) in sums.items()}
                for measure, sums in self._explanation_sums.items()
            },
        )
