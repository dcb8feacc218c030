"""The ``ros2`` live source against a publisher written by hand from rmw_zenoh's rules.

The publisher is a plain Zenoh peer building keys and attachments itself (``struct``,
``xxhash``); the records it causes are checked in a real ``RecordInbox``, and garbage is fed to
the real lidar sensor's decode.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import xxhash
import zenoh
from zenoh_helpers import TIMEOUT_S, Graph, wait_for

from fusionrt.plugins.ros2.source import Ros2Source
from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sources.rosbag import RosbagSource
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.live import RecordInbox
from fusionrt.runtime.messages import RawRecord

SAMPLE_BAG = Path(__file__).parents[3] / "examples" / "drives" / "sample" / "bag"
LIDAR = "/sensors/lidar_top/points"
CLOUD_TYPE = "sensor_msgs::msg::dds_::PointCloud2_"
CLOUD_HASH = "RIHS01_9198cabf7da3796ae6fe19c4cb3bdd3525492988c70522628af5daa124bae2b5"
CLOUD_KEY = f"0/sensors/lidar_top/points/{CLOUD_TYPE}/{CLOUD_HASH}"


class HandPublisher:
    """Puts samples on one key with an attachment built by hand (or none).

    It waits when congested: with Zenoh's default (drop), a burst of large samples on a loaded
    machine loses some before they leave this peer, which is not what these tests are about.
    """

    def __init__(self, session: zenoh.Session, key: str, token: str = "hand/publisher") -> None:
        self.key = key
        self.gid = xxhash.xxh3_128_intdigest(token.encode()).to_bytes(16, "little")
        self.publisher = session.declare_publisher(
            key, congestion_control=zenoh.CongestionControl.BLOCK
        )

    def put(
        self, payload: bytes, sequence: int, stamp_ns: int = 0, *, attachment: bytes | None = None
    ) -> None:
        if attachment is None:
            attachment = struct.pack("<qqB16s", sequence, stamp_ns, 16, self.gid)
        self.publisher.put(payload, attachment=attachment or None)


def lidar_records(count: int) -> list[RawRecord]:
    source = RosbagSource(SAMPLE_BAG, topics=[LIDAR])
    with source:
        records = []
        for record in source.records():
            records.append(record)
            if len(records) == count:
                return records
    return records


def collect(inbox: RecordInbox, count: int) -> list[RawRecord]:
    got: list[RawRecord] = []

    def more() -> bool:
        while (arrival := inbox.get(timeout_s=0.01)) is not None:
            got.append(arrival[0])
        return len(got) >= count

    wait_for(f"{count} records", more)
    return got


@pytest.fixture
def receiving(
    endpoint: str, raw_session: Callable[..., zenoh.Session]
) -> Iterator[Callable[..., tuple[Ros2Source, RecordInbox, zenoh.Session]]]:
    """``receiving(topics, **options)``: a started source listening on ``endpoint`` and a raw
    peer connected to it; both closed at teardown."""
    sources: list[Ros2Source] = []

    def start(topics: list[str], inbox: RecordInbox | None = None, **options: object):
        source = Ros2Source(topics, listen=[endpoint], **options)
        sources.append(source)
        inbox = inbox if inbox is not None else RecordInbox(1000)
        source.start(inbox)
        return source, inbox, raw_session(connect=(endpoint,))

    yield start
    for source in sources:
        source.close()


def matched(publisher: HandPublisher) -> HandPublisher:
    wait_for(f"a subscriber of {publisher.key}", lambda: publisher.publisher.matching_status)
    return publisher


def test_samples_become_the_records_a_bag_gives(receiving: Callable) -> None:
    _, inbox, peer = receiving([LIDAR])
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    recorded = lidar_records(3)
    for i, record in enumerate(recorded):
        publisher.put(bytes(record.data), sequence=i + 1, stamp_ns=1_700_000_000_000_000_000 + i)
    got = collect(inbox, 3)
    assert [bytes(r.data) for r in got] == [bytes(r.data) for r in recorded]
    assert [r.stamp_ns for r in got] == [1_700_000_000_000_000_000 + i for i in range(3)]
    assert {(r.topic, r.msgtype, r.path) for r in got} == {
        (LIDAR, "sensor_msgs/msg/PointCloud2", CLOUD_KEY)
    }
    assert [r.offset for r in got] == [1, 2, 3]  # the publisher's sequence numbers
    sensor = LidarSensor("lidar_top", LIDAR)
    assert [sensor.decode(r).stamp_ns for r in got] == [
        sensor.decode(r).stamp_ns for r in recorded
    ]  # decoded exactly as the bag's records: same header stamps
    assert not inbox.dropped


def test_garbage_cdr_reaches_the_inbox_and_the_sensor_counts_it(receiving: Callable) -> None:
    _, inbox, peer = receiving([LIDAR])
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    publisher.put(b"\x00\x01\x00\x00 not a point cloud", sequence=1, stamp_ns=42)
    [record] = collect(inbox, 1)
    assert record.data == b"\x00\x01\x00\x00 not a point cloud"
    with pytest.raises(DecodeError) as raised:
        LidarSensor("lidar_top", LIDAR).decode(record)
    assert raised.value.context["topic"] == LIDAR


@pytest.mark.parametrize(
    ("attachment", "why"),
    [
        (b"", "none"),
        (b"\x01" * 32, "32 bytes"),
        (struct.pack("<qqB16s", 1, 2, 8, bytes(16)), "GID length 8"),
    ],
)
def test_a_sample_without_a_valid_attachment_is_counted(
    receiving: Callable, attachment: bytes, why: str
) -> None:
    _, inbox, peer = receiving([LIDAR])
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    publisher.put(b"\x00\x01\x00\x00", sequence=1, attachment=attachment)
    publisher.put(b"\x00\x01\x00\x00good", sequence=1, stamp_ns=7)  # the next one still comes
    [record] = collect(inbox, 1)
    assert record.data == b"\x00\x01\x00\x00good"
    assert inbox.dropped == {(LIDAR, "no_attachment"): 1}, why


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (
            f"0/sensors/lidar_top/points/nobody_msgs::msg::dds_::Nothing_/{CLOUD_HASH}",
            "unknown_type",
        ),
        ("0/sensors/lidar_top/points/not_a_type/at_all", "unknown_type"),
        (f"0/sensors/lidar_top/points/{CLOUD_TYPE}/RIHS01_{'0' * 64}", "type_hash_mismatch"),
    ],
)
def test_samples_of_a_type_fusionrt_cannot_read_are_counted(
    receiving: Callable, key: str, reason: str
) -> None:
    _, inbox, peer = receiving([LIDAR])
    wrong = matched(HandPublisher(peer, key, token="wrong"))
    right = matched(HandPublisher(peer, CLOUD_KEY, token="right"))
    for sequence in (1, 2):
        wrong.put(b"\x00\x01\x00\x00", sequence=sequence)
    right.put(b"\x00\x01\x00\x00right", sequence=1)
    [record] = collect(inbox, 1)
    assert record.data.endswith(b"right")
    wait_for("two drops", lambda: inbox.dropped.get((LIDAR, reason)) == 2)


def test_a_humble_publisher_without_type_hash_is_heard(receiving: Callable) -> None:
    _, inbox, peer = receiving([LIDAR])
    humble = matched(
        HandPublisher(peer, f"0/sensors/lidar_top/points/{CLOUD_TYPE}/TypeHashNotSupported")
    )
    humble.put(b"\x00\x01\x00\x00humble", sequence=1)
    [record] = collect(inbox, 1)
    assert record.msgtype == "sensor_msgs/msg/PointCloud2"


def test_a_gap_in_a_publishers_sequence_numbers_counts_each_lost_sample(
    receiving: Callable,
) -> None:
    _, inbox, peer = receiving([LIDAR])
    lost: list[tuple[str, str, int | None]] = []
    inbox.on_drop = lambda topic, reason, record: lost.append((topic, reason, record.offset))
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    for sequence in (1, 2, 5, 6, 9):  # 3, 4, 7 and 8 never arrive
        publisher.put(b"\x00\x01\x00\x00", sequence=sequence)
    collect(inbox, 5)
    assert lost == [(LIDAR, "lost", 3), (LIDAR, "lost", 4), (LIDAR, "lost", 7), (LIDAR, "lost", 8)]


def test_a_publisher_that_restarts_its_count_is_not_counted_lost(
    receiving: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    _, inbox, peer = receiving([LIDAR])
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    for sequence in (7, 8, 1, 2, 100_000):
        publisher.put(b"\x00\x01\x00\x00", sequence=sequence)
    assert [r.offset for r in collect(inbox, 5)] == [7, 8, 1, 2, 100_000]
    assert not inbox.dropped
    assert "went from sequence 8 to 1 (restarted?)" in caplog.text
    assert "went from sequence 2 to 100000 (restarted?)" in caplog.text


class HeldInbox(RecordInbox):
    """An inbox whose ``put`` waits until released: a consumer that has fallen behind."""

    def __init__(self) -> None:
        super().__init__(10_000)
        self.release = threading.Event()
        self.waiting = threading.Event()

    def put(self, record: RawRecord, arrival_ns: int | None = None) -> None:
        self.waiting.set()
        self.release.wait(timeout=60)
        super().put(record, arrival_ns)


def test_a_source_that_falls_behind_loses_the_oldest_samples_and_counts_them(
    receiving: Callable,
) -> None:
    inbox = HeldInbox()
    _, _, peer = receiving([LIDAR], inbox=inbox, receive_queue=4)
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    publisher.put(b"\x00\x01\x00\x00", sequence=1)
    wait_for("the receive thread to be held", inbox.waiting.is_set)
    for sequence in range(2, 51):  # Zenoh's thread is never held: these all reach the ring
        publisher.put(b"\x00\x01\x00\x00", sequence=sequence)
    publisher.put(b"\x00\x01\x00\x00", sequence=51)
    time.sleep(0.5)  # let them all reach the ring of 4 before the consumer catches up
    inbox.release.set()
    got = collect(inbox, 5)
    assert [r.offset for r in got] == [1, 48, 49, 50, 51]  # the newest four survived
    assert inbox.dropped == {(LIDAR, "lost"): 46}


def test_the_subscription_is_declared_with_the_type_it_receives(receiving: Callable) -> None:
    source, inbox, peer = receiving([LIDAR])
    graph = Graph(peer)
    publisher = matched(HandPublisher(peer, CLOUD_KEY))
    assert not graph.tokens("MS")  # declared once a sample says which type the topic has
    publisher.put(b"\x00\x01\x00\x00", sequence=1)
    collect(inbox, 1)
    [token] = wait_for("the subscription token", lambda: graph.tokens("MS"))
    assert token[2] == source.node.zid
    assert token[5:] == [
        "MS", "%", "%", "fusionrt", "%sensors%lidar_top%points", CLOUD_TYPE, CLOUD_HASH,
        "::,10:,:,:,,",
    ]  # fmt: skip
    source.close()
    wait_for("the tokens to be undeclared", lambda: not graph.alive)
    publisher.put(b"\x00\x01\x00\x00", sequence=2)
    time.sleep(0.3)
    assert inbox.get(timeout_s=0.1) is None  # nothing is received after close


def test_records_can_be_iterated_without_a_pipeline_until_closed(
    endpoint: str, raw_session: Callable[..., zenoh.Session]
) -> None:
    source = Ros2Source([LIDAR], listen=[endpoint])
    got: list[RawRecord] = []
    reader = threading.Thread(target=lambda: got.extend(source.records()))
    reader.start()
    try:
        # Connect once the source listens: a peer that connects while the other is still
        # opening sees it matched half a second before samples reach it (Zenoh 1.6 to 1.9).
        wait_for("the source to listen", lambda: source.node)
        publisher = matched(HandPublisher(raw_session(connect=(endpoint,)), CLOUD_KEY))
        publisher.put(b"\x00\x01\x00\x00", sequence=1, stamp_ns=11)
        wait_for("a record", lambda: got)
    finally:
        source.close()
        reader.join(timeout=TIMEOUT_S)
    assert not reader.is_alive()  # the iteration ended with close()
    assert [(r.topic, r.stamp_ns) for r in got] == [(LIDAR, 11)]


@pytest.mark.parametrize(
    ("topics", "options", "key"),
    [
        (["lidar"], {}, "topics"),
        ("/sensors/lidar_top/points", {}, "topics"),
        ([LIDAR], {"receive_queue": 0}, "receive_queue"),
        ([LIDAR], {"mode": "router"}, "mode"),
        ([LIDAR], {"queue": 3}, "queue"),
    ],
)
def test_bad_topics_and_options_are_config_errors(topics: object, options: dict, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Ros2Source(topics, **options)  # type: ignore[arg-type]
    assert raised.value.context["key"] == key
