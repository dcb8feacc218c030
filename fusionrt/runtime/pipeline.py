"""The hot path of ``fusionrt run``: source → decode → synchronise → preprocess → infer →
postprocess → sinks, with the stages overlapping across frames.

Threads and a pool, joined by bounded queues (``runtime.queue_size`` frames each):

* **ingest** (the calling thread): reads the source (paced by :class:`Replay` in real-time
  mode), decodes each record and pushes it into the synchroniser (the
  :class:`~fusionrt.runtime.assembly.FrameAssembler`); each completed frame's sensor groups are
  submitted to the **preprocess pool** (``runtime.workers`` threads; groups of one frame run in
  parallel, one group never runs two frames at once) and the frame is queued for inference;
* **infer** (``runtime.infer_workers`` threads, each with its own engine instance): waits for
  the frame's groups, builds the model feed, runs the engine and the model's postprocess;
  with several, consecutive frames are inferred at once (engines release the GIL), so the
  model's ``make_feed`` and ``postprocess`` must not keep state between calls;
* **sink**: puts the frames back in queue order, writes the detections to every sink, calls
  ``fusionrt_frame_done`` and records the frame's timings.

So frame n+1 is preprocessed while frame n is inferred and frame n−1 written. In replay mode a
full queue blocks the stage before it (nothing is dropped; frames leave in the order they were
formed, so the output does not depend on the number of workers). In real-time mode the ingest
never blocks: a frame that finds the inference queue full, or that is older than
``runtime.deadline_ms`` (since its newest message arrived) when inference could start, is
dropped and counted. Memory is bounded by the queues, the synchroniser's own queues and the
per-message bookkeeping, which is pruned as frames consume messages.

Timing (monotonic ``perf_counter_ns``): per frame, ``decode.<plugin>`` (the frame's messages),
``sync_wait`` (from the arrival of its first message to the frame's completion),
``sync_hold`` (from the arrival of its newest message to its completion: the synchroniser
waiting for a later message that proves no nearer one will come),
``preprocess.<plugin>``, ``infer``, ``postprocess``, ``sink`` and ``end_to_end`` (from the
arrival of its newest message to the detections leaving the last sink). Nothing here imports
torch: the engine is chosen by :func:`~fusionrt.runtime.engines.selection.open_engine`.
"""

from __future__ import annotations

import logging
import queue
import resource
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from fusionrt.runtime.assembly import (
    FaultCallback,
    FrameAssembler,
    PreprocessGroup,
    SensorBinding,
)
from fusionrt.runtime.components import Model, Sink, Source
from fusionrt.runtime.config import PipelineConfig
from fusionrt.runtime.engines.base import Engine
from fusionrt.runtime.engines.selection import open_engine, resolve_backend
from fusionrt.runtime.errors import ConfigError, FusionError, PluginError
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.messages import CLASS_NAMES, Detections, Frame, RawRecord
from fusionrt.runtime.metrics import LatencyRecorder
from fusionrt.runtime.registry import PluginInfo, Registry
from fusionrt.runtime.sensor import PreprocessContext, Sensor
from fusionrt.runtime.sync import LatestSpec, Synchronizer

logger = logging.getLogger("fusionrt.pipeline")

_NS_PER_MS = 1e6
_END = object()  # queue sentinel
#: Drop reasons of the synchroniser's normal work (a faster sensor's extra messages): counted
#: and reported through the hook like every loss, but logged at debug level, not as warnings.
ROUTINE_SYNC_DROPS = frozenset({"superseded", "outside_interval", "end_of_input", "reset"})


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that override or complete the pipeline file."""

    backend: str | None = None
    realtime: bool = False
    rate: float = 1.0
    max_frames: int | None = None
    workers: int | None = None
    infer_workers: int | None = None
    out_dir: Path | None = None
    progress: bool | None = False


@dataclass(frozen=True)
class GroundTruthBoxes:
    """Ground truth at one stamp (common clock): N×7 boxes (ego frame), class indices and the
    unoccluded fraction of each actor (1 where the recording does not say)."""

    stamp_ns: int
    boxes: np.ndarray
    labels: np.ndarray
    visibility: np.ndarray


@dataclass
class RunInfo:
    """What a sink may need besides each frame: given to ``sink.start(info)`` if it has one."""

    out_dir: Path
    rig: Any
    model: Model
    sensors: Mapping[str, Sensor]
    ground_truth: Callable[[int], GroundTruthBoxes | None]


@dataclass
class FrameResult:
    """One frame that reached the sinks."""

    frame: Frame
    detections: Detections
    timings_ms: dict[str, float]


@dataclass
class RunResult:
    """Everything the report is made of."""

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


@dataclass
class _Job:
    """A frame between the stages."""

    frame: Frame
    groups: list[Future[tuple[dict[str, np.ndarray], str, int]]]
    timings_ms: dict[str, float]
    arrival_first_ns: int
    arrival_newest_ns: int
    detections: Detections | None = None  # None when dropped at the deadline
    seq: int = 0  # place in the inference queue: the sinks see frames in this order


def process_start_time() -> float | None:
    """The process's start on the ``time.time()`` clock (Linux ``/proc``), else ``None``."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    import os  # noqa: PLC0415

    ticks = os.sysconf("SC_CLK_TCK")
    return time.time() - uptime_s + start_ticks / ticks


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- building the components --------------------------------------------------------------


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


