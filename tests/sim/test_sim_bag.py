"""The bag written by the simulator reads back, with rosbags and with the mcap library."""

from __future__ import annotations

from collections import Counter, defaultdict

import yaml
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader, make_reader
from mcap.records import Chunk
from mcap.stream_reader import breakup_chunk
from mcap_ros2.decoder import DecoderFactory
from rosbags.rosbag2 import Reader

from fusionrt.sim.recorder import CAN_LOG, MANIFEST, TOPIC_CAN, TOPICS

from .conftest import Drive, stamp_of


def _stamp(topic: str, msg: object) -> int:
    return stamp_of(msg)


def _written(drive: Drive) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for topic, log_ns, stamp in drive.summary.messages:
        out[topic].append((log_ns, stamp))
    return out


def test_every_topic_is_present_with_its_type(clear_drive: Drive) -> None:
    with Reader(clear_drive.bag) as reader:
        found = {c.topic: c.msgtype for c in reader.connections}
        assert reader.message_count == len(clear_drive.summary.messages)
    assert found == {topic: msgtype for topic, (msgtype, _) in TOPICS.items()}
    assert all(clear_drive.summary.counts[t] > 0 for t in TOPICS)


def test_rosbags_reader_gives_every_message_count_and_stamp_as_written(clear_drive: Drive) -> None:
    written = _written(clear_drive)
    for topic in TOPICS:
        read = [(log_ns, _stamp(topic, msg)) for log_ns, msg in clear_drive.decoded(topic)]
        assert sorted(read) == sorted(written[topic]), topic
    # The bag's own metadata agrees.
    meta = yaml.safe_load((clear_drive.bag / "metadata.yaml").read_text())[
        "rosbag2_bagfile_information"
    ]
    assert meta["storage_identifier"] == "mcap"
    counts = {
        t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]
    }
    assert counts == clear_drive.summary.counts


def test_mcap_library_decodes_every_message_as_written(clear_drive: Drive) -> None:
    written = _written(clear_drive)
    read: dict[str, list[tuple[int, int]]] = defaultdict(list)
    schemas = {}
    with clear_drive.mcap.open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        assert summary.statistics.message_count == len(clear_drive.summary.messages)
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            assert schema is not None
            schemas[channel.topic] = schema.name
            read[channel.topic].append((message.log_time, _stamp(channel.topic, decoded)))
            assert message.publish_time == message.log_time
    assert schemas == {topic: msgtype for topic, (msgtype, _) in TOPICS.items()}
    for topic in TOPICS:
        assert sorted(read[topic]) == sorted(written[topic]), topic


def test_every_chunk_carries_the_crc_of_its_records(clear_drive: Drive) -> None:
    """A reader can tell a damaged chunk from a good one: each chunk's CRC is set and holds."""
    with clear_drive.mcap.open("rb") as f:
        summary = SeekingReader(f).get_summary()
        assert summary is not None and summary.chunk_indexes
        for index in summary.chunk_indexes:
            f.seek(index.chunk_start_offset + 9)  # after the record's opcode and length
            chunk = Chunk.read(ReadDataStream(f))
            assert chunk.uncompressed_crc != 0
            breakup_chunk(chunk, validate_crc=True)  # raises CRCValidationError on a mismatch


def test_log_times_are_non_decreasing_in_file_order(clear_drive: Drive) -> None:
    log_times = [log_ns for _, log_ns, _ in clear_drive.summary.messages]
    assert log_times == sorted(log_times)


def test_manifest_and_candump_log_beside_the_bag(clear_drive: Drive) -> None:
    manifest = yaml.safe_load((clear_drive.out / MANIFEST).read_text())
    assert manifest["config"]["seed"] == clear_drive.config.seed
    assert {t: v["count"] for t, v in manifest["topics"].items()} == clear_drive.summary.counts
    lines = (clear_drive.out / CAN_LOG).read_text().splitlines()
    assert len(lines) == clear_drive.summary.counts[TOPIC_CAN]
    assert all(line.startswith("(") and " can0 " in line and "#" in line for line in lines)
    ids = Counter(line.split()[2].split("#")[0] for line in lines)
    assert set(ids) == {"1A0", "1B0", "1C0"}
    assert clear_drive.rig().ego_height_m == 0.0  # rig.yaml declares the ego on the road
