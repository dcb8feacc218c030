"""Diagnostic levels, rates and key-values from successive health snapshots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fusionrt.plugins.ros2 import diagnostics
from fusionrt.plugins.ros2.diagnostics import ERROR, OK, STALE, WARN
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.health import RunHealth, SensorHealth


def sensor(messages: int = 0, **kw: object) -> SensorHealth:
    return SensorHealth("lidar_top", messages=messages, **kw)  # type: ignore[arg-type]


def test_a_sensor_that_is_fine_is_ok_whatever_it_lost_before() -> None:
    before = sensor(100, faults={"decode_error": 3, "too_old": 2})
    now = sensor(120, faults={"decode_error": 3, "too_old": 2}, last_stamp_ns=5)
    level, message, values = diagnostics.sensor_status(now, before, interval_s=2.0)
    assert (level, message) == (OK, "ok")
    assert values["rate_hz"] == "10.00"
    assert values["messages"] == "120"
    assert values["faults.decode_error"] == "3"
    assert values["faults.too_old"] == "2"
    assert values["fault_rate_hz"] == "0.00"
    assert values["last_stamp_ns"] == "5"


def test_levels_follow_the_interval() -> None:
    before = sensor(10, faults={"too_old": 1})
    late = sensor(20, faults={"too_old": 3})
    assert diagnostics.sensor_status(late, before, 1.0)[:2] == (
        WARN,
        "late or lost in the last 1.0 s (too_old: 2)",
    )
    stale = sensor(10, faults={"too_old": 1}, stale=True)
    assert diagnostics.sensor_status(stale, before, 1.0)[0] == STALE
    broken = sensor(10, faults={"too_old": 1, "decode_error": 4}, stale=True)
    level, message, values = diagnostics.sensor_status(broken, before, 1.0)
    assert (level, message) == (ERROR, "decode faults in the last 1.0 s (decode_error: 4)")
    assert values["fault_rate_hz"] == "4.00"
    quarantined = sensor(10, faults={"too_old": 1}, quarantined=True)
    assert diagnostics.sensor_status(quarantined, before, 1.0)[:2] == (
        ERROR,
        "quarantined: its plugin is no longer called",
    )


_counts = st.dictionaries(
    st.sampled_from(["decode_error", "too_old", "queue_full"]), st.integers(0, 5)
)


@given(
    before=_counts,
    added=_counts,
    stale=st.booleans(),
    quarantined=st.booleans(),
)
def test_a_sensor_is_ok_exactly_when_nothing_went_wrong_in_the_interval(
    before: dict[str, int], added: dict[str, int], stale: bool, quarantined: bool
) -> None:
    after = {k: before.get(k, 0) + added.get(k, 0) for k in before.keys() | added.keys()}
    level = diagnostics.sensor_status(
        sensor(1, faults=after, stale=stale, quarantined=quarantined),
        sensor(0, faults=before),
        1.0,
    )[0]
    new = {k for k, v in added.items() if v}
    assert (level == OK) == (not new and not stale and not quarantined)
    assert (level == ERROR) == (quarantined or "decode_error" in new)


def health(frames: int, dropped: dict[str, int], at_s: float, **sensors: SensorHealth) -> RunHealth:
    return RunHealth(
        monotonic_s=at_s,
        uptime_s=at_s - 100.0,
        frames=frames,
        dropped=dropped,
        end_to_end_p50_ms=21.5,
        end_to_end_p99_ms=38.25,
        sensors=sensors,
    )


def test_the_pipeline_warns_of_frames_dropped_in_the_interval() -> None:
    first = health(10, {"deadline": 1}, at_s=102.0)
    level, message, values = diagnostics.pipeline_status(first, None)
    assert (level, values["frame_rate_hz"]) == (WARN, "5.00")  # since the start: 10 in 2 s
    second = health(20, {"deadline": 1}, at_s=104.0)
    level, message, values = diagnostics.pipeline_status(second, first)
    assert (level, message) == (OK, "ok")
    assert values == {
        "frames": "20",
        "frame_rate_hz": "5.00",
        "end_to_end_p50_ms": "21.50",
        "end_to_end_p99_ms": "38.25",
        "uptime_s": "4.0",
        "dropped.deadline": "1",
    }


def test_the_array_holds_the_pipeline_and_every_sensor() -> None:
    before = health(0, {}, 100.5, lidar_top=SensorHealth("lidar_top", 5))
    now = health(
        10,
        {},
        101.5,
        lidar_top=SensorHealth("lidar_top", 15),
        camera_front=SensorHealth("camera_front", 0, stale=True),
    )
    message = diagnostics.diagnostic_array(now, before, 1_700_000_001_500_000_000, "fusionrt")
    assert (message.header.stamp.sec, message.header.stamp.nanosec) == (1_700_000_001, 500_000_000)
    assert [(s.name, s.level, s.hardware_id) for s in message.status] == [
        ("fusionrt: pipeline", OK, ""),
        ("fusionrt: sensor lidar_top", OK, "lidar_top"),
        ("fusionrt: sensor camera_front", STALE, "camera_front"),
    ]
    rates = {kv.key: kv.value for kv in message.status[1].values}
    assert rates["rate_hz"] == "10.00"
    cdr = typestore().serialize_cdr(message, diagnostics.DIAGNOSTIC_ARRAY)
    assert typestore().deserialize_cdr(cdr, diagnostics.DIAGNOSTIC_ARRAY).status[2].level == STALE
