"""Live inputs: the source contract for data that arrives while the run goes on, and the
bounded inbox those sources fill.

A recorded source is pulled: the runtime asks for the next record. A live source is pushed:
packets, Zenoh samples and CAN frames arrive on the source's own threads whenever the sensors
send them, and the runtime must neither block those threads nor let a backlog grow when it
falls behind. So a :class:`LiveSource` is given a :class:`RecordInbox` and puts each received
:class:`~fusionrt.runtime.messages.RawRecord` into it — the same records a recording yields,
so a sensor has one decode path for live and replay. The inbox keeps a bounded queue per topic
that **drops the oldest** record when full (the newest data is what a car needs), counts every
drop by topic and reason, stamps each record with its arrival time (``time.perf_counter_ns``:
latency is measured from there), and hands the records to the runtime's ingest thread oldest
arrival first. Several live sources (a ROS 2 transport, a CAN bus, a lidar on UDP) share one
inbox, which is how one pipeline mixes them.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator
from typing import Any, ClassVar

from fusionrt.runtime.components import Source
from fusionrt.runtime.messages import RawRecord

__all__ = ["DEFAULT_TOPIC_CAPACITY", "Arrival", "LiveSource", "RecordInbox"]

#: Records kept per topic before the oldest is dropped (a few periods of the slowest sensor).
DEFAULT_TOPIC_CAPACITY = 8

Arrival = tuple[RawRecord, int]
"""A record and its arrival time (``time.perf_counter_ns``)."""

DropCallback = Callable[[str, str, RawRecord], None]
"""``on_drop(topic, reason, record)``: called (from the putting thread) for each dropped record."""


class RecordInbox:
    """Bounded per-topic queues that drop the oldest; thread-safe (see the module docstring).

    ``put`` never blocks. ``get(timeout_s)`` returns the oldest arrival across topics, or
    ``None`` after ``timeout_s`` without one (the runtime then advances its clock) or once the
    inbox is closed and empty.
    """

    def __init__(
        self,
        capacity_per_topic: int = DEFAULT_TOPIC_CAPACITY,
        *,
        capacities: dict[str, int] | None = None,
        on_drop: DropCallback | None = None,
    ) -> None:
        if capacity_per_topic < 1:
            raise ValueError(f"capacity_per_topic must be >= 1, got {capacity_per_topic}")
        self.capacity_per_topic = capacity_per_topic
        self.capacities = dict(capacities or {})
        self.on_drop = on_drop
        self.received: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self._queues: dict[str, deque[tuple[int, int, RawRecord]]] = {}
        self._seq = 0
        self._size = 0
        self._closed = False
        self._waiting = 0  # takers asleep in get()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)

    def put(self, record: RawRecord, arrival_ns: int | None = None) -> None:
        """Add one received record (stamped now unless ``arrival_ns`` is given)."""
        arrival = time.perf_counter_ns() if arrival_ns is None else arrival_ns
        dropped: RawRecord | None = None
        topic = record.topic
        with self._lock:
            if self._closed:
                return
            queue = self._queues.get(topic)
            if queue is None:
                queue = self._queues[topic] = deque()
            self.received[topic] += 1
            if len(queue) >= self.capacities.get(topic, self.capacity_per_topic):
                dropped = queue.popleft()[2]
                self.dropped[(topic, "queue_full")] += 1
                self._size -= 1
            self._seq += 1
            queue.append((self._seq, arrival, record))
            self._size += 1
            if self._waiting:  # wake the taker only when it sleeps (a notify costs)
                self._ready.notify()
        if dropped is not None and self.on_drop is not None:
            self.on_drop(topic, "queue_full", dropped)

    def report_drop(self, topic: str, reason: str, record: RawRecord) -> None:
        """Count a record a source dropped before it reached the inbox (e.g. ``bad_sender``)."""
        with self._lock:
            self.dropped[(topic, reason)] += 1
        if self.on_drop is not None:
            self.on_drop(topic, reason, record)

    def get(self, timeout_s: float) -> Arrival | None:
        """The oldest arrival across topics; ``None`` on timeout or when closed and empty."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._size == 0:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._waiting += 1
                try:
                    self._ready.wait(remaining)
                finally:
                    self._waiting -= 1
            oldest = min(
                (q for q in self._queues.values() if q),
                key=lambda q: q[0][0],
            )
            _, arrival, record = oldest.popleft()
            self._size -= 1
            return record, arrival

    def __len__(self) -> int:
        return self._size

    def close(self) -> None:
        """Refuse further records and wake a waiting ``get``."""
        with self._lock:
            self._closed = True
            self._ready.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


class LiveSource(Source):
    """A source whose records arrive while the run goes on (see the module docstring).

    The runtime constructs it as ``cls(topics=TOPICS, **options)`` — ``options`` from the
    pipeline's ``live:`` section or from a sensor's own ``source: {name, options}`` — calls
    :meth:`start` with the run's inbox, and :meth:`close` when the run ends. A live source
    receives on its own threads and never blocks them on the runtime: it only calls
    ``inbox.put``. Records carry the topic names the pipeline's sensors read and the bytes in
    the format their sensors decode (``msgtype`` says which).
    """

    live: ClassVar[bool] = True

    def __init__(self, topics: Collection[str], **options: Any) -> None:
        self.topics = tuple(topics)
        self._standalone: RecordInbox | None = None

    @abstractmethod
    def start(self, inbox: RecordInbox) -> None:
        """Begin receiving the topics into ``inbox``; return at once (receive on threads)."""

    def records(self) -> Iterator[RawRecord]:
        """The records as they arrive, for use without a pipeline (blocks; ends on close)."""
        inbox = self._standalone = RecordInbox()
        self.start(inbox)
        while True:
            arrival = inbox.get(timeout_s=0.1)
            if arrival is not None:
                yield arrival[0]
            elif inbox.closed:
                return

    def close(self) -> None:
        """Stop receiving; release sockets and sessions (idempotent)."""
        if self._standalone is not None:
            self._standalone.close()
