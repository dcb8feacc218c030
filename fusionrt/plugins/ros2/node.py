"""A ROS 2 node on a Zenoh session: liveliness tokens, publishers and subscriptions.

rmw_zenoh has no node object on the wire: a node is a liveliness token, and so is each of its
publishers and subscriptions (:mod:`fusionrt.plugins.ros2.wire` spells them). :class:`Node`
declares those tokens so ``ros2 node list`` and ``ros2 topic list -v`` show fusionrt, gives
each :class:`Publisher` its GID and sequence numbers, and undeclares everything on close, so
the ROS graph forgets fusionrt at once instead of when its session times out.

One process has one node per set of :class:`~fusionrt.plugins.ros2.session.SessionOptions`:
the ``ros2`` source and sink of a pipeline share it through :meth:`Node.acquire` /
:meth:`Node.release` (reference counted), as rmw_zenoh maps one context to one session — and a
session that listens on a port cannot be opened twice anyway.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import zenoh

from fusionrt.plugins.ros2 import wire
from fusionrt.plugins.ros2.session import SessionOptions, open_session
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import ConfigError, SinkError

__all__ = ["DEFAULT_QOS", "Declaration", "Node", "Publisher", "type_hash"]

logger = logging.getLogger("fusionrt.ros2")

#: What fusionrt declares for its publishers and subscriptions: ``rclcpp::QoS(10)``.
DEFAULT_QOS = wire.QoS(depth=10)


def type_hash(msgtype: str) -> str:
    """The RIHS01 hash of a type in fusionrt's typestore (ConfigError if it is unknown)."""
    store = typestore()
    if msgtype not in store.types:
        raise ConfigError(f"no definition of the message type {msgtype!r}", key="msgtype")
    return str(store.hash_rihs01(msgtype))


class Declaration:
    """Something declared on a node's session (a subscriber, a token): undeclared by its owner
    or, at the latest, with the node."""

    def __init__(self, node: Node, entities: tuple[Any, ...]) -> None:
        self._node = node
        self._entities: tuple[Any, ...] | None = entities

    def undeclare(self) -> None:
        """Undeclare the entities, last declared first (idempotent)."""
        with self._node._lock:
            entities, self._entities = self._entities, None
            self._node._declarations.discard(self)
        for entity in reversed(entities or ()):
            _undeclare(entity)


class Publisher:
    """Publishes CDR messages of one type on one topic, with rmw_zenoh's attachment.

    By default publishing never blocks: like rmw_zenoh's publishers
    (``CongestionControl.DROP``), a sample Zenoh cannot queue for a slow subscriber is dropped.
    With ``block=True`` (rmw_zenoh's choice for reliable keep-all publishers) a congested
    publisher waits instead, and nothing is lost.
    """

    def __init__(
        self,
        node: Node,
        topic: str,
        msgtype: str,
        *,
        eid: int,
        qos: wire.QoS,
        owner: str,
        block: bool = False,
    ) -> None:
        self.topic = topic
        self.msgtype = msgtype
        self.type_hash = type_hash(msgtype)
        self.owner = owner
        self.keyexpr = wire.topic_keyexpr(node.options.domain_id, topic, msgtype, self.type_hash)
        self.token_key = node.info.entity_token(
            wire.PUBLISHER, eid=eid, topic=topic, msgtype=msgtype, type_hash=self.type_hash, qos=qos
        )
        self.gid = wire.gid_of(self.token_key)
        self._sequence = itertools.count(1)  # next() is atomic under the GIL
        self._publisher = node.session.declare_publisher(
            self.keyexpr,
            encoding=zenoh.Encoding.APPLICATION_CDR,
            congestion_control=zenoh.CongestionControl.BLOCK
            if block
            else zenoh.CongestionControl.DROP,
            reliability=zenoh.Reliability.RELIABLE
            if qos.reliability == wire.Reliability.RELIABLE
            else zenoh.Reliability.BEST_EFFORT,
        )
        token = node.session.liveliness().declare_token(self.token_key)
        self.declaration = Declaration(node, (self._publisher, token))

    @property
    def blocks_when_congested(self) -> bool:
        """Whether a congested :meth:`publish` waits (``block=True``) rather than drops."""
        return bool(self._publisher.congestion_control == zenoh.CongestionControl.BLOCK)

    @property
    def matched(self) -> bool:
        """Whether a subscriber of this topic and type is known to the session."""
        return bool(self._publisher.matching_status)

    def publish(
        self, cdr: bytes | bytearray | memoryview, source_timestamp_ns: int | None = None
    ) -> int:
        """Put one CDR message (encapsulation header included); its sequence number.

        ``source_timestamp_ns`` defaults to now (``time.time_ns``), as rmw_zenoh stamps it.
        A SinkError naming the owner and topic if the session is closed or broken.
        """
        sequence = next(self._sequence)
        stamp = time.time_ns() if source_timestamp_ns is None else source_timestamp_ns
        attachment = wire.Attachment(sequence, stamp, self.gid).encode()
        try:
            self._publisher.put(bytes(cdr), attachment=attachment)
        except zenoh.ZError as exc:
            raise SinkError(f"cannot publish: {exc}", sink=self.owner, topic=self.topic) from None
        return sequence

    def close(self) -> None:
        """Undeclare the token, then the publisher (idempotent)."""
        self.declaration.undeclare()


