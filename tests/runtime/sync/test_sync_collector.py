"""CollectorPolicy: completion, deadlines on the virtual clock, tolerance, fixed rate, drops."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.sync import (
    CollectedFrame,
    CollectorPolicy,
    DropReason,
    MissingReason,
    SyncConfigError,
)

MS = 1_000_000


def make(**options: object) -> tuple[CollectorPolicy, list[tuple[str, int, str]]]:
    drops: list[tuple[str, int, str]] = []
    defaults: dict[str, object] = {
        "reference": "lidar",
        "tolerance_ns": 20 * MS,
        "timeout_ns": 50 * MS,
    }
    defaults.update(options)
    policy = CollectorPolicy(
        ["lidar", "cam", "radar"],
        on_drop=lambda sensor, stamp, item, reason, detail: drops.append((sensor, stamp, reason)),
        **defaults,  # type: ignore[arg-type]
    )
    return policy, drops


def push_all(policy: CollectorPolicy, events: list[tuple[str, int]]) -> list[CollectedFrame]:
    frames = []
    for sensor, stamp in events:
        frames.extend(policy.push(sensor, stamp, f"{sensor}@{stamp}"))
    return frames


def test_complete_frame_is_emitted_as_soon_as_nothing_nearer_can_come() -> None:
    policy, drops = make()
    frames = push_all(policy, [("lidar", 100 * MS), ("cam", 95 * MS), ("radar", 104 * MS)])
    assert frames == []  # cam at 95 ms: a cam message in (100, 105) ms could still be nearer
    frames = push_all(policy, [("cam", 128 * MS)])  # cam passed 105 ms: 95 ms is final
    assert len(frames) == 1
    frame = frames[0]
    assert frame.stamp_ns == 100 * MS
    assert frame.items == {
        "lidar": "lidar@100000000",
        "cam": "cam@95000000",
        "radar": "radar@104000000",
    }
    assert frame.missing == {}
    assert frame.complete
    assert frame.emitted_at_ns == 128 * MS <= frame.deadline_ns == 150 * MS
    assert drops == []


def test_a_min_period_completes_the_frame_without_waiting_for_the_next_message() -> None:
    policy, _ = make(min_period_ns={"cam": 20 * MS})
    # cam at 95 ms: its next message comes at 115 ms or later, 15 ms away, farther than 5 ms
    frames = push_all(policy, [("lidar", 100 * MS), ("cam", 95 * MS), ("radar", 104 * MS)])
    assert [f.stamps for f in frames] == [{"lidar": 100 * MS, "cam": 95 * MS, "radar": 104 * MS}]
    # cam at 189 ms: a message at 209 ms would be nearer (9 ms < 11 ms), so the frame waits
    frames = push_all(policy, [("lidar", 200 * MS), ("cam", 189 * MS), ("radar", 200 * MS)])
    assert frames == []
    assert [f.stamps["cam"] for f in push_all(policy, [("cam", 209 * MS)])] == [209 * MS]


def test_message_at_or_after_the_frame_stamp_is_final_at_once() -> None:
    policy, _ = make()
    frames = push_all(policy, [("lidar", 100 * MS), ("cam", 100 * MS), ("radar", 101 * MS)])
    assert [f.stamps for f in frames] == [{"lidar": 100 * MS, "cam": 100 * MS, "radar": 101 * MS}]


def test_nearest_wins_and_the_others_are_superseded() -> None:
    policy, drops = make()
    frames = push_all(
        policy,
        [
            ("cam", 85 * MS),
            ("cam", 97 * MS),
            ("lidar", 100 * MS),
            ("radar", 100 * MS),
            ("cam", 110 * MS),
        ],
    )
    assert frames[0].stamps["cam"] == 97 * MS
    assert drops == [("cam", 85 * MS, DropReason.SUPERSEDED)]
    # the 110 ms camera message stays for the next frame
    frames = push_all(policy, [("lidar", 200 * MS), ("radar", 200 * MS), ("cam", 205 * MS)])
    assert frames[0].stamps["cam"] == 205 * MS
    assert ("cam", 110 * MS, DropReason.OUTSIDE_INTERVAL) in drops


def test_tie_goes_to_the_earlier_message() -> None:
    policy, drops = make()
    frames = push_all(
        policy, [("lidar", 100 * MS), ("radar", 100 * MS), ("cam", 95 * MS), ("cam", 105 * MS)]
    )
    assert frames[0].stamps["cam"] == 95 * MS
    assert drops == []  # 105 ms stays buffered for later frames


def test_deadline_on_the_virtual_clock_marks_missing_sensors() -> None:
    policy, _ = make()
    assert push_all(policy, [("lidar", 100 * MS), ("cam", 101 * MS)]) == []
    assert policy.pending_frames == [(100 * MS, 150 * MS)]
    assert policy.advance(149 * MS) == []
    frames = policy.advance(150 * MS)
    assert len(frames) == 1
    assert frames[0].missing == {"radar": MissingReason.TIMEOUT}
    assert frames[0].items["radar"] is None and frames[0].stamps["radar"] is None
    assert frames[0].emitted_at_ns == 150 * MS


def test_a_message_stamped_at_the_deadline_does_not_join() -> None:
    policy, _ = make(tolerance_ns=80 * MS, timeout_ns=50 * MS)
    push_all(policy, [("lidar", 100 * MS), ("cam", 100 * MS)])
    frames = push_all(policy, [("radar", 150 * MS)])
    assert len(frames) == 1
    assert frames[0].missing == {"radar": MissingReason.TIMEOUT}


def test_sensor_that_moved_past_the_window_is_marked_no_match() -> None:
    policy, _ = make()
    frames = push_all(policy, [("lidar", 100 * MS), ("cam", 100 * MS), ("radar", 130 * MS)])
    assert len(frames) == 1
    assert frames[0].missing == {"radar": MissingReason.NO_MATCH}
    assert frames[0].emitted_at_ns == 130 * MS  # before the deadline: nothing could join


def test_late_reference_is_emitted_at_once_and_never_goes_back() -> None:
    policy, _drops = make()
    push_all(policy, [("cam", 100 * MS), ("radar", 100 * MS), ("cam", 300 * MS)])
    frames = push_all(policy, [("lidar", 100 * MS)])  # clock is at 300 ms: deadline passed
    assert len(frames) == 1 and frames[0].stamp_ns == 100 * MS
    assert frames[0].complete
    frames = push_all(policy, [("lidar", 290 * MS)])
    assert frames == []  # radar may still send a message near 290 ms
    assert policy.pending_frames == [(290 * MS, 340 * MS)]
    # a reference stamp not newer than the last frame is dropped
    policy2, drops2 = make()
    push_all(policy2, [("lidar", 100 * MS)])
    policy2.advance(200 * MS)
    policy2.push("lidar", 100 * MS - 1)  # backwards on its own stream
    assert drops2[-1][2] == DropReason.STAMP_BACKWARDS


def test_late_message_too_old_for_any_frame() -> None:
    policy, drops = make()
    push_all(policy, [("lidar", 100 * MS), ("cam", 100 * MS), ("radar", 100 * MS)])
    push_all(policy, [("lidar", 200 * MS)])
    push_all(policy, [("cam", 150 * MS)])  # the pending frame is at 200 ms, tolerance 20 ms
    assert drops[-1] == ("cam", 150 * MS, DropReason.TOO_OLD)


def test_duplicate_and_backward_stamps_per_sensor() -> None:
    policy, drops = make()
    push_all(policy, [("cam", 100 * MS), ("cam", 100 * MS), ("cam", 90 * MS)])
    assert [d[2] for d in drops] == [DropReason.DUPLICATE_STAMP, DropReason.STAMP_BACKWARDS]


def test_queue_overflow_drops_the_oldest() -> None:
    policy, drops = make(queue_size=2)
    push_all(policy, [("cam", 10 * MS), ("cam", 20 * MS), ("cam", 30 * MS)])
    assert drops == [("cam", 10 * MS, DropReason.QUEUE_OVERFLOW)]


def test_fixed_rate_frames() -> None:
    policy = CollectorPolicy(
        ["cam", "radar"], period_ns=100 * MS, phase_ns=0, tolerance_ns=30 * MS, timeout_ns=60 * MS
    )
    frames = push_all(
        policy,
        [
            ("cam", 95 * MS),
            ("radar", 102 * MS),
            ("cam", 199 * MS),
            ("radar", 205 * MS),
            ("cam", 300 * MS),
            ("radar", 310 * MS),
        ],
    )
    assert [f.stamp_ns for f in frames] == [100 * MS, 200 * MS, 300 * MS]
    assert frames[0].stamps == {"cam": 95 * MS, "radar": 102 * MS}
    assert frames[1].stamps == {"cam": 199 * MS, "radar": 205 * MS}
    assert frames[2].stamps == {"cam": 300 * MS, "radar": 310 * MS}
    assert policy.pending_frames == []  # the 400 ms tick is not reached yet
    frames = push_all(policy, [("cam", 398 * MS)])
    assert frames == [] and policy.pending_frames == []
    frames = policy.flush()  # the tick at 400 ms was never reached by the clock
    assert frames == []


def test_fixed_rate_skips_empty_ticks_after_a_long_silence() -> None:
    policy = CollectorPolicy(["cam"], period_ns=10 * MS, tolerance_ns=2 * MS, timeout_ns=5 * MS)
    frames = push_all(policy, [("cam", 10 * MS), ("cam", 3_599_999 * MS)])
    assert [f.stamp_ns for f in frames] == [10 * MS]  # 360 000 empty ticks skipped in O(1)
    assert policy.pending_frames == []
    frames = push_all(policy, [("cam", 3_600_001 * MS)])
    assert [(f.stamp_ns, f.stamps["cam"]) for f in frames] == [(3_600_000 * MS, 3_599_999 * MS)]


def test_flush_emits_pending_frames_and_drops_the_rest() -> None:
    policy, drops = make()
    push_all(policy, [("cam", 50 * MS), ("lidar", 100 * MS), ("cam", 101 * MS)])
    frames = policy.flush()
    assert len(frames) == 1
    assert frames[0].missing == {"radar": MissingReason.END_OF_INPUT}
    assert ("cam", 50 * MS, DropReason.OUTSIDE_INTERVAL) in drops
    assert policy.now_ns is None and policy.pending_frames == []


def test_invalid_options() -> None:
    with pytest.raises(SyncConfigError):
        CollectorPolicy(["a", "b"])  # neither reference nor period
    with pytest.raises(SyncConfigError):
        CollectorPolicy(["a", "b"], reference="a", period_ns=10)
    with pytest.raises(SyncConfigError):
        CollectorPolicy(["a", "b"], reference="c")
    with pytest.raises(SyncConfigError):
        CollectorPolicy(["a", "b"], reference="a", tolerance_ns={"c": 1})
    with pytest.raises(KeyError):
        CollectorPolicy(["a", "b"], reference="a").push("zzz", 0)
    with pytest.raises(SyncConfigError, match="min_period_ns"):
        CollectorPolicy(["a", "b"], reference="a", min_period_ns={"a": 10})  # the reference
    with pytest.raises(SyncConfigError, match="min_period_ns"):
        CollectorPolicy(["a", "b"], reference="a", min_period_ns={"b": -1})


# -- properties --------------------------------------------------------------------------


@st.composite
def collector_inputs(draw: st.DrawFn) -> tuple[list[tuple[str, int]], dict]:
    sensors = ["ref", "a", "b"]
    streams = {}
    for name in sensors:
        start = draw(st.integers(0, 30))
        gaps = draw(st.lists(st.integers(0, 25), max_size=12))  # 0: duplicate stamps
        streams[name] = list(itertools.accumulate([start, *gaps]))
    labels = [name for name in sensors for _ in streams[name]]
    labels = draw(st.permutations(labels))
    cursors = dict.fromkeys(sensors, 0)
    events = []
    for name in labels:
        events.append((name, streams[name][cursors[name]]))
        cursors[name] += 1
    if draw(st.booleans()):  # some out-of-order noise
        for _ in range(draw(st.integers(0, 3))):
            if events:
                k = draw(st.integers(0, len(events) - 1))
                events[k] = (events[k][0], max(0, events[k][1] - draw(st.integers(1, 20))))
    fixed_rate = draw(st.booleans())
    options = {
        "tolerance_ns": draw(st.integers(0, 15)),
        "timeout_ns": draw(st.integers(0, 40)),
        "queue_size": draw(st.integers(1, 8)),
    }
    if fixed_rate:
        options["period_ns"] = draw(st.integers(1, 20))
        options["phase_ns"] = draw(st.integers(0, 5))
        options["emit_empty"] = draw(st.booleans())
    else:
        options["reference"] = "ref"
    return events, options


@settings(max_examples=400, deadline=None)
@given(collector_inputs())
def test_collector_never_blocks_past_deadline_never_goes_back(case: tuple) -> None:
    events, options = case
    drops: dict[int, list[str]] = {}
    policy = CollectorPolicy(
        ["ref", "a", "b"],
        on_drop=lambda s, t, item, reason, d: drops.setdefault(item, []).append(reason),
        **options,
    )
    frames: list[CollectedFrame] = []
    last_used: dict[str, int] = {}
    clock = None
    for index, (sensor, stamp) in enumerate(events):
        emitted = policy.push(sensor, stamp, index)
        clock = stamp if clock is None else max(clock, stamp)
        assert policy.now_ns == clock
        # never blocks past its deadline: nothing pending once the clock reached it
        assert all(deadline > clock for _, deadline in policy.pending_frames)
        for frame in emitted:
            assert frame.emitted_at_ns == clock
        frames.extend(emitted)
    frames.extend(policy.flush())

    stamps = [f.stamp_ns for f in frames]
    assert stamps == sorted(set(stamps)), "a frame went back in time"
    tolerance = options["tolerance_ns"]
    used_items = []
    for frame in frames:
        for sensor, item in frame.items.items():
            if item is None:
                assert sensor in frame.missing
                continue
            used_items.append(item)
            stamp = frame.stamps[sensor]
            assert stamp is not None
            if sensor != options.get("reference"):
                assert abs(stamp - frame.stamp_ns) <= tolerance
                assert stamp < frame.deadline_ns
            assert stamp > last_used.get(sensor, -1), "a sensor went back in time"
            last_used[sensor] = stamp
        if options.get("reference") is None and not options.get("emit_empty"):
            assert len(frame.missing) < 3
    # every message in exactly one frame or reported dropped exactly once
    assert len(used_items) == len(set(used_items))
    assert all(len(r) == 1 for r in drops.values())
    assert not set(used_items) & set(drops)
    assert set(used_items) | set(drops) == set(range(len(events)))


def in_stamp_order(events: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The distinct events in stamp order (ties: reference first): input without noise."""
    return sorted(set(events), key=lambda e: (e[1], e[0] != "ref", e[0]))


