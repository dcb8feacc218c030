"""``fusionrt fleet run``: replay many drives on Ray, one task per drive (or per chunk).

**Ray.** Without ``address`` a local Ray is started for the run (``num_cpus`` workers, bound to
127.0.0.1, no dashboard; :mod:`fusionrt.fleet.local_ray`) and stopped at the end; its processes
die with the driver however the driver ends. With ``address`` (``auto``, ``HOST:PORT`` or
``ray://HOST:10001``) the run joins that cluster and leaves it running. When the caller has
already connected (``ray.is_initialized()``), that connection is used as it is.

**Tasks.** Each drive is one task (or, with ``chunk_s``, one task per time chunk; see
:mod:`fusionrt.fleet.chunks`), asking for ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs
(Ray sets ``CUDA_VISIBLE_DEVICES``). A task runs the normal pipeline
(:func:`fusionrt.fleet.task.replay_chunk`) and returns its frames to the driver, which merges a
drive's chunks and writes its three Parquet files (:mod:`fusionrt.fleet.results`): results
land where the driver runs, so workers need no shared output folder, but they must be able to
read the drives and import the pipeline's plugins. At most ``max_in_flight`` tasks are
submitted at a time, so the driver's memory holds a bounded number of drives.

**Engines.** Before the drives, one task per node (pinned there) opens the pipeline's engine
under a node-wide file lock (:func:`fusionrt.fleet.task.prepare_engine`): a TensorRT engine is
built once per node into that node's engine cache (``$FUSIONRT_ENGINE_CACHE``, or
``backend.options.cache_dir``), and every drive task on the node loads it from there, taking
the same lock while it opens its own engine (a node that joins later builds under the lock
once too). What is shared is the engine *file*; each task deserialises its own TensorRT
engine or ONNX Runtime session, since neither can be shared between processes. Ray reuses
worker processes, so imports are paid once per worker.

**Faults.** A ``FusionError`` (bad config, corrupt bag, unknown plugin) is deterministic: the
drive is recorded as failed at once; so is a drive that gave no frame at all (a ``SourceError``
from :func:`fusionrt.fleet.task.drive_tables`), never ``ok`` with 0 frames. Any other
exception is retried by Ray (``retry_exceptions``), and so is a task whose worker process died
(``max_retries``); when the retries are spent the drive is recorded as failed with the error.
A failed drive writes its summary row (status ``failed``, the error, the attempts) and never
touches another drive's files. Attempts are counted by a small actor that every task attempt
reports to when it starts.

**Resume.** Drives whose results are complete and valid
(:func:`fusionrt.fleet.results.drive_is_complete`) are skipped unless ``force``; failed and
incomplete drives are run again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fusionrt.fleet.chunks import WHOLE_DRIVE, ChunkWindow, plan_chunks, sync_context_ns
from fusionrt.fleet.drives import DriveRef
from fusionrt.fleet.local_ray import local_ray_head
from fusionrt.fleet.results import DriveTables, drive_is_complete, write_drive
from fusionrt.fleet.task import (
    ChunkOutcome,
    PipelineSpec,
    PreparedEngine,
    drive_condition,
    drive_span_ns,
    drive_tables,
    prepare_engine,
    replay_chunk,
)
from fusionrt.runtime.errors import EngineError, FusionError

logger = logging.getLogger("fusionrt.fleet")


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet run uses Ray; see the module docstring."""

    out_dir: Path
    address: str | None = None
    num_cpus: int | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    force: bool = False
    chunk_s: float | None = None
    max_retries: int = 2
    max_in_flight: int | None = None
    progress: bool | None = None


@dataclass
class FleetOutcome:
    """What a fleet run did: drives written ok, failed (with their error), skipped (resume)."""

    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    frames: int = 0
    wall_s: float = 0.0
    engines: list[PreparedEngine] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every drive is complete, 1 when any failed."""
        return 1 if self.failed else 0


@dataclass(frozen=True)
class ChunkFailure:
    """A chunk that cannot succeed (a ``FusionError``): its drive fails without retries."""

    error: str


class AttemptLedger:
    """Counts the attempts of each task (a Ray actor: every attempt reports when it starts)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()

    def start(self, key: tuple[str, int]) -> int:
        self.counts[key] += 1
        return self.counts[key]

    def attempts(self, keys: list[tuple[str, int]]) -> int:
        """The most attempts any of ``keys`` took (at least 1)."""
        return max([1, *(self.counts[k] for k in keys)])