def open_source(path: Path, registry: Registry, topics: Sequence[str]) -> Source:
    """The drive at ``path``: a ROS 2 bag folder or file, or a drive folder holding ``bag/``."""
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
    source: Source = cls(bag, topics=list(topics))
    return source


def _component_class(
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
    cls = _component_class(registry, config, "sensor", sc.plugin, f"{key}.plugin")
    try:
        sensor: Sensor = cls(sc.name, sc.topics[0], **dict(sc.options))
    except FusionError as exc:
        raise ConfigError(exc.message, file=str(config.path), key=f"{key}.options") from None
    except TypeError as exc:
        raise ConfigError(str(exc), file=str(config.path), key=f"{key}.options") from None
    return sensor


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


def _ground_truth_boxes(record: RawRecord, class_names: Sequence[str]) -> GroundTruthBoxes:
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
    drive: Path,
    registry: Registry,
    *,
    ground_truth: bool = True,
    on_fault: FaultCallback | None = None,
    on_stale: Callable[[str, int | None, int], None] | None = None,
) -> FrontEnd:
    """Model, sensors, source (with the ground-truth topic if ``ground_truth``), rig and the
    frame assembler of ``config`` on ``drive``: decode → synchronise → preprocess → feed.

    Shared by :class:`Pipeline` and by tools that need the model's feeds from a recording
    (INT8 calibration). The caller closes ``source``.
    """
    register_config_plugins(registry, config)
    sensors = [_sensor(registry, config, i) for i in range(len(config.sensors))]
    model_cls = _component_class(registry, config, "model", config.model.name, "model.name")
    try:
        model: Model = model_cls(**dict(config.model.options))
    except (FusionError, TypeError) as exc:
        raise ConfigError(str(exc), file=str(config.path), key="model.options") from None
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


# -- the pipeline ------------------------------------------------------------------------


