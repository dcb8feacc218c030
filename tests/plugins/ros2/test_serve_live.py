"""``fusionrt serve`` end to end, as a car's computer runs it: ``fusionrt play`` publishes the
sample drive over Zenoh (rmw_zenoh's conventions), ``serve`` receives it live, and a third
party — a subscriber written against the rules alone — reads the detections and diagnostics.
Real processes, real Zenoh sessions on 127.0.0.1, real signals."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import yaml
from candump_replay import replay_candump
from ros2_subscriber import Subscriber
from zenoh_helpers import Graph, free_endpoint, wait_for

REPO = Path(__file__).resolve().parents[3]
LIVE = REPO / "examples" / "pipelines" / "live.yaml"
SAMPLE_PIPELINE = REPO / "examples" / "pipelines" / "sample.yaml"
DRIVE = REPO / "examples" / "drives" / "sample"
FUSIONRT = [sys.executable, "-m", "fusionrt.runtime.cli"]
TOPICS = (
    "/sensors/lidar_top/points",
    "/sensors/camera_front/image/compressed",
    "/sensors/radar_front/points",
    "/vehicle/can0",
    "/vehicle/log",
)


def _pipeline(tmp_path: Path, endpoint: str) -> Path:
    data = yaml.safe_load(LIVE.read_text())
    data["rig"] = str(DRIVE / "rig.yaml")
    data["sensors"]["can"]["options"]["dbc_paths"] = [
        str(REPO / "fusionrt" / "sim" / "data" / "fusionrt_car.dbc")
    ]
    data["live"].update(connect=[], listen=[endpoint])
    data["sinks"][1]["options"] = {"path": str(tmp_path / "out" / "detections.jsonl")}
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _serve(pipeline: Path, out: Path) -> subprocess.Popen:
    command = [
        *FUSIONRT,
        "serve",
        str(pipeline),
        "--out",
        str(out),
        "--report",
        str(out / "r.json"),
    ]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )


def _play(endpoint: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FUSIONRT, "play", str(DRIVE), "--connect", endpoint, "--rate", "2", *extra],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait_until_serving(graph: Graph) -> None:
    """Until serve's detections publisher is in the ROS graph (its liveliness token)."""
    wait_for(
        "serve's publisher token",
        lambda: any("%fusionrt%detections" in "/".join(t) for t in graph.tokens("MP")),
        60,
    )


POINTCLOUD2 = (
    "sensor_msgs::msg::dds_::PointCloud2_/"
    "RIHS01_9198cabf7da3796ae6fe19c4cb3bdd3525492988c70522628af5daa124bae2b5"
)


def _publish_garbage(session, topic: str, count: int) -> None:
    """Samples rmw_zenoh would deliver (key, attachment) whose CDR is not a PointCloud2."""
    key = f"0{topic}/{POINTCLOUD2}"
    gid = bytes(range(16))
    for sequence in range(1, count + 1):
        attachment = struct.pack("<qqB16s", sequence, time.time_ns(), 16, gid)
        session.put(key, b"\x00\x01\x00\x00garbage", attachment=attachment)
    time.sleep(0.5)


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr  # a signal is how serve is meant to end
    return stderr


