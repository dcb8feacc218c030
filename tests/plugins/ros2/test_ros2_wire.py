"""rmw_zenoh's wire rules (fusionrt.plugins.ros2.wire) against hand-computed examples.

The expected strings are rmw_zenoh's own examples (docs/design.md) or written out by hand from
liveliness_utils.cpp / attachment_helpers.cpp; the type hashes are those of the layouts the
project was given (RIHS01 of the upstream definitions).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusionrt.plugins.ros2 import wire
from fusionrt.plugins.ros_types import typestore

STRING_HASH = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
POINTCLOUD2_HASH = "RIHS01_9198cabf7da3796ae6fe19c4cb3bdd3525492988c70522628af5daa124bae2b5"
DETECTION3DARRAY_HASH = "RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018"
LISTENER_ZID = "aac3178e146ba6f1fc6e6a4085e77f21"


# -- type names and hashes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msgtype", "expected"),
    [
        ("std_msgs/msg/String", STRING_HASH),
        ("sensor_msgs/msg/PointCloud2", POINTCLOUD2_HASH),
        ("vision_msgs/msg/Detection3DArray", DETECTION3DARRAY_HASH),
    ],
)
def test_the_type_hash_is_rcls_rihs01(msgtype: str, expected: str) -> None:
    assert typestore().hash_rihs01(msgtype) == expected


def test_dds_type_names() -> None:
    assert wire.dds_type_name("std_msgs/msg/String") == "std_msgs::msg::dds_::String_"
    assert wire.ros_type_name("sensor_msgs::msg::dds_::PointCloud2_") == (
        "sensor_msgs/msg/PointCloud2"
    )
    assert wire.ros_type_name("example_interfaces::srv::dds_::AddTwoInts_") is None
    assert wire.ros_type_name("PointCloud2") is None
    with pytest.raises(ValueError, match="not a ROS 2 message type"):
        wire.dds_type_name("sensor_msgs/PointCloud2")


_token = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(package=_token, name=_token)
def test_type_names_round_trip(package: str, name: str) -> None:
    msgtype = f"{package}/msg/{name}"
    assert wire.ros_type_name(wire.dds_type_name(msgtype)) == msgtype


# -- data key expressions ----------------------------------------------------------------------


def test_data_key_expressions_are_rmw_zenohs() -> None:
    assert wire.topic_keyexpr(0, "/chatter", "std_msgs/msg/String", STRING_HASH) == (
        f"0/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    )
    assert wire.topic_keyexpr(0, "/robot1/chatter", "std_msgs/msg/String", STRING_HASH) == (
        f"0/robot1/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    )
    assert wire.topic_keyexpr(
        0, "/sensors/lidar_top/points", "sensor_msgs/msg/PointCloud2", POINTCLOUD2_HASH
    ) == (f"0/sensors/lidar_top/points/sensor_msgs::msg::dds_::PointCloud2_/{POINTCLOUD2_HASH}")
    assert wire.topic_keyexpr(
        7, "/fusionrt/detections", "vision_msgs/msg/Detection3DArray", DETECTION3DARRAY_HASH
    ) == (
        f"7/fusionrt/detections/vision_msgs::msg::dds_::Detection3DArray_/{DETECTION3DARRAY_HASH}"
    )
    assert wire.subscription_keyexpr(0, "/sensors/lidar_top/points") == (
        "0/sensors/lidar_top/points/*/*"
    )


@given(
    domain=st.integers(0, 232),
    topic=st.lists(_token, min_size=1, max_size=5).map(lambda t: "/" + "/".join(t)),
    msgtype=st.tuples(_token, _token).map(lambda pn: f"{pn[0]}/msg/{pn[1]}"),
)
def test_a_data_key_splits_back_into_its_parts(domain: int, topic: str, msgtype: str) -> None:
    key = wire.topic_keyexpr(domain, topic, msgtype, STRING_HASH)
    prefix, dds_type, type_hash = wire.split_data_keyexpr(key)
    assert prefix == f"{domain}{topic}"
    assert wire.ros_type_name(dds_type) == msgtype
    assert type_hash == STRING_HASH


@pytest.mark.parametrize("key", ["", "0", "0/x", "T_/H"])
def test_a_key_without_topic_type_and_hash_does_not_split(key: str) -> None:
    with pytest.raises(ValueError, match="not an rmw_zenoh data key expression"):
        wire.split_data_keyexpr(key)


@pytest.mark.parametrize("topic", ["chatter", "/", "/a//b", "/a/", "/1a", "/a b", "/a-b", "~/x"])
def test_only_fully_qualified_topic_names_are_valid(topic: str) -> None:
    with pytest.raises(ValueError, match="not a fully qualified ROS 2 topic name"):
        wire.validate_topic(topic)


def test_names_are_validated() -> None:
    assert wire.validate_topic("/sensors/lidar_top/points") == "/sensors/lidar_top/points"
    assert wire.validate_namespace("/") == "/"
    assert wire.validate_namespace("/car/perception") == "/car/perception"
    for bad in ("", "car", "/car/"):
        with pytest.raises(ValueError, match="not a ROS 2 namespace"):
            wire.validate_namespace(bad)
    for bad in ("", "9lives", "fusion-rt", "a/b"):
        with pytest.raises(ValueError, match="not a ROS 2 node name"):
            wire.validate_node_name(bad)


# -- QoS -------------------------------------------------------------------------------------------


def test_the_qos_field_leaves_rmw_zenohs_defaults_empty() -> None:
    assert wire.DEFAULT_QOS.to_keyexpr() == "::,:,:,:,,"
    assert wire.QoS(depth=10).to_keyexpr() == "::,10:,:,:,,"  # rclcpp::QoS(10)
    assert wire.QoS(depth=7).to_keyexpr() == "::,7:,:,:,,"  # design.md's talker
    sensor_data = wire.QoS(reliability=wire.Reliability.BEST_EFFORT, depth=5)
    assert sensor_data.to_keyexpr() == "2::,5:,:,:,,"
    everything = wire.QoS(
        reliability=wire.Reliability.BEST_EFFORT,
        durability=wire.Durability.TRANSIENT_LOCAL,
        history=wire.History.KEEP_ALL,
        deadline=(1, 500),
        lifespan=(0, 9223372036),
        liveliness=wire.Liveliness.MANUAL_BY_TOPIC,
        liveliness_lease_duration=(3, 854775807),
    )
    assert everything.to_keyexpr() == "2:1:2,:1,500:0,9223372036:3,3,"


# -- liveliness tokens and GIDs --------------------------------------------------------------------


def test_node_and_entity_tokens_are_design_mds_examples() -> None:
    listener = wire.NodeInfo(2, LISTENER_ZID, 0, "listener")
    assert listener.token() == f"@ros2_lv/2/{LISTENER_ZID}/0/0/NN/%/%/listener"
    subscription = listener.entity_token(
        wire.SUBSCRIPTION,
        eid=10,
        topic="/chatter",
        msgtype="std_msgs/msg/String",
        type_hash=STRING_HASH,
        qos=wire.QoS(depth=10),
    )
    assert subscription == (
        f"@ros2_lv/2/{LISTENER_ZID}/0/10/MS/%/%/listener/%chatter/std_msgs::msg::dds_::String_/"
        f"{STRING_HASH}/::,10:,:,:,,"
    )
    talker = wire.NodeInfo(2, "8b20917502ee955ac4476e0266340d5c", 0, "talker")
    publisher = talker.entity_token(
        wire.PUBLISHER,
        eid=10,
        topic="/chatter",
        msgtype="std_msgs/msg/String",
        type_hash=STRING_HASH,
        qos=wire.QoS(depth=7),
    )
    assert publisher == (
        "@ros2_lv/2/8b20917502ee955ac4476e0266340d5c/0/10/MP/%/%/talker/%chatter/"
        f"std_msgs::msg::dds_::String_/{STRING_HASH}/::,7:,:,:,,"
    )


def test_namespaces_and_topics_are_mangled() -> None:
    node = wire.NodeInfo(0, LISTENER_ZID, 3, "fusionrt", namespace="/car/perception")
    assert node.token() == f"@ros2_lv/0/{LISTENER_ZID}/3/3/NN/%/%car%perception/fusionrt"
    token = node.entity_token(
        wire.PUBLISHER,
        eid=4,
        topic="/fusionrt/detections",
        msgtype="vision_msgs/msg/Detection3DArray",
        type_hash=DETECTION3DARRAY_HASH,
    )
    assert token == (
        f"@ros2_lv/0/{LISTENER_ZID}/3/4/MP/%/%car%perception/fusionrt/%fusionrt%detections/"
        f"vision_msgs::msg::dds_::Detection3DArray_/{DETECTION3DARRAY_HASH}/::,:,:,:,,"
    )
    with pytest.raises(ValueError, match="MP or MS"):
        node.entity_token("NN", eid=1, topic="/a", msgtype="std_msgs/msg/String", type_hash="h")  # type: ignore[arg-type]


def test_the_gid_is_xxh3_128_low_half_first_little_endian() -> None:
    # XXH3-128 of no bytes (xxHash's sanity table): low64 0x6001C324468D497F,
    # high64 0x99AA06D3014798D8; rmw_zenoh copies low64 then high64, each in memory order (LE).
    assert wire.gid_of("") == bytes.fromhex("7f498d4624c30160d8984701d306aa99")
    token = f"@ros2_lv/2/{LISTENER_ZID}/0/0/NN/%/%/listener"
    assert len(wire.gid_of(token)) == wire.GID_SIZE
    assert wire.gid_of(token) != wire.gid_of(token + "x")


# -- attachments ---------------------------------------------------------------------------------


def test_the_attachment_is_33_bytes_of_sequence_timestamp_and_gid() -> None:
    gid = bytes(range(16))
    data = wire.Attachment(0x11, 0x0102030405060708, gid).encode()
    assert data == (
        bytes.fromhex("1100000000000000")  # sequence number, int64 LE
        + bytes.fromhex("0807060504030201")  # source timestamp, int64 LE
        + b"\x10"  # GID length, one LEB128 byte
        + gid
    )
    assert len(data) == wire.ATTACHMENT_SIZE == 33
    assert wire.Attachment.decode(data) == wire.Attachment(0x11, 0x0102030405060708, gid)


@given(
    sequence=st.integers(-(2**63), 2**63 - 1),
    stamp=st.integers(-(2**63), 2**63 - 1),
    gid=st.binary(min_size=16, max_size=16),
)
def test_attachments_round_trip(sequence: int, stamp: int, gid: bytes) -> None:
    attachment = wire.Attachment(sequence, stamp, gid)
    assert wire.Attachment.decode(attachment.encode()) == attachment


@given(data=st.binary(max_size=64))
def test_anything_but_an_attachment_is_refused(data: bytes) -> None:
    if len(data) == 33 and data[16] == 16:
        assert wire.Attachment.decode(data).gid == data[17:]
    else:
        with pytest.raises(ValueError, match="attachment"):
            wire.Attachment.decode(data)


def test_a_gid_has_16_bytes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        wire.Attachment(1, 2, b"short").encode()
