"""Stamps that lie: one implausible stamp costs its message only; a jump every stream makes
resets the timeline once; frames are never stamped at or before 0.

Drop reasons are written as strings ("implausible_stamp") so that these tests fail on a
synchroniser without the reason rather than at import.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.messages import Frame, SensorMessage
from fusionrt.runtime.sync import LatestSpec, SyncConfigError, Synchronizer, TimelineJump

MS = 1_000_000
S = 1_000_000_000
HOUR = 3600 * S
EPOCH = 1_700_000_000 * S  # a drive recorded in November 2023
IMPLAUSIBLE = "implausible_stamp"
PRIMARY = ("lidar", "cam", "radar")
RATES_HZ = {"lidar": 10, "cam": 30, "radar": 20, "can": 100, "log": 2}
OFFSETS_NS = {"cam": 3 * MS, "radar": -2 * MS}

#: Lies a stream's clock can tell, as functions of the true stamp.
LIES: dict[str, Callable[[int], int]] = {
    "zero": lambda t: 0,
    "negative": lambda t: -t,
    "an hour ahead": lambda t: t + HOUR,
    "an hour back": lambda t: t - HOUR,
    "ten seconds back": lambda t: t - 10 * S,
    "before the drive's epoch (a clock since boot)": lambda t: 42 * S,
}


class Drops:
    """The synchroniser's drop reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, str, str]] = []

    def __call__(self, sensor: str, stamp_ns: int | None, reason: str, detail: str) -> None:
        self.calls.append((sensor, stamp_ns, reason, detail))

    def of(self, reason: str) -> list[tuple[str, int | None, str, str]]:
        return [c for c in self.calls if c[2] == reason]

    def without(self, reason: str) -> list[tuple[str, int | None, str]]:
        return [c[:3] for c in self.calls if c[2] != reason]


def drive(
    seconds: float, start_ns: int = EPOCH, seed: int = 0, first_seq: int = 0
) -> list[SensorMessage]:
    """Lidar, camera and radar frames, CAN at 100 Hz and a 2 Hz log, in stamp order."""
    rng = random.Random(seed)
    seq = itertools.count(first_seq)
    out = []
    for sensor, hz in RATES_HZ.items():
        period = S // hz
        for k in range(int(seconds * hz)):
            stamp = start_ns + k * period + rng.randint(-2 * MS, 2 * MS)
            out.append(SensorMessage(sensor, stamp, np.array([float(k)]), seq=next(seq)))
    out.sort(key=lambda m: m.stamp_ns)
    return out


def collector(**options: Any) -> Synchronizer:
    return Synchronizer.collector(
        list(PRIMARY),
        reference="lidar",
        tolerance_ns=30 * MS,
        timeout_ns=80 * MS,
        latest={"can": LatestSpec(interpolation="linear"), "log": LatestSpec()},
        time_offsets_ns=OFFSETS_NS,
        **options,
    )


def approximate(**options: Any) -> Synchronizer:
    return Synchronizer.approximate_time(
        list(PRIMARY),
        latest={"can": LatestSpec(interpolation="linear"), "log": LatestSpec()},
        time_offsets_ns=OFFSETS_NS,
        **options,
    )


MAKERS = pytest.mark.parametrize("make", [collector, approximate], ids=["collector", "approx"])


def summary(frames: Sequence[Frame]) -> list[tuple]:
    """What frames are made of: stamp, missing sensors, each sensor's message and payload."""
    return [
        (
            f.stamp_ns,
            tuple(sorted(f.missing.items())),
            tuple(
                (name, None if m is None else (m.seq, m.stamp_ns, m.payload.tobytes()))
                for name, m in sorted(f.messages.items())
            ),
        )
        for f in frames
    ]


class Run:
    """One synchroniser over ``messages``: its frames, drops, and the frame count at each
    timeline reset (the frames of a timeline are those numbered up to that count)."""

    def __init__(
        self, make: Callable[..., Synchronizer], messages: Sequence[SensorMessage], **options: Any
    ) -> None:
        self.drops = Drops()
        self.sync = make(on_drop=self.drops, **options)
        self.resets: list[tuple[TimelineJump, int]] = []
        self.sync.on_timeline_reset = lambda jump: self.resets.append((jump, self.sync.frames_out))
        self.frames = [f for m in messages for f in self.sync.push(m)] + self.sync.flush()

    def timelines(self) -> list[list[Frame]]:
        ends = [count for _, count in self.resets] + [len(self.frames)]
        starts = [0, *ends[:-1]]
        return [self.frames[a:b] for a, b in zip(starts, ends, strict=True)]


