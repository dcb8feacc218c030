"""Which topic types the rosbag source can pass on: message definitions as bags store them.

The bags are written by rosbags' own writer; where rosbag2 stores a definition differently
(a service event topic's in sqlite3), the test says so and edits the file to match.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag_helpers import STORAGES, storage_file
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from fusionrt.plugins.sources import BadRecord, RosbagSource

EMPTY = "test_msgs/msg/Empty"
SERVICE = "example_interfaces/srv/AddTwoInts"
EVENT = f"{SERVICE}_Event"
EVENT_TOPIC = "/add_two_ints/_service_event"
#: The definition rosbag2 stores for a service event topic: the service's own text.
SERVICE_DEFINITION = f"{'=' * 80}\nSRV: {SERVICE}\nint64 a\nint64 b\n---\nint64 sum\n"
START_NS = 1_700_000_000_000_000_000


def _srv_names(value: Any) -> Any:
    """rosbags' .msg parser files ``pkg/srv/Name_Request`` as ``pkg/srv/msg/Name_Request``:
    the names as ROS 2 spells them, in keys and field types alike."""
    if isinstance(value, str):
        return value.replace("/srv/msg/", "/srv/")
    if isinstance(value, tuple | list):
        return type(value)(_srv_names(item) for item in value)
    if isinstance(value, dict):
        return {_srv_names(k): _srv_names(v) for k, v in value.items()}
    return value


def _store() -> Typestore:
    """ROS 2 Jazzy (``service_msgs``) plus ``test_msgs/msg/Empty`` and ``AddTwoInts``."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types = get_types_from_msg("", EMPTY)
    types.update(get_types_from_msg("int64 a\nint64 b\n", f"{SERVICE}_Request"))
    types.update(get_types_from_msg("int64 sum\n", f"{SERVICE}_Response"))
    event = (
        "service_msgs/msg/ServiceEventInfo info\n"
        f"{SERVICE}_Request[<=1] request\n{SERVICE}_Response[<=1] response\n"
    )
    types.update(get_types_from_msg(event, EVENT))
    store.register(_srv_names(types))
    return store


def _read(bag: Path) -> tuple[list[tuple[str, int, bytes]], list[BadRecord], dict[str, bool]]:
    """The records, the bad records and whether each topic is known, of ``bag``."""
    bad: list[BadRecord] = []
    with RosbagSource(bag, on_bad_record=bad.append) as source:
        records = [(r.topic, r.stamp_ns, bytes(r.data)) for r in source.records()]
        known = {topic: info.known for topic, info in source.topics().items()}
    return records, bad, known


def test_a_type_without_fields_is_passed_on(tmp_path: Path, storage: str) -> None:
    # test_msgs/msg/Empty's definition is the empty text: stored, so the type is known
    store = _store()
    empty = bytes(store.serialize_cdr(store.types[EMPTY](), EMPTY))
    written = [("/heartbeat", START_NS + i * 10**8, empty) for i in range(4)]
    with Writer(tmp_path / "bag", version=9, storage_plugin=STORAGES[storage]) as writer:
        connection = writer.add_connection("/heartbeat", EMPTY, typestore=store)
        assert connection.msgdef.data == ""
        for _, stamp, data in written:
            writer.write(connection, stamp, data)
    with Reader(tmp_path / "bag") as reader:  # rosbags reads its definition back
        assert [c.msgdef.data for c in reader.connections] == [""]

    records, bad, known = _read(tmp_path / "bag")
    assert records == written
    assert bad == [] and known == {"/heartbeat": True}


