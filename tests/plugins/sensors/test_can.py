"""CAN: candump parsing (exact stamps), DBC decoding, the can sensor, and the real comma2k19 log."""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt import ConfigError, DecodeError, RawRecord
from fusionrt.plugins.sensors.can import (
    CAN_FRAME_MSGTYPE,
    CANDUMP_LINE_MSGTYPE,
    DEFAULT_DBC,
    decode_can_frame_msg,
    encode_can_frame_msg,
    format_candump_line,
    parse_candump_line,
)
from fusionrt.plugins.sensors.text import CanDecoder, CanFrame, CanSensor, read_candump
from fusionrt.runtime.testing import parametrize_sensor_checks

COMMA = Path(__file__).resolve().parents[2] / "data" / "real" / "comma2k19"
SEGMENT = COMMA / "b0c9d2329ad1606b_2018-08-02--08-34-47" / "40"
CAN_DIR = SEGMENT / "processed_log" / "CAN"
TOYOTA_DBC = COMMA / "dbc" / "_toyota_2017.dbc"
KPH_TO_MS = 1 / 3.6  # comma's CV.KPH_TO_MS: the processed arrays are km/h × (1 / 3.6)


@parametrize_sensor_checks(CanSensor)
def test_conformance(check) -> None:
    check()


# -- candump lines ----------------------------------------------------------------------------


def test_classic_line_with_exact_stamp() -> None:
    frame = parse_candump_line("(46408.584954) can0 0B4#000000001D0B7A5E")
    assert frame == CanFrame(46408_584954000, "can0", 0xB4, bytes.fromhex("000000001D0B7A5E"))
    assert frame.dlc == 8
    assert parse_candump_line("(1.000000001) vcan0 7FF#").t_ns == 1_000_000_001
    assert parse_candump_line("(0.1) c 000#00").t_ns == 100_000_000
    # a float would round this one; the decimal parse does not
    assert parse_candump_line("(9007199254.740993) can0 001#").t_ns == 9_007_199_254_740_993_000


def test_extended_fd_remote_error_and_raw_dlc() -> None:
    ext = parse_candump_line("(1.5) can1 18DAF110#0211")
    assert ext.is_extended and ext.arbitration_id == 0x18DAF110 and ext.data == b"\x02\x11"
    fd = parse_candump_line("(1.5) can0 123##1" + "AB" * 12)
    assert fd.is_fd and fd.fd_flags == 1 and len(fd.data) == 12
    remote = parse_candump_line("(1.5) can0 123#R4")
    assert remote.is_remote and remote.data == b""
    error = parse_candump_line("(1.5) can0 20000080#0000000000000000")
    assert error.is_error and error.arbitration_id == 0x80
    raw = parse_candump_line("(1.5) can0 123#1122334455667788_C")
    assert raw.data == bytes.fromhex("1122334455667788")
    assert parse_candump_line("(1.5) can0 123#11 R").data == b"\x11"  # direction suffix


@pytest.mark.parametrize(
    "line",
    [
        "",
        "46408.584954 can0 0B4#00",  # no parentheses
        "(46408) can0 0B4#00",  # no fraction
        "(1.0123456789) can0 0B4#00",  # sub-nanosecond digits
        "(1.0) can0 0B4#0",  # half a byte
        "(1.0) can0 800#00",  # 11-bit id above 7FF
        "(1.0) can0 0B4F#00",  # 4-digit id
        "(1.0) can0 40000000#00",  # bits above 29
        "(1.0) can0 0B4#001122334455667788",  # 9 bytes classic
        "(1.0) can0 0B4##X00",  # bad FD flags
        "(1.0) can0 0B4##0" + "00" * 9,  # 9 bytes is no FD length
        "(1.0) can0 0B4#R9",
        "(1.0) can0 0B4#00_5",
        "(1.0) can0",
    ],
)
def test_malformed_lines(line: str) -> None:
    with pytest.raises(DecodeError, match="malformed candump line"):
        parse_candump_line(line, path="x.log", line_number=3)


