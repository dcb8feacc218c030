"""What one fleet task does on a worker, and how a drive's chunks become its result tables.

Nothing here imports Ray: :mod:`fusionrt.fleet.runner` wraps these functions as Ray tasks, and
the tests call them directly too.

* :func:`prepare_engine` runs once per node before the drives: it opens the pipeline's engine
  under a node-wide file lock, so a TensorRT engine is built (or loaded) into the node's engine
  cache once, and every task after it finds it there.
* :func:`replay_chunk` replays one chunk of one drive (:mod:`fusionrt.fleet.chunks`) with the
  normal :class:`~fusionrt.runtime.pipeline.Pipeline` and its own engine (taking the same lock
  while it opens it), and returns the frames the chunk owns: detections, per-frame stage
  timings and the ground truth it read.
* :func:`drive_tables` merges a drive's chunks, scores them with the run's evaluator
  (:func:`fusionrt.runtime.run_cli.evaluate`) and lays them out as the result tables. A drive
  that gave no frame at all (an empty or header-only bag, a bag whose chunks are all corrupt)
  raises a :class:`~fusionrt.runtime.errors.SourceError` naming what the source reported, so
  the fleet records it as failed instead of ``ok`` with 0 frames.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from fusionrt.fleet.chunks import WHOLE_DRIVE, ChunkWindow
from fusionrt.fleet.results import (
    STATUS_OK,
    DriveTables,
    detection_columns,
    empty_summary,
)
from fusionrt.runtime.config import PipelineConfig, load_pipeline, pipeline_from_dict
from fusionrt.runtime.engines.cache import default_cache_dir
from fusionrt.runtime.engines.selection import open_engine
from fusionrt.runtime.errors import ConfigError, SourceError
from fusionrt.runtime.front_end import open_source, register_config_plugins
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import CLASS_NAMES, Detections, Frame, RawRecord
from fusionrt.runtime.metrics import LatencyRecorder
from fusionrt.runtime.pipeline import ROUTINE_SYNC_DROPS, Pipeline, RunOptions, RunResult
from fusionrt.runtime.registry import PluginInfo, Registry
from fusionrt.runtime.report import MAP_KEYS
from fusionrt.runtime.run_cli import evaluate
from fusionrt.runtime.safe_yaml import read_yaml
from fusionrt.runtime.truth import GroundTruthBoxes

_STAGE_PERCENTILES = (50, 99)
#: How many kinds of fault a failed drive's error names (the rest are counted), and how much of
#: each one's detail: the error is one line of the summary table.
_NAMED_FAULTS = 3
_DETAIL_CHARS = 200


@dataclass(frozen=True)
class PipelineSpec:
    """What a worker needs to rebuild the pipeline: the file's parsed YAML (so workers need not
    see the file), its path (relative paths in it resolve against it) and command-line choices."""

    data: Mapping[str, Any]
    path: str
    backend: str | None = None
    disabled_plugins: tuple[str, ...] = ()
    workers: int | None = None
    source_kind: str | None = None

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        backend: str | None = None,
        disabled_plugins: Sequence[str] = (),
        workers: int | None = None,
        source_kind: str | None = None,
    ) -> PipelineSpec:
        """Read and validate the pipeline file (errors name the file and key)."""
        load_pipeline(path)
        data = read_yaml(path)
        return cls(
            data,
            str(Path(path).resolve()),
            backend,
            tuple(disabled_plugins),
            workers,
            source_kind,
        )

    def config(self) -> PipelineConfig:
        return pipeline_from_dict(self.data, self.path)

    def registry(self) -> Registry:
        return Registry.create(disabled=self.disabled_plugins)

    def backend_name(self, config: PipelineConfig) -> str:
        return self.backend or config.backend.name


def engine_lock_path(spec: PipelineSpec, config: PipelineConfig) -> Path:
    """The node-wide lock serialising engine builds of this model, backend and options (in the
    engine cache folder: ``cache_dir`` of the TensorRT options, or the default one)."""
    identity = {
        "model": config.model.name,
        "model_options": dict(config.model.options),
        "backend": spec.backend_name(config),
        "backend_options": dict(config.backend.options),
        "per_backend": {k: dict(v) for k, v in config.backend.per_backend.items()},
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    tensorrt = {**config.backend.options, **config.backend.per_backend.get("tensorrt", {})}
    directory = Path(tensorrt.get("cache_dir") or default_cache_dir())
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"fleet-{digest[:16]}.lock"


@dataclass(frozen=True)
class PreparedEngine:
    """What :func:`prepare_engine` did on a node."""

    node: str
    backend: str
    seconds: float


def prepare_engine(spec: PipelineSpec, node: str = "") -> PreparedEngine:
    """Open (and close) the pipeline's engine under the node lock: builds a TensorRT engine
    into the node's cache, or checks that the backend opens here."""
    started = time.perf_counter()
    config = spec.config()
    registry = spec.registry()
    register_config_plugins(registry, config)
    info = registry.component("model", config.model.name)
    model = info.cls(**dict(config.model.options))
    with FileLock(engine_lock_path(spec, config)):
        engine = open_engine(
            model.network_source(),
            spec.backend_name(config),
            registry,
            per_backend=config.backend.per_backend,
            **dict(config.backend.options),
        )
        name = engine.name
        engine.close()
    return PreparedEngine(node, name, time.perf_counter() - started)


