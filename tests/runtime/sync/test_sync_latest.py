"""LatestPolicy: hold, linear and slerp interpolation, max age, drop accounting."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrt.calibration.transforms import quat_to_matrix
from fusionrt.runtime.messages import SensorMessage
from fusionrt.runtime.sync import (
    DropReason,
    LatestPolicy,
    LatestSpec,
    MissingReason,
    SyncConfigError,
    interpolate_value,
)

MS = 1_000_000


def recorder() -> tuple[list[tuple[str, int, str]], object]:
    drops: list[tuple[str, int, str]] = []
    return drops, lambda sensor, stamp, item, reason, detail: drops.append((sensor, stamp, reason))


def test_hold_returns_the_last_value_at_or_before_the_stamp() -> None:
    policy = LatestPolicy(["speed"])
    policy.push("speed", 10 * MS, 1.0)
    policy.push("speed", 20 * MS, 2.0)
    assert policy.sample("speed", 15 * MS) == (1.0, 10 * MS, 5 * MS, None)
    assert policy.sample("speed", 20 * MS) == (2.0, 20 * MS, 0, None)
    assert policy.sample("speed", 25 * MS) == (2.0, 20 * MS, 5 * MS, None)


def test_no_data_before_the_first_sample() -> None:
    policy = LatestPolicy(["speed"])
    assert policy.sample("speed", 0).reason == MissingReason.NO_DATA
    policy.push("speed", 10 * MS, 1.0)
    assert policy.sample("speed", 5 * MS) == (None, None, None, MissingReason.NO_DATA)


def test_max_age() -> None:
    policy = LatestPolicy({"log": LatestSpec(max_age_ns=100 * MS)})
    policy.push("log", 0, "engine on")
    assert policy.sample("log", 100 * MS).item == "engine on"
    sample = policy.sample("log", 101 * MS)
    assert sample.item is None and sample.reason == MissingReason.TOO_OLD
    assert sample.age_ns == 101 * MS


def test_linear_interpolation_of_scalars_and_vectors() -> None:
    policy = LatestPolicy({"odo": LatestSpec(interpolation="linear")})
    policy.push("odo", 0, np.array([0.0, 10.0], dtype=np.float32))
    policy.push("odo", 100 * MS, np.array([1.0, 20.0], dtype=np.float32))
    sample = policy.sample("odo", 25 * MS)
    assert sample.stamp_ns == 25 * MS and sample.age_ns == 0
    np.testing.assert_allclose(sample.item, [0.25, 12.5])
    assert sample.item.dtype == np.float32
    scalar = LatestPolicy({"v": LatestSpec(interpolation="linear")})
    scalar.push("v", 0, 2)
    scalar.push("v", 10, 4)
    assert scalar.sample("v", 5).item == 3.0


def test_linear_without_a_later_sample_holds() -> None:
    policy = LatestPolicy({"v": LatestSpec(interpolation="linear")})
    policy.push("v", 0, 1.0)
    assert policy.sample("v", 50).item == 1.0
    assert policy.sample("v", 50).age_ns == 50


def test_text_and_integers_are_held_even_in_linear_mode() -> None:
    policy = LatestPolicy({"log": LatestSpec(interpolation="linear")})
    policy.push("log", 0, "a")
    policy.push("log", 10, "b")
    assert policy.sample("log", 5) == ("a", 0, 5, None)
    assert interpolate_value(np.array([1, 2]), np.array([3, 4]), 0.5).tolist() == [1, 2]


def test_slerp_of_orientations() -> None:
    # Payload: x, y, z, qw, qx, qy, qz; yaw 0 -> 90 degrees about z.
    half = np.sqrt(0.5)
    p0 = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    p1 = np.array([2.0, 0.0, 0.0, half, 0.0, 0.0, half])
    policy = LatestPolicy({"odo": LatestSpec(interpolation="linear", quaternion_indices=(3,))})
    policy.push("odo", 0, p0)
    policy.push("odo", 100, p1)
    value = policy.sample("odo", 50).item
    np.testing.assert_allclose(value[:3], [1.0, 0.0, 0.0])
    yaw = np.pi / 4
    np.testing.assert_allclose(value[3:], [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], atol=1e-12)
    assert np.isclose(np.linalg.norm(value[3:]), 1.0)
    r = quat_to_matrix(value[3:])
    np.testing.assert_allclose(r[:2, 0], [np.cos(yaw), np.sin(yaw)], atol=1e-12)


def test_sensor_messages_are_interpolated_on_their_payload() -> None:
    policy = LatestPolicy({"can": LatestSpec(interpolation="linear")})
    m0 = SensorMessage("can", 0, np.array([0.0]), frame_id="ego", seq=1, meta={"bus": 0})
    m1 = SensorMessage("can", 10 * MS, np.array([10.0]), frame_id="ego", seq=2)
    policy.push("can", 0, m0)
    policy.push("can", 10 * MS, m1)
    out = policy.sample("can", 4 * MS).item
    assert isinstance(out, SensorMessage)
    assert out.stamp_ns == 4 * MS and out.sensor == "can" and out.frame_id == "ego"
    np.testing.assert_allclose(out.payload, [4.0])
    assert out.meta["interpolated_from"] == (0, 10 * MS) and out.meta["bus"] == 0
    assert m0.meta == {"bus": 0}  # inputs untouched


def test_custom_interpolator() -> None:
    def nearest(v0: object, t0: int, v1: object, t1: int, t: int) -> object:
        return v0 if t - t0 <= t1 - t else v1

    policy = LatestPolicy({"x": LatestSpec(interpolation=nearest)})
    policy.push("x", 0, "zero")
    policy.push("x", 10, "ten")
    assert policy.sample("x", 7).item == "ten"


def test_every_sample_used_or_reported_once() -> None:
    drops, on_drop = recorder()
    policy = LatestPolicy({"can": LatestSpec(interpolation="linear", history=4)}, on_drop=on_drop)  # type: ignore[arg-type]
    for k in range(10):
        policy.push("can", k * 10, float(k))
    # history 4: 0..5 overflowed (never used)
    assert [d[1] for d in drops] == [0, 10, 20, 30, 40, 50]
    assert {d[2] for d in drops} == {DropReason.QUEUE_OVERFLOW}
    policy.sample("can", 75)  # uses 70 and 80; 60 superseded
    assert drops[-1] == ("can", 60, DropReason.SUPERSEDED)
    policy.push("can", 90, 0.0)  # duplicate
    policy.push("can", 5, 0.0)  # backwards
    assert [d[2] for d in drops[-2:]] == [DropReason.DUPLICATE_STAMP, DropReason.STAMP_BACKWARDS]
    policy.flush()
    assert drops[-1] == ("can", 90, DropReason.END_OF_INPUT)
    reported = [
        d[1] for d in drops if d[2] not in (DropReason.DUPLICATE_STAMP, DropReason.STAMP_BACKWARDS)
    ]
    assert sorted([*reported, 70, 80]) == [k * 10 for k in range(10)]


def test_too_old_samples_are_reported_as_too_old() -> None:
    drops, on_drop = recorder()
    policy = LatestPolicy({"log": LatestSpec(max_age_ns=5)}, on_drop=on_drop)  # type: ignore
    policy.push("log", 0, "a")
    assert policy.sample("log", 100).reason == MissingReason.TOO_OLD
    policy.push("log", 200, "b")
    policy.sample("log", 200)
    assert drops == [("log", 0, DropReason.TOO_OLD)]


def test_invalid_specs() -> None:
    with pytest.raises(SyncConfigError):
        LatestSpec(interpolation="cubic")
    with pytest.raises(SyncConfigError):
        LatestSpec(max_age_ns=-1)
    with pytest.raises(SyncConfigError):
        LatestPolicy([])
    with pytest.raises(KeyError):
        LatestPolicy(["a"]).push("b", 0, 1)
