"""Every built-in sensor declares its options once; the ``Sensor`` base checks them.

lidar and radar used to accept a misspelt option silently, and radar turned ``radius_m: wide``
into a ``ValueError`` traceback; camera, text and can each carried a copy of the same check.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusionrt.plugins.sensors.camera import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, CameraSensor
from fusionrt.plugins.sensors.can import DEFAULT_DBC, DEFAULT_EGO_SIGNALS, CanSensor
from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sensors.radar import RadarSensor
from fusionrt.plugins.sensors.text import TextLogSensor
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.sensor import Sensor

#: The options each sensor documents (docs/sensors_*.md), with their defaults: names and
#: defaults are a user-facing contract.
DOCUMENTED: dict[type[Sensor], dict[str, Any]] = {
    CameraSensor: {
        "cameras": None,
        "jpeg_reduction": 1,
        "resize_mode": "crop",
        "crop_anchor": "center",
        "mean": IMAGENET_MEAN_RGB,
        "std": IMAGENET_STD_RGB,
        "antialias": True,
        "lift_min_depth_m": 0.1,
        "stamp_from": "header",
    },
    LidarSensor: {
        "tensor_name": "lidar_bev",
        "intensity_scale": None,
        "time_field": None,
        "motion_compensation": True,
        "time_resolution_ns": 1_000_000,
    },
    RadarSensor: {"tensor_name": "radar_bev", "radius_m": 1.0, "devkit_filter": False},
    CanSensor: {
        "dbc_paths": (str(DEFAULT_DBC),),
        "slots": ("speed_mps", "yaw_rate_rps", "steering_angle_rad"),
        "signals": DEFAULT_EGO_SIGNALS,
        "channels": None,
        "stamp_from": "message",
        "strict_dbc": False,
    },
    TextLogSensor: {"window_ns": 30_000_000_000, "max_lines": 8, "stamp_from": "message"},
}
SENSORS = list(DOCUMENTED)

#: A wrong value of each option's type: a string where a number or flag is expected, a number
#: where a string or list is.
WRONG_TYPE = {
    "cameras": 3,
    "jpeg_reduction": "half",
    "resize_mode": 2,
    "crop_anchor": None,
    "mean": "grey",
    "std": [1, 2],
    "antialias": "yes",
    "lift_min_depth_m": float("nan"),
    "stamp_from": "clock",
    "tensor_name": 7,
    "intensity_scale": "bright",
    "time_field": ["t"],
    "motion_compensation": "on",
    "time_resolution_ns": 0.5,
    "radius_m": "wide",
    "devkit_filter": 1,
    "dbc_paths": "car.dbc",
    "slots": "speed",
    "signals": ["SPEED"],
    "channels": "can0",
    "strict_dbc": "no",
    "window_ns": float("inf"),
    "max_lines": 0,
}

YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@pytest.mark.parametrize("cls", SENSORS, ids=lambda c: c.name)
def test_documented_options_keep_their_names_and_defaults(cls: type[Sensor]) -> None:
    assert cls("s").options == DOCUMENTED[cls]


@pytest.mark.parametrize("cls", SENSORS, ids=lambda c: c.name)
def test_a_misspelt_option_is_refused_naming_it(cls: type[Sensor]) -> None:
    real = sorted(DOCUMENTED[cls])[0]
    misspelt = real[:-1]
    with pytest.raises(ConfigError) as info:
        cls("front", **{misspelt: DOCUMENTED[cls][real]})
    assert info.value.context == {"key": misspelt, "sensor": "front"}
    assert f"unknown option {misspelt!r} of the {cls.name} sensor 'front'" in info.value.message
    assert f"did you mean {real!r}" in info.value.message


@pytest.mark.parametrize(
    ("cls", "option"),
    [(cls, option) for cls in SENSORS for option in DOCUMENTED[cls]],
    ids=lambda x: getattr(x, "name", x),
)
def test_a_value_of_the_wrong_type_is_refused_at_its_key(cls: type[Sensor], option: str) -> None:
    with pytest.raises(ConfigError) as info:
        cls("s", **{option: WRONG_TYPE[option]})
    assert info.value.context == {"key": option, "sensor": "s"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_yaml_value_builds_the_sensor_or_is_a_config_error(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(SENSORS))
    option = data.draw(st.sampled_from(sorted(DOCUMENTED[cls])))
    value = data.draw(YAML_VALUES)
    try:
        sensor = cls("s", **{option: value})
    except ConfigError as exc:
        assert exc.context["key"] in DOCUMENTED[cls] and exc.context["sensor"] == "s"
    else:
        assert set(sensor.options) == set(DOCUMENTED[cls])


def test_can_signal_entries_are_checked() -> None:
    slots = {"slots": ["v"]}
    with pytest.raises(ConfigError, match="must be a finite number") as info:
        CanSensor(**slots, signals={"SPEED.SPEED": {"slot": "v", "scale": "fast"}})
    assert info.value.context["key"] == "signals"
    with pytest.raises(ConfigError, match="must map to a slot name") as info:
        CanSensor(**slots, signals={"SPEED.SPEED": 3})
    assert info.value.context["key"] == "signals"
