"""The ``velodyne`` live source: synthetic VLP-16 packets sent over UDP to 127.0.0.1 become one
PointCloud2 record per revolution that the ``lidar`` sensor decodes to the manual's points;
packets of the wrong size, from another sender, of another model or malformed are counted and
not decoded; packets the kernel dropped are counted as lost; stamps come from the lidar's clock
when it agrees with the host's."""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np
import pytest
from velodyne_helpers import (
    HOUR_NS,
    RING_OF_LASER,
    Sender,
    expected_points,
    free_udp_port,
    vlp16_stream,
)

from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sources import velodyne_packet as wire
from fusionrt.plugins.sources.velodyne import VelodyneSource
from fusionrt.plugins.sources.velodyne_revolutions import RevolutionAssembler
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import RecordInbox

pytest.importorskip("velodyne_decoder")

TOPIC = "velodyne"


class Received:
    """A started source's inbox, drained by a thread: its records and its drops by reason."""

    def __init__(self, source: VelodyneSource) -> None:
        self.records: list = []
        self.drops: list[tuple[str, object]] = []
        self.inbox = RecordInbox(
            10_000, on_drop=lambda t, reason, r: self.drops.append((reason, r))
        )
        self._thread = threading.Thread(target=self._drain, daemon=True)
        source.start(self.inbox)
        self._thread.start()

    def _drain(self) -> None:
        while not self.inbox.closed:
            arrival = self.inbox.get(0.05)
            if arrival is not None:
                self.records.append(arrival[0])

    def reasons(self) -> list[str]:
        return [reason for reason, _ in self.drops]

    def wait(self, what: str, condition, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.reasons()}")
            time.sleep(0.02)

    def close(self) -> None:
        self.inbox.close()
        self._thread.join(5)


@pytest.fixture
def source_factory():
    sources: list[VelodyneSource] = []

    def make(**options: object) -> VelodyneSource:
        options = {"address": "127.0.0.1", "port": 0, "model": "VLP-16", **options}
        source = VelodyneSource([TOPIC], **options)
        sources.append(source)
        return source

    yield make
    for source in sources:
        source.close()


def _decoded(records):
    sensor = LidarSensor("lidar_top", TOPIC)
    return [sensor.decode(record) for record in records]


def test_packets_over_udp_become_revolutions_of_the_manuals_points(source_factory):
    source = source_factory(max_clock_offset_ms=5000)
    received = Received(source)
    sender = Sender(source.port)
    packets = vlp16_stream(3 * 76 + 20, time.time_ns(), no_return_every=11)
    try:
        for packet in packets:
            sender.send(packet.data)
        received.wait("three revolutions", lambda: len(received.records) >= 3)
    finally:
        sender.close()
        received.close()
    assert received.drops == []
    messages = _decoded(received.records)
    points = np.concatenate([m.payload for m in messages])
    expected = expected_points(packets)[: len(points)]
    r = np.hypot(np.hypot(expected["x"], expected["y"]), expected["z"])
    error = np.sqrt(sum((points[a] - expected[a]) ** 2 for a in "xyz"))
    assert (error <= 0.002 + r * np.radians(0.01) + 0.003).all()  # see test_velodyne_packet
    assert (points["ring"] == RING_OF_LASER[expected["laser"]]).all()
    np.testing.assert_allclose(points["intensity"], expected["intensity"], atol=1e-6)
    for message in messages:  # the decoder's padding is zeroed, not the heap's leftovers
        padding = message.payload.view(np.uint8).reshape(len(message.payload), -1)[:, 24:]
        assert message.payload.dtype.itemsize == 32 and not padding.any()
    # per-point time: seconds from the record's stamp to the return's firing
    fired = np.concatenate(
        [m.stamp_ns + np.rint(m.payload["time"].astype(np.float64) * 1e9) for m in messages]
    )
    assert np.abs(fired - expected["t"]).max() <= 2_000  # the lidar's clock counts µs
    # stamped by the lidar's clock: the µs of the packet holding the revolution's last point
    last_points = np.cumsum([len(m.payload) for m in messages]) - 1
    fired = [p.fired_ns for p in packets]
    for message, last in zip(messages, last_points, strict=True):
        packet = np.searchsorted(fired, expected["t"][last], side="right") - 1
        assert message.stamp_ns == fired[packet] // 1000 * 1000
    assert [r.offset for r in received.records] == [0, 1, 2]
    assert received.records[0].path == f"udp://127.0.0.1:{source.port}"