def collect(events: list[tuple[str, int]], options: dict, **extra: object) -> list[CollectedFrame]:
    """Every frame of ``events`` (items are ``(sensor, stamp)``), queues large enough."""
    policy = CollectorPolicy(["ref", "a", "b"], **{**options, "queue_size": 1000, **extra})
    frames = []
    for sensor, stamp in events:
        frames.extend(policy.push(sensor, stamp, (sensor, stamp)))
    return frames + policy.flush()


@settings(max_examples=300, deadline=None)
@given(collector_inputs())
def test_collector_picks_the_nearest_message_when_input_is_in_order(case: tuple) -> None:
    events, options = case
    events = in_stamp_order(events)
    frames = collect(events, options)
    tolerance = options["tolerance_ns"]
    last_used = {"a": -1, "b": -1}
    for frame in frames:
        for sensor in ("a", "b"):
            window = [
                stamp
                for name, stamp in events
                if name == sensor
                and stamp > last_used[sensor]
                and abs(stamp - frame.stamp_ns) <= tolerance
                and stamp < frame.deadline_ns
            ]
            chosen = frame.stamps[sensor]
            if not window:
                assert chosen is None
                continue
            best = min(window, key=lambda s: (abs(s - frame.stamp_ns), s))
            assert chosen == best
            last_used[sensor] = chosen


@settings(max_examples=300, deadline=None)
@given(collector_inputs())
def test_a_kept_min_period_gives_the_same_frames_never_later(case: tuple) -> None:
    events, options = case
    events = in_stamp_order(events)
    periods = {}
    for sensor in ("a", "b"):
        stamps = [stamp for name, stamp in events if name == sensor]
        periods[sensor] = min((b - a for a, b in itertools.pairwise(stamps)), default=1000)
    waiting, early = collect(events, options), collect(events, options, min_period_ns=periods)
    assert [(f.stamp_ns, f.items) for f in early] == [(f.stamp_ns, f.items) for f in waiting]
    assert all(e.emitted_at_ns <= w.emitted_at_ns for e, w in zip(early, waiting, strict=True))