def test_read_candump_names_path_and_line(tmp_path: Path) -> None:
    log = tmp_path / "bus.log"
    log.write_text("# a comment\n\n(1.000001) can0 001#01\n(1.000002) can0 002#0\n")
    frames = read_candump(log)
    assert next(frames).arbitration_id == 1
    with pytest.raises(DecodeError) as info:
        next(frames)
    assert info.value.context == {"path": str(log), "line": 4}
    log.write_bytes(b"(1.0) can0 001#01\n(1.0) can\xff0 001#01\n")
    with pytest.raises(DecodeError, match="not ASCII") as info:
        list(read_candump(log))
    assert info.value.context["line"] == 2
    with pytest.raises(DecodeError, match="cannot read"):
        list(read_candump(tmp_path / "missing.log"))


_frames = st.builds(
    lambda t, chan, ext, ident, data: CanFrame(
        t, chan, ident & (0x1FFFFFFF if ext else 0x7FF), data, is_extended=ext
    ),
    st.integers(0, 10**13 * 10**9),
    st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True),
    st.booleans(),
    st.integers(0, 0x1FFFFFFF),
    st.binary(max_size=8),
)


@given(_frames)
def test_format_then_parse_round_trips(frame: CanFrame) -> None:
    assert parse_candump_line(format_candump_line(frame)) == frame


@given(st.integers(0, 10**12), st.from_regex(r"[0-9]{1,9}", fullmatch=True))
def test_stamp_is_exact_decimal(sec: int, frac: str) -> None:
    frame = parse_candump_line(f"({sec}.{frac}) can0 001#")
    assert frame.t_ns == int(Decimal(f"{sec}.{frac}") * 10**9)


@settings(max_examples=300)
@given(st.text(max_size=80))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        frame = parse_candump_line(text)
    except DecodeError:
        return
    assert isinstance(frame, CanFrame)


@given(
    st.from_regex(
        r"\([0-9]{1,6}\.[0-9]{1,9}\) [a-z0-9]{1,5} [0-9A-F]{3}#[0-9A-F#R_]{0,20}", fullmatch=True
    )
)
def test_near_miss_lines_never_crash(text: str) -> None:
    with contextlib.suppress(DecodeError):
        parse_candump_line(text)


# -- DBC decoding ---------------------------------------------------------------------------


def test_decoder_unknown_id_and_undecodable_frame() -> None:
    decoder = CanDecoder(DEFAULT_DBC)
    assert decoder.decode(CanFrame(0, "can0", 0x123, b"\x00")) == {}
    assert decoder.decode(CanFrame(0, "can0", 0xAA, b"", is_remote=True)) == {}
    assert decoder.decode(CanFrame(0, "can0", 0xAA, bytes(8), is_extended=True)) == {}
    with pytest.raises(DecodeError, match=r"0xAA \(WHEEL_SPEEDS\)") as info:
        decoder.decode(CanFrame(0, "can0", 0xAA, b"\x01\x02"))
    assert info.value.context["arbitration_id"] == "0xAA"
    values = decoder.decode(CanFrame(0, "can0", 0xAA, bytes.fromhex("1A6F1A6F1A6F1A6F")))
    assert values["WHEEL_SPEED_FL"] == pytest.approx(0.0) and all(
        isinstance(v, float) for v in values.values()
    )


def test_decoder_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read DBC"):
        CanDecoder(tmp_path / "none.dbc")
    bad = tmp_path / "bad.dbc"
    bad.write_text("BO_ this is not a dbc")
    with pytest.raises(ConfigError, match="invalid DBC"):
        CanDecoder(bad)


# -- real data: comma2k19 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def comma_frames() -> list[CanFrame]:
    if not SEGMENT.is_dir():
        pytest.skip("comma2k19 sample not present")
    return list(read_candump(SEGMENT / "raw_can.candump.log"))


def _us_stamp_ns(t: float) -> int:
    """The candump text of a boot-clock float (6 decimals), as nanoseconds."""
    sec, frac = f"{t:.6f}".split(".")
    return int(sec) * 1_000_000_000 + int(frac) * 1000


def test_comma_log_parses_completely(comma_frames: list[CanFrame]) -> None:
    assert len(comma_frames) == 90_327
    t = np.load(CAN_DIR / "raw_can" / "t.npy")
    address = np.load(CAN_DIR / "raw_can" / "address.npy")
    assert [f.arbitration_id for f in comma_frames[:1000]] == address[:1000].tolist()
    assert [f.t_ns for f in comma_frames[:1000]] == [_us_stamp_ns(x) for x in t[:1000]]
    assert {f.channel for f in comma_frames} == {"can0", "can1", "can0tx", "can1tx"}