def _replay_task(
    spec: PipelineSpec, drive: str, path: Path, window: ChunkWindow, ledger: Any
) -> ChunkOutcome | ChunkFailure:
    import ray  # noqa: PLC0415  (runs on a worker)

    ray.get(ledger.start.remote((drive, window.index)))
    try:
        return replay_chunk(spec, path, window)
    except FusionError as exc:
        return ChunkFailure(f"{type(exc).__name__}: {exc}")


def _span_task(spec: PipelineSpec, path: Path) -> tuple[int, int] | ChunkFailure:
    try:
        return drive_span_ns(spec, path)
    except FusionError as exc:
        return ChunkFailure(f"{type(exc).__name__}: {exc}")


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` of what made a task fail (the task's own exception when Ray has it)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _driver_pythonpath() -> str:
    """The driver's import path, so that a local Ray's workers import the same plugin modules."""
    entries = [p for p in sys.path if p and Path(p).is_dir()]
    return os.pathsep.join(dict.fromkeys(entries))


@contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[None]:
    """Connected to Ray for the block: the caller's connection, ``address``'s cluster, or a
    local Ray on loopback that is stopped after and dies with this process
    (:func:`fusionrt.fleet.local_ray.local_ray_head`)."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        yield
        return
    with ExitStack() as stack:
        head = None if address is not None else stack.enter_context(local_ray_head(num_cpus))
        import ray  # noqa: PLC0415  (optional extra, imported after the local settings)

        if head is None:
            ray.init(address=address)
        else:
            ray.init(
                address=head,
                _node_ip_address="127.0.0.1",
                runtime_env={"env_vars": {"PYTHONPATH": _driver_pythonpath()}},
            )
        stack.callback(ray.shutdown)
        yield


class _FleetRun:
    """One ``run_fleet`` call on a connected Ray: submission, collection, writing, progress."""

    def __init__(self, spec: PipelineSpec, drives: Sequence[DriveRef], options: FleetOptions):
        import ray  # noqa: PLC0415

        self.ray: Any = ray
        self.spec = spec
        self.drives = {d.drive: d for d in drives}
        self.options = options
        self.outcome = FleetOutcome()
        resources = {"num_cpus": options.cpus_per_task, "num_gpus": options.gpus_per_task}
        self.replay = self.ray.remote(
            max_retries=options.max_retries, retry_exceptions=True, **resources
        )(_replay_task)
        self.span = self.ray.remote(
            max_retries=options.max_retries, num_cpus=options.cpus_per_task
        )(_span_task)
        self.prepare = self.ray.remote(max_retries=options.max_retries, **resources)(prepare_engine)
        self.ledger = self.ray.remote(num_cpus=0)(AttemptLedger).remote()
        self.chunks: dict[str, list[ChunkWindow]] = {}
        self.finished: dict[str, list[ChunkOutcome]] = {}
        self.started = time.perf_counter()
        self.bar = tqdm(
            total=len(drives),
            desc="fleet",
            unit="drive",
            disable=(not options.progress) if options.progress is not None else None,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    # -- engines, one preparation per node ----------------------------------------------

    def prepare_nodes(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: PLC0415

        need_cpu, need_gpu = self.options.cpus_per_task, self.options.gpus_per_task
        nodes = [
            n["NodeID"]
            for n in self.ray.nodes()
            if n.get("Alive")
            and n.get("Resources", {}).get("CPU", 0) >= need_cpu
            and n.get("Resources", {}).get("GPU", 0) >= need_gpu
        ]
        if not nodes:
            raise EngineError(
                f"no node of the Ray cluster has {need_cpu} CPU(s) and {need_gpu} GPU(s) free "
                "for a task (see --gpus-per-task)"
            )
        refs = [
            self.prepare.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
            ).remote(self.spec, node)
            for node in nodes
        ]
        try:
            self.outcome.engines = list(self.ray.get(refs))
        except self.ray.exceptions.RayError as exc:
            raise EngineError(
                f"opening the engine on a node failed: {describe_failure(exc)}"
            ) from None

    # -- planning ---------------------------------------------------------------------------

    def plan(self) -> None:
        chunk_s = self.options.chunk_s
        if chunk_s is None:
            self.chunks = {drive: [WHOLE_DRIVE] for drive in self.drives}
            return
        context_ns = sync_context_ns(self.spec.config())
        refs = {self.span.remote(self.spec, d.path): d.drive for d in self.drives.values()}
        for ref, drive in refs.items():
            try:
                span = self.ray.get(ref)
            except self.ray.exceptions.RayError as exc:
                span = ChunkFailure(describe_failure(exc))
            if isinstance(span, ChunkFailure):
                self._fail(drive, span.error, attempts=1, chunks=1)
                continue
            self.chunks[drive] = plan_chunks(span[0], span[1], chunk_s, context_ns)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> FleetOutcome:
        try:
            self.prepare_nodes()
            self.plan()
            queue = deque(
                (drive, window) for drive, windows in self.chunks.items() for window in windows
            )
            limit = self.options.max_in_flight or max(
                2, 2 * int(self.ray.cluster_resources().get("CPU", 1) / self.options.cpus_per_task)
            )
            pending: dict[Any, tuple[str, ChunkWindow]] = {}
            while queue or pending:
                while queue and len(pending) < limit:
                    drive, window = queue.popleft()
                    path = self.drives[drive].path
                    ref = self.replay.remote(self.spec, drive, path, window, self.ledger)
                    pending[ref] = (drive, window)
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    self._collect(ref, *pending.pop(ref))
        finally:
            self.bar.close()
        self.outcome.wall_s = time.perf_counter() - self.started
        return self.outcome

    def _collect(self, ref: Any, drive: str, window: ChunkWindow) -> None:
        if drive in self.outcome.failed or drive in self.outcome.completed:
            return  # a sibling chunk already failed the drive
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            value = ChunkFailure(describe_failure(exc))
        if isinstance(value, ChunkFailure):
            self._fail(
                drive, value.error, attempts=self._attempts(drive), chunks=len(self.chunks[drive])
            )
            return
        outcomes = self.finished.setdefault(drive, [])
        outcomes.append(value)
        self.outcome.frames += len(value.detections)
        if len(outcomes) < len(self.chunks[drive]):
            return
        attempts = self._attempts(drive)
        try:
            tables = drive_tables(drive, self.drives[drive].path, outcomes, attempts=attempts)
        except FusionError as exc:  # no frame at all: deterministic, recorded failed at once
            self._fail(
                drive, f"{type(exc).__name__}: {exc}", attempts=attempts, chunks=len(outcomes)
            )
            return
        write_drive(self.options.out_dir, tables)
        del self.finished[drive]
        self.outcome.completed.append(drive)
        self._advance()

    def _attempts(self, drive: str) -> int:
        keys = [(drive, w.index) for w in self.chunks.get(drive, [WHOLE_DRIVE])]
        return int(self.ray.get(self.ledger.attempts.remote(keys)))

    def _fail(self, drive: str, error: str, *, attempts: int, chunks: int) -> None:
        path = self.drives[drive].path
        tables = DriveTables.failed(
            drive,
            str(path),
            error,
            attempts=attempts,
            chunks=chunks,
            condition=drive_condition(path),
        )
        write_drive(self.options.out_dir, tables)
        self.finished.pop(drive, None)
        self.outcome.failed[drive] = error
        logger.error("drive %s failed after %d attempt(s): %s", drive, attempts, error)
        self._advance()

    def _advance(self) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(
            f"{self.outcome.frames / elapsed:.1f} frames/s, {len(self.outcome.failed)} failed",
            refresh=False,
        )
        self.bar.update(1)


def run_fleet(
    spec: PipelineSpec, drives: Sequence[DriveRef], options: FleetOptions
) -> FleetOutcome:
    """Replay ``drives`` through the pipeline on Ray and write their results (see the module
    docstring); drives already complete in ``options.out_dir`` are skipped unless ``force``."""
    out_dir = Path(options.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped = [] if options.force else [d for d in drives if drive_is_complete(out_dir, d.drive)]
    todo = [d for d in drives if d not in skipped]
    if not todo:
        return FleetOutcome(skipped=[d.drive for d in skipped])
    with ray_session(options.address, options.num_cpus):
        outcome = _FleetRun(spec, todo, options).run()
    outcome.skipped = [d.drive for d in skipped]
    return outcome