def lie(message: SensorMessage, stamp_ns: int) -> SensorMessage:
    return SensorMessage(message.sensor, stamp_ns, message.payload, seq=message.seq)


# -- one liar ------------------------------------------------------------------------------


@MAKERS
@pytest.mark.parametrize("sensor", list(RATES_HZ))
@pytest.mark.parametrize("kind", list(LIES))
@pytest.mark.parametrize("where", ["first", "middle"])
def test_one_lying_stamp_costs_its_message_only(
    make: Callable[..., Synchronizer], sensor: str, kind: str, where: str
) -> None:
    messages = drive(4.0)
    of_sensor = [i for i, m in enumerate(messages) if m.sensor == sensor]
    index = of_sensor[0] if where == "first" else of_sensor[len(of_sensor) // 2]
    liar = lie(messages[index], LIES[kind](messages[index].stamp_ns))
    without = messages[:index] + messages[index + 1 :]

    lying = Run(make, [*messages[:index], liar, *messages[index + 1 :]])
    clean = Run(make, without)

    # The frames are those of the drive without that message: CAN and log state is kept.
    assert summary(lying.frames) == summary(clean.frames)
    assert lying.sync.resets == 0
    (report,) = lying.drops.of(IMPLAUSIBLE)
    assert report[:2] == (sensor, liar.stamp_ns + OFFSETS_NS.get(sensor, 0))
    assert lying.drops.without(IMPLAUSIBLE) == [c[:3] for c in clean.drops.calls]


def test_the_detail_says_by_how_much_and_against_what() -> None:
    messages = drive(2.0)
    cams = [i for i, m in enumerate(messages) if m.sensor == "cam"]
    lidars = [i for i, m in enumerate(messages) if m.sensor == "lidar"]  # no time offset
    messages[cams[10]] = lie(messages[cams[10]], messages[cams[10]].stamp_ns + HOUR)
    messages[lidars[10]] = lie(messages[lidars[10]], 0)
    messages[cams[40]] = lie(messages[cams[40]], 42 * S)
    details = [c[3] for c in Run(approximate, messages).drops.of(IMPLAUSIBLE)]
    assert len(details) == 3
    assert "3600.0" in details[0] and "after the clock" in details[0]
    assert "the stream went on at" in details[0]
    assert "not after 1970" in details[1]
    assert "before the stream's previous stamp" in details[2]
    assert "before the timeline's first stamp" in details[2]


def test_a_liar_at_the_end_of_the_input_is_reported_by_flush() -> None:
    messages = drive(1.0)
    last = messages[-1]
    run = Run(collector, [*messages, lie(last, last.stamp_ns + HOUR)])
    (report,) = run.drops.of(IMPLAUSIBLE)
    assert "input ended" in report[3]
    assert summary(run.frames) == summary(Run(collector, messages).frames)
    assert run.sync.guard.held == 0


def test_one_stream_that_lies_for_seconds_never_moves_the_timeline() -> None:
    # The camera's clock is an hour off for 2 s, 60 messages that agree with each other: the
    # other streams go on, so it is the camera that lies, not the timeline that jumped.
    messages = drive(6.0)
    window = {
        i
        for i, m in enumerate(messages)
        if m.sensor == "cam" and EPOCH + 2 * S <= m.stamp_ns < EPOCH + 4 * S
    }
    lying = [lie(m, m.stamp_ns + HOUR) if i in window else m for i, m in enumerate(messages)]
    run = Run(collector, lying, max_held=16)
    assert run.sync.resets == 0
    reported = sorted(c[1] for c in run.drops.of(IMPLAUSIBLE))
    assert reported == sorted(lying[i].stamp_ns + OFFSETS_NS["cam"] for i in window)
    without = [m for i, m in enumerate(messages) if i not in window]
    assert summary(run.frames) == summary(Run(collector, without).frames)


def test_a_can_bus_with_a_wrong_clock_never_moves_the_frames() -> None:
    messages = drive(4.0)
    lying = [lie(m, m.stamp_ns + HOUR) if m.sensor == "can" else m for m in messages]
    run = Run(collector, lying)
    assert run.sync.resets == 0
    assert {c[0] for c in run.drops.of(IMPLAUSIBLE)} == {"can"}
    assert len(run.drops.of(IMPLAUSIBLE)) == sum(m.sensor == "can" for m in messages)
    without = [m for m in messages if m.sensor != "can"]
    assert summary(run.frames) == summary(Run(collector, without).frames)


# -- jumps every stream makes --------------------------------------------------------------


@MAKERS
@pytest.mark.parametrize(
    "jump_ns", [-30 * S, -2 * S, 10 * S, HOUR], ids=["loop", "restart", "pause", "hour"]
)
def test_a_jump_every_stream_makes_resets_the_timeline_once(
    make: Callable[..., Synchronizer], jump_ns: int
) -> None:
    first = drive(3.0, seed=1)
    second = drive(3.0, start_ns=EPOCH + 3 * S + jump_ns, seed=2, first_seq=10_000)
    run = Run(make, first + second)

    assert run.sync.resets == 1
    ((jump, _),) = run.resets
    assert abs(jump.jump_ns - jump_ns) < 100 * MS  # reported once, with its size
    assert jump.sensors == tuple(sorted(PRIMARY))
    assert f"{jump.jump_ns / S:+.3f} s" in jump.describe()
    # Each timeline gives the frames it gives alone: nothing of the second is lost.
    alone_first, alone_second = Run(make, first), Run(make, second)
    old, new = run.timelines()
    assert summary(old) == summary(alone_first.frames)
    assert summary(new) == summary(alone_second.frames)
    assert run.drops.of(IMPLAUSIBLE) == []
    # What the first timeline still buffered is reported "reset", not "end_of_input".
    ended = sorted(c[:2] for c in alone_first.drops.of("end_of_input"))
    assert sorted(c[:2] for c in run.drops.of("reset")) == ended


def test_a_sensor_that_died_at_the_loop_point_does_not_block_the_reset() -> None:
    first = drive(3.0, seed=1)
    second = [m for m in drive(3.0, seed=2, first_seq=10_000) if m.sensor != "radar"]
    run = Run(collector, first + second)
    assert run.sync.resets == 1
    ((jump, _),) = run.resets
    assert jump.sensors == ("cam", "lidar")
    old, new = run.timelines()
    assert summary(old) == summary(Run(collector, first).frames)
    assert summary(new) == summary(Run(collector, second).frames)
    assert run.drops.of(IMPLAUSIBLE) == []


def test_small_steps_back_stay_backwards_and_equal_stamps_duplicates() -> None:
    drops = Drops()
    sync = Synchronizer.approximate_time(["a", "b"], on_drop=drops)
    for stamp in (EPOCH, EPOCH + 10 * MS, EPOCH + 10 * MS, EPOCH + 5 * MS, EPOCH + 20 * MS):
        sync.push(SensorMessage("a", stamp, np.zeros(1)))
    assert [c[2] for c in drops.calls] == ["duplicate_stamp", "stamp_backwards"]
    assert sync.resets == 0


def test_a_fixed_rate_collector_never_ticks_at_or_before_zero() -> None:
    sync = Synchronizer.collector(
        ["a"], period_ns=100, tolerance_ns=40, timeout_ns=10, emit_empty=True
    )
    frames = [f for t in (30, 130, 230) for f in sync.push(SensorMessage("a", t, None))]
    frames += sync.flush()
    assert frames and all(f.stamp_ns > 0 for f in frames)
    assert [f.stamp_ns for f in frames] == [100, 200]  # not the tick at 0


def test_stamp_rule_options_are_checked() -> None:
    for bad in (
        {"jump_backward_ns": 0},
        {"jump_forward_ns": -1},
        {"confirm_messages": 0},
        {"max_held": 2, "confirm_messages": 3},
    ):
        with pytest.raises(SyncConfigError):
            Synchronizer.approximate_time(["a", "b"], **bad)


# -- properties ----------------------------------------------------------------------------


def _sync_for(kind: str, **options: Any) -> Synchronizer:
    latest = {"can": LatestSpec(max_age_ns=15 * MS, history=4)}  # held: accounted by seq
    common: dict[str, Any] = {"latest": latest, "time_offsets_ns": {"b": 3}, **options}
    if kind == "approximate":
        return Synchronizer.approximate_time(["a", "b"], queue_size=3, **common)
    window = {"tolerance_ns": 10 * MS, "timeout_ns": 20 * MS}
    if kind == "collector":
        return Synchronizer.collector(["a", "b"], reference="a", **window, **common)
    return Synchronizer.collector(["a", "b"], period_ns=7 * MS, **window, **common)


KINDS = st.sampled_from(["approximate", "collector", "fixed_rate"])


@st.composite
def liars_drive(draw: st.DrawFn) -> tuple[list[SensorMessage], list[SensorMessage]]:
    """(a random clean drive, the same drive with liars inserted, none two in a row)."""
    seq = itertools.count()
    events: list[tuple[str, int]] = []
    for sensor in ("a", "b", "can"):
        t = EPOCH + draw(st.integers(0, 50)) * MS
        for _ in range(draw(st.integers(0, 12))):
            t += draw(st.integers(0, 40)) * MS
            events.append((sensor, t))
    order = draw(st.permutations(events))
    clean = [SensorMessage(s, t, np.array([float(t % 997)]), seq=next(seq)) for s, t in order]
    lying: list[SensorMessage] = []
    lied_last: dict[str, bool] = {}
    for message in clean:
        lying.append(message)
        lies = not lied_last.get(message.sensor) and draw(st.booleans())
        if lies:
            stamp = LIES[draw(st.sampled_from(sorted(LIES)))](message.stamp_ns)
            lying.append(SensorMessage(message.sensor, stamp, message.payload, seq=next(seq)))
        lied_last[message.sensor] = lies
    return clean, lying


@settings(max_examples=200, deadline=None)
@given(liars_drive(), KINDS)
def test_liars_change_nothing_but_their_own_report(
    drives: tuple[list[SensorMessage], list[SensorMessage]], kind: str
) -> None:
    clean_messages, lying_messages = drives
    clean = Run(lambda **o: _sync_for(kind, **o), clean_messages)
    lying = Run(lambda **o: _sync_for(kind, **o), lying_messages)
    assert summary(lying.frames) == summary(clean.frames)
    assert len(lying.drops.of(IMPLAUSIBLE)) == len(lying_messages) - len(clean_messages)
    assert lying.drops.without(IMPLAUSIBLE) == [c[:3] for c in clean.drops.calls]
    assert lying.sync.resets == 0


@st.composite
def jumpy_drive(draw: st.DrawFn) -> list[SensorMessage]:
    """Random streams with random liars and sustained jumps of every stream."""
    seq = itertools.count()
    messages: list[SensorMessage] = []
    shift = 0
    t = {s: EPOCH + draw(st.integers(0, 30)) * MS for s in ("a", "b", "can")}
    for _ in range(draw(st.integers(0, 80))):
        action = draw(st.sampled_from(["message"] * 8 + ["liar", "jump"]))
        if action == "jump":
            shift += draw(st.sampled_from([-20 * S, -2 * S, 3 * S, HOUR, -EPOCH // 2]))
            continue
        sensor = draw(st.sampled_from(["a", "b", "can"]))
        t[sensor] += draw(st.integers(0, 30)) * MS
        stamp = t[sensor] + shift
        if action == "liar":
            stamp = LIES[draw(st.sampled_from(sorted(LIES)))](stamp)
        messages.append(SensorMessage(sensor, stamp, np.array([1.0]), seq=next(seq)))
    return messages


@settings(max_examples=300, deadline=None)
@given(jumpy_drive(), KINDS, st.integers(1, 4))
def test_every_message_ends_once_and_frames_advance_within_a_timeline(
    messages: list[SensorMessage], kind: str, confirm: int
) -> None:
    run = Run(lambda **o: _sync_for(kind, **o), messages, confirm_messages=confirm, max_held=4)
    assert all(f.stamp_ns > 0 for f in run.frames)  # never at or before 1970
    for timeline in run.timelines():
        stamps = [f.stamp_ns for f in timeline]
        assert stamps == sorted(set(stamps))
    # every message ends in exactly one frame or one drop report
    used_primary: list[int] = []
    used_can: set[int] = set()
    for frame in run.frames:
        for name, m in frame.messages.items():
            if m is not None:
                (used_can.add if name == "can" else used_primary.append)(m.seq)
    assert len(used_primary) == len(set(used_primary))
    dropped = [c[0] for c in run.drops.calls]
    for sensor in ("a", "b", "can"):
        pushed = sum(m.sensor == sensor for m in messages)
        used = (
            len(used_can)
            if sensor == "can"
            else sum(1 for f in run.frames if (m := f.messages.get(sensor)) is not None)
        )
        assert used + dropped.count(sensor) == pushed, sensor
    assert run.sync.resets == len(run.resets)
