"""``fusionrt play``: the sample drive onto Zenoh, received by the ``ros2`` source, and stopped by
signals. Each play is a real ``fusionrt`` subprocess connecting to a session of the test."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zenoh
from zenoh_helpers import TIMEOUT_S, Graph, wait_for

from fusionrt.plugins.ros2.source import Ros2Source
from fusionrt.plugins.sources.rosbag import RosbagSource
from fusionrt.runtime.live import RecordInbox

DRIVE = Path(__file__).parents[3] / "examples" / "drives" / "sample"
TOPICS = {
    "/ground_truth/actors": "fusionrt_msgs/msg/ActorArray",
    "/ground_truth/ego": "nav_msgs/msg/Odometry",
    "/sensors/camera_front/image/compressed": "sensor_msgs/msg/CompressedImage",
    "/sensors/lidar_top/points": "sensor_msgs/msg/PointCloud2",
    "/sensors/radar_front/points": "sensor_msgs/msg/PointCloud2",
    "/vehicle/can0": "can_msgs/msg/Frame",
    "/vehicle/log": "rcl_interfaces/msg/Log",
}


def play(*args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fusionrt.runtime.cli", "play", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[call-overload]
    )


@pytest.fixture
def source(endpoint: str) -> Iterator[tuple[Ros2Source, RecordInbox]]:
    """The ros2 source on every topic of the drive, listening on ``endpoint``; keeping all."""
    ros2 = Ros2Source(sorted(TOPICS), listen=[endpoint], receive_queue=100_000)
    inbox = RecordInbox(100_000)
    ros2.start(inbox)
    yield ros2, inbox
    ros2.close()


def test_the_source_receives_the_drive_byte_for_byte(
    endpoint: str, source: tuple[Ros2Source, RecordInbox]
) -> None:
    _, inbox = source
    player = play(str(DRIVE), "--rate", "10", "--connect", endpoint, "--wait-subscribers", "20")
    stdout, stderr = player.communicate(timeout=120)
    assert player.returncode == 0, stderr
    recorded: dict[str, list[bytes]] = defaultdict(list)
    with RosbagSource(DRIVE / "bag") as bag:
        for record in bag.records():
            recorded[record.topic].append(bytes(record.data))
    received: dict[str, list[bytes]] = defaultdict(list)

    def everything() -> bool:
        while (arrival := inbox.get(timeout_s=0.01)) is not None:
            received[arrival[0].topic].append(bytes(arrival[0].data))
            assert arrival[0].msgtype == TOPICS[arrival[0].topic]
        return sum(map(len, received.values())) >= sum(map(len, recorded.values()))

    wait_for("every recorded message", everything)
    assert set(received) == set(TOPICS)
    for topic, messages in recorded.items():
        assert received[topic] == messages, topic  # same bytes, same order
    assert not inbox.dropped
    assert "published 7952 messages" in stdout
    rows = [line.split() for line in stdout.splitlines()]
    assert ["/sensors/lidar_top/points", "sensor_msgs/msg/PointCloud2", "199"] in rows


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_looping_play_cleanly(
    endpoint: str, raw_session: Callable[..., zenoh.Session], signum: signal.Signals
) -> None:
    peer = raw_session(listen=(endpoint,))
    graph = Graph(peer)
    lidar: list[bytes] = []
    peer.declare_subscriber(
        "0/sensors/lidar_top/points/*/*", lambda s: lidar.append(s.payload.to_bytes())
    )
    player = play(str(DRIVE), "--loop", "--connect", endpoint, "--topics", *sorted(TOPICS)[2:])
    try:
        wait_for("lidar sweeps", lambda: len(lidar) >= 3)
        [node] = graph.tokens("NN")
        assert node[-1] == "fusionrt_play"
        published = sorted(t[9] for t in graph.tokens("MP"))
        assert published == sorted(t.replace("/", "%") for t in sorted(TOPICS)[2:])
        player.send_signal(signum)
        stdout, stderr = player.communicate(timeout=TIMEOUT_S)
    finally:
        if player.poll() is None:
            player.kill()
            player.communicate()
    assert player.returncode == 0, stderr
    assert f"stopped by {signum.name}" in stdout
    wait_for("its tokens to be undeclared", lambda: not graph.alive)


def test_a_damaged_recording_plays_the_rest_and_exits_3(tmp_path: Path, endpoint: str) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(DRIVE / "bag", bag)
    mcap = bag / "bag.mcap"
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])  # cut in the middle
    player = play(str(bag), "--rate", "100", "--listen", endpoint)
    stdout, stderr = player.communicate(timeout=120)
    assert player.returncode == 3, stderr
    assert "the recording is damaged (truncated: 1); the rest was played" in stderr
    lidar = next(line.split() for line in stdout.splitlines() if line.startswith("/sensors/lidar"))
    assert 0 < int(lidar[-1]) < 199  # what was before the cut


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "ConfigError: no drive at this path"),
        ([str(DRIVE), "--rate", "0"], "ConfigError: the play rate must be > 0"),
        ([str(DRIVE), "--topics", "/not/there"], "ConfigError: nothing to play"),
        ([str(DRIVE), "--mode", "client"], "ConfigError: a client must connect to a router"),
        ([str(DRIVE), "--connect", "localhost"], "is not a Zenoh endpoint"),
    ],
)
def test_what_cannot_be_played_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    player = play(*args)
    _, stderr = player.communicate(timeout=120)
    assert player.returncode == 1
    error = stderr.strip().splitlines()[-1]  # after the warnings logged on the way, if any
    assert error.startswith("fusionrt: error: ")
    assert message in error
