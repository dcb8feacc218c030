"""``fusionrt mcap-recover``: a partial MCAP rewritten whole, keeping every intact chunk."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, DataEnd, Message
from mcap.stream_reader import StreamReader, breakup_chunk
from sink_support import feed

from fusionrt.plugins.sinks.mcap import FoxgloveMcapSink
from fusionrt.plugins.sinks.mcap_recover import recover
from fusionrt.runtime.errors import DecodeError, SourceError


@dataclass
class Written:
    """A real MCAP of the sink, where its chunks and its data section end."""

    path: Path
    chunks: list[tuple[int, int, Counter[str]]]  # start, end, messages per topic
    data_end: int  # the end of the DataEnd record

    def total(self, chunks: int | None = None) -> Counter[str]:
        return sum((counts for _, _, counts in self.chunks[:chunks]), Counter())


@pytest.fixture(scope="module")
def written(sample, tmp_path_factory) -> Written:
    """The sink's MCAP of the 30 sample frames."""
    folder = tmp_path_factory.mktemp("mcap")
    sink = FoxgloveMcapSink(folder)
    feed(sink, sample)
    sink.close()
    path = folder / "run.mcap"
    chunks = []
    topics: dict[int, str] = {}
    with path.open("rb") as stream:
        start = stream.tell()
        for record in StreamReader(stream, emit_chunks=True).records:
            if isinstance(record, Chunk):
                counts: Counter[str] = Counter()
                for item in breakup_chunk(record):
                    if isinstance(item, Channel):
                        topics[item.id] = item.topic
                    elif isinstance(item, Message):
                        counts[topics[item.channel_id]] += 1
                chunks.append((start, stream.tell(), counts))
            elif isinstance(record, DataEnd):
                return Written(path, chunks, stream.tell())
            start = stream.tell()
    raise AssertionError("no DataEnd")


def _messages(path: Path) -> list[tuple[str, int, bytes]]:
    with path.open("rb") as stream:
        reader = make_reader(stream)
        assert reader.get_summary() is not None  # complete and indexed
        return [(c.topic, m.log_time, m.data) for _, c, m in reader.iter_messages()]


def test_a_whole_file_is_copied_message_for_message(written, tmp_path):
    recovery = recover(written.path, tmp_path / "out.mcap")
    assert recovery.complete and recovery.chunks == len(written.chunks)
    assert not recovery.bad_chunks and recovery.messages == written.total()
    assert _messages(tmp_path / "out.mcap") == _messages(written.path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.data())
def test_a_file_cut_anywhere_keeps_exactly_the_chunks_before_the_cut(written, cut):
    data = written.path.read_bytes()
    edges = {7, 8, written.data_end - 1, written.data_end}
    edges |= {e + d for _, e, _ in written.chunks for d in (-1, 0, 1)}  # chunk ends, either side
    end = cut.draw(st.integers(0, len(data)) | st.sampled_from(sorted(edges)), label="cut")
    with tempfile.TemporaryDirectory() as folder:
        partial, out = Path(folder) / "partial.mcap", Path(folder) / "out.mcap"
        partial.write_bytes(data[:end])
        if end < 8:  # not even the magic
            with pytest.raises(DecodeError, match="not an MCAP file"):
                recover(partial, out)
            assert not out.exists()
            return
        recovery = recover(partial, out)
        whole = sum(chunk_end <= end for _, chunk_end, _ in written.chunks)
        expected = written.total(whole)
        assert recovery.messages == expected and recovery.chunks == whole
        assert Counter(topic for topic, _, _ in _messages(out)) == expected
        assert recovery.complete == (end >= written.data_end)


def test_a_damaged_chunk_is_skipped_and_the_chunks_after_it_kept(written, tmp_path):
    data = bytearray(written.path.read_bytes())
    start, end, lost = written.chunks[3]
    data[(start + end) // 2] ^= 0xFF  # one flipped byte inside the chunk's compressed data
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(bytes(data))
    recovery = recover(damaged, tmp_path / "out.mcap")
    assert recovery.bad_chunks == [start] and recovery.complete
    assert recovery.messages == written.total() - lost
    assert len(_messages(tmp_path / "out.mcap")) == sum((written.total() - lost).values())


def test_the_command_prints_the_counts_of_a_cut_file(written, tmp_path):
    cut = tmp_path / "cut.mcap"
    sixth_end = written.chunks[5][1]
    cut.write_bytes(written.path.read_bytes()[: sixth_end + 100])  # into its MessageIndex
    out = tmp_path / "out.mcap"
    done = subprocess.run(
        [sys.executable, "-m", "fusionrt.runtime.cli", "mcap-recover", str(cut), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    kept = written.total(6)
    lines = done.stdout.splitlines()
    assert lines[0] == f"recovered {sum(kept.values())} messages from 6 chunks of {cut} into {out}"
    for topic, count in kept.items():
        assert any(re.fullmatch(rf"{topic} +{count}", line) for line in lines), (topic, lines)
    # the chunk's MessageIndex records that fit are read, the one the cut tears is reported
    last = re.fullmatch(
        rf"{cut}: read (\d+) of {sixth_end + 100} bytes; the record at byte (\d+) is cut short",
        lines[-1],
    )
    assert last is not None and sixth_end <= int(last[1]) == int(last[2]) < sixth_end + 100


def test_a_file_that_is_not_mcap_is_a_one_line_error_and_writes_nothing(tmp_path):
    text = tmp_path / "detections.jsonl"
    text.write_text('{"stamp_ns": 1}\n')
    out = tmp_path / "out.mcap"
    done = subprocess.run(
        [sys.executable, "-m", "fusionrt.runtime.cli", "mcap-recover", str(text), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "fusionrt: error: DecodeError: not an MCAP file (it does not start with the MCAP magic) "
        f"[file='{text}', offset=0]\n"
    )
    assert not out.exists()


def test_writing_over_the_input_is_refused(written, tmp_path):
    copy = tmp_path / "run.mcap"
    copy.write_bytes(written.path.read_bytes())
    with pytest.raises(SourceError, match="OUT must be another file than IN"):
        recover(copy, copy)
    assert copy.read_bytes() == written.path.read_bytes()
