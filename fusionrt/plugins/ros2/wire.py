"""rmw_zenoh's wire conventions: how a ROS 2 node looks on Zenoh.

This is rmw_zenoh's implementation, not a published specification; every rule below is read
from ros2/rmw_zenoh (``docs/design.md`` and ``rmw_zenoh_cpp/src/detail/``:
``liveliness_utils.cpp`` for key expressions, tokens, name mangling, the QoS field and the
GID; ``attachment_helpers.cpp`` and ``rmw_publisher_data.cpp`` for the attachment and the
sequence numbers; ``qos.cpp`` for the default QoS) as of the releases that vendor Zenoh 1.6 to
1.8 (Humble 0.1.9, Jazzy 0.2.10, Kilted 0.6.7, Rolling 0.10.x). Nothing else in fusionrt
spells these strings or bytes.

* **Data key expression** ``<domain>/<topic without leading and trailing '/'>/<DDS type
  name>/<type hash>``, e.g. ``0/chatter/std_msgs::msg::dds_::String_/RIHS01_df66…``. The DDS
  type name of ``pkg/msg/Type`` is ``pkg::msg::dds_::Type_``; the type hash is REP-2016's
  ``RIHS01_<sha256 hex>`` (what rcl and ``rosbags``' ``Typestore.hash_rihs01`` compute), or
  ``TypeHashNotSupported`` from Humble, which has no type hashes.
* **Payload**: the CDR message with its 4-byte encapsulation header (``00 01 00 00``).
* **Attachment** (33 bytes; rmw_zenoh subscribers drop a sample without one): the sequence
  number (int64, little-endian; 1 for a publisher's first message), the source timestamp
  (int64 LE, ns since the epoch, taken when publishing), the GID's length as one LEB128 byte
  (``0x10``) and the 16-byte publisher GID.
* **GID**: the XXH3-128 (seed 0) of the entity's liveliness key expression, stored as the
  hash's low 64 bits then its high 64 bits, each little-endian.
* **Liveliness tokens** (what ``ros2 node list`` / ``ros2 topic list`` read; :class:`NodeInfo`):
  node ``@ros2_lv/<domain>/<zid>/<nid>/<nid>/NN/<enclave>/<namespace>/<node>``;
  publisher / subscription ``@ros2_lv/<domain>/<zid>/<nid>/<eid>/MP|MS/<enclave>/<namespace>/
  <node>/<topic>/<DDS type name>/<type hash>/<qos>``, where each name is mangled ('/' → '%',
  so the root namespace and enclave are ``%``), ``zid`` is the Zenoh session id as Zenoh
  prints it (32 lowercase hex digits), and ``nid`` / ``eid`` are decimal ids unique within the
  session (rmw_zenoh counts nodes and entities of a context with one counter from 0).
* **QoS field** ``<reliability>:<durability>:<history>,<depth>:<deadline s>,<deadline ns>:
  <lifespan s>,<lifespan ns>:<liveliness>,<lease s>,<lease ns>``: rmw's enum numbers and
  durations, each left empty where it equals rmw_zenoh's default (reliable, volatile, keep
  last 42, infinite durations, automatic liveliness): ``rclcpp::QoS(10)`` is ``::,10:,:,:,,``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Literal

import xxhash

__all__ = [
    "ADMIN_SPACE",
    "ATTACHMENT_SIZE",
    "DEFAULT_QOS",
    "GID_SIZE",
    "HUMBLE_TYPE_HASH",
    "PUBLISHER",
    "SUBSCRIPTION",
    "Attachment",
    "Durability",
    "EntityKind",
    "History",
    "Liveliness",
    "NodeInfo",
    "QoS",
    "Reliability",
    "dds_type_name",
    "gid_of",
    "mangle",
    "ros_type_name",
    "split_data_keyexpr",
    "subscription_keyexpr",
    "topic_keyexpr",
    "unpack_attachment",
    "validate_namespace",
    "validate_node_name",
    "validate_topic",
]

#: The hermetic key space of rmw_zenoh's liveliness tokens.
ADMIN_SPACE = "@ros2_lv"
#: What rmw_zenoh on Humble puts where later distributions put the RIHS01 type hash.
HUMBLE_TYPE_HASH = "TypeHashNotSupported"
#: Bytes of a publisher GID (``RMW_GID_STORAGE_SIZE``).
GID_SIZE = 16
#: Bytes of an attachment: sequence number, source timestamp, GID length, GID.
ATTACHMENT_SIZE = 8 + 8 + 1 + GID_SIZE

#: The entity field of a publisher's and of a subscription's token.
EntityKind = Literal["MP", "MS"]
PUBLISHER: Final = "MP"
SUBSCRIPTION: Final = "MS"
_NODE = "NN"

_ATTACHMENT = struct.Struct(f"<qqB{GID_SIZE}s")
_INFINITE = (9223372036, 854775807)  # RMW_DURATION_INFINITE as (sec, nsec)
_NAME_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_TOPIC_RE = re.compile(rf"(/{_NAME_TOKEN})+")
_NAMESPACE_RE = re.compile(rf"/|(/{_NAME_TOKEN})+")
_NODE_RE = re.compile(_NAME_TOKEN)
_MSGTYPE_RE = re.compile(rf"({_NAME_TOKEN})/msg/({_NAME_TOKEN})")
_DDS_TYPE_RE = re.compile(rf"({_NAME_TOKEN})::msg::dds_::({_NAME_TOKEN})_")


class Reliability(IntEnum):
    """``rmw_qos_reliability_policy_e``."""

    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class Durability(IntEnum):
    """``rmw_qos_durability_policy_e``."""

    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class History(IntEnum):
    """``rmw_qos_history_policy_e``."""

    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


class Liveliness(IntEnum):
    """``rmw_qos_liveliness_policy_e``."""

    SYSTEM_DEFAULT = 0
    AUTOMATIC = 1
    MANUAL_BY_TOPIC = 3


@dataclass(frozen=True)
class QoS:
    """A QoS profile as rmw_zenoh resolves it (durations are ``(sec, nsec)``)."""

    reliability: Reliability = Reliability.RELIABLE
    durability: Durability = Durability.VOLATILE
    history: History = History.KEEP_LAST
    depth: int = 42
    deadline: tuple[int, int] = _INFINITE
    lifespan: tuple[int, int] = _INFINITE
    liveliness: Liveliness = Liveliness.AUTOMATIC
    liveliness_lease_duration: tuple[int, int] = _INFINITE

    def to_keyexpr(self) -> str:
        """The token's QoS field: rmw_zenoh's ``qos_to_keyexpr`` (defaults left empty)."""

        def field(name: str) -> str:
            value = getattr(self, name)
            return "" if value == getattr(DEFAULT_QOS, name) else str(int(value))

        def duration(name: str) -> str:
            value, default = getattr(self, name), getattr(DEFAULT_QOS, name)
            return ",".join("" if v == d else str(v) for v, d in zip(value, default, strict=True))

        return ":".join(
            (
                field("reliability"),
                field("durability"),
                f"{field('history')},{field('depth')}",
                duration("deadline"),
                duration("lifespan"),
                f"{field('liveliness')},{duration('liveliness_lease_duration')}",
            )
        )


#: rmw_zenoh's default QoS (``qos.cpp``): what the token leaves empty.
DEFAULT_QOS = QoS()


# -- names -----------------------------------------------------------------------------------


def validate_topic(topic: str) -> str:
    """``topic`` if it is a fully qualified ROS 2 topic name, else ``ValueError`` saying why."""
    if not isinstance(topic, str) or not _TOPIC_RE.fullmatch(topic):
        raise ValueError(
            f"{topic!r} is not a fully qualified ROS 2 topic name ('/' then tokens of letters, "
            "digits and '_' not starting with a digit, separated by single '/')"
        )
    return topic


def validate_namespace(namespace: str) -> str:
    """``namespace`` if it is ``/`` or a fully qualified namespace, else ``ValueError``."""
    if not isinstance(namespace, str) or not _NAMESPACE_RE.fullmatch(namespace):
        raise ValueError(f"{namespace!r} is not a ROS 2 namespace ('/' or '/a/b')")
    return namespace


def validate_node_name(name: str) -> str:
    """``name`` if it is a valid ROS 2 node name, else ``ValueError``."""
    if not isinstance(name, str) or not _NODE_RE.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a ROS 2 node name (letters, digits and '_', not starting with a "
            "digit)"
        )
    return name


def mangle(name: str) -> str:
    """A name as a single key chunk: every '/' becomes '%'."""
    return name.replace("/", "%")


def dds_type_name(msgtype: str) -> str:
    """``pkg/msg/Type`` → ``pkg::msg::dds_::Type_`` (``ValueError`` for anything else)."""
    match = _MSGTYPE_RE.fullmatch(msgtype)
    if match is None:
        raise ValueError(f"{msgtype!r} is not a ROS 2 message type (pkg/msg/Type)")
    return f"{match[1]}::msg::dds_::{match[2]}_"


def ros_type_name(dds_type: str) -> str | None:
    """``pkg::msg::dds_::Type_`` → ``pkg/msg/Type``; ``None`` if it is not a message type."""
    match = _DDS_TYPE_RE.fullmatch(dds_type)
    return None if match is None else f"{match[1]}/msg/{match[2]}"


# -- data key expressions -------------------------------------------------------------------


def topic_keyexpr(domain_id: int, topic: str, msgtype: str, type_hash: str) -> str:
    """The key expression a publisher of ``msgtype`` on ``topic`` puts its samples on."""
    return f"{domain_id}/{topic.strip('/')}/{dds_type_name(msgtype)}/{type_hash}"


def subscription_keyexpr(domain_id: int, topic: str) -> str:
    """The key expression matching ``topic``'s samples of every type and type hash."""
    return f"{domain_id}/{topic.strip('/')}/*/*"