@dataclass
class ChunkOutcome:
    """The frames one chunk owns (see :mod:`fusionrt.fleet.chunks`), in replay order."""

    window: ChunkWindow
    detections: list[Detections]
    timings_ms: list[dict[str, float]]
    ground_truth: list[GroundTruthBoxes]
    class_names: tuple[str, ...]
    geometry: ModelGeometry | None
    backend: str
    dropped: Counter[str]
    drive_s: float
    wall_s: float
    faults: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: the first detail of each (sensor, reason) fault other than routine synchroniser drops
    fault_details: dict[tuple[str, str], str] = field(default_factory=dict)
    #: records of the sensors' topics the chunk read
    records: int = 0


class _RunObserver:
    """A plugin that keeps each frame's stage timings, in the order frames reach the sinks,
    and the first detail of each kind of fault (what a failed drive's error names)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, dict[str, float]]] = []
        self.fault_counts: Counter[tuple[str, str]] = Counter()
        self.fault_details: dict[tuple[str, str], str] = {}

    @hookimpl
    def fusionrt_frame_done(
        self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]
    ) -> None:
        self.frames.append((frame.stamp_ns, dict(timings_ms)))

    @hookimpl
    def fusionrt_sensor_fault(
        self, sensor: str, stamp_ns: int | None, reason: str, detail: str
    ) -> None:
        if reason not in ROUTINE_SYNC_DROPS:
            self.fault_counts[(sensor, reason)] += 1
            self.fault_details.setdefault((sensor, reason), detail)


class _UntilStamp:
    """The replay's records up to ``stop_ns`` (exclusive); keeps the replay's stats and close."""

    def __init__(self, records: Any, stop_ns: int) -> None:
        self._records = records
        self._stop_ns = stop_ns

    def __iter__(self) -> Iterator[RawRecord]:
        for record in self._records:
            if record.stamp_ns >= self._stop_ns:
                return
            yield record

    @property
    def stats(self) -> Any:
        return self._records.stats

    def close(self) -> None:
        self._records.close()


class WindowedPipeline(Pipeline):
    """The normal pipeline reading only a chunk's window of the drive (its ``read_*`` bounds)."""

    def __init__(self, *args: Any, window: ChunkWindow, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = window
        if window.read_start_ns is not None:
            seek = getattr(self.source, "seek", None)
            if seek is None:
                self._close()
                raise ConfigError(
                    f"source {self.source.name!r} cannot seek, so its drives cannot be chunked",
                    key="--chunk-s",
                )
            seek(window.read_start_ns)

    def _records(self) -> Any:
        records = super()._records()
        if self.window.read_stop_ns is None:
            return records
        return _UntilStamp(records, self.window.read_stop_ns)


def replay_chunk(
    spec: PipelineSpec, drive_path: Path, window: ChunkWindow = WHOLE_DRIVE
) -> ChunkOutcome:
    """Replay one chunk of a drive with the normal pipeline (no sinks: the fleet writes the
    results) and return the frames it owns."""
    config = spec.config()
    registry = spec.registry()
    observer = _RunObserver()
    registry.register(observer, PluginInfo("fleet-run-observer", "fusionrt", ""))
    # one chunk of a drive with a gap may read nothing and the drive still be fine: whether
    # the drive gave nothing is decided over all its chunks (drive_tables)
    options = RunOptions(
        backend=spec.backend,
        workers=spec.workers,
        progress=False,
        keep_results=True,
        require_data=window.count == 1,
        source_kind=spec.source_kind,
    )
    with FileLock(engine_lock_path(spec, config)):
        pipeline = WindowedPipeline(
            config, Path(drive_path), registry, options, sinks=[], window=window
        )
    try:
        result = pipeline.run()
    except SourceError as exc:  # a drive that cannot feed the run: name what its source said
        problems = _fault_lines(observer.fault_counts, observer.fault_details)
        raise SourceError(f"{exc.message}{_reported(problems)}", **exc.context) from None
    if len(observer.frames) != len(result.detections):
        raise RuntimeError(
            f"{len(result.detections)} frames reached the sinks but {len(observer.frames)} were "
            "reported done"
        )
    kept = [
        (det, frame_timings)
        for det, (_, frame_timings) in zip(result.detections, observer.frames, strict=True)
        if window.owns(det.stamp_ns)
    ]
    return ChunkOutcome(
        window=window,
        detections=[det for det, _ in kept],
        timings_ms=[frame_timings for _, frame_timings in kept],
        ground_truth=result.ground_truth,
        class_names=result.class_names or CLASS_NAMES,
        geometry=result.geometry,
        backend=result.backend,
        dropped=Counter(result.dropped),
        drive_s=result.drive_s,
        wall_s=result.wall_s,
        faults=Counter(result.faults),
        fault_details=observer.fault_details,
        records=result.records,
    )


def drive_span_ns(spec: PipelineSpec, drive_path: Path) -> tuple[int, int]:
    """Log times of the drive's first and last record of the pipeline's topics."""
    config = spec.config()
    registry = spec.registry()
    topics = [t for s in config.sensors for t in s.topics]
    source = open_source(Path(drive_path), registry, topics, spec.source_kind)
    try:
        first = getattr(source, "first_stamp_ns", None)
        last = getattr(source, "last_stamp_ns", None)
    finally:
        source.close()
    if first is None and last is None:
        bad = [str(record) for record in getattr(source, "bad_records", [])]
        raise SourceError(f"the drive holds no records{_reported(bad)}", path=str(drive_path))
    if not isinstance(first, int) or not isinstance(last, int):
        raise ConfigError(
            "the drive's source cannot say its time span, so it cannot be chunked",
            path=str(drive_path),
            key="--chunk-s",
        )
    return first, last


def drive_condition(drive_path: Path) -> str:
    """The drive's condition group (``clear``, ``fog``, ``rain``, ``night``, ``sensor_failure``)
    from the simulator's ``drive.yaml`` beside its bag, ``unknown`` without one."""
    manifest = Path(drive_path) / "drive.yaml"
    if not manifest.is_file():
        return "unknown"
    try:
        config = (read_yaml(manifest) or {}).get("config", {})
    except ConfigError:
        return "unknown"
    if config.get("failures"):
        return "sensor_failure"
    return str(config.get("condition", "unknown"))


def _frame_span_s(detections: Sequence[Detections]) -> float:
    """Seconds from the first frame to the last (a chunked drive's replayed span)."""
    return (detections[-1].stamp_ns - detections[0].stamp_ns) / 1e9 if detections else 0.0


def merged_result(outcomes: Sequence[ChunkOutcome]) -> RunResult:
    """A drive's chunks as one :class:`RunResult` (frames in stamp order, ground truth once per
    stamp), the form the run's evaluator takes."""
    ordered = sorted(outcomes, key=lambda o: o.window.index)
    detections = [d for o in ordered for d in o.detections]
    truth = {g.stamp_ns: g for o in ordered for g in o.ground_truth}
    faults: Counter[tuple[str, str]] = Counter()
    dropped: Counter[str] = Counter()
    for outcome in ordered:
        faults.update(outcome.faults)
        dropped.update(outcome.dropped)
    return RunResult(
        frames=len(detections),
        dropped=dropped,
        backend=ordered[0].backend,
        drive_s=ordered[0].drive_s if len(ordered) == 1 else _frame_span_s(detections),
        wall_s=sum(o.wall_s for o in ordered),
        startup_s=None,
        peak_rss_mb=0.0,
        recorder=LatencyRecorder(enabled=False),
        faults=faults,
        missing=Counter(),
        detections=detections,
        ground_truth=[truth[s] for s in sorted(truth)],
        class_names=ordered[0].class_names,
        geometry=ordered[0].geometry,
    )


def _fault_lines(
    counts: Mapping[tuple[str, str], int], details: Mapping[tuple[str, str], str]
) -> list[str]:
    """``sensor reason xN: first detail`` for each kind of fault."""
    return [
        f"{sensor} {reason} x{counts[(sensor, reason)]}: {d}"
        for (sensor, reason), d in details.items()
    ]


def _reported(problems: Sequence[str]) -> str:
    """``; reported: A; B; C; N more`` naming the first problems, each on one short line."""
    if not problems:
        return ""
    named = []
    for problem in problems[:_NAMED_FAULTS]:
        flat = " ".join(problem.split())
        named.append(flat if len(flat) <= _DETAIL_CHARS else flat[: _DETAIL_CHARS - 3] + "...")
    if len(problems) > _NAMED_FAULTS:
        named.append(f"{len(problems) - _NAMED_FAULTS} more")
    return f"; reported: {'; '.join(named)}"


def no_frames_error(drive_path: Path, outcomes: Sequence[ChunkOutcome]) -> SourceError:
    """The error of a drive that gave no frame: how many records its source yielded and the
    first faults reported (a truncated file, corrupt chunks, undecodable messages...)."""
    faults: Counter[tuple[str, str]] = Counter()
    details: dict[tuple[str, str], str] = {}
    for outcome in outcomes:
        faults.update(outcome.faults)
        for key, detail in outcome.fault_details.items():
            details.setdefault(key, detail)
    read = sum(outcome.records for outcome in outcomes)
    problems = _fault_lines(faults, details)
    return SourceError(
        f"the drive gave no frames from {read} record(s) read{_reported(problems)}",
        path=str(drive_path),
    )


def stage_percentiles(stages: Sequence[str], values_ms: np.ndarray) -> list[dict[str, float | str]]:
    """p50 and p99 (numpy's linear interpolation, as the run report) of each stage's values."""
    rows: list[dict[str, float | str]] = []
    stages_array = np.asarray(stages)
    for stage in dict.fromkeys(stages):
        values = values_ms[stages_array == stage]
        p50, p99 = np.percentile(values, _STAGE_PERCENTILES)
        rows.append({"stage": stage, "p50_ms": float(p50), "p99_ms": float(p99)})
    return rows


def drive_tables(
    drive: str,
    drive_path: Path,
    outcomes: Sequence[ChunkOutcome],
    *,
    attempts: int,
) -> DriveTables:
    """The result tables of a drive whose chunks all finished; a :class:`SourceError` when
    they hold no frame (see :func:`no_frames_error`)."""
    result = merged_result(outcomes)
    if result.frames == 0:
        raise no_frames_error(drive_path, outcomes)
    map_values, _ = evaluate(result)
    names = result.class_names
    dets = result.detections
    det_stamps = np.concatenate(
        [np.full(len(d), d.stamp_ns, np.int64) for d in dets] or [np.empty(0, np.int64)]
    )
    boxes = np.concatenate([d.boxes for d in dets] or [np.empty((0, 7), np.float32)])
    labels = np.concatenate([d.labels for d in dets] or [np.empty(0, np.int64)])
    scores = np.concatenate([d.scores for d in dets] or [np.empty(0, np.float32)])
    timings = [t for o in sorted(outcomes, key=lambda o: o.window.index) for t in o.timings_ms]
    lat_stamps = [d.stamp_ns for d, t in zip(dets, timings, strict=True) for _ in t]
    lat_stages = [stage for t in timings for stage in t]
    lat_ms = np.asarray([ms for t in timings for ms in t.values()], np.float64)
    summary = empty_summary(drive, str(drive_path), drive_condition(drive_path))
    summary.update(
        status=STATUS_OK,
        error="",
        frames=result.frames,
        dropped=int(sum(result.dropped.values())),
        stages=stage_percentiles(lat_stages, lat_ms) if len(lat_ms) else [],
        attempts=attempts,
        chunks=len(outcomes),
        drive_s=round(result.drive_s, 3),
        wall_s=round(result.wall_s, 3),
        backend=result.backend,
    )
    for key in MAP_KEYS:
        value = None if map_values is None else map_values.get(key)
        summary[f"map_{key}"] = None if value is None or not np.isfinite(value) else float(value)
    return DriveTables(
        drive,
        detection_columns(drive, det_stamps, boxes, labels, scores, class_names=names),
        {
            "drive": [drive] * len(lat_stages),
            "stamp_ns": np.asarray(lat_stamps, np.int64),
            "stage": lat_stages,
            "ms": lat_ms,
        },
        summary,
    )
