"""The ``foxglove`` live sink as the Foxglove app meets it: a WebSocket client on 127.0.0.1
speaking the Foxglove protocol (``foxglove_ws_client``) connects to the sink's server, reads the
advertisements, subscribes, and decodes what it receives with the advertised schemas.

What must hold: the live view is the recording (the ``mcap`` sink's messages, byte for byte,
in the same order, with the same log times); a client that connects late still gets the
transforms and calibrations; a client that never reads neither blocks the run nor takes the
newest frame from itself; a port that cannot be served is one clear error.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from foxglove_ws_client import SUBPROTOCOL, FoxgloveClient, Received
from mcap.reader import make_reader
from sink_support import (
    SAMPLE_MCAP_SCHEMAS,
    Captured,
    check_foxglove_message,
    feed,
    jsonl_lines,
    run_command,
    write_sample_pipeline,
)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from fusionrt.plugins.sinks.foxglove_channels import FoxgloveChannels, earliest_stamp
from fusionrt.plugins.sinks.foxglove_live import FoxgloveLiveSink
from fusionrt.plugins.sinks.mcap import FoxgloveMcapSink
from fusionrt.runtime.errors import ConfigError, SinkError

CAMERA = "camera_front"
TRANSFORMS = "/fusionrt/transforms"
CALIBRATION = f"/fusionrt/camera/{CAMERA}/calibration"
DETECTIONS = "/fusionrt/detections"
STATIC = {TRANSFORMS, CALIBRATION}
ALL = set(SAMPLE_MCAP_SCHEMAS)


@contextmanager
def serving(sample: Captured, **options: Any) -> Iterator[FoxgloveLiveSink]:
    """A started sink on a free port of 127.0.0.1, closed at the end."""
    sink = FoxgloveLiveSink(port=0, **options)
    try:
        sink.start(sample.info)
        yield sink
    finally:
        sink.close()


@contextmanager
def client(sink: FoxgloveLiveSink, topics: set[str], **options: Any) -> Iterator[FoxgloveClient]:
    """A client subscribed to ``topics``, once the server has registered its subscriptions."""
    before = sink.subscriptions
    connection = FoxgloveClient(sink.url, **options)
    try:
        connection.read_advertisements(ALL)
        connection.subscribe(topics)
        deadline = time.monotonic() + 10
        while sink.subscriptions < before + len(topics):
            assert time.monotonic() < deadline, "the server did not register the subscriptions"
            time.sleep(0.005)
        yield connection
    finally:
        connection.close()


def mcap_recording(sample: Captured, folder: Path) -> list[tuple[str, int, bytes]]:
    """(topic, log time, bytes) of every message the ``mcap`` sink writes, in file order."""
    sink = FoxgloveMcapSink(folder)
    feed(sink, sample)
    sink.close()
    with (folder / "run.mcap").open("rb") as stream:
        return [
            (channel.topic, message.log_time, bytes(message.data))
            for _, channel, message in make_reader(stream).iter_messages(log_time_order=False)
        ]


def ns(stamp: Any) -> int:
    return stamp.seconds * 1_000_000_000 + stamp.nanos


def receive(connection: FoxgloveClient, count: int) -> list[Received]:
    received = []
    for _ in range(count):
        message = connection.receive(timeout_s=10)
        assert message is not None, f"{len(received)} of {count} messages came"
        received.append(message)
    return received


# -- what a client sees ---------------------------------------------------------------------


def test_a_client_sees_the_recordings_channels_and_messages_byte_for_byte(sample, tmp_path):
    recording = mcap_recording(sample, tmp_path)
    with serving(sample, static_period_s=3600) as sink:
        connection = FoxgloveClient(sink.url)
        try:
            advertised = connection.read_advertisements(ALL)
            assert connection.subprotocol == SUBPROTOCOL
            assert connection.server_info["op"] == "serverInfo"
            assert connection.server_info["name"] == "fusionrt"
            assert {t: c.schema_name for t, c in advertised.items()} == SAMPLE_MCAP_SCHEMAS
            assert {(c.encoding, c.schema_encoding) for c in advertised.values()} == {
                ("protobuf", "protobuf")
            }
        finally:
            connection.close()
        with client(sink, ALL) as connection:
            feed(sink, sample)
            received = receive(connection, len(recording))
            assert connection.receive(timeout_s=0.5) is None  # and nothing more
    # the live view is the recording: same topics, order, log times and bytes
    assert [(m.topic, m.log_time_ns, m.data) for m in received] == recording
    for message in received:
        check_foxglove_message(message.topic, message.decoded())
    assert sink.frames_published == len(sample.frames) and sink.frames_unwatched == 0


def test_a_client_asking_only_for_the_older_subprotocol_is_refused(sample):
    # what the docs tell users of older Foxglove Studio releases: the SDK's server speaks
    # foxglove.sdk.v1 only, and answers a client offering just foxglove.websocket.v1 with 400
    with serving(sample) as sink, pytest.raises(InvalidStatus) as refused:
        connect(sink.url, subprotocols=["foxglove.websocket.v1"], open_timeout=10)
    assert refused.value.response.status_code == 400


def test_the_decoded_transforms_place_every_sensor_and_the_scene_holds_the_detections(sample):
    frames = sample.frames[:3]
    with serving(sample) as sink, client(sink, ALL) as connection:
        feed(sink, Captured(sample.info, frames))
        received = connection.receive_until(  # a frame's annotations are its last message
            lambda m: m.topic.endswith("/annotations") and m.log_time_ns == frames[-1][0].stamp_ns
        )
    rig = sample.info.rig
    (transforms,) = [m.decoded() for m in received if m.topic == TRANSFORMS]
    placed = {t.child_frame_id: t for t in transforms.transforms}
    assert set(placed) == set(rig.sensors)
    for name, transform in placed.items():
        assert transform.parent_frame_id == rig.frame
        position = [transform.translation.x, transform.translation.y, transform.translation.z]
        np.testing.assert_allclose(position, rig.sensors[name].extrinsics.translation)
    scenes = [m.decoded() for m in received if m.topic == DETECTIONS]
    for scene, (frame, detections, _) in zip(scenes, frames, strict=True):
        assert [d.type for d in scene.deletions] == [1]  # ALL: replaces the previous frame
        cubes = [e.cubes[0] for e in scene.entities]
        assert len(cubes) == len(detections)
        centres = [[c.pose.position.x, c.pose.position.y, c.pose.position.z] for c in cubes]
        np.testing.assert_allclose(np.reshape(centres, (-1, 3)), detections.boxes[:, :3])
        assert all(e.frame_id == rig.frame for e in scene.entities)
        assert {ns(e.timestamp) for e in scene.entities} <= {frame.stamp_ns}
    images = [m.decoded() for m in received if m.topic.endswith("/image")]
    for image, (frame, _, _) in zip(images, frames, strict=True):
        assert image.data == bytes(frame.messages[CAMERA].meta["compressed"])  # the JPEG


def test_a_client_that_connects_late_gets_the_transforms_and_calibration_at_once(sample):
    frames = sample.frames[:6]
    with serving(sample, static_period_s=3600) as sink:
        feed(sink, Captured(sample.info, frames[:5]))  # nobody watches: nothing is built
        assert (sink.frames_unwatched, sink.frames_published) == (5, 0)
        with client(sink, ALL) as connection:
            static = receive(connection, 2)  # before any further frame
            assert {m.topic for m in static} == STATIC
            stamp = earliest_stamp(frames[4][0])  # the latest frame's earliest stamp
            assert {m.log_time_ns for m in static} == {stamp}
            transforms = next(m.decoded() for m in static if m.topic == TRANSFORMS)
            assert {ns(t.timestamp) for t in transforms.transforms} == {stamp}
            sink.write(*frames[5])
            after = connection.receive_until(lambda m: m.topic.endswith("/annotations"))
    assert {m.topic for m in after} == ALL - STATIC
    assert min(m.log_time_ns for m in after) >= stamp


def test_the_static_messages_are_logged_again_every_period(sample):
    frames = sample.frames[:4]
    with serving(sample, static_period_s=0.05) as sink, client(sink, {TRANSFORMS}) as connection:
        for frame in frames:
            sink.write(*frame)
            time.sleep(0.06)  # longer than the period: every frame is due
        received = connection.drain(quiet_s=0.5)
    assert [m.topic for m in received] == [TRANSFORMS] * len(frames)
    assert [m.log_time_ns for m in received] == [earliest_stamp(f) for f, _, _ in frames]
    # a client watching only the transforms costs no frame's conversion
    assert (sink.frames_unwatched, sink.frames_published) == (len(frames), 0)


# -- a slow client ----------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_client_that_never_reads_neither_blocks_the_run_nor_loses_the_newest_frame(sample):
    laps = 10  # the sample's 30 frames 10 times (~35 MB a client): far past the socket buffers
    lap_ns = sample.frames[-1][0].stamp_ns - sample.frames[0][0].stamp_ns + 100_000_000
    frames = [
        (dataclasses.replace(frame, stamp_ns=frame.stamp_ns + lap * lap_ns), detections, timings)
        for lap in range(laps)
        for frame, detections, timings in sample.frames
    ]
    last_ns = frames[-1][0].stamp_ns
    layout = FoxgloveChannels(sample.info)
    logged = 2 + sum(len(layout.frame_messages(f, d)) for f, d, _ in frames)  # + the static
    with serving(sample, backlog=16, static_period_s=3600) as sink:
        stalled = client(sink, ALL, receive_buffer=4096, max_queue=1)
        with stalled as slow, client(sink, ALL) as reader:
            read: list[Received] = []
            reading = threading.Thread(
                target=lambda: read.extend(
                    reader.receive_until(
                        lambda m: m.topic == DETECTIONS and m.log_time_ns == last_ns
                    )
                ),
                daemon=True,
            )
            reading.start()
            writing = threading.Thread(target=feed, args=(sink, Captured(sample.info, frames)))
            writing.start()
            writing.join(timeout=120)
            assert not writing.is_alive(), "a write waited for the client that does not read"
            reading.join(timeout=30)
            assert read and read[-1].log_time_ns == last_ns  # the reader saw the last frame
            late = slow.drain(quiet_s=2.0)  # now the stalled client reads what is left for it
    assert sink.frames_published == len(frames)
    assert len(late) < logged / 2  # the server dropped most of it instead of queueing it all
    assert late[-1].log_time_ns == last_ns  # oldest dropped first: the newest frame is there
    assert Counter(m.topic for m in late if m.log_time_ns == last_ns) == Counter(
        topic for topic, _ in layout.frame_messages(*frames[-1][:2])
    )


@pytest.mark.timeout(180)
def test_closing_does_not_wait_for_a_client_that_never_reads(sample, caplog):
    sink = FoxgloveLiveSink(port=0, backlog=16)
    sink.start(sample.info)
    with client(sink, ALL, receive_buffer=4096, max_queue=1):
        feed(sink, Captured(sample.info, sample.frames * 5))  # ~17 MB: past the socket buffers
        closing = threading.Thread(target=sink.close)
        closing.start()
        closing.join(timeout=60)  # the SDK's own stop waits until the client reads
        assert not closing.is_alive(), "close waited for the client that does not read"
    assert "a client that does not read holds the server's stop" in caplog.text


# -- errors -----------------------------------------------------------------------------


def test_a_port_in_use_is_one_error_naming_the_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SinkError) as error:
            FoxgloveLiveSink(port=port)
    assert str(error.value) == (
        "cannot serve: Failed to bind port: Address already in use (os error 98) "
        f"[sink='foxglove', address='127.0.0.1:{port}']"
    )


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"port": 70000}, "port"),
        ({"port": "8765"}, "port"),
        ({"host": ""}, "host"),
        ({"backlog": 0}, "backlog"),
        ({"static_period_s": 0}, "static_period_s"),
        ({"prot": 8765}, "prot"),
    ],
)
def test_a_bad_option_is_a_config_error_at_its_key(options, key):
    with pytest.raises(ConfigError) as error:
        FoxgloveLiveSink(**options)
    assert error.value.context["key"] == key


# -- a real run -------------------------------------------------------------------------


def _serving_url(process: subprocess.Popen[str], lines: list[str]) -> str:
    """The address the run's sink printed (its stderr is kept in ``lines`` from then on by a
    thread, so the run never blocks on a full pipe)."""
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        found = re.search(r"serving (ws://127\.0\.0\.1:\d+)", line)
        if found:
            threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True).start()
            return found.group(1)
    raise AssertionError("".join(lines))


@pytest.mark.timeout(300)
def test_a_real_run_serves_every_frame_to_a_client_while_another_never_reads(tmp_path):
    pipeline = write_sample_pipeline(
        tmp_path / "pipeline.yaml",
        [{"name": "jsonl"}, {"name": "foxglove", "options": {"port": 0}}],
    )
    out, report = tmp_path / "out", tmp_path / "report.json"
    command = run_command(pipeline, out, "--realtime", "--rate", "4", "--report", str(report))
    stderr: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as run:
        try:
            url = _serving_url(run, stderr)  # printed before the first frame: port 0 picked
            stalled = FoxgloveClient(url, receive_buffer=4096, max_queue=1)
            stalled.read_advertisements(ALL)
            stalled.subscribe(ALL)
            reader = FoxgloveClient(url)
            reader.read_advertisements(ALL)
            reader.subscribe(ALL)
            received = reader.drain(quiet_s=60)  # until the run ends and closes the server
            assert run.wait(timeout=60) == 0, "".join(stderr)  # not held by the stalled client
        finally:
            run.kill()
    assert reader.closed_by_server
    lines = jsonl_lines(out / "detections.jsonl")
    assert json.loads(report.read_text())["frames"] == len(lines) > 0
    written = {line["stamp_ns"]: len(line["detections"]) for line in lines}
    scenes = [m for m in received if m.topic == DETECTIONS]
    assert scenes and scenes[-1].log_time_ns == lines[-1]["stamp_ns"]  # to the last frame
    for scene in scenes:  # each a frame the run wrote, with its detections
        assert len(scene.decoded().entities) == written[scene.log_time_ns]
    assert {m.topic for m in received} == ALL  # the transforms too, however late it came
    stalled.close()
    reader.close()


def test_a_run_whose_port_is_taken_fails_in_one_line_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pipeline = write_sample_pipeline(
            tmp_path / "pipeline.yaml", [{"name": "foxglove", "options": {"port": port}}]
        )
        done = subprocess.run(
            run_command(pipeline, tmp_path / "out"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("fusionrt: error: ConfigError: cannot serve: ")
    assert "Address already in use" in line and f"address='127.0.0.1:{port}'" in line
    assert "key='sinks[0].options'" in line
