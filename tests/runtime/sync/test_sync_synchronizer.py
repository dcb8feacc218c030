"""Synchronizer: offsets, stream guards, resets, staleness, drop reports, frames, determinism."""

from __future__ import annotations

import inspect
import itertools
import random

import numpy as np
import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime import hookspecs
from fusionrt.runtime.messages import Frame, SensorMessage
from fusionrt.runtime.sync import (
    ApproximateTimePolicy,
    DropReason,
    LatestSpec,
    MissingReason,
    SyncConfigError,
    Synchronizer,
)

MS = 1_000_000
S = 1_000_000_000


class Drops:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, str, str]] = []

    def __call__(self, sensor: str, stamp_ns: int | None, reason: str, detail: str) -> None:
        assert isinstance(detail, str) and detail
        self.calls.append((sensor, stamp_ns, reason, detail))

    def reasons(self) -> list[tuple[str, str]]:
        return [(sensor, reason) for sensor, _, reason, _ in self.calls]


def msg(sensor: str, stamp_ns: int, seq: int = 0, payload: object = None) -> SensorMessage:
    return SensorMessage(sensor, stamp_ns, np.zeros(1) if payload is None else payload, seq=seq)


def drive(
    rate_hz: dict[str, int], seconds: float, seed: int = 0, jitter_ns: int = 2 * MS
) -> list[SensorMessage]:
    rng = random.Random(seed)
    out = []
    seq = itertools.count()
    for sensor, hz in rate_hz.items():
        period = 1_000_000_000 // hz
        for k in range(int(seconds * hz)):
            stamp = 10**9 + k * period + rng.randint(-jitter_ns, jitter_ns)
            out.append(msg(sensor, stamp, next(seq), np.array([float(k)])))
    out.sort(key=lambda m: (m.stamp_ns, m.sensor))
    return out


def test_time_offsets_are_applied_before_the_policy_and_inputs_are_not_mutated() -> None:
    sync = Synchronizer.approximate_time(
        ["lidar", "cam"], time_offsets_ns={"cam": -30 * MS}, reference="lidar"
    )
    cam = msg("cam", 130 * MS)
    frames = sync.push(msg("lidar", 100 * MS)) + sync.push(cam)
    frames += sync.push(msg("lidar", 200 * MS)) + sync.push(msg("cam", 230 * MS))
    assert cam.stamp_ns == 130 * MS
    assert frames[0].stamp_ns == 100 * MS
    cam_in_frame = frames[0].messages["cam"]
    assert cam_in_frame is not None and cam_in_frame.stamp_ns == 100 * MS
    assert cam_in_frame.payload is cam.payload  # same data, corrected stamp
    assert frames[0].ages_ns == {"lidar": 0, "cam": 0}


def test_frame_stamp_is_the_reference_sensor_and_ages_are_relative_to_it() -> None:
    sync = Synchronizer.approximate_time(["cam", "lidar"], reference="lidar")
    frames = []
    for m in [msg("cam", 95), msg("lidar", 100), msg("cam", 198), msg("lidar", 200)]:
        frames += sync.push(m)
    frames += sync.flush()
    assert [f.stamp_ns for f in frames] == [100, 200]
    assert frames[0].ages_ns == {"cam": 5, "lidar": 0}
    assert frames[1].ages_ns == {"cam": 2, "lidar": 0}
    assert [f.seq for f in frames] == [1, 2]
    assert all(isinstance(f, Frame) and f.missing == {} for f in frames)


def test_duplicate_and_backward_stamps_are_dropped_with_a_reason() -> None:
    drops = Drops()
    sync = Synchronizer.approximate_time(["a", "b"], on_drop=drops)
    sync.push(msg("a", 100 * MS))
    sync.push(msg("a", 100 * MS))
    sync.push(msg("a", 90 * MS))
    assert drops.reasons() == [("a", DropReason.DUPLICATE_STAMP), ("a", DropReason.STAMP_BACKWARDS)]
    assert drops.calls[1][1] == 90 * MS
    assert sync.counters.get("a", DropReason.DUPLICATE_STAMP) == 1
    assert sync.resets == 0
    # the out-of-order message did not disturb the stream: the next in-order one pairs
    frames = sync.push(msg("b", 100 * MS))
    assert [f.stamp_ns for f in frames] == [100 * MS]


