"""The ``socketcan`` live source: python-can buses into candump-line records the ``can`` sensor
decodes exactly as it decodes the recorded log; error frames, failed receives and a bus that
goes away are counted and survived.

In-process tests use python-can's ``virtual`` bus; the ``udp_multicast`` test runs the source and
a sender in two processes inside a private network namespace (``unshare -n``), so its multicast
never leaves the test.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import can
import numpy as np
import pytest
from candump_replay import can_message
from hypothesis import given
from hypothesis import strategies as st

from fusionrt import ConfigError, RawRecord
from fusionrt.plugins.sensors.can import (
    CANDUMP_LINE_MSGTYPE,
    CanSensor,
    format_candump_line,
    parse_candump_line,
    read_candump,
)
from fusionrt.plugins.sources.socketcan import SocketCanSource, can_frame
from fusionrt.runtime.live import RecordInbox

ROOT = Path(__file__).resolve().parents[3]
CAN_LOG = ROOT / "examples" / "drives" / "sample" / "can0.log"
HERE = Path(__file__).parent
TOPIC = "/vehicle/can0"
# The sample pipeline's CAN sensor (examples/pipelines/sample.yaml).
SAMPLE_CAN_OPTIONS = {
    "dbc_paths": [str(ROOT / "fusionrt" / "sim" / "data" / "fusionrt_car.dbc")],
    "signals": {
        "VEHICLE_SPEED.VehicleSpeed": {"slot": "speed_mps", "scale": 0.2777777777777778},
        "YAW_RATE.YawRate": {"slot": "yaw_rate_rps", "scale": 0.017453292519943295},
        "STEERING.SteeringWheelAngle": {
            "slot": "steering_angle_rad",
            "scale": 0.017453292519943295,
        },
    },
}


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


@pytest.fixture
def channel() -> str:
    """A virtual bus channel of this test alone (virtual channels are process-wide)."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sender(channel: str) -> Iterator[can.BusABC]:
    """Another node on the virtual bus; it keeps the stamps it is given, as a recording has."""
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    yield bus
    bus.shutdown()


def start(channel: str, capacity: int = 16, **options) -> tuple[SocketCanSource, RecordInbox]:
    source = SocketCanSource([TOPIC], interface="virtual", channel=channel, **options)
    inbox = RecordInbox(capacity)
    source.start(inbox)
    wait_for(lambda: source.bus is not None)
    return source, inbox


def drain(inbox: RecordInbox) -> list[RawRecord]:
    out = []
    while (arrival := inbox.get(timeout_s=0)) is not None:
        out.append(arrival[0])
    return out


def decoded(records: list[RawRecord]) -> list[tuple[int, int, str, tuple]]:
    """What the sample pipeline's CAN sensor makes of each record: stamp, id, data, ego vector."""
    sensor = CanSensor("can", TOPIC, **SAMPLE_CAN_OPTIONS)
    out = []
    for record in records:
        message = sensor.decode(record)
        vector = tuple(np.nan_to_num(message.payload, nan=-1e9).tolist())
        out.append((message.stamp_ns, message.meta["arbitration_id"], message.meta["data"], vector))
    return out


def log_records() -> list[RawRecord]:
    """The sample drive's candump log, line by line, as a replay reads it."""
    lines = [line for line in CAN_LOG.read_text().splitlines() if line.strip()]
    return [
        RawRecord(TOPIC, parse_candump_line(line).t_ns, line.encode(), CANDUMP_LINE_MSGTYPE)
        for line in lines
    ]


def test_a_virtual_bus_decodes_like_the_candump_log(channel, sender):
    frames = list(read_candump(CAN_LOG))
    source, inbox = start(channel, capacity=len(frames))
    try:
        for frame in frames:
            sender.send(can_message(frame))
        wait_for(lambda: inbox.received[TOPIC] == len(frames))
    finally:
        source.close()
    records = drain(inbox)
    assert [r.offset for r in records] == list(range(1, len(frames) + 1))
    assert {r.path for r in records} == {f"virtual:{channel}"}
    assert decoded(records) == decoded(log_records())  # stamps to the µs, ids, data, signals
    assert not inbox.dropped


