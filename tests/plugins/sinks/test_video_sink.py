"""The ``video`` sink: a fragmented H.264 MP4 browsers play (or a logged fallback) and PNGs, a
title legible on any image; after a failed write, an MP4 playable up to the failure, no partial
PNG, and a one-line SinkError that stops the run."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from sink_browser import Chromium, find_chromium
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
from fusionrt.plugins.sinks.mp4_file import Mp4File, choose_codec
from fusionrt.plugins.sinks.video import BevCanvas, VideoSink
from fusionrt.runtime.errors import ConfigError, SinkError


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


# -- a video browsers play ----------------------------------------------------------------


def test_the_mp4_is_h264_in_4_2_0_that_browsers_play(tmp_path, sample):
    sink = VideoSink(tmp_path, png=False)
    frames = feed(sink, sample, 12)
    sink.close()
    with av.open(str(tmp_path / "video.mp4")) as container:
        (stream,) = container.streams.video
        assert stream.codec_context.name == "h264" and stream.codec_tag == "avc1"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.width % 2 == 0 and stream.height == 360
        context = stream.codec_context  # BT.601 limited range, said so: players need not guess
        assert (context.colorspace, context.color_range) == (6, 1)
        packets = [p for p in container.demux(stream) if p.size]
    assert len(packets) == frames  # one packet per frame, in order: nothing held back
    assert packets[0].is_keyframe
    renderer = VideoSink(tmp_path / "again", png=False)
    renderer.start(sample.info)
    rendered = [renderer.render(frame, detections) for frame, detections, _ in sample.frames[:12]]
    with av.open(str(tmp_path / "video.mp4")) as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    # what was drawn, colours included, less what 4:2:0 itself loses (27-32 dB on these
    # frames: one-pixel coloured lines); the codec loses little more
    sampled = [
        cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420)
        for image in rendered
    ]
    assert min(cv2.PSNR(a, b) for a, b in zip(sampled, decoded, strict=True)) > 35


def test_a_missing_encoder_falls_back_to_the_next_codec_with_a_logged_reason(caplog):
    with caplog.at_level(logging.WARNING, logger="fusionrt.plugins.sinks.mp4_file"):
        assert choose_codec("h264", lambda name: name != "libx264") == "vp9"
    assert "no h264 encoder (libx264)" in caplog.text
    assert choose_codec("h264", lambda name: name == "mpeg4") == "mpeg4"
    with pytest.raises(SinkError, match="no video encoder of vp9, mpeg4"):
        choose_codec("vp9", lambda name: False)


@pytest.mark.parametrize(("codec", "decoded_as"), [("vp9", "vp9"), ("mpeg4", "mpeg4")])
def test_each_fallback_writes_fragments_a_player_reads(tmp_path, codec, decoded_as):
    path = tmp_path / "video.mp4"
    mp4 = Mp4File(path, 10.0, (320, 180), "video", codec)
    image = np.random.default_rng(0).integers(0, 255, (180, 320, 3), np.uint8)
    for i in range(8):
        mp4.write(np.roll(image, 5 * i, axis=1))
    mp4.close()
    assert mp4.codec == codec and mp4_frames(path) == 8 and ends_with_whole_box(path)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == decoded_as
    assert [b.type for b in top_level_boxes(path)].count("moof") == 8


def test_an_odd_or_unknown_video_setting_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not an even number"):
        VideoSink(tmp_path, height=361)
    with pytest.raises(ConfigError, match="video codec 'h265' is not one of h264, vp9, mpeg4"):
        VideoSink(tmp_path, codec="h265")


def test_the_title_is_legible_on_a_white_image(tmp_path, sample):
    frame, detections, _ = sample.frames[0]
    camera = frame.messages["camera_front"]
    white = dataclasses.replace(camera, payload=np.full_like(camera.payload, 255))
    sink = VideoSink(tmp_path, png=False)
    sink.start(sample.info)
    image = sink.render(
        dataclasses.replace(frame, messages=frame.messages | {"camera_front": white}), detections
    )
    grey = cv2.cvtColor(image[:26, :200], cv2.COLOR_BGR2GRAY)  # the title over the white sky
    text = grey > 200
    assert 0.03 < text.mean() < 0.5  # the letters are there ...
    assert np.median(grey[~text]) < 100  # ... on a dark band: contrast, not white on white
    sink.close()


def test_the_bev_background_is_drawn_once_and_each_frame_draws_on_a_fresh_copy():
    canvas = BevCanvas((-12.0, 52.0), (-32.0, 32.0), 5.0)
    first = canvas.image()
    canvas.points(first, np.array([[20.0, 0.0], [30.0, 5.0]]), (255, 255, 255))
    second = canvas.image()
    assert not np.shares_memory(first, second) and second.flags.writeable
    assert (second == BevCanvas((-12.0, 52.0), (-32.0, 32.0), 5.0).image()).all()
    assert (first != second).any(axis=2).sum() == 2  # the first frame's points stay its own


# Plays each video to its end in real time: what a user's browser shows, or its MediaError code
# (4: MEDIA_ERR_SRC_NOT_SUPPORTED, what Chromium says of mpeg4 in MP4).
PLAY = """new Promise(resolve => {
  const seen = {};
  let left = NAMES.length;
  for (const name of NAMES) {
    const video = document.createElement("video");
    const end = (what) => { seen[name] = what; if (--left === 0) resolve(seen); };
    video.muted = true;
    video.onerror = () => end({error: video.error.code});
    video.onloadeddata = () => video.play();
    video.onended = () => end({
      width: video.videoWidth, height: video.videoHeight, ended_at_s: video.currentTime,
      frames: video.getVideoPlaybackQuality().totalVideoFrames});
    video.src = name;
  }
})"""


def _browser_plays(folder: Path, names: list[str]) -> dict:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium-headless-shell)")
    (folder / "player.html").write_text("<!doctype html><title>player</title>")
    with Chromium(binary, folder / "profile") as browser:
        browser.open(f"file://{folder}/player.html")
        return browser.evaluate(PLAY.replace("NAMES", json.dumps(names)), timeout_s=60)


def test_a_browser_plays_the_video_finished_and_as_a_killed_run_leaves_it(tmp_path, sample):
    sink = VideoSink(tmp_path, png=False)
    feed(sink, sample, 20)
    (tmp_path / "killed.mp4").write_bytes((tmp_path / "video.mp4").read_bytes())  # not closed
    sink.close()
    mpeg4 = tmp_path / "mp4v"
    old = VideoSink(mpeg4, png=False, codec="mpeg4")  # what the sink wrote before: mp4v
    feed(old, sample, 5)
    old.close()
    seen = _browser_plays(tmp_path, ["video.mp4", "killed.mp4", "mp4v/video.mp4"])
    assert seen["video.mp4"] == {
        "width": 1000, "height": 360, "ended_at_s": 2, "frames": 20,  # 20 frames at 10 fps
    }  # fmt: skip
    assert seen["killed.mp4"]["frames"] >= 19  # all but the fragment being written
    assert seen["mp4v/video.mp4"] == {"error": 4}  # the browser refuses MPEG-4 Part 2


def test_the_codecs_offered_are_the_ones_the_mp4_writer_knows():
    from fusionrt.plugins.sinks.mp4_file import FALLBACKS
    from fusionrt.plugins.sinks.video import CODECS

    assert set(CODECS) == set(FALLBACKS)
