"""Session options, and the node's tokens, publishers and attachments seen by a plain Zenoh peer.

The peer decodes what it sees by hand (key chunks, ``struct`` for the attachment, ``xxhash`` for
the GID), not with fusionrt's wire helpers.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable

import pytest
import xxhash
import zenoh
from zenoh_helpers import Graph, wait_for

from fusionrt.plugins.ros2.node import Node
from fusionrt.plugins.ros2.session import SessionOptions, open_session
from fusionrt.runtime.errors import ConfigError, SinkError, SourceError

DETECTIONS_TYPE = "vision_msgs::msg::dds_::Detection3DArray_"
DETECTIONS_HASH = "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018"


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"domain_id": -1}, "domain_id"),
        ({"domain_id": "0"}, "domain_id"),
        ({"domain_id": True}, "domain_id"),
        ({"mode": "router"}, "mode"),
        ({"connect": "tcp/127.0.0.1:7447"}, "connect"),
        ({"connect": ["127.0.0.1:7447"]}, "connect"),
        ({"listen": [7447]}, "listen"),
        ({"multicast_scouting": "no"}, "multicast_scouting"),
        ({"mode": "client"}, "connect"),
        ({"node_name": "9lives"}, "node_name"),
        ({"namespace": "car"}, "namespace"),
        ({"transport": "zenoh"}, "transport"),
    ],
)
def test_every_bad_option_is_a_config_error_naming_it(options: dict, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SessionOptions.from_options(options, owner="source ros2")
    assert raised.value.context["key"] == key


def test_multicast_scouting_stays_off_unless_asked_for() -> None:
    config = SessionOptions(connect=("tcp/127.0.0.1:7447",)).zenoh_config()
    assert json.loads(config.get_json("scouting/multicast/enabled")) is False
    assert json.loads(config.get_json("mode")) == "peer"
    assert json.loads(config.get_json("connect/endpoints")) == ["tcp/127.0.0.1:7447"]
    assert json.loads(config.get_json("listen/endpoints")) == []
    on = SessionOptions(multicast_scouting=True).zenoh_config()
    assert json.loads(on.get_json("scouting/multicast/enabled")) is True


def test_a_client_without_its_router_cannot_open(endpoint: str) -> None:
    with pytest.raises(SourceError, match="cannot open a Zenoh session") as raised:
        open_session(SessionOptions(mode="client", connect=(endpoint,)))
    assert raised.value.context["connect"] == [endpoint]
    assert "/root/.cargo" not in str(raised.value)  # Zenoh's source locations are left out


def test_a_port_in_use_cannot_be_listened_on() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp/127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SourceError, match="Address already in use") as raised:
            open_session(SessionOptions(listen=(endpoint,)))
    assert raised.value.context["listen"] == [endpoint]


# -- tokens -------------------------------------------------------------------------------------


def test_the_node_and_its_publishers_are_seen_and_forgotten_on_close(
    endpoint: str, raw_session: Callable[..., zenoh.Session]
) -> None:
    graph = Graph(raw_session(listen=(endpoint,)))
    node = Node(SessionOptions(connect=(endpoint,), namespace="/car"))
    try:
        node.publisher("/fusionrt/detections", "vision_msgs/msg/Detection3DArray")
        [node_token] = wait_for("the node token", lambda: graph.tokens("NN"))
        [pub_token] = wait_for("the publisher token", lambda: graph.tokens("MP"))
    finally:
        node.close()
    assert node_token == ["@ros2_lv", "0", node.zid, "0", "0", "NN", "%", "%car", "fusionrt"]
    # Zenoh prints its ids without leading zeros (so does rmw_zenoh, taking it as Zenoh prints it)
    assert 1 <= len(node.zid) <= 32 and int(node.zid, 16) >= 0
    assert pub_token == [
        "@ros2_lv", "0", node.zid, "0", "1", "MP", "%", "%car", "fusionrt",
        "%fusionrt%detections", DETECTIONS_TYPE, DETECTIONS_HASH, "::,10:,:,:,,",
    ]  # fmt: skip
    wait_for("the tokens to be undeclared", lambda: not graph.alive)
    assert len(graph.gone) == 2


def test_a_shared_node_closes_with_its_last_user(
    endpoint: str, raw_session: Callable[..., zenoh.Session]
) -> None:
    graph = Graph(raw_session(listen=(endpoint,)))
    options = SessionOptions(connect=(endpoint,))
    first, second = Node.acquire(options), Node.acquire(options)
    assert first is second
    wait_for("the node token", lambda: graph.tokens("NN"))
    first.release()
    time.sleep(0.3)  # a token undeclared now would have reached the graph by then
    assert graph.tokens("NN") and not first.closed
    second.release()
    assert first.closed
    wait_for("the node token to go", lambda: not graph.tokens("NN"))
    third = Node.acquire(options)
    try:
        assert third is not first
    finally:
        third.release()


# -- publishing ---------------------------------------------------------------------------------


def test_published_samples_carry_rmw_zenohs_attachment(
    endpoint: str, raw_session: Callable[..., zenoh.Session]
) -> None:
    peer = raw_session(listen=(endpoint,))
    graph = Graph(peer)
    received: list[tuple[str, bytes, bytes, str]] = []
    peer.declare_subscriber(
        "0/fusionrt/detections/**",
        lambda s: received.append(
            (str(s.key_expr), s.payload.to_bytes(), s.attachment.to_bytes(), str(s.encoding))
        ),
    )
    node = Node(SessionOptions(connect=(endpoint,)))
    try:
        publisher = node.publisher("/fusionrt/detections", "vision_msgs/msg/Detection3DArray")
        wait_for("a matching subscriber", lambda: publisher.matched)
        before = time.time_ns()
        payloads = [b"\x00\x01\x00\x00" + bytes([i]) * 7 for i in range(3)]
        sequences = [publisher.publish(p) for p in payloads]
        after = time.time_ns()
        wait_for("three samples", lambda: len(received) == 3)
        [token] = wait_for("the publisher token", lambda: graph.tokens("MP"))
    finally:
        node.close()
    assert sequences == [1, 2, 3]
    gid = xxhash.xxh3_128_intdigest("/".join(token).encode()).to_bytes(16, "little")
    for i, (key, payload, attachment, encoding) in enumerate(received):
        assert key == f"0/fusionrt/detections/{DETECTIONS_TYPE}/{DETECTIONS_HASH}"
        assert payload == payloads[i]
        assert encoding == "application/cdr"
        sequence, stamp, gid_size, sample_gid = struct.unpack("<qqB16s", attachment)
        assert (sequence, gid_size, sample_gid) == (i + 1, 16, gid)
        assert before <= stamp <= after


def test_publishing_on_a_closed_node_is_a_sink_error(endpoint: str) -> None:
    node = Node(SessionOptions(listen=(endpoint,)))
    publisher = node.publisher("/fusionrt/detections", "vision_msgs/msg/Detection3DArray")
    node.close()
    with pytest.raises(SinkError, match="cannot publish") as raised:
        publisher.publish(b"\x00\x01\x00\x00")
    assert raised.value.context == {"sink": "ros2", "topic": "/fusionrt/detections"}
    with pytest.raises(RuntimeError, match="closed"):
        node.publisher("/other", "std_msgs/msg/String")


def test_a_publisher_needs_a_known_type_and_a_valid_topic(endpoint: str) -> None:
    node = Node(SessionOptions(listen=(endpoint,)))
    try:
        with pytest.raises(ConfigError, match="no definition of the message type"):
            node.publisher("/x", "nobody_msgs/msg/Nothing")
        with pytest.raises(ConfigError, match="fully qualified") as raised:
            node.publisher("detections", "std_msgs/msg/String")
        assert raised.value.context["topic"] == "detections"
    finally:
        node.close()