def test_wrong_size_other_sender_other_model_and_malformed_packets_are_counted(source_factory):
    source = source_factory(max_clock_offset_ms=5000)
    received = Received(source)
    lidar, intruder = Sender(source.port), Sender(source.port, "127.0.0.2")
    packets = vlp16_stream(2 * 76 + 10, time.time_ns())
    good = packets[0].data
    try:
        lidar.send(good)  # the first good packet names the lidar: 127.0.0.1
        for packet in packets[1:]:
            lidar.send(packet.data)
            if packet is packets[40]:
                lidar.send(good[:1000])
                lidar.send(good + b"\x00" * 94)
                intruder.send(packets[41].data)
                lidar.send(good[:-1] + bytes([wire.PRODUCT_IDS["VLP32C"]]))
                lidar.send(b"\x00" + good[1:])
        received.wait("two revolutions", lambda: len(received.records) >= 2)
        received.wait("five drops", lambda: len(received.drops) >= 5)
    finally:
        lidar.close()
        intruder.close()
        received.close()
    assert sorted(received.reasons()) == [
        "bad_size", "bad_size", "malformed", "unexpected_sender", "wrong_model",
    ]  # fmt: skip
    sender = dict(received.drops)["unexpected_sender"]
    assert sender.path.startswith("udp://127.0.0.2") and sender.data == packets[41].data
    # none of them reached the decoder: the revolutions are exactly the good packets'
    points = np.concatenate([m.payload for m in _decoded(received.records)])
    expected = expected_points(packets)[: len(points)]
    assert np.abs(points["x"] - expected["x"]).max() < 0.02


def test_a_configured_sender_is_the_only_one_decoded(source_factory):
    source = source_factory(sender="127.0.0.2")
    received = Received(source)
    lidar, other = Sender(source.port, "127.0.0.2"), Sender(source.port)
    try:
        other.send(vlp16_stream(1, time.time_ns())[0].data)
        for packet in vlp16_stream(80, time.time_ns()):
            lidar.send(packet.data)
        received.wait("a revolution", lambda: received.records and received.drops)
    finally:
        lidar.close()
        other.close()
        received.close()
    assert received.reasons() == ["unexpected_sender"]


def test_packets_the_kernel_dropped_are_counted_as_lost(source_factory):
    source = source_factory(receive_buffer=4096)
    sender = Sender(source.port)
    for _ in range(200):  # nobody reads yet: the small buffer overflows
        sender.send(b"\x00" * 100)
    received = Received(source)
    try:
        received.wait("the queued packets", lambda: len(received.drops) >= 2)
        time.sleep(0.2)
        sender.send(b"\x00" * 100)  # the kernel's count comes with the next packet
        received.wait("every packet", lambda: len(received.drops) >= 201)
    finally:
        sender.close()
        received.close()
    reasons = received.reasons()
    assert len(reasons) == 201 and reasons.count("lost") > 100
    assert set(reasons) == {"lost", "bad_size"}


@pytest.mark.skipif(sys.platform != "linux", reason="kernel receive times are read on Linux")
def test_arrival_is_when_the_kernel_received_the_packet_not_when_it_was_read(source_factory):
    source = source_factory()  # a lidar without PPS (20 minutes off): stamped on arrival
    time.sleep(0.3)  # the kernel turns receive timestamps on shortly after they are asked for
    sender = Sender(source.port)
    for packet in vlp16_stream(80, time.time_ns() - 20 * 60 * 10**9, with_points=False):
        sender.send(packet.data)
    time.sleep(1.0)  # a busy receiver: the packets wait in the socket's buffer
    received = Received(source)
    try:
        received.wait("a revolution", lambda: received.records)
    finally:
        sender.close()
        received.close()
    sent_ms = [t / 1e6 for t in sender.sent_ns]
    stamp_ms = received.records[0].stamp_ns / 1e6
    assert sent_ms[0] <= stamp_ms <= sent_ms[-1] + 50  # not a second later, when it was read


