"""The text/log sensor: formats, invalid UTF-8, the recent-lines window, conformance."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrt import ConfigError, DecodeError, RawRecord
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.text import (
    LOG_MSGTYPE,
    NUM_ID,
    SEP_ID,
    STRING_MSGTYPE,
    TEXT_LINE_MSGTYPE,
    TextLogSensor,
)
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.messages import SensorMessage
from fusionrt.runtime.sensor import PreprocessContext
from fusionrt.runtime.sync import Synchronizer
from fusionrt.runtime.sync.latest import LatestSpec
from fusionrt.runtime.testing import parametrize_sensor_checks

S = 1_000_000_000


@parametrize_sensor_checks(TextLogSensor)
def test_conformance(check) -> None:
    check()


def _string(text: str) -> bytes:
    store = typestore()
    return bytes(store.serialize_cdr(store.types[STRING_MSGTYPE](data=text), STRING_MSGTYPE))


def _line(stamp: int, text: str) -> RawRecord:
    return RawRecord("/notes", stamp, text.encode(), TEXT_LINE_MSGTYPE)


def test_string_message_to_tokens() -> None:
    sensor = TextLogSensor("v2x")
    message = sensor.decode(
        RawRecord("/v2x", 5 * S, _string("Fog advisory, visibility 50 m"), STRING_MSGTYPE)
    )
    assert message.payload == "Fog advisory, visibility 50 m" and message.stamp_ns == 5 * S
    out = sensor.preprocess(message, PreprocessContext(geometry=ModelGeometry(token_length=16)))
    assert out["text_tokens"].shape == (16,) and out["text_tokens"].dtype == np.int64
    assert out["text_mask"].sum() == 6 and out["text_tokens"][4] == NUM_ID
    assert out["text_numbers"][4] == 50.0


def test_ros_log_uses_its_own_stamp_and_level() -> None:
    store = typestore()
    time = store.types["builtin_interfaces/msg/Time"](sec=12, nanosec=5)
    log = store.types[LOG_MSGTYPE](
        stamp=time,
        level=40,
        name="radar_driver",
        msg="CRC error",
        file="a.cpp",
        function="f",
        line=1,
    )
    data = bytes(store.serialize_cdr(log, LOG_MSGTYPE))
    message = TextLogSensor().decode(RawRecord("/rosout", 99, data, LOG_MSGTYPE))
    assert message.payload == "error radar_driver: CRC error"
    assert message.stamp_ns == 12 * S + 5
    assert (
        TextLogSensor(stamp_from="record")
        .decode(RawRecord("/rosout", 99, data, LOG_MSGTYPE))
        .stamp_ns
        == 99
    )


def test_invalid_utf8_is_a_decode_error_with_offset() -> None:
    sensor = TextLogSensor("log")
    with pytest.raises(DecodeError, match="not valid UTF-8") as info:
        sensor.decode(RawRecord("/log", 1, b"lane \xff closed", TEXT_LINE_MSGTYPE, path="x.log"))
    assert info.value.context["offset"] == 5 and info.value.context["sensor"] == "log"
    assert info.value.context["topic"] == "/log"
    bad_string = _string("abc").replace(b"abc", b"a\xffc")
    with pytest.raises(DecodeError, match="not a valid CDR"):
        sensor.decode(RawRecord("/log", 1, bad_string, STRING_MSGTYPE))
    with pytest.raises(DecodeError, match="cannot read msgtype"):
        sensor.decode(RawRecord("/log", 1, b"x", "sensor_msgs/msg/Image"))


def test_recent_lines_within_the_window_are_combined_newest_first() -> None:
    sensor = TextLogSensor(window_ns=10 * S, max_lines=3)
    context = PreprocessContext(geometry=ModelGeometry(token_length=32))
    tok = sensor.tokenizer(context.geometry)
    sensor.decode(_line(0, "ancient"))
    sensor.decode(_line(20 * S, "roadworks"))
    message = sensor.decode(_line(25 * S, "fog"))
    assert [text for _, text in message.meta["recent"]] == ["roadworks", "fog"]
    ids = sensor.preprocess(message, context)["text_tokens"].tolist()
    assert ids[:3] == [tok.piece_id("fog"), SEP_ID, tok.piece_id("roadworks")]
    # at a later reference stamp the older line falls out of the window
    context.reference_stamp_ns = 33 * S
    ids = sensor.preprocess(message, context)["text_tokens"].tolist()
    assert ids[:2] == [tok.piece_id("fog"), 0]
    # at most max_lines lines are kept
    for k in range(5):
        message = sensor.decode(_line(26 * S + k, f"line{k}"))
    assert len(message.meta["recent"]) == 3


@pytest.mark.parametrize("offset_ns", [-300_000_000, 0, 250_000_000])
def test_the_newest_lines_count_whatever_the_log_clock_offset(offset_ns: int) -> None:
    """Through the synchroniser (which moves the stamp to the common clock by the rig's
    offset), a frame sees the line that was just logged: the remembered lines move with it.
    Before the fix, a log clock ahead of the common one (negative offset) hid the newest line
    until a line at least that much newer came."""
    sensor = TextLogSensor("log")
    sync = Synchronizer.collector(
        ["cam"], period_ns=S, phase_ns=0, latest={"log": LatestSpec()},
        time_offsets_ns={"log": offset_ns},
    )  # fmt: skip
    context = PreprocessContext(geometry=ModelGeometry(token_length=32))
    tok = sensor.tokenizer(context.geometry)
    lines = {2 * S: "fog", 3 * S + S // 2: "lidar degraded"}  # common-clock stamps
    frames = []
    for stamp in sorted([*lines, *(k * S + 1 for k in range(1, 7))]):
        if stamp in lines:  # stamped on the log clock
            frames += sync.push(sensor.decode(_line(stamp - offset_ns, lines[stamp])))
        else:
            frames += sync.push(SensorMessage("cam", stamp - 1, None))
    frames += sync.flush()
    seen = {}
    for frame in frames:  # the frame assembly leaves reference_stamp_ns unset
        ids = sensor.preprocess(frame.messages["log"], context)["text_tokens"].tolist()
        seen[frame.stamp_ns // S] = ids[0]
    assert seen[3] == tok.piece_id("fog")
    assert seen[4] == seen[5] == tok.piece_id("lidar")


def test_decoding_the_same_record_twice_keeps_one_copy() -> None:
    sensor = TextLogSensor()
    record = _line(S, "lane closed")
    first, second = sensor.decode(record), sensor.decode(record)
    assert first.meta == second.meta and len(second.meta["recent"]) == 1


def test_multi_line_record_and_empty_record() -> None:
    sensor = TextLogSensor()
    message = sensor.decode(_line(S, "first line\nsecond\tline\n"))
    assert message.payload == "first line second line"
    empty = sensor.decode(_line(2 * S, ""))
    out = sensor.preprocess(empty, PreprocessContext())
    assert empty.payload == "" and out["text_mask"].sum() > 0  # the earlier line still counts
    fresh = TextLogSensor()
    assert fresh.preprocess(fresh.decode(_line(S, "")), PreprocessContext())["text_mask"].sum() == 0


def test_missing_message_and_options() -> None:
    sensor = TextLogSensor()
    out = sensor.preprocess(None, PreprocessContext(geometry=ModelGeometry(token_length=8)))
    assert {k: v.shape for k, v in out.items()} == {
        "text_tokens": (8,),
        "text_mask": (8,),
        "text_numbers": (8,),
    }
    assert not any(np.any(v) for v in out.values())
    with pytest.raises(ConfigError):
        TextLogSensor(window_ns=-1)
    with pytest.raises(ConfigError, match="unknown option 'windw_ns' of the text sensor"):
        TextLogSensor(windw_ns=5)
