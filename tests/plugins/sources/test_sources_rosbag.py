"""RosbagSource on real ROS 2 bags written with rosbags (MCAP and sqlite3 storage)."""

from __future__ import annotations

import os
import shutil
import struct
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from bag_helpers import (
    CAN_FRAME,
    COMPRESSED_IMAGE,
    POINTCLOUD2,
    STORAGES,
    STRING,
    Written,
    drive,
    expected_order,
    pointcloud2,
    storage_file,
    string,
    write_bag,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Chunk, ChunkIndex, Message
from mcap.stream_reader import breakup_chunk
from rosbags.rosbag2 import CompressionMode, Reader, Writer

from fusionrt import DecodeError, RawRecord
from fusionrt.calibration import Rig, SensorCalibration, Transform
from fusionrt.plugins.ros_types import typestore as fusionrt_typestore
from fusionrt.plugins.sources import BadRecord, RosbagSource, TopicInfo
from fusionrt.plugins.sources.rosbag_storage import STEP_TOLERANCE_NS
from fusionrt.runtime.errors import ConfigError


def _key(w: Written | RawRecord) -> tuple[str, int, bytes, str]:
    return w.topic, w.stamp_ns, bytes(w.data), w.msgtype


def _shuffled(messages: list[Written], seed: int = 3) -> list[Written]:
    order = np.random.default_rng(seed).permutation(len(messages))
    return [messages[i] for i in order]


def split_bag(root: Path, parts: list[list[Written]], storage: str) -> Path:
    """A rosbag2 split into one storage file per part, with one metadata.yaml listing them."""
    bag = root / "split"
    bag.mkdir()
    files, counts = [], Counter()
    for i, part in enumerate(parts):
        single = write_bag(root / f"part{i}", part, storage)
        file = storage_file(single)
        target = bag / f"split_{i}{file.suffix}"
        shutil.move(file, target)
        files.append(target.name)
        counts.update(w.topic for w in part)
        meta = yaml.safe_load((single / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    info["relative_file_paths"] = files
    info["files"] = []
    info["message_count"] = sum(counts.values())
    topics = {w.topic: w.msgtype for part in parts for w in part}
    info["topics_with_message_count"] = [
        {
            "message_count": counts[topic],
            "topic_metadata": {
                "name": topic,
                "type": msgtype,
                "serialization_format": "cdr",
                "offered_qos_profiles": [],
                "type_description_hash": "",
            },
        }
        for topic, msgtype in topics.items()
    ]
    (bag / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return bag


# -- reading back what was written -------------------------------------------------------------


def test_every_topic_count_stamp_and_byte_as_written(tmp_path: Path, storage: str) -> None:
    written = drive(seconds=1.0)
    bag = write_bag(tmp_path / "bag", _shuffled(written), storage)  # written out of order
    with RosbagSource(bag) as source:
        records = list(source.records())
        topics = source.topics()
        assert source.first_stamp_ns == written[0].stamp_ns
        assert source.last_stamp_ns == max(w.stamp_ns for w in written)
    assert sorted(map(_key, records)) == sorted(map(_key, written))
    stamps = [r.stamp_ns for r in records]
    assert stamps == sorted(stamps)
    assert topics == {
        "/can": TopicInfo("/can", CAN_FRAME, 100),
        "/camera/compressed": TopicInfo("/camera/compressed", COMPRESSED_IMAGE, 20),
        "/lidar": TopicInfo("/lidar", POINTCLOUD2, 10),
        "/log": TopicInfo("/log", STRING, 3),
    }
    assert source.message_count == len(written)
    file = str(storage_file(bag))
    assert all(r.path == file and isinstance(r.offset, int) for r in records)
    assert all(isinstance(r.data, bytes) for r in records)
    assert not source.bad_records


def test_agrees_with_rosbags_own_reader(tmp_path: Path, storage: str) -> None:
    bag = write_bag(tmp_path / "bag", _shuffled(drive(0.5)), storage)
    with Reader(bag) as reader:
        theirs = [(c.topic, t, bytes(d), c.msgtype) for c, t, d in reader.messages()]
    with RosbagSource(bag) as source:
        ours = [_key(r) for r in source.records()]
    assert sorted(ours) == sorted(theirs)  # (rosbags orders equal stamps its own way)
    assert [m[1] for m in ours] == sorted(m[1] for m in theirs)


def test_equal_stamps_keep_write_order(tmp_path: Path, storage: str) -> None:
    written = [Written(f"/t{i % 3}", STRING, 1000 + i // 4, string(f"m{i}")) for i in range(40)]
    bag = write_bag(tmp_path / "bag", written, storage)
    with RosbagSource(bag) as source:
        assert [_key(r) for r in source.records()] == [_key(w) for w in expected_order(written)]


def test_records_decode_with_the_sensors(tmp_path: Path, storage: str) -> None:
    """The raw CDR bytes are what the sensors decode (lidar, camera, text, CAN)."""
    lidar = pytest.importorskip("fusionrt.plugins.sensors.lidar")
    camera = pytest.importorskip("fusionrt.plugins.sensors.camera")
    text = pytest.importorskip("fusionrt.plugins.sensors.text")
    can = pytest.importorskip("fusionrt.plugins.sensors.can")
    sensors = {
        "/lidar": lidar.LidarSensor("lidar_top"),
        "/camera/compressed": camera.CameraSensor("camera_front"),
        "/log": text.TextLogSensor("log"),
        "/can": can.CanSensor("can"),
    }
    bag = write_bag(tmp_path / "bag", drive(0.3), storage)
    with RosbagSource(bag) as source:
        decoded = [(r, sensors[r.topic].decode(r)) for r in source.records()]
    counts = Counter(r.topic for r, _ in decoded)
    assert counts == {"/can": 30, "/camera/compressed": 6, "/lidar": 3, "/log": 3}
    for record, message in decoded:
        assert message.stamp_ns == record.stamp_ns  # the header stamps equal the log times here
        if record.topic == "/lidar":
            assert message.payload.shape == (50,)
        elif record.topic == "/camera/compressed":
            assert message.payload.shape == (48, 64, 3)
        elif record.topic == "/can":
            assert message.meta["arbitration_id"] in (0x1A0, 0x1A1, 0x1A2)
    logs = [m.payload for r, m in decoded if r.topic == "/log"]
    assert logs == ["fog advisory", "road works ahead", "system ok"]


def test_single_storage_file_and_directory_without_metadata(tmp_path: Path, storage: str) -> None:
    written = drive(0.3)
    bag = write_bag(tmp_path / "bag", written, storage)
    with RosbagSource(storage_file(bag)) as source:
        assert [_key(r) for r in source.records()] == [_key(w) for w in written]
    (bag / "metadata.yaml").unlink()  # a recorder that died before writing it
    with RosbagSource(bag) as source:
        assert [_key(r) for r in source.records()] == [_key(w) for w in written]
        assert source.topics()["/can"].count == 30


@pytest.mark.parametrize(
    ("storage", "mode"),
    [
        ("sqlite3", CompressionMode.MESSAGE),
        ("sqlite3", CompressionMode.FILE),
        ("mcap", CompressionMode.FILE),
        ("mcap", CompressionMode.STORAGE),
    ],
)
def test_compressed_bags(tmp_path: Path, storage: str, mode: CompressionMode) -> None:
    written = drive(0.3)
    bag = write_bag(tmp_path / "bag", _shuffled(written), storage, compression=mode)
    with RosbagSource(bag) as source:
        assert [_key(r) for r in source.records()] == [_key(w) for w in written]
        assert not source.bad_records


def test_split_bag_files_merge_by_time(tmp_path: Path, storage: str) -> None:
    written = drive(1.0)
    # Alternate messages between the two files: their times interleave completely.
    parts = [written[0::2], _shuffled(written[1::2])]
    bag = split_bag(tmp_path, parts, storage)
    with RosbagSource(bag) as source:
        records = list(source.records())
        paths = source.storage_paths
    assert len(paths) == 2
    assert sorted(map(_key, records)) == sorted(map(_key, written))
    assert [r.stamp_ns for r in records] == sorted(w.stamp_ns for w in written)
    assert {r.path for r in records} == set(paths)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.lists(
        st.tuples(st.sampled_from(["/a", "/b", "/c", "/d"]), st.integers(0, STEP_TOLERANCE_NS)),
        min_size=1,
        max_size=60,
    ),
    storage=st.sampled_from(["mcap", "sqlite3"]),
    split=st.booleans(),
)
def test_random_interleavings_come_out_sorted(
    tmp_path_factory: pytest.TempPathFactory,
    data: list[tuple[str, int]],
    storage: str,
    split: bool,
) -> None:
    """Written in any order within the clock-step tolerance (test_rosbag_clock_step.py has
    what lies beyond), the messages come out by log time."""
    written = [Written(t, STRING, s, string(f"{i}")) for i, (t, s) in enumerate(data)]
    root = tmp_path_factory.mktemp("bag")
    if split and len(written) > 1:
        bag = split_bag(root, [written[::2], written[1::2]], storage)
    else:
        bag = write_bag(root / "bag", written, storage)
    with RosbagSource(bag) as source:
        records = list(source.records())
    assert [r.stamp_ns for r in records] == sorted(s for _, s in data)
    assert sorted(map(_key, records)) == sorted(map(_key, written))


# -- topic filter, bounds, seek ----------------------------------------------------------------


def test_topic_filter(tmp_path: Path, storage: str) -> None:
    written = drive(0.5)
    bag = write_bag(tmp_path / "bag", written, storage)
    with RosbagSource(bag, topics=["/lidar", "/log", "/radar"]) as source:
        records = list(source.records())
        assert source.missing_topics == ("/radar",)
        assert source.message_count == 5 + 3
        assert set(source.topics()) == {"/can", "/camera/compressed", "/lidar", "/log"}
    expected = [w for w in written if w.topic in ("/lidar", "/log")]
    assert [_key(r) for r in records] == [_key(w) for w in expected]
    with pytest.raises(ConfigError, match="collection of topic names"):
        RosbagSource(bag, topics="/lidar")


def test_start_stop_and_seek(tmp_path: Path, storage: str) -> None:
    written = drive(1.0)
    t0 = written[0].stamp_ns
    bag = write_bag(tmp_path / "bag", _shuffled(written), storage)
    window = (t0 + 200_000_000, t0 + 500_000_000)
    with RosbagSource(bag, start_ns=window[0], stop_ns=window[1]) as source:
        got = [_key(r) for r in source.records()]
    assert got == [_key(w) for w in written if window[0] <= w.stamp_ns < window[1]]

    with RosbagSource(bag) as source:
        source.seek(t0 + 700_000_000)
        after = [_key(r) for r in source.records()]
        assert after == [_key(w) for w in written if w.stamp_ns >= t0 + 700_000_000]
        # A seek jumps a live iterator, forwards and backwards.
        live = source.records()
        first = next(live)
        assert first.stamp_ns >= t0 + 700_000_000
        source.seek(t0 + 100_000_000)
        assert next(live).stamp_ns == min(w.stamp_ns for w in written if w.stamp_ns >= t0 + 10**8)
        source.seek(t0 + 900_000_000)
        rest = [_key(r) for r in live]
        assert rest == [_key(w) for w in written if w.stamp_ns >= t0 + 900_000_000]


# -- streaming ----------------------------------------------------------------------------------


def test_constant_memory(tmp_path: Path, storage: str) -> None:
    """Reading a 24 MB bag holds a few MCAP chunks (1 MiB each) at most, not the bag."""
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 255, 48_000, np.uint8).tobytes()
    written = (
        Written(f"/cam{i % 3}", COMPRESSED_IMAGE, 10**9 + i * 10**7, payload) for i in range(500)
    )
    bag = write_bag(tmp_path / "bag", written, storage)
    size = storage_file(bag).stat().st_size
    assert size > 20e6
    with RosbagSource(bag) as source:
        tracemalloc.start()
        try:
            count = sum(len(r.data) for r in source.records())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == 500 * len(payload)
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB while reading a {size / 1e6:.1f} MB bag"


# -- bad recordings ------------------------------------------------------------------------------


def _big_drive(n: int = 60, seed: int = 1) -> list[Written]:
    """Messages of ~100 kB each: several 1 MiB MCAP chunks."""
    rng = np.random.default_rng(seed)
    return [
        Written(
            "/camera/compressed",
            COMPRESSED_IMAGE,
            10**9 + i * 50_000_000,
            rng.integers(0, 255, 100_000, np.uint8).tobytes(),
        )
        for i in range(n)
    ]


def test_truncated_mcap_replays_complete_chunks_and_goes_on(tmp_path: Path) -> None:
    first, second = _big_drive(60, seed=1), _big_drive(30, seed=2)
    second = [
        Written("/other", STRING, w.stamp_ns + 7, string(f"s{i}")) for i, w in enumerate(second)
    ]
    bag = split_bag(tmp_path, [first, second], "mcap")
    cut_file = bag / "split_0.mcap"
    with cut_file.open("rb") as f:
        chunks = SeekingReader(f).get_summary().chunk_indexes
    assert len(chunks) >= 4
    cut = chunks[2].chunk_start_offset + chunks[2].chunk_length // 2  # inside chunk 3
    complete = sum(_messages_in(cut_file, chunk) for chunk in chunks[:2])
    os.truncate(cut_file, cut)

    reports: list[BadRecord] = []
    with RosbagSource(bag, on_bad_record=reports.append) as source:
        records = list(source.records())
    written = {_key(w) for w in first + second}
    assert {_key(r) for r in records} <= written
    assert [r.stamp_ns for r in records] == sorted(r.stamp_ns for r in records)
    assert sum(r.topic == "/camera/compressed" for r in records) == complete
    assert sum(r.topic == "/other" for r in records) == 30  # the intact file replays whole
    (bad,) = reports
    assert bad.reason == "truncated"
    assert bad.path == str(cut_file)
    assert bad.offset == chunks[2].chunk_start_offset
    assert source.bad_counts == {"truncated": 1}
    assert "ends at byte" in str(bad)


def _messages_in(path: Path, chunk: ChunkIndex) -> int:
    """How many messages an intact MCAP chunk holds (read with the mcap library)."""
    with path.open("rb") as f:
        f.seek(chunk.chunk_start_offset + 9)  # after the opcode and the record length
        records = breakup_chunk(Chunk.read(ReadDataStream(f)))
    return sum(isinstance(r, Message) for r in records)


def test_truncated_sqlite3_replays_what_remains(tmp_path: Path) -> None:
    written = _big_drive(60)
    bag = write_bag(tmp_path / "bag", written, "sqlite3")
    file = storage_file(bag)
    os.truncate(file, int(file.stat().st_size * 0.6))
    reports: list[BadRecord] = []
    with RosbagSource(bag, on_bad_record=reports.append) as source:
        records = list(source.records())
    assert 0 < len(records) < len(written)
    assert {_key(r) for r in records} <= {_key(w) for w in written}
    assert [r.stamp_ns for r in records] == sorted(r.stamp_ns for r in records)
    assert reports[0].reason == "truncated" and reports[0].offset == file.stat().st_size
    assert all(b.path == str(file) for b in reports)
    # Every message that was written is either replayed or reported lost, with its row ids.
    lost = [b for b in reports if b.reason == "corrupt_record"]
    assert len(records) + sum(b.lost or 0 for b in lost) == len(written)
    assert all(isinstance(b.offset, int) for b in lost)
    # rosbags numbers the rows 1, 2, 3... in write order, and write order is stamp order here.
    rows = {r.offset for r in records}
    for b in lost:
        rows.update(range(b.offset, b.offset + (b.lost or 0)))
    assert rows == set(range(1, len(written) + 1))


def test_corrupt_chunk_is_skipped_and_reported(tmp_path: Path) -> None:
    written = _big_drive(60)
    bag = write_bag(tmp_path / "bag", written, "mcap", compression=CompressionMode.STORAGE)
    file = storage_file(bag)
    with file.open("rb") as f:
        chunks = SeekingReader(f).get_summary().chunk_indexes
    victim = chunks[1]
    lost = _messages_in(file, victim)
    with file.open("r+b") as f:  # overwrite the zstd frame's magic of the second chunk
        f.seek(victim.chunk_start_offset + 9 + 8 + 8 + 8 + 4 + 4 + len("zstd") + 8)
        f.write(b"\xde\xad\xbe\xef" * 4)
    with RosbagSource(bag) as source:
        records = list(source.records())
    assert len(records) == len(written) - lost
    assert {_key(r) for r in records} <= {_key(w) for w in written}
    (bad,) = source.bad_records
    assert bad.reason == "corrupt_chunk" and bad.offset == victim.chunk_start_offset


def test_unknown_type_is_counted_reported_and_skipped(tmp_path: Path, storage: str) -> None:
    known = drive(0.3)
    unknown = [
        Written("/vendor/blob", "vendor_msgs/msg/Blob", known[0].stamp_ns + i * 10**7, b"\0" * 12)
        for i in range(5)
    ]
    bag = write_bag(
        tmp_path / "bag",
        _shuffled(known + unknown),
        storage,
        definitions={"vendor_msgs/msg/Blob": None},
    )
    reports: list[BadRecord] = []
    with RosbagSource(bag, on_bad_record=reports.append) as source:
        records = list(source.records())
        assert source.topics()["/vendor/blob"].known is False
        assert source.message_count == len(known)
    assert [_key(r) for r in records] == [_key(w) for w in known]
    assert len(reports) == 5 and source.bad_counts == {"unknown_type": 5}
    assert all(b.topic == "/vendor/blob" and isinstance(b.offset, int) for b in reports)
    assert [b.stamp_ns for b in reports] == [w.stamp_ns for w in unknown]
    assert "vendor_msgs/msg/Blob" in reports[0].detail


def test_type_defined_by_the_bag_is_yielded(tmp_path: Path) -> None:
    """A type fusionrt does not know but whose definition the bag carries is passed on."""
    custom = [
        Written("/range", "vendor_msgs/msg/Range", 5_000 + i, b"\0\1\0\0" + bytes(4))
        for i in range(3)
    ]
    bag = write_bag(
        tmp_path / "bag", custom, "mcap", definitions={"vendor_msgs/msg/Range": "float32 range\n"}
    )
    with RosbagSource(bag) as source:
        assert [_key(r) for r in source.records()] == [_key(w) for w in custom]
        assert source.topics()["/range"].known


def test_undecodable_bytes_reach_the_sensor_which_names_topic_and_offset(
    tmp_path: Path, storage: str
) -> None:
    lidar = pytest.importorskip("fusionrt.plugins.sensors.lidar")
    good = pointcloud2(2_000, np.zeros((4, 4)))
    written = [
        Written("/lidar", POINTCLOUD2, 1_000, good),
        Written("/lidar", POINTCLOUD2, 2_000, b"\x00\x01garbage"),
        Written("/lidar", POINTCLOUD2, 3_000, good),
    ]
    bag = write_bag(tmp_path / "bag", written, storage)
    with RosbagSource(bag) as source:
        records = list(source.records())
    assert [bytes(r.data) for r in records] == [w.data for w in written]  # not altered
    sensor = lidar.LidarSensor("lidar_top")
    sensor.decode(records[0])
    with pytest.raises(DecodeError) as info:
        sensor.decode(records[1])
    assert info.value.context["topic"] == "/lidar"
    assert info.value.context.get("record_offset") == records[1].offset is not None
    sensor.decode(records[2])


def test_unreadable_storage_file(tmp_path: Path) -> None:
    written = drive(0.3)
    bag = split_bag(tmp_path, [written[::2], written[1::2]], "mcap")
    (bag / "split_0.mcap").write_bytes(b"not an mcap file at all")
    with RosbagSource(bag) as source:
        records = list(source.records())
        (bad,) = source.bad_records
    assert [_key(r) for r in records] == [_key(w) for w in written[1::2]]
    assert bad.reason == "unreadable" and bad.path == str(bag / "split_0.mcap")
    (bag / "split_1.mcap").write_bytes(b"")
    with pytest.raises(DecodeError, match="no readable storage file"):
        RosbagSource(bag)
    with pytest.raises(ConfigError, match="no ROS 2 bag"):
        RosbagSource(tmp_path / "missing")


def test_empty_bag(tmp_path: Path, storage: str) -> None:
    """No message: no record, a message count of 0 and nothing to report."""
    bag = write_bag(tmp_path / "bag", [], storage)
    with RosbagSource(bag) as source:
        assert list(source.records()) == []
        assert source.first_stamp_ns is None and source.topics() == {}
        assert source.message_count == 0 and not source.bad_records


def test_bag_with_topics_and_no_message(tmp_path: Path, storage: str) -> None:
    """A recorder stopped before the first message arrived: topics declared, none written."""
    bag = tmp_path / "bag"
    writer = Writer(bag, version=9, storage_plugin=STORAGES[storage])
    with writer:
        writer.add_connection("/lidar", POINTCLOUD2, typestore=fusionrt_typestore())
    with RosbagSource(bag, topics=["/lidar"]) as source:
        assert list(source.records()) == []
        assert source.topics() == {"/lidar": TopicInfo("/lidar", POINTCLOUD2, 0)}
        assert source.message_count == 0 and not source.bad_records


def test_header_only_mcap_file(tmp_path: Path) -> None:
    """A recorder killed right after it started the file: the magic and the header record.
    No record, a message count of 0, and the missing end reported once."""
    bag = write_bag(tmp_path / "bag", drive(0.1), "mcap")
    file = storage_file(bag)
    (bag / "metadata.yaml").unlink()
    data = file.read_bytes()
    (header_length,) = struct.unpack_from("<Q", data, 9)  # Header record: opcode, length
    file.write_bytes(data[: 8 + 9 + header_length])
    with RosbagSource(bag) as source:
        assert list(source.records()) == []
        assert source.message_count == 0 and source.topics() == {}
        (bad,) = source.bad_records
    assert bad.reason == "truncated" and bad.offset == 8 + 9 + header_length


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"rosbag2_bagfile_information:\n  version: \xff\n", "not UTF-8"),
        (
            b"a: &a [x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n".encode()
                for i in range(8)
            ),
            "aliases expand",
        ),
        (b"rosbag2_bagfile_information: {relative_file_paths: 7}\n", "not a list"),
    ],
    ids=["non-utf8", "alias-bomb", "wrong-shape"],
)
def test_unreadable_metadata_is_reported_and_the_files_are_read(
    tmp_path: Path, storage: str, content: bytes, problem: str
) -> None:
    """A metadata.yaml that cannot be used is one ``corrupt_index`` naming it; the storage
    files in the directory replay as if it were absent."""
    written = drive(0.3)
    bag = write_bag(tmp_path / "bag", written, storage)
    (bag / "metadata.yaml").write_bytes(content)
    with RosbagSource(bag) as source:
        records = list(source.records())
        (bad,) = source.bad_records
    assert [_key(r) for r in records] == [_key(w) for w in written]
    assert bad.reason == "corrupt_index" and bad.path == str(bag / "metadata.yaml")
    assert problem in bad.detail and "\n" not in str(bad)


# -- rig ----------------------------------------------------------------------------------------


def _rig() -> Rig:
    return Rig("ego", [SensorCalibration("lidar_top", "lidar", Transform.identity())])


def test_rig_yaml_in_or_beside_the_bag(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "drive" / "bag", drive(0.1), "mcap")
    with RosbagSource(bag) as source:
        assert source.rig() is None
    _rig().save(tmp_path / "drive" / "rig.yaml")  # beside the bag directory
    with RosbagSource(bag) as source:
        assert source.rig().names() == ["lidar_top"]
    inside = Rig("ego", [SensorCalibration("camera_front", "lidar", Transform.identity())])
    inside.save(bag / "rig.yaml")  # inside the bag directory wins
    with RosbagSource(bag) as source:
        assert source.rig().names() == ["camera_front"]
    with RosbagSource(bag, rig=tmp_path / "drive" / "rig.yaml") as source:
        assert source.rig().names() == ["lidar_top"]


def test_registered_as_a_source_plugin() -> None:
    from fusionrt.runtime.registry import Registry

    registry = Registry.create(builtins=("fusionrt.plugins.sources",), entry_points=False)
    names = {c.name for c in registry.components("source")}
    assert {"rosbag", "kitti", "nuscenes"} <= names
