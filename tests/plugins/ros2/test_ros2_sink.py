"""The ``ros2`` sink, read by a subscriber written against rmw_zenoh's rules.

The subscriber is a plain Zenoh peer: it splits keys and unpacks attachments by hand and
deserialises with a typestore of its own, holding vision_msgs / autoware_perception_msgs as the
upstream layouts give them (not fusionrt's shipped ``.msg`` files).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
import zenoh
from ros2_subscriber import Subscriber
from zenoh_helpers import Graph, wait_for

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.ros2.sink import Ros2Sink
from fusionrt.runtime.errors import ConfigError, SinkError
from fusionrt.runtime.health import RunHealth, SensorHealth
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.pipeline import RunInfo

STAMP_NS = 1_700_000_012_345_678_901


class ScriptedHealth:
    """``RunInfo.health``: successive snapshots of a run whose sensors do different things."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> RunHealth:
        n = self.calls
        self.calls += 1
        sensors = {
            "lidar_top": SensorHealth("lidar_top", messages=10 * n, last_stamp_ns=STAMP_NS),
            "camera_front": SensorHealth("camera_front", messages=3, stale=n > 0),
            "radar_front": SensorHealth("radar_front", messages=n, faults={"decode_error": n}),
            "can": SensorHealth("can", messages=50 * n, faults={"too_old": 2 * n}),
        }
        return RunHealth(
            monotonic_s=1000.0 + n,
            uptime_s=1.0 + n,
            frames=10 * n,
            dropped={},
            end_to_end_p50_ms=20.0,
            end_to_end_p99_ms=30.0,
            sensors=sensors,
        )


def detections() -> Detections:
    return Detections(
        stamp_ns=STAMP_NS,
        boxes=np.array(
            [[10.0, -2.0, 0.9, 4.5, 1.9, 1.6, 0.5], [5.0, 3.0, 1.0, 0.8, 0.7, 1.8, -2.0]],
            np.float32,
        ),
        scores=np.array([0.91, 0.62], np.float32),
        labels=np.array([0, 2]),
        class_names=("car", "pedestrian", "cyclist"),
        velocities=np.array([[3.0, 0.0], [0.0, 1.0]], np.float32),
    )


def run_info(health: Callable[[], RunHealth] | None = None) -> RunInfo:
    return RunInfo(
        out_dir=Path("out"),
        rig=Rig("base_link", {}),
        model=None,  # type: ignore[arg-type]
        sensors={},
        ground_truth=lambda stamp_ns: None,
        health=health or ScriptedHealth(),
    )


@pytest.fixture
def sink_and_peer(
    endpoint: str, raw_session: Callable[..., zenoh.Session]
) -> Iterator[Callable[..., tuple[Ros2Sink, zenoh.Session]]]:
    sinks: list[Ros2Sink] = []

    def make(**options: Any) -> tuple[Ros2Sink, zenoh.Session]:
        peer = raw_session(listen=(endpoint,))
        sink = Ros2Sink(Path("out"), connect=[endpoint], **options)
        sinks.append(sink)
        return sink, peer

    yield make
    for sink in sinks:
        sink.close()


def test_detections_are_a_vision_msgs_detection3d_array(sink_and_peer: Callable) -> None:
    sink, peer = sink_and_peer(diagnostics_period_s=0)
    graph = Graph(peer)
    subscriber = Subscriber(peer, "/fusionrt/detections")
    sink.start(run_info())
    wait_for("the sink's publisher", lambda: sink._detections.matched)
    for _ in range(2):
        sink.write(Frame(STAMP_NS, {}), detections(), {})
    wait_for("two Detection3DArrays", lambda: len(subscriber.received) == 2)
    [token] = [
        t for t in wait_for("the token", lambda: graph.tokens("MP")) if "%fusionrt%detections" in t
    ]
    first, second = subscriber.received
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.gid == xxhash.xxh3_128_intdigest("/".join(token).encode()).to_bytes(16, "little")
    array = first.message
    assert (array.header.stamp.sec, array.header.stamp.nanosec) == (1_700_000_012, 345_678_901)
    assert array.header.frame_id == "base_link"  # the rig frame
    car, cyclist = array.detections
    assert [h.hypothesis.class_id for h in car.results] == ["car"]
    assert [h.hypothesis.class_id for h in cyclist.results] == ["cyclist"]
    assert car.results[0].hypothesis.score == pytest.approx(0.91, abs=1e-6)
    center = car.bbox.center
    assert (center.position.x, center.position.y, center.position.z) == pytest.approx(
        (10.0, -2.0, 0.9)
    )
    q = center.orientation
    assert (q.x, q.y, q.z, q.w) == pytest.approx((0.0, 0.0, math.sin(0.25), math.cos(0.25)))
    assert (car.bbox.size.x, car.bbox.size.y, car.bbox.size.z) == pytest.approx((4.5, 1.9, 1.6))
    assert cyclist.bbox.center.orientation.z == pytest.approx(math.sin(-1.0), abs=1e-6)
    assert car.results[0].pose.pose.position.x == pytest.approx(10.0)


