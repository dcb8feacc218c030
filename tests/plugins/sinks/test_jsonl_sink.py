"""The ``jsonl`` sink: one whole line per frame, or a one-line SinkError that stops the run."""

from __future__ import annotations

import pytest
from sink_support import (
    feed,
    jsonl_lines,
    run_command,
    run_limited,
    sink_error_line,
    write_sample_pipeline,
)

from fusionrt.plugins.sinks.jsonl import JsonLinesSink
from fusionrt.runtime.errors import SinkError


def test_every_frame_is_one_whole_line(tmp_path, sample):
    sink = JsonLinesSink(tmp_path)
    written = feed(sink, sample)
    sink.close()
    lines = jsonl_lines(tmp_path / "detections.jsonl")
    assert [line["seq"] for line in lines] == [f.seq for f, _, _ in sample.frames[:written]]
    assert [len(line["detections"]) for line in lines] == [len(d) for _, d, _ in sample.frames]


def test_a_full_disk_fails_the_write_with_the_sink_the_file_and_the_cause(sample):
    sink = JsonLinesSink(path="/dev/full")
    with pytest.raises(SinkError) as raised:
        feed(sink, sample, frames=1)
    sink.close()
    assert "\n" not in str(raised.value)
    assert str(raised.value) == (
        "cannot write its output: [Errno 28] No space left on device "
        "[sink='jsonl', file='/dev/full']"
    )


def test_a_size_limit_mid_line_stops_the_run_and_leaves_only_whole_lines(tmp_path):
    pipeline = write_sample_pipeline(tmp_path / "p.yaml", [{"name": "jsonl"}])
    out = tmp_path / "out"
    limit = 7000  # a line is ~3.2 kB: the third line is torn by the limit
    done = run_limited(run_command(pipeline, out, "--max-frames", "40"), limit)
    error = sink_error_line(done)
    jsonl = out / "detections.jsonl"
    assert error.endswith(
        f"cannot write its output: [Errno 27] File too large [sink='jsonl', file='{jsonl}']"
    )
    lines = jsonl_lines(jsonl)
    assert 1 <= len(lines) < 40 and jsonl.stat().st_size <= limit
    seqs = [line["seq"] for line in lines]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no line lost before the failure
