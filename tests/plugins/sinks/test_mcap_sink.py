"""The ``mcap`` sink: an indexed MCAP of small chunks; after a failed write, a finished one
readable up to the failure and a one-line SinkError that stops the run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from mcap.reader import NonSeekingReader, make_reader
from mcap.writer import MCAP0_MAGIC
from sink_support import (
    SAMPLE_MCAP_SCHEMAS,
    check_foxglove_message,
    feed,
    file_size_limit,
    mcap_messages,
    run_command,
    run_limited,
    sink_error_line,
    write_sample_pipeline,
)

from fusionrt.plugins.sinks.mcap import FoxgloveMcapSink


def test_the_mcap_is_indexed_in_small_chunks_and_every_message_decodes(tmp_path, sample):
    sink = FoxgloveMcapSink(tmp_path)
    frames = feed(sink, sample)
    sink.close()
    with (tmp_path / "run.mcap").open("rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None
        topics = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        counts = Counter(channel.topic for _, channel, _ in reader.iter_messages())
    assert topics == SAMPLE_MCAP_SCHEMAS
    assert all(c.message_encoding == "protobuf" for c in summary.channels.values())
    assert counts["/fusionrt/detections"] == frames == counts["/fusionrt/lidar/lidar_top"]
    # ~one frame per 64 KiB chunk, so a killed run loses about one frame
    assert len(summary.chunk_indexes) >= frames // 2
    assert {c.compression for c in summary.chunk_indexes} == {"zstd"}
    detections = [len(d) for _, d, _ in sample.frames[:frames]]
    decoded = list(mcap_messages(tmp_path / "run.mcap"))
    for topic, message in decoded:
        check_foxglove_message(topic, message)
    assert [len(m.entities) for t, m in decoded if t == "/fusionrt/detections"] == detections


def test_a_size_limit_stops_the_run_and_leaves_a_finished_mcap_up_to_the_failure(tmp_path):
    pipeline = write_sample_pipeline(tmp_path / "p.yaml", [{"name": "mcap"}])
    out = tmp_path / "out"
    limit = 400_000  # about 8 frames of the sample drive
    done = run_limited(run_command(pipeline, out, "--max-frames", "60"), limit)
    error = sink_error_line(done)
    mcap = out / "run.mcap"
    assert error.endswith(
        f"cannot write its output: [Errno 27] File too large [sink='mcap', file='{mcap}']"
    )
    data = mcap.read_bytes()
    assert len(data) <= limit and data.endswith(MCAP0_MAGIC)  # footer written after the cut
    decoded = list(mcap_messages(mcap))  # front to back, to the footer, no torn record
    for topic, message in decoded:
        check_foxglove_message(topic, message)
    detections = sum(topic == "/fusionrt/detections" for topic, _ in decoded)
    assert 3 <= detections < 60


# 205 messages of ~2 kB through McapFile (16 KiB chunks: the last few stay in the open chunk);
# prints the size once they are flushed, then the size after close (or close's error).
CLOSE_CHILD = """
import sys
from pathlib import Path
from fusionrt.plugins.sinks.mcap_file import McapFile
from fusionrt.runtime.errors import SinkError

path = Path(sys.argv[1])
mcap = McapFile(path, "mcap", 16 * 1024)
channel = mcap.add_channel("/numbers", "json", 0)
for i in range(205):
    message = '{"i": %d, "pad": "%s"}' % (i, "x" * 2000)
    mcap.add_message(channel, i, message.encode())
    mcap.flush()
print(path.stat().st_size)
try:
    mcap.close()
except SinkError as exc:
    print(exc)
else:
    print(path.stat().st_size)
"""


def test_a_write_that_fails_while_the_mcap_is_closed_is_reported_and_the_file_ended(tmp_path):
    path = tmp_path / "run.mcap"

    def child(limit: int) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", CLOSE_CHILD, str(path)],
            preexec_fn=file_size_limit(limit),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()

    flushed, finished = map(int, child(10**9))  # close adds the open chunk, index and summary
    assert finished - flushed > 1000
    before, error = child((flushed + finished) // 2)
    assert int(before) == flushed
    assert error == (
        f"cannot write its output: [Errno 27] File too large [sink='mcap', file='{path}']"
    )
    data = path.read_bytes()
    assert len(data) == flushed + 50 and data.endswith(MCAP0_MAGIC)  # cut, then DataEnd + footer
    with path.open("rb") as stream:
        reader = NonSeekingReader(stream, validate_crcs=True)
        messages = reader.iter_messages(log_time_order=False)
        numbers = [json.loads(message.data)["i"] for _, _, message in messages]
    assert numbers == list(range(len(numbers))) and 190 < len(numbers) < 205  # all flushed