def test_error_frames_are_counted_not_decoded(channel, sender):
    source, inbox = start(channel)
    try:
        sender.send(can.Message(arbitration_id=0x004, is_error_frame=True, data=bytes(8)))
        sender.send(can.Message(arbitration_id=0x1A0, is_extended_id=False, data=bytes(8)))
        wait_for(lambda: inbox.received[TOPIC] == 1)
    finally:
        source.close()
    assert inbox.dropped == {(TOPIC, "error_frame"): 1}
    (record,) = drain(inbox)
    assert parse_candump_line(record.data.decode()).arbitration_id == 0x1A0


def test_a_bus_that_goes_away_is_reported_once_and_reopened(channel, sender):
    source, inbox = start(channel, retry_initial_ms=10, retry_max_ms=50)
    try:
        sender.send(can.Message(arbitration_id=0x1A0, is_extended_id=False, data=b"\x01" * 8))
        wait_for(lambda: inbox.received[TOPIC] == 1)
        first_bus = source.bus
        first_bus.shutdown()  # the bus goes away under the source (its receives now fail)
        wait_for(lambda: source.bus is not None and source.bus is not first_bus)
        sender.send(can.Message(arbitration_id=0x1B0, is_extended_id=False, data=b"\x02" * 8))
        wait_for(lambda: inbox.received[TOPIC] == 2)
    finally:
        source.close()
    assert inbox.dropped == {(TOPIC, "bus_down"): 1}
    assert source.reconnects == 1
    ids = [parse_candump_line(r.data.decode()).arbitration_id for r in drain(inbox)]
    assert ids == [0x1A0, 0x1B0]


def test_a_bus_that_cannot_be_opened_is_retried_and_reported_once(caplog):
    caplog.set_level(logging.DEBUG, logger="fusionrt.sources.socketcan")
    # a SocketCAN interface that does not exist: opening fails on every attempt
    source = SocketCanSource(
        [TOPIC], interface="socketcan", channel="nosuchcan9", retry_initial_ms=5, retry_max_ms=20
    )
    inbox = RecordInbox()
    source.start(inbox)
    try:
        wait_for(lambda: caplog.text.count("still down") >= 3)
    finally:
        started = time.monotonic()
        source.close()
    assert time.monotonic() - started < 2.0  # closing ends the back-off wait at once
    assert inbox.dropped == {(TOPIC, "bus_down"): 1}
    assert "nosuchcan9" in caplog.text and "cannot open" in caplog.text
    assert source.reconnects == 0 and source.bus is None


def test_stamps_from_arrival_and_from_an_interface_without_stamps(channel):
    sender = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    source, inbox = start(channel, stamp_from="arrival")
    try:
        before = time.time_ns()
        sender.send(can.Message(timestamp=1.0, arbitration_id=0x1A0, is_extended_id=False))
        wait_for(lambda: inbox.received[TOPIC] == 1)
        after = time.time_ns()
    finally:
        source.close()
    other, other_inbox = start(channel)  # stamp_from bus, but the message has no stamp (0)
    try:
        sender.send(can.Message(timestamp=0.0, arbitration_id=0x1A0, is_extended_id=False))
        wait_for(lambda: other_inbox.received[TOPIC] == 1)
        latest = time.time_ns()
    finally:
        other.close()
        sender.shutdown()
    (record,) = drain(inbox)
    assert before <= record.stamp_ns <= after  # the 1970 bus stamp is ignored
    (record,) = drain(other_inbox)
    assert after <= record.stamp_ns <= latest