def split_data_keyexpr(keyexpr: str) -> tuple[str, str, str]:
    """``(prefix, DDS type name, type hash)`` of a data key expression (``ValueError`` when it
    has fewer than four chunks)."""
    parts = keyexpr.rsplit("/", 2)
    if len(parts) != 3 or "/" not in parts[0]:
        raise ValueError(f"{keyexpr!r} is not an rmw_zenoh data key expression")
    return parts[0], parts[1], parts[2]


# -- liveliness tokens and GIDs -------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    """A node as its tokens name it: domain, Zenoh session id, node id, namespace, name."""

    domain_id: int
    zid: str
    nid: int
    name: str
    namespace: str = "/"
    enclave: str = "/"

    def token(self) -> str:
        """The node's liveliness key expression."""
        return (
            f"{ADMIN_SPACE}/{self.domain_id}/{self.zid}/{self.nid}/{self.nid}/{_NODE}/"
            f"{mangle(self.enclave)}/{mangle(self.namespace)}/{mangle(self.name)}"
        )

    def entity_token(
        self,
        kind: EntityKind,
        *,
        eid: int,
        topic: str,
        msgtype: str,
        type_hash: str,
        qos: QoS = DEFAULT_QOS,
    ) -> str:
        """The liveliness key expression of the node's publisher (``MP``) or subscription
        (``MS``) ``eid`` of ``msgtype`` on ``topic``."""
        if kind not in (PUBLISHER, SUBSCRIPTION):
            raise ValueError(f"entity kind must be MP or MS, got {kind!r}")
        return (
            f"{ADMIN_SPACE}/{self.domain_id}/{self.zid}/{self.nid}/{eid}/{kind}/"
            f"{mangle(self.enclave)}/{mangle(self.namespace)}/{mangle(self.name)}/"
            f"{mangle(topic)}/{dds_type_name(msgtype)}/{mangle(type_hash)}/{qos.to_keyexpr()}"
        )