class Node:
    """A ROS 2 node (name and namespace from the options) on its own Zenoh session."""

    _shared: ClassVar[dict[SessionOptions, tuple[Node, int]]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.session = open_session(options)
        self.zid = str(self.session.zid())
        self._ids = itertools.count()  # node and entity ids share one counter, as in rmw_zenoh
        self.info = wire.NodeInfo(
            options.domain_id, self.zid, next(self._ids), options.node_name, options.namespace
        )
        self.token_key = self.info.token()
        self._lock = threading.Lock()
        self._declarations: set[Declaration] = set()
        self._closed = False
        self._token = self.session.liveliness().declare_token(self.token_key)

    # -- sharing ----------------------------------------------------------------------------

    @classmethod
    def acquire(cls, options: SessionOptions) -> Node:
        """The process's node for ``options``, opened on first use; pair with :meth:`release`."""
        with cls._shared_lock:
            node, users = cls._shared.get(options, (None, 0))
            if node is None:
                node = cls(options)
            cls._shared[options] = (node, users + 1)
            return node

    def release(self) -> None:
        """Give back one :meth:`acquire`; the last one closes the node."""
        with Node._shared_lock:
            node, users = Node._shared.get(self.options, (None, 0))
            if node is not self:
                return
            if users > 1:
                Node._shared[self.options] = (self, users - 1)
                return
            del Node._shared[self.options]
        self.close()

    # -- entities ---------------------------------------------------------------------------

    def publisher(
        self,
        topic: str,
        msgtype: str,
        qos: wire.QoS = DEFAULT_QOS,
        *,
        owner: str = "ros2",
        block: bool = False,
    ) -> Publisher:
        """A new publisher of ``msgtype`` on ``topic`` (closed with the node); ``block``: wait
        when congested instead of dropping (see :class:`Publisher`)."""
        _check_topic(topic)
        with self._lock:
            self._check_open()
            publisher = Publisher(
                self, topic, msgtype, eid=next(self._ids), qos=qos, owner=owner, block=block
            )
            self._declarations.add(publisher.declaration)
        return publisher

    def subscribe(self, topic: str, capacity: int) -> tuple[Declaration, Iterator[zenoh.Sample]]:
        """Receive ``topic``'s samples, of any type and type hash, into a ring of ``capacity``.

        Iterating the returned samples blocks until the next one and ends when the declaration
        is undeclared. Zenoh's receiving thread never waits on the reader: when the ring is
        full the oldest sample is dropped (a reader sees the gap in the publisher's sequence
        numbers). A full queue that blocked Zenoh's thread instead would make it lose whole
        messages upstream, the large ones first (measured with zenoh 1.9).
        """
        _check_topic(topic)
        keyexpr = wire.subscription_keyexpr(self.options.domain_id, topic)
        with self._lock:
            self._check_open()
            subscriber = self.session.declare_subscriber(
                keyexpr, zenoh.handlers.RingChannel(capacity)
            )
            return self._track(subscriber), iter(subscriber.handler)

    def declare_subscription(
        self, topic: str, msgtype: str, hash_: str, qos: wire.QoS = DEFAULT_QOS
    ) -> Declaration:
        """Declare this node's subscription of ``topic`` to the graph (its liveliness token)."""
        with self._lock:
            self._check_open()
            key = self.info.entity_token(
                wire.SUBSCRIPTION,
                eid=next(self._ids),
                topic=topic,
                msgtype=msgtype,
                type_hash=hash_,
                qos=qos,
            )
            return self._track(self.session.liveliness().declare_token(key))

    def _track(self, *entities: Any) -> Declaration:
        declaration = Declaration(self, entities)
        self._declarations.add(declaration)
        return declaration

    # -- closing ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the ROS 2 node {self.options.node_name!r} is closed")

    def close(self) -> None:
        """Undeclare every entity and the node's token, then close the session (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            declarations = list(self._declarations)
        for declaration in declarations:
            declaration.undeclare()
        _undeclare(self._token)
        try:
            self.session.close()
        except zenoh.ZError as exc:  # closing must not mask what made us close
            logger.warning("closing the Zenoh session failed: %s", exc)


def _check_topic(topic: str) -> None:
    try:
        wire.validate_topic(topic)
    except ValueError as exc:
        raise ConfigError(str(exc), topic=topic) from None


def _undeclare(entity: Any) -> None:
    try:
        entity.undeclare()
    except zenoh.ZError as exc:  # already gone with its session: nothing left to undeclare
        logger.debug("undeclare: %s", exc)
