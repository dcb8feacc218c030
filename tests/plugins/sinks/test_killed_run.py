"""``fusionrt run`` killed with SIGKILL mid-run: every output is readable up to the kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

from mcap.reader import make_reader
from sink_support import (
    check_foxglove_message,
    jsonl_lines,
    mcap_messages,
    mp4_frames,
    run_command,
    write_sample_pipeline,
)

SINKS = [{"name": "jsonl"}, {"name": "mcap"}, {"name": "video", "options": {"png": False}}]


def _kill_after_lines(command: list[str], jsonl, lines: int) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if jsonl.exists() and jsonl.read_bytes().count(b"\n") >= lines:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def test_a_killed_run_leaves_jsonl_mcap_and_mp4_readable_up_to_the_kill(tmp_path):
    pipeline = write_sample_pipeline(tmp_path / "p.yaml", SINKS)
    out = tmp_path / "out"
    command = run_command(pipeline, out, "--realtime", "--rate", "0.5")
    _kill_after_lines(command, out / "detections.jsonl", 12)

    lines = jsonl_lines(out / "detections.jsonl")  # whole lines only
    decoded = list(mcap_messages(out / "run.mcap", torn_tail=True))
    for topic, message in decoded:
        check_foxglove_message(topic, message)
    counts = Counter(topic for topic, _ in decoded)
    # everything but the frames still in the last, open chunk (~one frame each)
    assert len(lines) - 3 <= counts["/fusionrt/detections"] <= len(lines)
    assert len(lines) - 3 <= mp4_frames(out / "video.mp4") <= len(lines)

    # `fusionrt mcap-recover` turns it into a complete, indexed file with the same messages
    recovered = tmp_path / "recovered.mcap"
    command = [sys.executable, "-m", "fusionrt.runtime.cli", "mcap-recover"]
    done = subprocess.run(
        [*command, str(out / "run.mcap"), str(recovered)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"recovered {len(decoded)} messages" in done.stdout
    with recovered.open("rb") as stream:
        summary = make_reader(stream).get_summary()
    assert summary is not None and summary.statistics is not None
    by_topic = {
        summary.channels[cid].topic: n
        for cid, n in summary.statistics.channel_message_counts.items()
    }
    assert by_topic == dict(counts)