def test_detections_are_also_autoware_objects_when_asked(sink_and_peer: Callable) -> None:
    sink, peer = sink_and_peer(autoware_topic="/perception/objects", diagnostics_period_s=0)
    subscriber = Subscriber(peer, "/perception/objects")
    sink.start(run_info())
    wait_for("the objects publisher", lambda: sink._objects is not None and sink._objects.matched)
    sink.write(Frame(STAMP_NS, {}), detections(), {})
    [received] = wait_for("DetectedObjects", lambda: subscriber.received)
    car, cyclist = received.message.objects
    assert received.message.header.frame_id == "base_link"
    assert [(c.label, c.probability) for c in car.classification] == [(1, pytest.approx(0.91))]
    assert [c.label for c in cyclist.classification] == [6]  # BICYCLE
    assert car.existence_probability == pytest.approx(0.91)
    assert (car.shape.type, car.shape.dimensions.x, car.shape.dimensions.y) == (
        0,
        pytest.approx(4.5),
        pytest.approx(1.9),
    )
    kinematics = car.kinematics
    assert kinematics.orientation_availability == 2 and kinematics.has_twist
    # 3 m/s along the rig's x, seen from a box yawed 0.5 rad: forward and to its right
    linear = kinematics.twist_with_covariance.twist.linear
    assert (linear.x, linear.y) == pytest.approx((3 * math.cos(0.5), -3 * math.sin(0.5)))


def test_diagnostics_are_published_every_period(sink_and_peer: Callable) -> None:
    sink, peer = sink_and_peer(diagnostics_period_s=0.2)
    subscriber = Subscriber(peer, "/diagnostics")
    sink.start(run_info(ScriptedHealth()))
    wait_for("two DiagnosticArrays", lambda: len(subscriber.received) >= 2)
    second = subscriber.received[1].message
    levels = {s.name: s.level for s in second.status}
    assert levels == {
        "fusionrt: pipeline": 0,
        "fusionrt: sensor lidar_top": 0,
        "fusionrt: sensor camera_front": 3,  # STALE
        "fusionrt: sensor radar_front": 2,  # ERROR: it failed to decode in the interval
        "fusionrt: sensor can": 1,  # WARN: late messages in the interval
    }
    lidar = next(s for s in second.status if s.name.endswith("lidar_top"))
    values = {kv.key: kv.value for kv in lidar.values}
    assert values["rate_hz"] == "10.00" and values["last_stamp_ns"] == str(STAMP_NS)
    assert [r.sequence for r in subscriber.received[:2]] == [1, 2]


class BlockedSubscriber:
    """A subscriber whose callback never returns until released: the slowest there is."""

    def __init__(self, session: zenoh.Session, key: str) -> None:
        self.release = threading.Event()
        session.declare_subscriber(key, lambda sample: self.release.wait(timeout=60))


def test_a_stuck_subscriber_never_blocks_the_pipeline(sink_and_peer: Callable) -> None:
    sink, peer = sink_and_peer(diagnostics_period_s=0)
    stuck = BlockedSubscriber(peer, "0/fusionrt/detections/**")
    sink.start(run_info())
    wait_for("the sink's publisher", lambda: sink._detections.matched)
    big = Detections(
        stamp_ns=STAMP_NS,
        boxes=np.ones((200, 7), np.float32),
        scores=np.ones(200, np.float32),
        labels=np.zeros(200, np.int64),
    )
    writer = threading.Thread(
        target=lambda: [sink.write(Frame(STAMP_NS + i, {}), big, {}) for i in range(400)]
    )
    writer.start()
    writer.join(timeout=120)
    stuck.release.set()
    assert not writer.is_alive()  # 400 frames of 200 boxes went out with the subscriber stuck
    assert sink.published == 400


def test_close_stops_the_timer_and_forgets_the_publishers(sink_and_peer: Callable) -> None:
    sink, peer = sink_and_peer(diagnostics_period_s=0.05, autoware_topic="/perception/objects")
    publishers = (sink._detections, sink._objects, sink._diagnostics)
    assert not any(p.blocks_when_congested for p in publishers if p is not None)  # they drop
    graph = Graph(peer)
    sink.start(run_info())
    wait_for("three publisher tokens", lambda: len(graph.tokens("MP")) == 3)
    wait_for("a diagnostics message", lambda: sink.diagnostics_published)
    sink.close()
    sink.close()
    published = sink.diagnostics_published
    wait_for("the tokens to be undeclared", lambda: not graph.alive)
    with pytest.raises(SinkError, match="cannot publish") as raised:
        sink.write(Frame(STAMP_NS, {}), detections(), {})
    assert raised.value.context["sink"] == "ros2"
    assert sink.diagnostics_published == published


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"topic": "detections"}, "topic"),
        ({"autoware_topic": "/a//b"}, "autoware_topic"),
        ({"diagnostics_topic": ""}, "diagnostics_topic"),
        ({"diagnostics_period_s": -1}, "diagnostics_period_s"),
        ({"diagnostics_period_s": "1"}, "diagnostics_period_s"),
        ({"domain_id": -3}, "domain_id"),
        ({"rate": 3}, "rate"),
    ],
)
def test_bad_options_are_config_errors(options: dict, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Ros2Sink(Path("out"), **options)
    assert raised.value.context["key"] == key