def test_a_looping_bag_resets_once_and_replays_the_second_pass_identically() -> None:
    drops, resets = Drops(), []
    sync = Synchronizer.approximate_time(
        ["lidar", "cam"], on_drop=drops, on_timeline_reset=resets.append
    )
    one_pass = drive({"lidar": 10, "cam": 30}, seconds=2.0)
    frames = [f for m in one_pass + one_pass for f in sync.push(m)] + sync.flush()
    assert sync.resets == 1 and len(resets) == 1
    (jump,) = resets
    # Each stream's first stamp of the second pass minus its last of the first.
    assert -2.0e9 < jump.jump_ns < -1.9e9 and jump.sensors == ("cam", "lidar")
    assert 0 <= jump.to_ns - one_pass[0].stamp_ns < 50 * MS
    # No message of the second pass is lost to the jump: its first messages were held while
    # the jump was unproven, then replayed into the new timeline.
    reasons = {r for _, r in drops.reasons()}
    assert DropReason.STAMP_BACKWARDS not in reasons
    assert DropReason.IMPLAUSIBLE_STAMP not in reasons
    first, second = frames[:20], frames[20:]
    assert [f.stamp_ns for f in first] == [f.stamp_ns for f in second]
    assert len(second) == 20
    assert [f.seq for f in frames] == list(range(1, 41))


def test_the_reset_reports_messages_buffered_in_the_old_timeline_as_reset() -> None:
    drops = Drops()
    sync = Synchronizer.approximate_time(["a", "b"], on_drop=drops, confirm_messages=2)
    sync.push(msg("a", 10 * S))
    sync.push(msg("a", 11 * S))
    sync.push(msg("a", 100))  # held: 11 s back
    assert drops.calls == [] and sync.guard.held == 1
    sync.push(msg("a", 200))  # two that follow each other, and "a" is the only active stream
    assert drops.reasons() == [("a", DropReason.RESET), ("a", DropReason.RESET)]
    assert [c[1] for c in drops.calls] == [10 * S, 11 * S]
    assert sync.resets == 1 and sync.now_ns == 200 and sync.guard.held == 0


def test_unknown_sensor_is_reported_not_raised() -> None:
    drops = Drops()
    sync = Synchronizer.approximate_time(["a", "b"], on_drop=drops)
    assert sync.push(msg("gps", 5)) == []
    assert drops.reasons() == [("gps", DropReason.UNKNOWN_SENSOR)]


def test_policy_drops_reach_the_callback_with_sensor_names() -> None:
    drops = Drops()
    sync = Synchronizer.approximate_time(["a", "b"], on_drop=drops)
    for m in [msg("a", 1), msg("b", 1), msg("a", 2), msg("a", 3), msg("b", 5), msg("a", 6)]:
        sync.push(m)
    assert drops.reasons() == [("a", DropReason.SUPERSEDED), ("a", DropReason.SUPERSEDED)]
    assert [c[1] for c in drops.calls] == [2, 3]


def test_stale_sensor_reported_once_per_silence() -> None:
    stale: list[tuple[str, int | None, int]] = []
    sync = Synchronizer.approximate_time(
        ["lidar", "radar"],
        expected_periods_ns={"lidar": 100 * MS, "radar": 50 * MS},
        stale_factor=3.0,
        on_stale=lambda *a: stale.append(a),
    )
    for k in range(10):
        sync.push(msg("lidar", S + k * 100 * MS))
        if k < 3:
            sync.push(msg("radar", S + k * 100 * MS + 1))
    assert stale == [("radar", S + 200 * MS + 1, S + 400 * MS)]  # silent > 150 ms at 400 ms
    sync.push(msg("radar", S + 950 * MS))
    sync.push(msg("lidar", S + 1000 * MS))
    sync.advance(S + 1200 * MS)
    assert stale[1:] == [("radar", S + 950 * MS, S + 1200 * MS)]


def test_never_seen_sensor_is_stale_with_none() -> None:
    stale: list[tuple[str, int | None, int]] = []
    sync = Synchronizer.approximate_time(
        ["a", "b"],
        expected_periods_ns={"b": 10},
        stale_factor=2,
        on_stale=lambda *a: stale.append(a),
    )
    sync.push(msg("a", 100))
    sync.push(msg("a", 110))
    sync.push(msg("a", 121))  # the timeline starts with 3 messages: the watch starts at 100
    assert stale == [("b", None, 121)]