def test_comma_wheel_speeds_equal_the_processed_arrays(comma_frames: list[CanFrame]) -> None:
    decoder = CanDecoder([TOYOTA_DBC, COMMA / "dbc" / "toyota_adas.dbc"])
    wheels = [f for f in comma_frames if f.channel == "can0" and f.arbitration_id == 0xAA]
    decoded = [decoder.decode(f) for f in wheels]
    kph = np.array(
        [
            [d["WHEEL_SPEED_FL"], d["WHEEL_SPEED_FR"], d["WHEEL_SPEED_RL"], d["WHEEL_SPEED_RR"]]
            for d in decoded
        ]
    )
    expected = np.load(CAN_DIR / "wheel_speed" / "value.npy")
    t = np.load(CAN_DIR / "wheel_speed" / "t.npy")
    assert kph.shape == expected.shape == (3316, 4)
    np.testing.assert_array_equal(kph * KPH_TO_MS, expected)  # bit for bit
    np.testing.assert_allclose(kph / 3.6, expected, rtol=1e-15, atol=0)
    assert [f.t_ns for f in wheels] == [_us_stamp_ns(x) for x in t]


def test_comma_steering_angle_equals_the_processed_array(comma_frames: list[CanFrame]) -> None:
    decoder = CanDecoder(TOYOTA_DBC)
    steer = [f for f in comma_frames if f.channel == "can0" and f.arbitration_id == 0x25]
    decoded = [decoder.decode(f) for f in steer]
    angle = np.array([d["STEER_ANGLE"] + d["STEER_FRACTION"] for d in decoded])
    expected = np.load(CAN_DIR / "steering_angle" / "value.npy")
    t = np.load(CAN_DIR / "steering_angle" / "t.npy")
    np.testing.assert_array_equal(angle, expected)
    assert [f.t_ns for f in steer] == [_us_stamp_ns(x) for x in t]


def test_comma_radar_tracks_decode_on_can1(comma_frames: list[CanFrame]) -> None:
    decoder = CanDecoder(COMMA / "dbc" / "toyota_adas.dbc")
    tracks = [f for f in comma_frames if f.channel == "can1" and 0x210 <= f.arbitration_id <= 0x21F]
    assert tracks
    values = decoder.decode(tracks[0])
    assert {"LONG_DIST", "LAT_DIST", "REL_SPEED"} <= set(values)


def test_can_sensor_ego_vector_on_the_real_log(comma_frames: list[CanFrame]) -> None:
    sensor = CanSensor("can_bus", channels=["can0"])
    context = sensor.default_context()
    speed = np.load(CAN_DIR / "speed" / "value.npy")[:, 0]
    speed_t = [_us_stamp_ns(x) for x in np.load(CAN_DIR / "speed" / "t.npy")]
    steering = np.load(CAN_DIR / "steering_angle" / "value.npy")
    got_speed, got_steer, stamps = [], [], []
    for frame in comma_frames:
        record = RawRecord(
            "/can", frame.t_ns, format_candump_line(frame).encode(), CANDUMP_LINE_MSGTYPE
        )
        message = sensor.decode(record)
        if "speed_mps" in message.meta["updated"]:
            got_speed.append(message.payload[0])
            stamps.append(message.stamp_ns)
        if "steering_angle_rad" in message.meta["updated"]:
            got_steer.append(message.payload[2])
    n = len(got_speed)
    assert n == 3316 and stamps == speed_t
    np.testing.assert_allclose(got_speed, speed[:n], rtol=1e-12)  # mean of the wheel speeds
    np.testing.assert_allclose(np.degrees(got_steer), steering[: len(got_steer)], atol=1e-12)
    out = sensor.preprocess(message, context)["can_ego"]
    assert out.dtype == np.float32 and out.shape == (3,) and np.all(np.isfinite(out))
    assert 5.0 < out[0] < 40.0 and abs(out[1]) < 0.2  # highway speed, small yaw rate


# -- the sensor -----------------------------------------------------------------------------


