"""The ``video`` live source: files and TCP streams (H.264 written by PyAV) read with OpenCV into
records the ``camera`` sensor decodes; a stream cut in the middle is reported once and reopened;
frames that are not pictures are counted; option mistakes are ConfigErrors at their key."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from video_stream import SIZE, write_file

from fusionrt import ConfigError, RawRecord
from fusionrt.plugins.sensors.camera import CameraSensor
from fusionrt.plugins.sources.video_capture import VideoCaptureSource
from fusionrt.runtime.live import RecordInbox

HERE = Path(__file__).parent
TOPIC = "/camera/image"


def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def drain(inbox: RecordInbox) -> list[RawRecord]:
    out = []
    while (arrival := inbox.get(timeout_s=0)) is not None:
        out.append(arrival[0])
    return out


def greys(records: list[RawRecord]) -> list[float]:
    """Each record decoded by the camera sensor: its mean level (the frames are flat grey)."""
    camera = CameraSensor("cam", TOPIC)
    out = []
    for record in records:
        message = camera.decode(record)
        assert message.payload.shape == (SIZE[1], SIZE[0], 3)
        assert message.stamp_ns == record.stamp_ns  # the header holds the arrival stamp
        out.append(float(message.payload.mean()))
    return out


class StreamServer:
    """``video_stream.py serve``: an MPEG-TS/H.264 stream on 127.0.0.1, in a subprocess."""

    def __init__(self, port: int, grey: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "video_stream.py"), "serve", str(port), str(grey)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # once it listens
        assert line.startswith("listening"), line
        self.port = int(line.split()[1])

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def servers() -> Iterator[list[StreamServer]]:
    started: list[StreamServer] = []
    yield started
    for server in started:
        server.kill()


def test_a_file_plays_at_its_frame_rate_as_camera_records(tmp_path):
    levels = [20 + 15 * i for i in range(12)]
    path = write_file(tmp_path / "drive.mp4", levels, fps=25)
    source = VideoCaptureSource([TOPIC], uri=str(path))
    inbox = RecordInbox(len(levels))
    source.start(inbox)
    try:
        assert source.finished.wait(20)
    finally:
        source.close()
    records = drain(inbox)
    assert [r.offset for r in records] == list(range(1, len(levels) + 1))
    assert {(r.msgtype, r.path) for r in records} == {("sensor_msgs/msg/Image", str(path))}
    np.testing.assert_allclose(greys(records), levels, atol=3)
    assert CameraSensor("cam", TOPIC).decode(records[0]).meta["is_view"]  # rgb8: no copy
    stamps = [r.stamp_ns for r in records]
    # paced by the file's 25 frames/s (a loaded machine may be slower, never faster)
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[-1] - stamps[0] >= (len(levels) - 1) * 40e6 * 0.95
    assert not inbox.dropped


@pytest.mark.parametrize(("encoding", "tolerance"), [("bgr8", 3), ("jpeg", 4)])
def test_other_encodings_give_the_camera_the_same_picture(tmp_path, encoding, tolerance):
    levels = [40, 120, 200]
    path = write_file(tmp_path / "short.mp4", levels)
    source = VideoCaptureSource([TOPIC], uri=str(path), encoding=encoding, jpeg_quality=95)
    inbox = RecordInbox(len(levels))
    source.start(inbox)
    try:
        assert source.finished.wait(20)
    finally:
        source.close()
    records = drain(inbox)
    expected = "sensor_msgs/msg/CompressedImage" if encoding == "jpeg" else "sensor_msgs/msg/Image"
    assert {r.msgtype for r in records} == {expected}
    np.testing.assert_allclose(greys(records), levels, atol=tolerance)


def test_a_tcp_stream_cut_in_the_middle_is_reported_once_and_reopened(servers):
    first = StreamServer(0, grey=60)
    servers.append(first)
    source = VideoCaptureSource(
        [TOPIC],
        uri=f"tcp://127.0.0.1:{first.port}",
        read_timeout_ms=1000,
        retry_initial_ms=50,
        retry_max_ms=200,
    )
    inbox = RecordInbox(1000)
    source.start(inbox)
    try:
        wait_for(lambda: inbox.received[TOPIC] >= 5)
        first.kill()  # the stream is cut: the server dies mid-stream
        wait_for(lambda: inbox.dropped[(TOPIC, "stream_down")] == 1)
        before = inbox.received[TOPIC]
        servers.append(StreamServer(first.port, grey=180))  # and comes back on its port
        wait_for(lambda: inbox.received[TOPIC] >= before + 5)
    finally:
        source.close()
    assert inbox.dropped == {(TOPIC, "stream_down"): 1}
    assert source.reconnects == 1
    levels = greys(drain(inbox))
    cut = next(i for i, level in enumerate(levels) if level > 120)
    np.testing.assert_allclose(levels[:cut], 60, atol=3)
    np.testing.assert_allclose(levels[cut:], 180, atol=3)
    assert cut >= 5


def test_a_stream_not_there_is_retried_and_its_password_never_shown(caplog):
    caplog.set_level(logging.DEBUG, logger="fusionrt.sources.video")
    closed = _closed_port()
    source = VideoCaptureSource(
        [TOPIC],
        uri=f"tcp://operator:s3cret@127.0.0.1:{closed}",
        retry_initial_ms=5,
        retry_max_ms=20,
    )
    inbox = RecordInbox()
    source.start(inbox)
    try:
        wait_for(lambda: caplog.text.count("still down") >= 3)
    finally:
        source.close()
    assert inbox.dropped == {(TOPIC, "stream_down"): 1}
    assert source.where == f"tcp://operator:***@127.0.0.1:{closed}"
    assert "operator:***@" in caplog.text and "s3cret" not in caplog.text


def test_frames_that_are_not_pictures_are_counted(tmp_path, caplog):
    # CAP_PROP_FORMAT -1 makes OpenCV's FFmpeg backend hand over the encoded packets
    path = write_file(tmp_path / "raw.mp4", [50, 60, 70])
    source = VideoCaptureSource([TOPIC], uri=str(path), properties={"format": -1})
    inbox = RecordInbox()
    source.start(inbox)
    try:
        assert source.finished.wait(20)
    finally:
        source.close()
    assert inbox.dropped == {(TOPIC, "bad_frame"): 3}
    assert len(inbox) == 0
    assert "expected an H×W×3 uint8 BGR frame" in caplog.text


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "uri"),
        ({"uri": "/no/such/video.mp4"}, "uri"),
        ({"uri": 0, "encoding": "yuv"}, "encoding"),
        ({"uri": 0, "properties": {"FRAME_WIDHT": 640}}, "properties"),
        ({"uri": 0, "properties": {"FOURCC": "MJPEG"}}, "properties"),
        ({"uri": 0, "retry_initial_ms": 500, "retry_max_ms": 100}, "retry_max_ms"),
        ({"uri": 0, "jpeg_quality": 101}, "jpeg_quality"),
    ],
)
def test_option_mistakes_are_config_errors_at_their_key(options, key):
    with pytest.raises(ConfigError) as info:
        VideoCaptureSource([TOPIC], **options)
    assert info.value.context["key"] == key


def test_a_file_opencv_cannot_read_is_a_config_error(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(ConfigError, match="cannot read the video file") as info:
        VideoCaptureSource([TOPIC], uri=str(text))
    assert info.value.context["key"] == "uri"


@pytest.mark.skipif(
    cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER), reason="this OpenCV has GStreamer"
)
def test_a_gstreamer_pipeline_without_gstreamer_says_so():
    pipeline = "nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink"
    with pytest.raises(ConfigError, match="no gstreamer backend") as info:
        VideoCaptureSource([TOPIC], uri=pipeline)
    assert info.value.context["key"] == "api"


def test_one_camera_feeds_one_topic():
    with pytest.raises(ConfigError, match="one topic"):
        VideoCaptureSource(["/a", "/b"], uri=0)