def test_callbacks_match_the_observer_hooks() -> None:
    names = list(inspect.signature(hookspecs.fusionrt_sensor_fault).parameters)
    assert names == ["sensor", "stamp_ns", "reason", "detail"]
    assert list(inspect.signature(hookspecs.fusionrt_sensor_stale).parameters) == [
        "sensor",
        "last_stamp_ns",
        "now_ns",
    ]

    seen: list[tuple] = []

    class Observer:
        @hookspecs.hookimpl
        def fusionrt_sensor_fault(
            self, sensor: str, stamp_ns: int | None, reason: str, detail: str
        ) -> None:
            seen.append(("fault", sensor, stamp_ns, reason))

        @hookspecs.hookimpl
        def fusionrt_sensor_stale(
            self, sensor: str, last_stamp_ns: int | None, now_ns: int
        ) -> None:
            seen.append(("stale", sensor, last_stamp_ns, now_ns))

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Observer())
    sync = Synchronizer.approximate_time(
        ["a", "b"],
        expected_periods_ns={"b": 10},
        on_drop=lambda sensor, stamp_ns, reason, detail: pm.hook.fusionrt_sensor_fault(
            sensor=sensor, stamp_ns=stamp_ns, reason=reason, detail=detail
        ),
        on_stale=lambda sensor, last_stamp_ns, now_ns: pm.hook.fusionrt_sensor_stale(
            sensor=sensor, last_stamp_ns=last_stamp_ns, now_ns=now_ns
        ),
    )
    sync.push(msg("a", 1))
    sync.push(msg("a", 1))
    sync.push(msg("a", 101))
    assert seen == [("fault", "a", 1, DropReason.DUPLICATE_STAMP), ("stale", "b", None, 101)]


def test_collector_with_latest_can_interpolated_at_frame_stamps() -> None:
    sync = Synchronizer.collector(
        ["lidar", "cam"],
        reference="lidar",
        tolerance_ns=20 * MS,
        timeout_ns=60 * MS,
        latest={"can": LatestSpec(interpolation="linear", max_age_ns=50 * MS)},
    )
    frames: list[Frame] = []
    events = [msg("can", k * 10 * MS, payload=np.array([float(k)])) for k in range(40)]
    events += [msg("lidar", 105 * MS), msg("cam", 101 * MS), msg("lidar", 205 * MS)]
    events.sort(key=lambda m: m.stamp_ns)
    for m in events:
        frames += sync.push(m)
    assert [f.stamp_ns for f in frames] == [105 * MS, 205 * MS]
    can = frames[0].messages["can"]
    assert can is not None and can.stamp_ns == 105 * MS
    np.testing.assert_allclose(can.payload, [10.5])
    assert frames[0].ages_ns["can"] == 0 and frames[0].ages_ns["cam"] == 4 * MS
    # the CAN stream advanced the clock past the second frame's deadline: emitted, cam missing
    assert frames[1].missing == {"cam": MissingReason.TIMEOUT}
    assert frames[1].messages["cam"] is None


def test_latest_sensor_missing_is_marked() -> None:
    sync = Synchronizer.approximate_time(["a", "b"], latest={"log": LatestSpec(max_age_ns=10)})
    sync.push(msg("log", 1))
    frames = sync.push(msg("a", 100)) + sync.push(msg("b", 100))
    assert frames[0].missing == {"log": MissingReason.TOO_OLD}
    assert frames[0].messages["log"] is None


def test_identical_input_gives_identical_frames() -> None:
    messages = drive({"cam": 30, "lidar": 10, "radar": 20, "can": 100}, seconds=3.0, seed=3)

    def run() -> list[tuple]:
        sync = Synchronizer.collector(
            ["lidar", "cam", "radar"],
            reference="lidar",
            tolerance_ns=30 * MS,
            timeout_ns=80 * MS,
            latest={"can": LatestSpec(interpolation="linear")},
            time_offsets_ns={"cam": 3 * MS},
        )
        frames = [f for m in messages for f in sync.push(m)] + sync.flush()
        return [
            (
                f.stamp_ns,
                f.seq,
                tuple(sorted(f.missing.items())),
                tuple(sorted(f.ages_ns.items())),
                tuple(
                    (k, None if v is None else (v.seq, v.stamp_ns, v.payload.tobytes()))
                    for k, v in sorted(f.messages.items())
                ),
            )
            for f in frames
        ]

    assert run() == run()


