"""The ``velodyne_pcap`` replay source: a .pcap of the packets the live source received replays
the records it gave, byte for byte; what it cannot decode is reported where it lies; it is the
source chosen for a .pcap path."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from velodyne_helpers import Sender, expected_points, vlp16_stream, write_pcap

from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sources.velodyne import VelodyneSource
from fusionrt.plugins.sources.velodyne_pcap import VelodynePcapSource
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import RecordInbox
from fusionrt.runtime.registry import Registry

pytest.importorskip("velodyne_decoder")
pytest.importorskip("dpkt")

LIDAR = "10.0.0.201"  # only written into the capture: nothing is sent to it


def _live_records(packets, **options) -> tuple[list, list[int]]:
    """The records of the live source receiving ``packets`` over UDP, and when each left."""
    source = VelodyneSource(["velodyne"], address="127.0.0.1", port=0, model="VLP-16", **options)
    inbox = RecordInbox(1000)
    sender = Sender(source.port)
    records: list = []
    try:
        source.start(inbox)
        for packet in packets:
            sender.send(packet.data)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(records) < len(packets) // 76:
            arrival = inbox.get(0.1)
            if arrival is not None:
                records.append(arrival[0])
    finally:
        sender.close()
        source.close()
    return records, sender.sent_ns


def test_a_capture_of_the_packets_replays_the_live_records(tmp_path):
    packets = vlp16_stream(3 * 76 + 30, time.time_ns(), no_return_every=9)
    live, sent_ns = _live_records(packets, max_clock_offset_ms=5000)
    assert len(live) == 3
    capture = write_pcap(
        tmp_path / "lidar.pcap",
        [(t, p.data, LIDAR, 2368) for t, p in zip(sent_ns, packets, strict=True)],
    )
    source = VelodynePcapSource(capture, max_clock_offset_ms=5000)
    replayed = list(source.records())
    # the same revolutions, byte for byte; then the one the capture ends inside
    assert [(r.topic, r.stamp_ns, r.data, r.msgtype) for r in replayed[:3]] == [
        (r.topic, r.stamp_ns, r.data, r.msgtype) for r in live
    ]
    assert len(replayed) == 4 and source.bad_counts == {}
    tail = LidarSensor("lidar_top", "velodyne").decode(replayed[3]).payload
    all_points = expected_points(packets)
    np.testing.assert_allclose(tail["x"], all_points["x"][-len(tail) :], atol=0.02)
    assert next(iter(source.records())).data == live[0].data  # a second replay: the same


def test_stamps_on_arrival_replay_at_the_capture_times(tmp_path):
    start = time.time_ns() - 20 * 60 * 10**9  # a lidar clock 20 minutes off: no PPS
    packets = vlp16_stream(160, start)
    now = time.time_ns()
    captured = [now + i * 1_327_104 for i in range(len(packets))]
    frames = [(t, p.data, LIDAR, 2368) for t, p in zip(captured, packets, strict=True)]
    capture = write_pcap(tmp_path / "a.pcap", frames)
    records = list(VelodynePcapSource(capture).records())
    assert len(records) == 3
    for record in records[:2]:  # each at the capture time of its last packet (µs in the file)
        assert record.stamp_ns in {round(t, -3) for t in captured}  # written to the µs
    assert VelodynePcapSource(capture).first_stamp_ns == round(captured[0], -3)


def test_packets_it_cannot_decode_are_reported_at_their_offset(tmp_path):
    packets = vlp16_stream(160, time.time_ns())
    frames = [(p.fired_ns, p.data, LIDAR, 2368) for p in packets]
    frames.insert(10, (packets[9].fired_ns, packets[9].data[:600], LIDAR, 2368))
    frames.insert(20, (packets[19].fired_ns, packets[19].data, "10.0.0.9", 2368))
    frames.insert(30, (packets[29].fired_ns, b"\x00" + packets[29].data[1:], LIDAR, 2368))
    frames.insert(40, (packets[39].fired_ns, b"position packet", LIDAR, 8308))  # not data
    capture = write_pcap(tmp_path / "b.pcap", frames)
    with capture.open("ab") as stream:  # a record header cut short
        stream.write(b"\x01\x02\x03")
    source = VelodynePcapSource(capture)
    records = list(source.records())
    assert len(records) == 3
    assert [(b.reason, b.path, b.topic) for b in source.bad_records] == [
        ("bad_size", str(capture), "velodyne"),
        ("unexpected_sender", str(capture), "velodyne"),
        ("malformed", str(capture), "velodyne"),
        ("truncated", str(capture), "velodyne"),
    ]
    data = capture.read_bytes()
    for bad in source.bad_records[:3]:  # the offset is where the packet's record starts
        caplen = int.from_bytes(data[bad.offset + 8 : bad.offset + 12], "little")
        assert bad.offset + 16 + caplen <= len(data)
    assert source.bad_records[3].offset == len(data) - 3
    assert "10.0.0.9" in source.bad_records[1].detail


def test_a_capture_with_no_packet_on_the_data_port_says_which_ports_it_saw(tmp_path, caplog):
    packets = vlp16_stream(80, time.time_ns())
    capture = write_pcap(tmp_path / "c.pcap", [(p.fired_ns, p.data, LIDAR, 2369) for p in packets])
    assert list(VelodynePcapSource(capture).records()) == []
    assert "no UDP packet to port 2368 (ports seen: 2369 (80))" in caplog.text
    assert len(list(VelodynePcapSource(capture, port=2369).records())) == 2


def test_nanosecond_captures_and_other_byte_orders_are_read(tmp_path):
    packets = vlp16_stream(160, time.time_ns())
    frames = [(p.fired_ns, p.data, LIDAR, 2368) for p in packets]
    micro = write_pcap(tmp_path / "us.pcap", frames)
    nano = write_pcap(tmp_path / "ns.pcap", frames, nano=True)
    swapped = tmp_path / "be.pcap"  # the same file written by a big-endian machine
    data = bytearray(micro.read_bytes())
    file_header = "IHHiIII"  # magic, version, zone, sigfigs, snaplen, link type
    struct.pack_into(">" + file_header, data, 0, *struct.unpack_from("<" + file_header, data))
    at = 24
    while at < len(data):  # each record header: seconds, µs, captured and original lengths
        header = struct.unpack_from("<IIII", data, at)
        struct.pack_into(">IIII", data, at, *header)
        at += 16 + header[2]
    swapped.write_bytes(bytes(data))
    expected = [r.data for r in VelodynePcapSource(micro).records()]
    assert len(expected) == 3
    assert [r.data for r in VelodynePcapSource(nano).records()] == expected
    assert [r.data for r in VelodynePcapSource(swapped).records()] == expected


def test_it_is_the_source_that_opens_a_pcap_path(tmp_path):
    packets = vlp16_stream(2, time.time_ns())
    capture = write_pcap(tmp_path / "d.pcap", [(p.fired_ns, p.data, LIDAR, 2368) for p in packets])
    registry = Registry.create(entry_points=False)
    willing = [
        info.name
        for info in registry.components("source")
        if getattr(info.cls, "can_open", None) and info.cls.can_open(capture)
    ]
    assert willing == ["velodyne_pcap"]
    not_pcap = tmp_path / "e.pcap"
    not_pcap.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(100))  # a pcapng file named .pcap
    assert not VelodynePcapSource.can_open(not_pcap)
    assert not VelodynePcapSource.can_open(tmp_path)
    with pytest.raises(ConfigError) as info:
        VelodynePcapSource(not_pcap)
    assert info.value.context["path"] == str(not_pcap)
    with pytest.raises(ConfigError) as info:
        VelodynePcapSource(capture, model="VLP-99")
    assert info.value.context["key"] == "model"


def test_a_topic_the_pipeline_does_not_read_is_not_decoded(tmp_path):
    packets = vlp16_stream(160, time.time_ns())
    capture = write_pcap(tmp_path / "f.pcap", [(p.fired_ns, p.data, LIDAR, 2368) for p in packets])
    source = VelodynePcapSource(capture, topics=["/other"])
    assert source.missing_topics == ("/other",)
    assert list(source.records()) == []
    named = VelodynePcapSource(capture, topic="/lidar/points", topics=["/lidar/points"])
    assert {r.topic for r in named.records()} == {"/lidar/points"}