@given(
    st.builds(
        can.Message,
        arbitration_id=st.integers(0, 0x7FF),
        is_extended_id=st.just(False),
        data=st.binary(max_size=8),
    )
    | st.builds(
        can.Message,
        arbitration_id=st.integers(0, 0x1FFFFFFF),
        is_extended_id=st.just(True),
        data=st.binary(max_size=8),
    )
    | st.builds(
        can.Message,
        arbitration_id=st.integers(0, 0x7FF),
        is_extended_id=st.just(False),
        is_fd=st.just(True),
        bitrate_switch=st.booleans(),
        error_state_indicator=st.booleans(),
        data=st.sampled_from([0, 1, 8, 12, 16, 20, 24, 32, 48, 64]).flatmap(
            lambda n: st.binary(min_size=n, max_size=n)
        ),
    )
    | st.builds(
        can.Message,
        arbitration_id=st.integers(0, 0x7FF),
        is_extended_id=st.just(False),
        is_remote_frame=st.just(True),
    ),
    st.integers(0, 2**62),
)
def test_every_python_can_frame_reads_back_from_its_candump_line(message, stamp_ns):
    frame = parse_candump_line(format_candump_line(can_frame(message, "can0", stamp_ns)))
    assert frame.t_ns == stamp_ns and frame.channel == "can0"
    assert frame.arbitration_id == message.arbitration_id
    assert frame.is_extended == message.is_extended_id
    assert frame.is_remote == message.is_remote_frame
    assert frame.is_fd == message.is_fd
    assert frame.data == (b"" if message.is_remote_frame else bytes(message.data))
    if message.is_fd:
        assert frame.fd_flags == message.bitrate_switch | (message.error_state_indicator << 1)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"interface": "virtul", "channel": "x"}, "interface"),
        ({"interface": "virtual"}, "channel"),
        ({"channel": "can0", "bitrate": 500000}, "bitrate"),  # bus options go in bus_options
        ({"channel": "can0", "bus_options": {"channel": "can1"}}, "bus_options"),
        ({"channel": "can0", "stamp_from": "kernel"}, "stamp_from"),
        ({"channel": "can0", "retry_initial_ms": 100, "retry_max_ms": 10}, "retry_max_ms"),
    ],
)
def test_option_mistakes_are_config_errors_at_their_key(options, key):
    with pytest.raises(ConfigError) as info:
        SocketCanSource([TOPIC], **options)
    assert info.value.context["key"] == key


def test_one_bus_feeds_one_topic():
    with pytest.raises(ConfigError, match="one topic"):
        SocketCanSource(["/a", "/b"], interface="virtual", channel="x")


# -- udp_multicast between two processes --------------------------------------------------


def _namespace_problem() -> str | None:
    """Why a private network namespace with multicast on ``lo`` cannot be made here, if so."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up && ip route add 224.0.0.0/4 dev lo"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip() or probe.returncode}"
    return None


def test_udp_multicast_between_two_processes_decodes_like_the_candump_log():
    problem = _namespace_problem()
    if problem is not None:
        pytest.skip(problem)
    setup = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec "$0" "$@"'
    peer = [sys.executable, str(HERE / "can_multicast_peer.py"), "receive", str(CAN_LOG), TOPIC]
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", setup, *peer],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    records = [
        RawRecord(TOPIC, stamp, line.encode(), CANDUMP_LINE_MSGTYPE)
        for stamp, line in report["records"]
    ]
    expected = decoded(log_records())
    got = decoded(records)
    assert len(got) == len(expected)
    # the ids, data and decoded signals are the log's; the stamps are the receiving kernel's
    assert [g[1:] for g in got] == [e[1:] for e in expected]
    stamps = [g[0] for g in got]
    assert report["opened_ns"] <= stamps[0] and stamps[-1] <= report["closed_ns"]
    assert stamps == sorted(stamps)
    # the sender's garbage datagram: one failed receive, counted, and the bus went on
    assert report["dropped"] == {"bus_error": 1}
