"""The ``ros2`` live source: ROS 2 topics received over Zenoh, as rmw_zenoh publishes them.

Each topic is subscribed with its type and type hash as wildcards
(``<domain>/<topic>/*/*``), and each sample's type is read from its key expression: a
publisher of any type is heard, and the sensor that reads the topic decides what it can decode
— exactly as with a bag, whose records also carry their type. Subscribing to one expected type
instead would make a publisher of the wrong type silently absent; this way it is counted.

A sample becomes a :class:`~fusionrt.runtime.messages.RawRecord` with the payload's CDR bytes
as received, ``msgtype`` from the key (``sensor_msgs/msg/PointCloud2``), ``stamp_ns`` = the
attachment's source timestamp (the publisher's clock when it published, what a recorder's log
time approximates; sensors take their stamps from the message headers), ``path`` = the key
expression and ``offset`` = the publisher's sequence number, which together locate a bad
message.

**Threads.** Zenoh's receiving thread only appends each sample to a ring of
``receive_queue`` samples per topic and never waits; one thread per topic takes them from the
ring, checks them and calls ``inbox.put`` (which never blocks either). What cannot become a
record is counted with ``inbox.report_drop(topic, reason, record)``:

* ``lost`` — a gap in a publisher's sequence numbers: samples lost on the way (a publisher
  that dropped them under congestion, or the ring overwriting the oldest when this source
  falls behind); one report per missing sample, ``offset`` = its sequence number;
* ``no_attachment`` — missing or not rmw_zenoh's 33 bytes (rmw_zenoh drops these too);
* ``unknown_type`` — the key's type is not a message type fusionrt has a definition of;
* ``type_hash_mismatch`` — the publisher's definition of the type differs from fusionrt's
  (its RIHS01 hash differs; Humble's ``TypeHashNotSupported`` is accepted).

Garbage CDR of a known type is not the source's business: it reaches the inbox, and the
sensor's decode counts it as a decode error with the topic and stamp.

On the first sample of a topic the source declares its subscription token (type and hash from
that sample), so ``ros2 topic info -v`` lists fusionrt as a subscriber.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from fusionrt.plugins.ros2 import wire
from fusionrt.plugins.ros2.session import SessionOptions
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import RawRecord

if TYPE_CHECKING:
    import zenoh

    from fusionrt.plugins.ros2.node import Declaration, Node

__all__ = ["DEFAULT_RECEIVE_QUEUE", "DROP_REASONS", "MAX_COUNTED_GAP", "Ros2Source"]

logger = logging.getLogger("fusionrt.ros2.source")

#: Why the source drops a sample before the inbox (see the module docstring).
DROP_REASONS = ("lost", "no_attachment", "unknown_type", "type_hash_mismatch")

#: Samples of one topic Zenoh may hold for the receive thread before it drops the oldest.
DEFAULT_RECEIVE_QUEUE = 64

#: A larger jump of a publisher's sequence number is taken for a restart, not counted as lost.
MAX_COUNTED_GAP = 10_000

_KEY_CACHE_LIMIT = 256  # distinct (type, hash) keys remembered per topic: a bound on memory
_PUBLISHER_LIMIT = 64  # publishers' last sequence numbers remembered per topic

# What a data key resolves to: the msgtype, and the drop reason when the type is not accepted.
_Route = tuple[str, str | None]


class _Topic:
    """The receive state of one topic (touched by its receive thread only)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: dict[str, _Route] = {}
        self.last_sequence: dict[bytes, int] = {}

    def follow(self, gid: bytes, sequence: int) -> range:
        """Note a publisher's sample; the sequence numbers it skipped since its previous one
        (none for its first; a jump larger than :data:`MAX_COUNTED_GAP` is taken for a
        restart and logged, not counted)."""
        last = self.last_sequence.get(gid)
        if last is None and len(self.last_sequence) >= _PUBLISHER_LIMIT:
            del self.last_sequence[next(iter(self.last_sequence))]  # the first heard
        self.last_sequence[gid] = sequence
        if last is None:
            return range(0)
        if 0 <= sequence - last - 1 <= MAX_COUNTED_GAP:
            return range(last + 1, sequence)
        logger.warning(
            "publisher %s on %s went from sequence %d to %d (restarted?)",
            gid.hex(), self.name, last, sequence,
        )  # fmt: skip
        return range(0)


