"""Every sink on a thread of its own, frames in order, and one completion per frame.

Writing a frame to an MCAP file, a video and a JSON-lines file one after another puts their
sum on the hot path. :class:`SinkFanout` gives each sink its own thread and bounded queue, so
the sinks write concurrently (encoders and compressors release the GIL) and off the inference
threads; each sink still sees every frame in order, from one thread, as the sink contract
promises. A frame is *complete* when every sink has written it; completions are handed to
``on_done`` in the order the frames were submitted, on the fan-out's own thread, so that what
follows a write (timings, evaluation, the ``fusionrt_frame_done`` hook) keeps the frame order.

A sink that fails (its ``write`` raises) is reported once through ``on_error``; the fan-out
then stops writing to every sink but keeps completing frames, so nothing waits forever.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import FusionError, SinkError
from fusionrt.runtime.messages import Detections, Frame

__all__ = ["SinkFanout", "sink_error"]

_END = object()

#: ``on_done(item, written, end_ns, sink_ns)``: ``written`` False when the frame was skipped or
#: a sink failed; ``end_ns`` when its last sink finished; ``sink_ns`` each sink's write time.
DoneCallback = Callable[[Any, bool, int, dict[str, int]], None]


@dataclass
class _Pending:
    item: Any
    frame: Frame | None
    detections: Detections | None
    timings_ms: dict[str, float]
    remaining: int
    written: bool = True
    end_ns: int = 0
    sink_ns: dict[str, int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def sink_error(sink: Sink, exc: BaseException) -> FusionError:
    """A sink's own exception as a one-line :class:`SinkError` naming the sink and file (a
    :class:`FusionError` it raised is kept as it is)."""
    if isinstance(exc, FusionError):
        return exc
    if isinstance(exc, OSError) and exc.errno is not None:
        cause = f"[Errno {exc.errno}] {exc.strerror}"  # as the built-in sinks say it
    else:
        cause = f"{type(exc).__name__}: {exc}"
    file = getattr(exc, "filename", None) or getattr(sink, "path", None)
    return SinkError(
        f"cannot write its output: {cause}",
        sink=getattr(sink, "name", type(sink).__name__),
        file=None if file is None else str(file),
    )


class SinkFanout:
    """Fans frames out to the sinks' threads and completes them in order (see the module)."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        queue_size: int,
        on_done: DoneCallback,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.sinks = tuple(sinks)
        self.on_done = on_done
        self.on_error = on_error
        self._failed = threading.Event()
        self._lock = threading.Lock()
        self._queues: list[queue.Queue[Any]] = [queue.Queue(queue_size) for _ in self.sinks]
        self._completions: queue.Queue[Any] = queue.Queue()
        self._threads = [
            threading.Thread(
                target=self._write_loop,
                args=(sink, q),
                name=f"fusionrt-sink-{getattr(sink, 'name', index)}",
            )
            for index, (sink, q) in enumerate(zip(self.sinks, self._queues, strict=True))
        ]
        self._threads.append(
            threading.Thread(target=self._complete_loop, name="fusionrt-sink-done")
        )
        for thread in self._threads:
            thread.start()

    def submit(
        self, item: Any, frame: Frame, detections: Detections, timings_ms: dict[str, float]
    ) -> None:
        """Give one frame to every sink (blocks while a sink's queue is full)."""
        pending = _Pending(item, frame, detections, timings_ms, remaining=len(self.sinks))
        self._completions.put(pending)
        if not self.sinks:
            pending.end_ns = time.perf_counter_ns()
            pending.done.set()
        for sink_queue in self._queues:
            sink_queue.put(pending)

    def skip(self, item: Any) -> None:
        """Complete ``item`` in its turn without writing it (a dropped frame)."""
        pending = _Pending(item, None, None, {}, remaining=0, written=False)
        pending.done.set()
        self._completions.put(pending)

    def close(self) -> None:
        """Let the sinks write what is queued, complete every frame, end the threads."""
        for sink_queue in self._queues:
            sink_queue.put(_END)
        self._completions.put(_END)
        for thread in self._threads:
            thread.join()

    def _write_loop(self, sink: Sink, sink_queue: queue.Queue[Any]) -> None:
        name = getattr(sink, "name", type(sink).__name__)
        while (pending := sink_queue.get()) is not _END:
            start = time.perf_counter_ns()
            ok = False
            try:
                if not self._failed.is_set():
                    assert pending.frame is not None and pending.detections is not None
                    sink.write(pending.frame, pending.detections, pending.timings_ms)
                    ok = True
            except BaseException as exc:
                self._failed.set()
                self.on_error(sink_error(sink, exc))
            end = time.perf_counter_ns()
            with self._lock:
                pending.sink_ns[name] = end - start
                pending.written = pending.written and ok
                pending.remaining -= 1
                if pending.remaining == 0:
                    pending.end_ns = end
                    pending.done.set()

    def _complete_loop(self) -> None:
        while (pending := self._completions.get()) is not _END:
            pending.done.wait()
            try:
                self.on_done(pending.item, pending.written, pending.end_ns, pending.sink_ns)
            except BaseException as exc:  # an observer that raises stops the run, reported
                self._failed.set()
                self.on_error(exc)