def test_invalid_configurations() -> None:
    with pytest.raises(SyncConfigError):
        Synchronizer(ApproximateTimePolicy(3, 5), ["a", "b"])
    with pytest.raises(SyncConfigError):
        Synchronizer.approximate_time(["a", "b"], reference="c")
    with pytest.raises(SyncConfigError):
        Synchronizer.approximate_time(["a", "b"], latest={"a": LatestSpec()})
    with pytest.raises(SyncConfigError):
        Synchronizer.approximate_time(["a", "b"], time_offsets_ns={"c": 1})
    with pytest.raises(SyncConfigError):
        Synchronizer.approximate_time(["a", "b"], expected_periods_ns={"c": 1})
    with pytest.raises(SyncConfigError):
        Synchronizer("policy", ["a"])  # type: ignore[arg-type]


# -- accounting property -----------------------------------------------------------------


@st.composite
def noisy_drive(draw: st.DrawFn) -> list[SensorMessage]:
    seq = itertools.count()
    messages = []
    for sensor in ("a", "b", "can"):
        t = draw(st.integers(0, 50))
        for _ in range(draw(st.integers(0, 15))):
            t += draw(st.integers(0, 30))
            messages.append((sensor, t))
    order = draw(st.permutations(messages))
    out = [msg(sensor, stamp, next(seq), np.array([float(stamp)])) for sensor, stamp in order]
    return out


@settings(max_examples=200, deadline=None)
@given(noisy_drive(), st.booleans(), st.integers(1, 6))
def test_every_message_in_a_frame_or_reported_once(
    messages: list[SensorMessage], use_collector: bool, queue: int
) -> None:
    drops = Drops()
    latest = {"can": LatestSpec(interpolation="linear", max_age_ns=15, history=4)}
    if use_collector:
        sync = Synchronizer.collector(
            ["a", "b"],
            reference="a",
            tolerance_ns=10,
            timeout_ns=20,
            queue_size=queue,
            latest=latest,
            on_drop=drops,
            time_offsets_ns={"b": 3},
        )
    else:
        sync = Synchronizer.approximate_time(
            ["a", "b"], queue_size=queue, latest=latest, on_drop=drops, time_offsets_ns={"b": 3}
        )
    frames = [f for m in messages for f in sync.push(m)] + sync.flush()
    used_seqs: list[int] = []
    used_can_stamps: set[int] = set()
    for frame in frames:
        for name, m in frame.messages.items():
            if m is None:
                assert name in frame.missing
            elif name == "can":
                used_can_stamps.update(m.meta.get("interpolated_from", (m.stamp_ns,)))
            else:
                used_seqs.append(m.seq)
    assert len(used_seqs) == len(set(used_seqs))
    primary_pushed = [m for m in messages if m.sensor != "can"]
    primary_drops = [c for c in drops.calls if c[0] != "can"]
    assert len(used_seqs) + len(primary_drops) == len(primary_pushed)
    can_pushed = [m for m in messages if m.sensor == "can"]
    can_drops = [c for c in drops.calls if c[0] == "can"]
    assert len(used_can_stamps) + len(can_drops) == len(can_pushed)
    stamps = [f.stamp_ns for f in frames]
    assert stamps == sorted(set(stamps))


def test_counters_without_a_callback_and_a_callback_set_later() -> None:
    sync = Synchronizer.approximate_time(["a", "b"])
    for m in [msg("a", 1), msg("b", 1), msg("a", 2), msg("a", 3), msg("b", 5), msg("a", 3)]:
        sync.push(m)
    assert sync.counters.as_dict() == {"a": {"duplicate_stamp": 1, "superseded": 1}}
    drops = Drops()
    sync.on_drop = drops
    frames = sync.push(msg("a", 6))
    assert [f.stamp_ns for f in frames] == [6]
    assert drops.reasons() == [("a", DropReason.SUPERSEDED)]
    assert sync.counters.by_reason() == {"duplicate_stamp": 1, "superseded": 2}
    sync.on_drop = None
    sync.push(msg("b", 7))
    sync.flush()
    assert len(drops.calls) == 1
    assert sync.counters.get("b", DropReason.END_OF_INPUT) == 1