def gid_of(token: str) -> bytes:
    """The 16-byte GID rmw_zenoh derives from an entity's liveliness key expression."""
    return xxhash.xxh3_128_intdigest(token.encode()).to_bytes(GID_SIZE, "little")


# -- attachments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    """The metadata rmw_zenoh attaches to every published sample."""

    sequence_number: int
    source_timestamp_ns: int
    gid: bytes

    def encode(self) -> bytes:
        """The 33 attachment bytes."""
        if len(self.gid) != GID_SIZE:
            raise ValueError(f"a GID has {GID_SIZE} bytes, got {len(self.gid)}")
        return _ATTACHMENT.pack(self.sequence_number, self.source_timestamp_ns, GID_SIZE, self.gid)

    @classmethod
    def decode(cls, data: bytes) -> Attachment:
        """Parse attachment bytes (``ValueError`` when they are not rmw_zenoh's layout)."""
        if len(data) != ATTACHMENT_SIZE:
            raise ValueError(f"an attachment has {ATTACHMENT_SIZE} bytes, got {len(data)}")
        fields = unpack_attachment(data)
        if fields is None:
            raise ValueError(f"the attachment's GID length byte is {data[16]}, not {GID_SIZE}")
        return cls(*fields)


def unpack_attachment(data: bytes) -> tuple[int, int, bytes] | None:
    """``(sequence number, source timestamp ns, GID)`` of attachment bytes, ``None`` when they
    are not rmw_zenoh's layout: :meth:`Attachment.decode` without an object, for the receive
    path (a few hundred ns per message less)."""
    if len(data) != ATTACHMENT_SIZE:
        return None
    sequence_number, source_timestamp_ns, gid_size, gid = _ATTACHMENT.unpack(data)
    if gid_size != GID_SIZE:
        return None
    return sequence_number, source_timestamp_ns, gid