class Ros2Source(LiveSource):
    """Receives ROS 2 topics from rmw_zenoh publishers (see the module docstring).

    Constructed ``Ros2Source(topics=[...], **options)``: ``domain_id``, ``mode``,
    ``connect``, ``listen``, ``multicast_scouting`` (from the pipeline's ``live:`` section),
    ``node_name`` (default ``fusionrt``), ``namespace`` (default ``/``) and
    ``receive_queue`` (default 64 samples per topic). An invalid option or topic is a
    ConfigError naming it.
    """

    name = "ros2"

    def __init__(
        self, topics: Collection[str], *, receive_queue: int = DEFAULT_RECEIVE_QUEUE, **options: Any
    ) -> None:
        if isinstance(topics, str):
            raise ConfigError(
                f"topics must be a collection of topic names, not the string {topics!r}",
                key="topics",
            )
        super().__init__(topics)
        for topic in self.topics:
            try:
                wire.validate_topic(topic)
            except ValueError as exc:
                raise ConfigError(str(exc), key="topics", topic=topic) from None
        if (
            isinstance(receive_queue, bool)
            or not isinstance(receive_queue, int)
            or receive_queue < 1
        ):
            raise ConfigError(
                f"receive_queue must be an integer >= 1, got {receive_queue!r}",
                key="receive_queue",
            )
        self.receive_queue = receive_queue
        self.options = SessionOptions.from_options(options, owner="source ros2")
        self.node: Node | None = None
        self._declared: set[tuple[str, str, str]] = set()
        self._declarations: list[Declaration] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, inbox: RecordInbox) -> None:
        """Open (or share) the node, subscribe every topic and start the receive threads."""
        if self.node is not None:
            raise RuntimeError("the ros2 source is already started")
        typestore()  # built now, not while the first samples wait in the rings
        from fusionrt.plugins.ros2.node import Node  # noqa: PLC0415  (Zenoh loads on first use)

        node = self.node = Node.acquire(self.options)
        for topic in self.topics:
            declaration, samples = node.subscribe(topic, self.receive_queue)
            thread = threading.Thread(
                target=self._receive,
                args=(_Topic(topic), samples, inbox),
                name=f"fusionrt-ros2 {topic}",
                daemon=True,
            )
            with self._lock:
                self._declarations.append(declaration)
                self._threads.append(thread)
            thread.start()

    def _receive(self, topic: _Topic, samples: Iterator[zenoh.Sample], inbox: RecordInbox) -> None:
        """The receive thread of one topic: until its subscriber is undeclared."""
        for sample in samples:
            try:
                self._take(topic, sample, inbox)
            except Exception:  # a bug here must not end the topic's reception for the run
                logger.exception("%s: a sample on %s could not be taken", self.name, topic.name)

    def _take(self, topic: _Topic, sample: zenoh.Sample, inbox: RecordInbox) -> None:
        """Turn one sample into a record in the inbox, or count why it cannot be one."""
        key = str(sample.key_expr)
        route = topic.routes.get(key)
        if route is None:
            route = self._route(topic, key)
        msgtype, problem = route
        attachment = sample.attachment
        fields = None if attachment is None else wire.unpack_attachment(attachment.to_bytes())
        if fields is None:
            self._drop(inbox, topic.name, "no_attachment", sample, msgtype=msgtype, key=key)
            return
        sequence, stamp_ns, gid = fields
        if topic.last_sequence.get(gid) == sequence - 1:  # the usual case, kept cheap
            topic.last_sequence[gid] = sequence
        else:
            for missing in topic.follow(gid, sequence):
                lost = RawRecord(topic.name, stamp_ns, b"", msgtype, key, missing)
                inbox.report_drop(topic.name, "lost", lost)
        if problem is not None:
            self._drop(inbox, topic.name, problem, sample, msgtype=msgtype, key=key)
            return
        inbox.put(
            RawRecord(topic.name, stamp_ns, sample.payload.to_bytes(), msgtype, key, sequence)
        )

    def _route(self, topic: _Topic, key: str) -> _Route:
        """Resolve a data key once: its msgtype and whether the source accepts it."""
        try:
            _, dds_type, hash_ = wire.split_data_keyexpr(key)
        except ValueError:
            dds_type, hash_ = "", ""
        msgtype = wire.ros_type_name(dds_type)
        store = typestore()
        problem: str | None = None
        if msgtype is None or msgtype not in store.types:
            problem = "unknown_type"
        elif hash_ not in (store.hash_rihs01(msgtype), wire.HUMBLE_TYPE_HASH):
            problem = "type_hash_mismatch"
        route = (msgtype or dds_type, problem)
        if len(topic.routes) < _KEY_CACHE_LIMIT:
            topic.routes[key] = route
        if problem is None:
            self._declare(topic.name, route[0], hash_)
        else:
            logger.warning("%s: samples on %s are dropped (%s)", self.name, key, problem)
        return route

    def _declare(self, topic: str, msgtype: str, hash_: str) -> None:
        """Declare the subscription token of (topic, type, hash) once."""
        with self._lock:
            if (topic, msgtype, hash_) in self._declared or self.node is None:
                return
            self._declared.add((topic, msgtype, hash_))
            node = self.node
        try:
            declaration = node.declare_subscription(topic, msgtype, hash_)
        except RuntimeError:  # the node closed meanwhile: there is nothing left to declare
            return
        with self._lock:
            self._declarations.append(declaration)

    @staticmethod
    def _drop(
        inbox: RecordInbox, topic: str, reason: str, sample: zenoh.Sample, *, msgtype: str, key: str
    ) -> None:
        record = RawRecord(topic, time.time_ns(), sample.payload.to_bytes(), msgtype, key)
        inbox.report_drop(topic, reason, record)

    def close(self) -> None:
        """Stop receiving: undeclare the subscribers and tokens, end the threads (idempotent)."""
        with self._lock:
            node, self.node = self.node, None
            declarations, self._declarations = self._declarations, []
            threads, self._threads = self._threads, []
        for declaration in declarations:
            declaration.undeclare()
        for thread in threads:
            thread.join(timeout=2.0)  # undeclaring ends their iteration within ~0.1 s
        if node is not None:
            node.release()
        super().close()
