"""``fusionrt run`` writing to a disk that fills up (a real tmpfs of 2 MB, mounted in a user
and mount namespace of its own): a one-line error, and every output readable up to it."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from sink_support import (
    check_foxglove_message,
    ends_with_whole_box,
    jsonl_lines,
    mcap_messages,
    mp4_frames,
    run_command,
    sink_error_line,
    write_sample_pipeline,
)

from fusionrt.plugins.sinks.mcap_recover import recover

SINKS = [{"name": "jsonl"}, {"name": "mcap"}, {"name": "video", "options": {"png_every": 10}}]


def _in_small_tmpfs(disk: Path, size: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a shell line) with a tmpfs of ``size`` mounted on ``disk``."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a tmpfs in a namespace of its own")
    disk.mkdir()
    script = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(disk))} && {command}"
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_full_disk_stops_the_run_with_one_line_and_leaves_every_output_readable(tmp_path):
    probe = _in_small_tmpfs(tmp_path / "probe", "64k", "true")
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    pipeline = write_sample_pipeline(tmp_path / "p.yaml", SINKS)
    run = shlex.join(run_command(pipeline, disk / "out", "--max-frames", "120"))
    # the tmpfs lives as long as the namespace: copy the outputs out before it goes
    copy = f"cp -a {shlex.quote(str(disk / 'out'))} {shlex.quote(str(saved))}"
    done = _in_small_tmpfs(disk, "2m", f"{run}; code=$?; {copy} && exit $code")

    error = sink_error_line(done)
    assert re.search(
        r"cannot write its output: \[Errno 28\] No space left on device "
        rf"\[sink='(jsonl|mcap|video)', file='{re.escape(str(disk / 'out'))}/.+'\]$",
        error,
    ), error
    lines = jsonl_lines(saved / "detections.jsonl")
    assert 3 <= len(lines) < 120

    decoded = list(mcap_messages(saved / "run.mcap", torn_tail=True))
    for topic, message in decoded:
        check_foxglove_message(topic, message)
    assert sum(topic == "/fusionrt/detections" for topic, _ in decoded) >= 3
    # finished, or at worst ended at its last whole record when not even a footer fitted
    recovery = recover(saved / "run.mcap", tmp_path / "recovered.mcap")
    assert (
        recovery.complete or recovery.stopped == f"it ends at byte {recovery.size} without DataEnd"
    )

    assert ends_with_whole_box(saved / "video.mp4") and mp4_frames(saved / "video.mp4") >= 3
    pngs = sorted((saved / "frames").iterdir())
    assert pngs and all(png.stat().st_size > 0 for png in pngs)