def _event_bag(tmp_path: Path, storage: str) -> tuple[Path, list[tuple[str, int, bytes]]]:
    """Two service events (request, response) of AddTwoInts, with the definition rosbag2
    stores: the service's text, in sqlite3 under the *service* type (rosbag2_cpp
    ``LocalMessageDefinitionSource::get_full_text`` sets ``topic_type`` to the service type;
    the MCAP schema of the channel keeps the topic's type as its name)."""
    store = _store()
    info = store.types["service_msgs/msg/ServiceEventInfo"]
    stamp = store.types["builtin_interfaces/msg/Time"]
    request = store.types[f"{SERVICE}_Request"](a=2, b=3)
    response = store.types[f"{SERVICE}_Response"](sum=5)
    events = [
        store.types[EVENT](
            info=info(
                event_type=kind,
                stamp=stamp(sec=1_700_000_000, nanosec=kind),
                client_gid=np.arange(16, dtype=np.uint8),
                sequence_number=1,
            ),
            request=[request] if kind == 1 else [],
            response=[response] if kind == 2 else [],
        )
        for kind in (1, 2)
    ]
    written = [
        (EVENT_TOPIC, START_NS + i * 1_000, bytes(store.serialize_cdr(event, EVENT)))
        for i, event in enumerate(events)
    ]
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=STORAGES[storage]) as writer:
        connection = writer.add_connection(
            EVENT_TOPIC, EVENT, msgdef=SERVICE_DEFINITION, rihs01="RIHS01_" + "0" * 64
        )
        for _, stamp_ns, data in written:
            writer.write(connection, stamp_ns, data)
    if storage == "sqlite3":
        with closing(sqlite3.connect(storage_file(bag))) as db, db:
            db.execute(
                "UPDATE message_definitions SET topic_type = ? WHERE topic_type = ?",
                (SERVICE, EVENT),
            )
    return bag, written


def test_a_service_event_topic_finds_the_definition_stored_under_its_service(
    tmp_path: Path, storage: str
) -> None:
    bag, written = _event_bag(tmp_path, storage)
    records, bad, known = _read(bag)
    assert records == written
    assert bad == [] and known == {EVENT_TOPIC: True}


def test_a_service_event_whose_service_has_no_stored_definition_is_unknown(
    tmp_path: Path,
) -> None:
    bag, written = _event_bag(tmp_path, "sqlite3")
    with closing(sqlite3.connect(storage_file(bag))) as db, db:
        db.execute("UPDATE message_definitions SET encoding = 'unknown'")  # not found: rosbag2
    records, bad, known = _read(bag)
    assert records == []
    assert [b.reason for b in bad] == ["unknown_type"] * len(written)
    assert EVENT in bad[0].detail and known == {EVENT_TOPIC: False}


@pytest.mark.parametrize("encoding", ["ros2msg", "unknown"])
def test_only_a_definition_encoding_counts_as_a_definition(
    tmp_path: Path, storage: str, encoding: str
) -> None:
    # rosbag2 writes a type it found no definition for as encoding "unknown", empty text;
    # the same empty text as ros2msg is the definition of a message without fields
    store = _store()
    data = bytes(store.serialize_cdr(store.types[EMPTY](), EMPTY))
    with Writer(tmp_path / "bag", version=9, storage_plugin=STORAGES[storage]) as writer:
        connection = writer.add_connection(
            "/vendor", "vendor_msgs/msg/Ping", msgdef="", rihs01="RIHS01_" + "0" * 64
        )
        writer.write(connection, START_NS, data)
    file = storage_file(tmp_path / "bag")
    if encoding == "unknown" and storage == "sqlite3":
        with closing(sqlite3.connect(file)) as db, db:
            db.execute("UPDATE message_definitions SET encoding = 'unknown'")
    elif encoding == "unknown":
        name = b"vendor_msgs/msg/Ping"
        schema = len(name).to_bytes(4, "little") + name + (7).to_bytes(4, "little")
        file.write_bytes(file.read_bytes().replace(schema + b"ros2msg", schema + b"unknown"))
    records, bad, _ = _read(tmp_path / "bag")
    assert len(records) == (1 if encoding == "ros2msg" else 0)
    assert [b.reason for b in bad] == ([] if encoding == "ros2msg" else ["unknown_type"])