def test_play_into_serve_gives_the_detections_of_run_and_stops_cleanly(
    tmp_path, endpoint, raw_session
):
    out = tmp_path / "out"
    server = _serve(_pipeline(tmp_path, endpoint), out)
    try:
        peer = raw_session(connect=(endpoint,))
        graph = Graph(peer)
        detections = Subscriber(peer, "/fusionrt/detections")
        diagnostics = Subscriber(peer, "/diagnostics")
        _wait_until_serving(graph)
        _play(endpoint)
        wait_for("the last frames", lambda: len(detections.received) >= 190, 30)
        time.sleep(0.5)
    finally:
        _stop(server)
    report = json.loads((out / "r.json").read_text())
    assert report["interrupted"] is True and report["signal"] == "SIGTERM"
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert len(lines) == report["frames"] >= 190  # of 199 sweeps
    # the subscriber's Detection3DArrays are the frames written (Zenoh may deliver the first
    # sample before the subscription has matched, so one or two may be missing at the start)
    by_stamp = {line["stamp_ns"]: line for line in lines}
    assert len(detections.received) >= len(lines) - 2
    for got in detections.received:
        stamp = got.message.header.stamp
        line = by_stamp[stamp.sec * 10**9 + stamp.nanosec]
        assert [d.results[0].hypothesis.class_id for d in got.message.detections] == [
            d["label"] for d in line["detections"]
        ]
    assert diagnostics.received  # published at 1 Hz while it ran
    # the same frames as a replay of the recording, for the frames complete in both
    replay = tmp_path / "replay"
    subprocess.run(
        [*FUSIONRT, "run", str(SAMPLE_PIPELINE), "--source", str(DRIVE), "--out", str(replay)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    replayed = {
        x["stamp_ns"]: x
        for x in map(json.loads, (replay / "detections.jsonl").read_text().splitlines())
        if not x["missing"]
    }
    live = {x["stamp_ns"]: x for x in lines if not x["missing"]}
    # frames made of the very same messages (live, a CAN frame may come late or be dropped)
    common = [
        s for s in set(live) & set(replayed) if live[s]["inputs_ns"] == replayed[s]["inputs_ns"]
    ]
    assert len(common) >= 100
    for stamp in common:
        a, b = live[stamp]["detections"], replayed[stamp]["detections"]
        assert [d["label"] for d in a] == [d["label"] for d in b]
        np.testing.assert_allclose(
            [d["box"] + [d["score"]] for d in a], [d["box"] + [d["score"]] for d in b], atol=1e-3
        )


def test_a_sensor_that_never_comes_is_stale_and_garbage_is_counted(tmp_path, endpoint, raw_session):
    out = tmp_path / "out"
    server = _serve(_pipeline(tmp_path, endpoint), out)
    try:
        peer = raw_session(connect=(endpoint,))
        graph = Graph(peer)
        diagnostics = Subscriber(peer, "/diagnostics")
        _wait_until_serving(graph)
        topics = [
            "/sensors/lidar_top/points",
            "/sensors/camera_front/image/compressed",
            "/vehicle/can0",
        ]
        _publish_garbage(peer, "/sensors/lidar_top/points", count=3)
        _play(endpoint, "--topics", *topics)  # no radar at all

        def radar_stale():
            with diagnostics.lock:
                arrays = [r.message for r in diagnostics.received]
            return any(
                s.name.endswith("radar_front") and s.message.lower().startswith("stale")
                for a in arrays
                for s in a.status
            )

        wait_for("the radar reported STALE", radar_stale, 10)
    finally:
        _stop(server)
    report = json.loads((out / "r.json").read_text())
    assert report["frames"] >= 150 and report["missing"]["radar_front"] == report["frames"]
    assert report["faults"]["lidar_top"]["decode_error"] == 3  # counted; the run went on


def test_a_mixed_pipeline_of_ros2_topics_and_a_can_bus_feeds_every_sink(
    tmp_path, endpoint, raw_session
):
    """Lidar, camera and radar as ROS 2 topics over Zenoh (``fusionrt play``), the CAN bus
    read by the ``socketcan`` source (python-can's virtual bus, a node on it replaying the
    drive's candump log with its stamps), every sink at once (JSONL, MCAP, video, ROS 2, a live
    Foxglove server): detections flow and the report counts every source."""
    from fusionrt.plugins.sensors.can import read_candump
    from fusionrt.plugins.sources.rosbag import RosbagSource
    from fusionrt.runtime.config import load_pipeline
    from fusionrt.runtime.pipeline import Pipeline, RunOptions
    from fusionrt.runtime.registry import Registry

    channel = f"car-{os.getpid()}-{time.monotonic_ns()}"
    data = yaml.safe_load(_pipeline(tmp_path, endpoint).read_text())
    probe = free_endpoint()  # play publishes to the test too: it starts the CAN bus with the drive
    data["live"]["listen"] = [endpoint]
    data["sensors"]["can"]["source"] = {
        "name": "socketcan",
        "options": {"interface": "virtual", "channel": channel},
    }
    out = tmp_path / "out"
    data["sinks"] = [
        {"name": "jsonl"},
        {"name": "mcap"},
        {"name": "video", "options": {"png_every": 0}},
        {"name": "ros2"},
        {"name": "foxglove", "options": {"port": 0}},
    ]
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    pipeline = Pipeline(
        load_pipeline(path), None, Registry.create(), RunOptions(out_dir=out, duration_s=14.0)
    )
    peer = raw_session(listen=(probe,))
    first_lidar = threading.Event()
    peer.declare_subscriber("0/sensors/lidar_top/points/*/*", lambda sample: first_lidar.set())
    stop = threading.Event()

    def car_bus() -> None:
        """The drive's CAN frames at twice their pace from the first lidar sweep on."""
        with RosbagSource(DRIVE / "bag", topics=[TOPICS[0]]) as bag:
            t0 = next(iter(bag.records())).stamp_ns  # the first sweep's log time
        frames = list(read_candump(DRIVE / "can0.log"))  # read before: the bus starts on time
        if first_lidar.wait(60):
            replay_candump(channel, frames, t0_ns=t0, stop=stop, speed=2.0)

    def player() -> None:
        topics = [t for t in TOPICS if t != "/vehicle/can0"]
        _play(endpoint, "--connect", probe, "--topics", *topics)

    threads = [threading.Thread(target=f, daemon=True) for f in (car_bus, player)]
    for thread in threads:
        thread.start()
    try:
        result = pipeline.run()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert result.frames >= 100
    assert all(count > 0 for count in result.messages.values()), result.messages
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert sum(1 for line in lines if "can" in line["inputs_ns"]) >= len(lines) // 2
    assert (out / "run.mcap").stat().st_size > 0 and (out / "video.mp4").stat().st_size > 0
    assert not {reason for _, reason in result.faults} & {"bus_down", "decode_error"}