class Pipeline:
    """A configured run: components built from a :class:`PipelineConfig` and a drive.

    Use :meth:`run` once; it closes the source, engine and sinks when it ends (also on Ctrl-C
    or error). ``sinks`` may be given to bypass the file's sink list (benchmarks).
    """

    def __init__(
        self,
        config: PipelineConfig,
        drive: Path,
        registry: Registry,
        options: RunOptions = RunOptions(),
        *,
        sinks: Sequence[Sink] | None = None,
    ) -> None:
        self.launch_time = process_start_time()
        self.config = config
        self.options = options
        self.registry = registry
        self._fault_lock = threading.Lock()
        self._logged_faults: set[tuple[str, str]] = set()
        front = build_front_end(config, drive, registry, on_fault=self._fault, on_stale=self._stale)
        self.model: Model = front.model
        self.sensors = front.sensors
        self.source = front.source
        self.rig = front.rig
        self.assembler = front.assembler
        self.engines: list[Engine] = []
        self.class_names = tuple(getattr(self.model, "class_names", ()) or CLASS_NAMES)
        self._group_locks = {id(g): threading.Lock() for g in self.assembler.groups}
        bad_log = getattr(self.source, "bad", None)  # recorded sources report what they skip
        if bad_log is not None:
            for bad in list(bad_log.records):  # reported while the source was being opened
                self._bad_record(bad)
            bad_log.callback = self._bad_record
        network = getattr(self.model, "network_source", None)
        if network is None:
            self._abandon()
            raise ConfigError(
                f"model {config.model.name!r} has no network_source()",
                file=str(config.path),
                key="model.name",
            )
        backend = options.backend or config.backend.name
        self.infer_workers = options.infer_workers or config.runtime.infer_workers
        self.workers = options.workers or config.runtime.workers
        if self.infer_workers < 1 or self.workers < 1:
            self._abandon()
            raise ConfigError(
                "workers and infer_workers must be at least 1",
                workers=self.workers,
                infer_workers=self.infer_workers,
            )
        for name in config.backend.per_backend:
            try:
                resolve_backend(name, registry)
            except FusionError as exc:
                self._abandon()
                raise ConfigError(
                    exc.message, file=str(config.path), key=f"backend.per_backend.{name}"
                ) from None
        source = network()
        try:
            for _ in range(self.infer_workers):
                self.engines.append(
                    open_engine(
                        source,
                        backend,
                        registry,
                        per_backend=config.backend.per_backend,
                        **dict(config.backend.options),
                    )
                )
        except BaseException:
            self._abandon()
            raise
        self.engine = self.engines[0]
        self.out_dir = options.out_dir or Path("out")
        try:
            self.sinks = list(sinks) if sinks is not None else self._sinks()
        except BaseException:
            self._abandon()
            raise
        self.queue_size = config.runtime.queue_size
        self.deadline_ns = int(config.runtime.deadline_ms * _NS_PER_MS)
        self.recorder = LatencyRecorder()
        self.dropped: Counter[str] = Counter()
        self._drop_lock = threading.Lock()
        self._queued = 0  # frames put into the inference queue so far
        # frames between the inference queue and the end of the sink thread: bounds memory even
        # while one inference thread is slow and the sink holds the frames that overtook it
        self._slots = threading.Semaphore(self.queue_size + self.infer_workers)
        self.missing: Counter[str] = Counter()
        self._gt: dict[int, GroundTruthBoxes] = {}
        self._gt_lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        # (sensor, stamp on the common clock) -> (decode ns, arrival ns, plugin name)
        self._arrivals: dict[tuple[str, int], tuple[int, int, str]] = {}
        self._first_frame_at: float | None = None
        self.replay_stats: Any = None

    def _abandon(self) -> None:
        """Close what the constructor opened before it failed (engines, source)."""
        for engine in self.engines:
            engine.close()
        self.source.close()

    def _sinks(self) -> list[Sink]:
        sinks: list[Sink] = []
        for index, sc in enumerate(self.config.sinks):
            cls = _component_class(
                self.registry, self.config, "sink", sc.name, f"sinks[{index}].name"
            )
            try:
                sinks.append(cls(out_dir=self.out_dir, **dict(sc.options)))
            except (FusionError, TypeError) as exc:
                for sink in sinks:
                    sink.close()
                raise ConfigError(
                    str(exc), file=str(self.config.path), key=f"sinks[{index}].options"
                ) from None
        return sinks

    # -- faults -------------------------------------------------------------------------

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
            logger.warning("sensor %s is stale (last message at %s ns)", sensor, last_stamp_ns)
            self.registry.hook.fusionrt_sensor_stale(
                sensor=sensor, last_stamp_ns=last_stamp_ns, now_ns=now_ns
            )

    def _bad_record(self, bad: Any) -> None:
        topic = getattr(bad, "topic", None)
        sensor = next((b.name for b in self.assembler.bindings if topic in b.topics), "source")
        self.assembler.fault(sensor, getattr(bad, "stamp_ns", None), str(bad.reason), str(bad))

    # -- ground truth -------------------------------------------------------------------

    def ground_truth_near(
        self, stamp_ns: int, tolerance_ns: int = 50_000_000
    ) -> GroundTruthBoxes | None:
        """The ground truth nearest ``stamp_ns`` (within ``tolerance_ns``), if read yet."""
        with self._gt_lock:
            best = min(self._gt, key=lambda s: abs(s - stamp_ns), default=None)
            if best is None or abs(best - stamp_ns) > tolerance_ns:
                return None
            return self._gt[best]

    # -- stages -------------------------------------------------------------------------

    def _records(self) -> Iterator[RawRecord]:
        from fusionrt.plugins.sources.replay import Replay  # noqa: PLC0415

        mode = "realtime" if self.options.realtime else "fast"
        return Replay(self.source, mode, rate=self.options.rate, progress=self.options.progress)

    def _preprocess(
        self, group: PreprocessGroup, frame: Frame
    ) -> tuple[dict[str, np.ndarray], str, int]:
        with self._group_locks[id(group)]:
            start = time.perf_counter_ns()
            tensors = self.assembler.preprocess_group(group, frame)
            return tensors, group.stage, time.perf_counter_ns() - start

    def _job(self, frame: Frame, pool: ThreadPoolExecutor, done_ns: int) -> _Job:
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
        futures = [pool.submit(self._preprocess, g, frame) for g in self.assembler.groups]
        return _Job(frame, futures, timings, first, newest)

    def _ingest(self, pool: ThreadPoolExecutor, infer_q: queue.Queue[Any]) -> None:
        max_frames = self.options.max_frames
        formed = 0
        gt_topic = self.config.ground_truth_topic
        by_topic = {t: b for b in self.assembler.bindings for t in b.topics}
        offsets = self.assembler.synchronizer.time_offsets_ns
        records = self._records()
        try:
            for record in records:
                arrival = time.perf_counter_ns()
                if self._stop.is_set():
                    break
                if record.topic == gt_topic:
                    self._keep_ground_truth(record)
                    continue
                message = self.assembler.decode(record)
                decode_ns = time.perf_counter_ns() - arrival
                if message is None:
                    continue
                binding = by_topic[record.topic]
                stamp = message.stamp_ns + offsets.get(message.sensor, 0)
                self._arrivals[(message.sensor, stamp)] = (
                    decode_ns,
                    arrival,
                    type(binding.sensor).name,
                )
                self.recorder.add(f"decode.{type(binding.sensor).name}", decode_ns)
                start = time.perf_counter_ns()
                frames = self.assembler.synchronise(message)
                done = time.perf_counter_ns()
                self.recorder.add("sync", done - start)
                for frame in frames:
                    self._submit(self._job(frame, pool, done), infer_q)
                    formed += 1
                    if max_frames is not None and formed >= max_frames:
                        return
            if not self._stop.is_set():
                done = time.perf_counter_ns()
                for frame in self.assembler.synchronizer.flush():
                    if max_frames is not None and formed >= max_frames:
                        break
                    self._submit(self._job(frame, pool, done), infer_q)
                    formed += 1
        finally:
            self.replay_stats = getattr(records, "stats", None)
            close = getattr(records, "close", None)
            if close is not None:
                close()

    def _keep_ground_truth(self, record: RawRecord) -> None:
        try:
            gt = _ground_truth_boxes(record, self.class_names)
        except Exception as exc:  # a broken GT message costs its frame's evaluation only
            self.assembler.fault("ground_truth", record.stamp_ns, "decode_error", str(exc))
            return
        with self._gt_lock:
            self._gt[gt.stamp_ns] = gt

    def _submit(self, job: _Job, infer_q: queue.Queue[Any]) -> None:
        """Queue a frame for inference, holding one of the in-flight slots until the sink
        thread is done with it (blocking in replay mode; dropping it in real-time mode)."""
        if not self.options.realtime:
            self._slots.acquire()
        elif not self._slots.acquire(blocking=False):
            self._drop(job, "queue_full")
            return
        job.seq = self._queued
        if not self.options.realtime:
            infer_q.put(job)
        else:
            try:
                infer_q.put_nowait(job)
            except queue.Full:
                self._slots.release()
                self._drop(job, "queue_full")
                return
        self._queued += 1

    def _drop(self, job: _Job, reason: str) -> None:
        for future in job.groups:
            future.cancel()
        with self._drop_lock:
            self.dropped[reason] += 1
        logger.debug("frame %d dropped: %s", job.frame.stamp_ns, reason)

    def _infer_loop(
        self, engine: Engine, infer_q: queue.Queue[Any], sink_q: queue.Queue[Any]
    ) -> None:
        """One inference thread with its own engine; several take frames from one queue.

        Every frame goes on to the sink thread, inferred or not (dropped at the deadline, or
        after an error), so that it can keep the order and free the frame's slot.
        """
        try:
            while (job := infer_q.get()) is not _END:
                try:
                    if self._error is None:
                        self._infer(engine, job)
                except BaseException as exc:  # surfaced by run(); the other stages drain
                    self._error = exc
                    self._stop.set()
                sink_q.put(job)
        finally:
            sink_q.put(_END)

    def _infer(self, engine: Engine, job: _Job) -> None:
        if (
            self.options.realtime
            and time.perf_counter_ns() - job.arrival_newest_ns > self.deadline_ns
        ):
            self._drop(job, "deadline")
            return
        tensors = []
        for future in job.groups:
            outputs, stage, duration_ns = future.result()
            tensors.append(outputs)
            job.timings_ms[stage] = job.timings_ms.get(stage, 0.0) + duration_ns / _NS_PER_MS
        assembled = self.assembler.assemble(job.frame, tensors)
        start = time.perf_counter_ns()
        outputs = engine.infer(assembled.feed)
        mid = time.perf_counter_ns()
        job.detections = self.model.postprocess(outputs, job.frame.stamp_ns)
        end = time.perf_counter_ns()
        job.timings_ms["infer"] = (mid - start) / _NS_PER_MS
        job.timings_ms["postprocess"] = (end - mid) / _NS_PER_MS

    def _sink_loop(self, sink_q: queue.Queue[Any], results: list[Detections]) -> None:
        """Write frames in queue order: inference threads may finish them out of order, so
        early ones wait in ``pending`` (bounded by the in-flight slots, ``_slots``)."""
        pending: dict[int, _Job] = {}
        next_seq = 0
        ends = 0
        while ends < len(self.engines):
            item = sink_q.get()
            if item is _END:
                ends += 1
                continue
            pending[item.seq] = item
            while next_seq in pending:
                job = pending.pop(next_seq)
                next_seq += 1
                try:
                    if self._error is None and job.detections is not None:
                        self._write(job, results)
                except BaseException as exc:  # surfaced by run(); later frames are skipped
                    self._error = exc
                    self._stop.set()
                finally:
                    self._slots.release()

    def _write(self, job: _Job, results: list[Detections]) -> None:
        assert job.detections is not None
        start = time.perf_counter_ns()
        for sink in self.sinks:
            sink.write(job.frame, job.detections, job.timings_ms)
        end = time.perf_counter_ns()
        job.timings_ms["sink"] = (end - start) / _NS_PER_MS
        job.timings_ms["end_to_end"] = (end - job.arrival_newest_ns) / _NS_PER_MS
        for stage, ms in job.timings_ms.items():
            if not stage.startswith("decode."):
                self.recorder.add(stage, int(ms * _NS_PER_MS))
        for name, message in job.frame.messages.items():
            if message is None:
                self.missing[name] += 1
        results.append(job.detections)
        if self._first_frame_at is None:
            self._first_frame_at = time.time()
        self.registry.hook.fusionrt_frame_done(
            frame=job.frame, detections=job.detections, timings_ms=job.timings_ms
        )

    # -- the run ------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Replay the drive through the pipeline; see the module docstring."""
        started_wall = time.time()
        launch = self.launch_time if self.launch_time is not None else started_wall
        info = RunInfo(
            self.out_dir,
            self.rig,
            self.model,
            {s.instance: s for s in self.sensors},
            self.ground_truth_near,
        )
        for sink in self.sinks:
            start = getattr(sink, "start", None)
            if start is not None:
                start(info)
        self.registry.hook.fusionrt_configure(config=self.config)
        interrupted = False
        previous_handler = None
        if threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        detections: list[Detections] = []
        infer_q: queue.Queue[Any] = queue.Queue(self.queue_size)
        sink_q: queue.Queue[Any] = queue.Queue(self.queue_size)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="fusionrt-preprocess")
        infer_threads = [
            threading.Thread(
                target=self._infer_loop, args=(engine, infer_q, sink_q), name=f"fusionrt-infer-{i}"
            )
            for i, engine in enumerate(self.engines)
        ]
        sink_t = threading.Thread(
            target=self._sink_loop, args=(sink_q, detections), name="fusionrt-sink"
        )
        for thread in infer_threads:
            thread.start()
        sink_t.start()
        wall_start = time.perf_counter()
        try:
            try:
                self._ingest(pool, infer_q)
            except BaseException as exc:
                self._error = self._error or exc
            finally:
                for _ in infer_threads:
                    infer_q.put(_END)
                for thread in infer_threads:
                    thread.join()
                sink_t.join()
                pool.shutdown(wait=True, cancel_futures=True)
            wall_s = time.perf_counter() - wall_start
            interrupted = self._stop.is_set() and self._error is None
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self._close()
            self.registry.hook.fusionrt_unconfigure(config=self.config)
        if self._error is not None:
            raise self._error
        stats = self.replay_stats
        drive_s = stats.drive_s if stats is not None else 0.0
        gt = sorted(self._gt.values(), key=lambda g: g.stamp_ns)
        return RunResult(
            frames=len(detections),
            dropped=self.dropped,
            backend=self.engine.name,
            drive_s=drive_s,
            wall_s=wall_s,
            startup_s=None if self._first_frame_at is None else self._first_frame_at - launch,
            peak_rss_mb=peak_rss_mb(),
            recorder=self.recorder,
            faults=Counter(self.assembler.faults),
            missing=self.missing,
            detections=detections,
            ground_truth=gt,
            interrupted=interrupted,
            class_names=self.class_names,
            geometry=self.model.geometry,
        )

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt
        logger.warning("interrupted: finishing the frames in flight and closing the sinks")
        self._stop.set()

    def _close(self) -> None:
        closers = [*(s.close for s in self.sinks), *(e.close for e in self.engines)]
        for closer in [*closers, self.source.close]:
            try:
                closer()
            except Exception as exc:  # one failing close must not keep the others open
                logger.error("closing failed: %s: %s", type(exc).__name__, exc)
