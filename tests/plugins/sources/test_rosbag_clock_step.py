"""A recorder whose clock steps back (an NTP correction): the file replays in write order.

rosbag2 writes messages as they arrive and stamps them with the recorder's clock. Merged by that
log time, a file whose clock stepped back 10 s interleaves two stretches of the drive and the
synchroniser can form almost no frame; replayed in write order, the sensors' own stamps come in
order again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from bag_helpers import SAMPLE_BAG, STRING, Written, storage_file, string, write_bag
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Chunk, Message
from mcap.stream_reader import breakup_chunk
from rosbags.rosbag2 import Reader

from fusionrt.plugins.sources import RosbagSource
from fusionrt.plugins.sources.rosbag_storage import STEP_TOLERANCE_NS
from fusionrt.runtime.config import pipeline_from_dict
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry

STEP_NS = 10_000_000_000
SAMPLE_PIPELINE = SAMPLE_BAG.parents[3] / "examples" / "pipelines" / "sample.yaml"


def _sample_messages() -> list[Written]:
    """The sample drive's messages in the order they were written."""
    with Reader(SAMPLE_BAG) as reader:
        return [
            Written(conn.topic, conn.msgtype, stamp, bytes(data))
            for conn, stamp, data in reader.messages()
        ]


@pytest.fixture(scope="module")
def sample_messages() -> list[Written]:
    return _sample_messages()


def _stepped(messages: list[Written]) -> tuple[list[Written], int]:
    """The messages with the log clock stepped back 10 s halfway; and the first one after."""
    middle = len(messages) // 2
    return [
        Written(m.topic, m.msgtype, m.stamp_ns - STEP_NS * (i >= middle), m.data)
        for i, m in enumerate(messages)
    ], middle


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_stepped_log_time_replays_in_write_order(
    tmp_path: Path, sample_messages: list[Written], storage: str
) -> None:
    stepped, middle = _stepped(sample_messages)
    bag = write_bag(tmp_path / "bag", stepped, storage)
    with RosbagSource(bag) as source:
        records = [(r.topic, r.stamp_ns, bytes(r.data)) for r in source.records()]
        (bad,) = source.bad_records
    assert records == [(m.topic, m.stamp_ns, m.data) for m in stepped]
    first = stepped[middle]
    assert bad.reason == "log_time_step" and bad.path == str(storage_file(bag))
    assert bad.stamp_ns == first.stamp_ns and f"first on {first.topic}" in bad.detail
    previous = next(m for m in reversed(stepped[:middle]) if m.topic == first.topic)
    assert f"steps back {(previous.stamp_ns - first.stamp_ns) / 1e9:.3f} s" in bad.detail
    if storage == "sqlite3":
        assert bad.offset == middle + 1  # its row id
    else:
        assert bad.offset == _chunk_holding(storage_file(bag), first)


def _chunk_holding(file: Path, message: Written) -> int:
    """Offset of the chunk holding ``message`` (read with the mcap library)."""
    with file.open("rb") as f:
        summary = SeekingReader(f).get_summary()
        assert summary is not None
        for index in summary.chunk_indexes:
            f.seek(index.chunk_start_offset + 9)
            for record in breakup_chunk(Chunk.read(ReadDataStream(f))):
                if isinstance(record, Message) and (record.log_time, record.data) == (
                    message.stamp_ns,
                    message.data,
                ):
                    return int(index.chunk_start_offset)
    raise AssertionError("message not found")


def _run(drive: Path, out: Path) -> object:
    data = yaml.safe_load(SAMPLE_PIPELINE.read_text())
    data["sinks"] = []
    config = pipeline_from_dict(data, SAMPLE_PIPELINE)
    registry = Registry.create(entry_points=False)
    return Pipeline(config, drive, registry, RunOptions(out_dir=out)).run()


def test_pipeline_forms_the_same_frames_from_a_stepped_recording(
    tmp_path: Path, sample_messages: list[Written]
) -> None:
    """Merged by log time, the stepped sample drive gave 199 frames of which 198 lacked the
    camera; in write order it gives the intact drive's frames and detections."""
    stepped, _ = _stepped(sample_messages)
    drive = tmp_path / "stepped"
    write_bag(drive / "bag", stepped, "mcap")
    shutil.copy(SAMPLE_BAG.parent / "rig.yaml", drive / "rig.yaml")
    intact = _run(SAMPLE_BAG.parent, tmp_path / "intact_out")
    result = _run(drive, tmp_path / "stepped_out")
    assert result.frames == intact.frames == 199
    assert result.missing == intact.missing
    stamps = [d.stamp_ns for d in result.detections]
    assert stamps == [d.stamp_ns for d in intact.detections]
    extra = result.faults - intact.faults
    assert extra == {("source", "log_time_step"): 1}
    assert not intact.faults - result.faults


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clock=st.lists(
        st.tuples(
            st.sampled_from(["/a", "/b", "/c"]),
            st.one_of(
                st.integers(0, 50_000_000),  # the clock runs on
                st.integers(-3 * STEP_TOLERANCE_NS, STEP_TOLERANCE_NS),  # or steps
            ),
        ),
        min_size=1,
        max_size=50,
    ),
    storage=st.sampled_from(["mcap", "sqlite3"]),
)
def test_write_order_exactly_when_a_topic_steps_back_beyond_the_tolerance(
    tmp_path_factory: pytest.TempPathFactory, clock: list[tuple[str, int]], storage: str
) -> None:
    """Messages arrive on three topics while the recorder's clock runs, jitters and steps.
    Log-time order unless some topic's log time drops by more than the tolerance from its
    previous message; then write order, reported once."""
    t, written = 10**12, []
    for i, (topic, delta) in enumerate(clock):
        t += delta
        written.append(Written(topic, STRING, t, string(f"m{i}")))
    last: dict[str, int] = {}
    stepped = False
    for m in written:
        stepped |= last.get(m.topic, m.stamp_ns) - m.stamp_ns > STEP_TOLERANCE_NS
        last[m.topic] = m.stamp_ns
    expected = written if stepped else sorted(written, key=lambda m: m.stamp_ns)
    bag = write_bag(tmp_path_factory.mktemp("bag") / "bag", written, storage)
    with RosbagSource(bag) as source:
        records = [(r.topic, r.stamp_ns, bytes(r.data)) for r in source.records()]
        reasons = [b.reason for b in source.bad_records]
    assert records == [(m.topic, m.stamp_ns, m.data) for m in expected]
    assert reasons == (["log_time_step"] if stepped else [])
