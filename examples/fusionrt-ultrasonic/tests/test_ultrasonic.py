"""The example plugin's own tests: the conformance kit plus its wire format."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrt import ConfigError, DecodeError
from fusionrt.runtime.testing import parametrize_sensor_checks
from fusionrt_ultrasonic import UltrasonicSensor
from fusionrt_ultrasonic.wire import HEADER, RECORD_DTYPE, decode_frame, encode_frame


@parametrize_sensor_checks(UltrasonicSensor)
def test_conformance(check):
    check()


def test_wire_round_trip_is_a_view():
    records = np.zeros(3, RECORD_DTYPE)
    records["id"] = [1, 2, 3]
    records["range_m"] = [0.5, 1.5, 2.5]
    data = encode_frame(42, records)
    assert len(data) == HEADER.size + 3 * 6  # packed records, no padding
    stamp_ns, decoded = decode_frame(data)
    assert stamp_ns == 42
    assert decoded.tobytes() == records.tobytes()
    assert not decoded.flags.owndata  # a view of the frame bytes, not a copy


def test_decode_error_names_sensor_topic_and_offset():
    sensor = UltrasonicSensor(instance="uss_rear")
    record = sensor.sample_records()[0]
    broken = type(record)(record.topic, record.stamp_ns, bytes(record.data)[:-2], path="a.bag")
    with pytest.raises(DecodeError) as info:
        sensor.decode(broken)
    message = str(info.value)
    assert "uss_rear" in message and "/ultrasonic" in message and "a.bag" in message
    assert info.value.context["offset"] == len(broken.data)


def test_preprocess_marks_the_wall_behind_the_car():
    sensor = UltrasonicSensor()
    context = sensor.default_context()
    message = sensor.decode(sensor.sample_records()[-1])
    outputs = sensor.preprocess(message, context)
    rear = outputs["ultrasonic_ranges"][6:]
    assert np.all(rear < 0.5) and np.all(outputs["ultrasonic_ranges"][:6] == 1.0)
    grid = context.geometry.bev
    rows = np.nonzero(outputs["ultrasonic_bev"][0].any(axis=1))[0]
    xs = grid.x_range[0] + (rows + 0.5) * grid.resolution
    assert xs.max() < -0.9  # every echo lies behind the rear bumper (x = -0.95 m)


def test_options_are_checked_by_their_declaration():
    sensor = UltrasonicSensor(max_range_m=3, layout={0: [1.0, 0.0, 0.0]})
    assert sensor.max_range_m == 3.0 and sensor.layout == {0: (1.0, 0.0, 0.0)}
    with pytest.raises(ConfigError, match="did you mean 'max_range_m'") as info:
        UltrasonicSensor(max_range=3)
    assert info.value.context["key"] == "max_range"
    with pytest.raises(ConfigError) as info:
        UltrasonicSensor(max_range_m="far")
    assert info.value.context["key"] == "max_range_m"
    with pytest.raises(ConfigError, match=r"\[x_m, y_m, yaw_deg\]") as info:
        UltrasonicSensor(layout={0: [1.0, 0.0]})
    assert info.value.context["key"] == "layout"