def test_the_model_is_detected_from_the_first_packet_when_not_given(source_factory):
    source = source_factory(model=None)
    received = Received(source)
    sender = Sender(source.port)
    packets = vlp16_stream(80, time.time_ns())
    try:
        sender.send(packets[0].data[:-1] + b"\x99")  # no Velodyne product: fixes nothing
        for packet in packets:
            sender.send(packet.data)
        sender.send(packets[1].data[:-1] + bytes([wire.PRODUCT_IDS["VLS128"]]))
        received.wait("a revolution", lambda: received.records and len(received.drops) >= 2)
    finally:
        sender.close()
        received.close()
    assert received.reasons() == ["wrong_model", "wrong_model"]


def _assembled(packets, arrival_offset_ns: int, caplog) -> list:
    assembler = RevolutionAssembler(
        model="VLP-16", sender=None, max_clock_offset_ns=100_000_000, name="test"
    )
    out = []
    with caplog.at_level(logging.INFO, logger="fusionrt.velodyne"):
        for index, packet in enumerate(packets):
            assert assembler.check(packet.data, "127.0.0.1") is None
            arrival_ns = packet.fired_ns + arrival_offset_ns
            revolution = assembler.add(packet.data, arrival_ns)
            if revolution is not None:
                out.append((index, arrival_ns, revolution))
    return out


def test_a_lidar_clock_that_agrees_with_the_host_stamps_the_revolution(caplog):
    start_ns = 1_800_000_000 * 10**9 + HOUR_NS - 50_000_000  # crosses the top of an hour
    packets = vlp16_stream(160, start_ns)
    revolutions = _assembled(packets, 3_000_000, caplog)
    assert len(revolutions) == 2
    for index, _, revolution in revolutions:  # the last packet's µs, in the right hour
        assert revolution.clock == "lidar"
        assert revolution.stamp_ns == packets[index].fired_ns // 1000 * 1000
    assert "stamping revolutions with the lidar's clock" in caplog.text


def test_a_lidar_clock_without_pps_stamps_on_arrival(caplog):
    packets = vlp16_stream(160, 1_800_000_000 * 10**9)
    revolutions = _assembled(packets, 7 * 60 * 10**9, caplog)  # the lidar counts from power-on
    assert len(revolutions) == 2
    for _, arrival_ns, revolution in revolutions:
        assert revolution.clock == "arrival" and revolution.stamp_ns == arrival_ns
    assert "(no PPS?): stamping revolutions on arrival" in caplog.text


def test_bad_options_are_config_errors_naming_the_option(source_factory):
    with pytest.raises(ConfigError) as info:
        source_factory(model="VLP-17")
    assert info.value.context["key"] == "model" and "VLP-16, Puck Lite" in str(info.value)
    assert VelodyneSource([TOPIC], port=0, model="Alpha Prime").assembler.model == "AlphaPrime"
    with pytest.raises(ConfigError) as info:
        source_factory(model="HDL-64E S3")
    assert info.value.context["key"] == "model" and "calibration" in str(info.value)
    with pytest.raises(ConfigError) as info:
        source_factory(prot=2368)
    assert info.value.context["key"] == "prot" and "port" in str(info.value)
    taken = source_factory()
    with pytest.raises(ConfigError) as info:
        source_factory(port=taken.port)
    assert info.value.context["key"] == "port"
    with pytest.raises(ConfigError) as info:
        VelodyneSource(["a", "b"], port=0)
    assert info.value.context["key"] == "topics"


def test_close_stops_the_thread_and_frees_the_port(source_factory):
    port = free_udp_port()
    source = source_factory(port=port)
    Received(source).close()
    source.close()
    source.close()  # idempotent
    assert not any(t.name == f"fusionrt-velodyne {port}" for t in threading.enumerate())
    source_factory(port=port).close()  # the port is free again