def test_can_msgs_frame_round_trip() -> None:
    frame = CanFrame(1_500_000_123, "can0", 0x1ABCDEF0, b"\x01\x02\x03", is_extended=True)
    assert decode_can_frame_msg(encode_can_frame_msg(frame)) == frame


def test_latch_fills_slots_as_frames_arrive() -> None:
    sensor = CanSensor()
    records = sensor.sample_records()[:4]  # SPEED, STEER, KINEMATICS, WHEEL_SPEEDS
    payloads = [sensor.decode(r).payload for r in records]
    assert np.all(np.isnan(payloads[0]))
    assert np.isnan(payloads[1][0]) and np.isfinite(payloads[1][2])
    assert np.all(np.isfinite(payloads[3]))
    assert payloads[3][0] == pytest.approx(7.97430556, abs=1e-8)  # comma2k19 speed[0]
    out = sensor.preprocess(sensor.decode(records[0]), sensor.default_context())
    np.testing.assert_allclose(out["can_ego"], payloads[3].astype(np.float32))
    sensor.reset()
    assert np.all(np.isnan(sensor.decode(records[0]).payload))


def test_nonfinite_slots_are_dropped_to_zero() -> None:
    sensor = CanSensor()
    message = sensor.decode(sensor.sample_records()[0])
    message.payload = np.array([np.nan, np.inf, 1e300])
    out = sensor.preprocess(message, sensor.default_context())["can_ego"]
    assert out[0] == 0 and out[1] == 0 and np.isfinite(out[2])


def test_channel_filter_and_stamp_source() -> None:
    sensor = CanSensor(channels=["can1"], stamp_from="record")
    record = sensor.sample_records()[-1]  # candump WHEEL_SPEEDS on can0
    message = sensor.decode(dataclass_replace(record, stamp_ns=77))
    assert message.meta["updated"] == () and message.stamp_ns == 77


def test_rig_time_offset_is_left_to_the_synchroniser() -> None:
    with pytest.raises(ConfigError, match="time_offset_ns"):
        CanSensor(time_offset_ns=5)


def dataclass_replace(record: RawRecord, **changes) -> RawRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)


def test_undecodable_frame_names_sensor_topic_and_id() -> None:
    sensor = CanSensor("can_bus")
    record = RawRecord(
        "/can/rx", 1, b"(1.0) can0 0AA#0102", CANDUMP_LINE_MSGTYPE, path="a.mcap", offset=99
    )
    with pytest.raises(DecodeError) as info:
        sensor.decode(record)
    context = info.value.context
    assert context["sensor"] == "can_bus" and context["topic"] == "/can/rx"
    assert context["arbitration_id"] == "0xAA" and context["record_offset"] == 99
    with pytest.raises(DecodeError, match="cannot read msgtype"):
        sensor.decode(RawRecord("/can/rx", 1, b"", "std_msgs/msg/String"))
    with pytest.raises(DecodeError, match="not a valid CDR"):
        sensor.decode(RawRecord("/can/rx", 1, b"\x00\x01\x00\x00\x01", CAN_FRAME_MSGTYPE))


def test_signal_mapping_is_validated() -> None:
    with pytest.raises(ConfigError, match="unknown slot"):
        CanSensor(signals={"SPEED": "velocity"})
    with pytest.raises(ConfigError, match="no signal"):
        CanSensor(signals={"SPEED.NOPE": "speed_mps"})
    with pytest.raises(ConfigError, match="two CAN messages"):
        CanSensor(signals={"SPEED": "speed_mps", "WHEEL_SPEED_FL": "speed_mps"})
    with pytest.raises(ConfigError, match="needs a 'signals'"):
        CanSensor(dbc_paths=[str(DEFAULT_DBC)])
    sensor = CanSensor(slots=["v"], signals={"SPEED.SPEED": {"slot": "v", "scale": KPH_TO_MS}})
    message = sensor.decode(sensor.sample_records()[0])  # the SPEED frame
    assert message.meta["updated"] == ("v",)
    assert message.payload[0] == pytest.approx(0x0B7A * 0.01 / 3.6)  # SPEED 47|16@0+: bytes 5-6
    assert sensor.tensor_specs(sensor.default_context())[0].shape == (1,)
    assert math.isfinite(float(message.payload[0]))
