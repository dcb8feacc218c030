"""The ``video`` sink: a fragmented MP4 and PNGs; after a failed write, an MP4 playable up to
the failure, no partial PNG, and a one-line SinkError that stops the run."""

from __future__ import annotations

import subprocess
import sys

import cv2
from sink_support import (
    ends_with_whole_box,
    feed,
    file_size_limit,
    mp4_frames,
    run_command,
    run_limited,
    sink_error_line,
    write_sample_pipeline,
)

from fusionrt.plugins.sinks.isobmff import top_level_boxes
from fusionrt.plugins.sinks.video import VideoSink


def test_the_mp4_holds_every_frame_in_fragments_and_the_pngs_decode(tmp_path, sample):
    sink = VideoSink(tmp_path, png_every=10)
    frames = feed(sink, sample)
    sink.close()
    mp4 = tmp_path / "video.mp4"
    assert mp4_frames(mp4) == frames and ends_with_whole_box(mp4)
    types = [box.type for box in top_level_boxes(mp4)]
    assert types[:2] == ["ftyp", "moov"] and types.count("moof") == frames  # one per frame
    pngs = sorted((tmp_path / "frames").iterdir())
    assert [p.name for p in pngs] == ["000000.png", "000010.png", "000020.png"]
    assert all(cv2.imread(str(p)).shape[0] == 360 for p in pngs)


def test_a_size_limit_stops_the_run_and_leaves_an_mp4_playable_up_to_the_failure(tmp_path):
    pipeline = write_sample_pipeline(
        tmp_path / "p.yaml", [{"name": "video", "options": {"png": False}}]
    )
    out = tmp_path / "out"
    limit = 300_000  # about 10 frames of the sample drive
    done = run_limited(run_command(pipeline, out, "--max-frames", "60"), limit)
    error = sink_error_line(done)
    mp4 = out / "video.mp4"
    assert error.endswith(
        f"cannot write its output: [Errno 27] File too large [sink='video', file='{mp4}']"
    )
    assert ends_with_whole_box(mp4)  # the torn fragment was cut off
    assert 3 <= mp4_frames(mp4) < 60


def test_a_png_that_cannot_be_written_stops_the_run_and_leaves_no_partial_png(tmp_path):
    pipeline = write_sample_pipeline(tmp_path / "p.yaml", [{"name": "video"}])
    out = tmp_path / "out"
    done = run_limited(run_command(pipeline, out, "--max-frames", "20"), 150_000)  # PNG ~250 kB
    error = sink_error_line(done)
    png = out / "frames" / "000000.png"
    assert error.endswith(
        f"cannot write its output: [Errno 27] File too large [sink='video', file='{png}']"
    )
    assert list((out / "frames").iterdir()) == []


# Writes 12 frames through Mp4File, prints the file's size then and after close (or the error).
MP4_CHILD = """
import sys
import numpy as np
from pathlib import Path
from fusionrt.plugins.sinks.mp4_file import Mp4File
from fusionrt.runtime.errors import SinkError

path = Path(sys.argv[1])
mp4 = Mp4File(path, 10.0, (320, 180), "video")
image = np.random.default_rng(0).integers(0, 255, (180, 320, 3), np.uint8)
for i in range(12):
    mp4.write(np.roll(image, 7 * i, axis=1))
print(path.stat().st_size)
try:
    mp4.close()
except SinkError as exc:
    print(exc)
else:
    print(path.stat().st_size)
"""


def test_a_write_that_fails_while_the_mp4_is_closed_is_reported_and_cut_off(tmp_path):
    path = tmp_path / "video.mp4"

    def child(limit: int) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", MP4_CHILD, str(path)],
            preexec_fn=file_size_limit(limit),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()

    frames_end, closed_end = map(int, child(10**9))  # the last fragment and mfra come at close
    assert mp4_frames(path) == 12 and closed_end > frames_end
    before, error = child((frames_end + closed_end) // 2)
    assert int(before) == frames_end
    assert error == (
        f"cannot write its output: [Errno 27] File too large [sink='video', file='{path}']"
    )
    assert ends_with_whole_box(path) and mp4_frames(path) == 11  # all but the unwritten last
