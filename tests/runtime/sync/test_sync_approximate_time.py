"""ApproximateTimePolicy: the documented message_filters scenarios, drops, flush, arithmetic.

Stamps are written in seconds (``S``) like the C++ tests; the expected sets and drops were
derived by hand from the algorithm (pivot, candidates, age penalty, virtual search, overflow).
"""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest

from fusionrt.runtime.sync import (
    DEFAULT_MAX_INTERVAL_NS,
    ApproximateTimePolicy,
    DropReason,
    SyncConfigError,
    make_duration_scaler,
)

S = 1_000_000_000


class Recorder:
    """Runs (stamp_s, stream) inputs; items are the input indices."""

    def __init__(self, num_streams: int, queue_size: int = 10, **options: object) -> None:
        self.drops: list[tuple[int, int, int, str]] = []  # (push index, stream, item, reason)
        self.push_index = -1
        self.policy = ApproximateTimePolicy(
            num_streams,
            queue_size,
            on_drop=self._on_drop,
            **options,  # type: ignore[arg-type]
        )
        self.sets_at: list[tuple[int, tuple[int, ...]]] = []

    def _on_drop(self, stream: int, stamp: int, item: int, reason: str, detail: str) -> None:
        assert isinstance(detail, str) and detail
        self.drops.append((self.push_index, stream, item, reason))

    def run(self, inputs: list[tuple[float, int]]) -> list[tuple[int, ...]]:
        self.inputs = inputs
        for index, (stamp_s, stream) in enumerate(inputs):
            self.push_index = index
            for items in self.policy.push(stream, round(stamp_s * S), index):
                self.sets_at.append((index, items))
        return [items for _, items in self.sets_at]

    def stamps(self, sets: list[tuple[int, ...]]) -> list[tuple[float, ...]]:
        return [tuple(self.inputs[i][0] for i in items) for items in sets]

    def flush(self) -> list[tuple[float, ...]]:
        self.push_index = -1
        return self.stamps(self.policy.flush())


def run_stamps(
    inputs: list[tuple[float, int]], num_streams: int = 2, queue_size: int = 10, **options: object
) -> list[tuple[float, ...]]:
    rec = Recorder(num_streams, queue_size, **options)
    return rec.stamps(rec.run(inputs))


# -- the scenarios documented by message_filters' tests ----------------------------------


def test_exact_match() -> None:
    inputs = [(0, 0), (0, 1), (3, 0), (3, 1), (6, 0), (6, 1)]
    assert run_stamps(inputs) == [(0, 0), (3, 3), (6, 6)]


def test_perfect_match() -> None:
    # The last pair waits: a later message could still make a tighter set with C.
    inputs = [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)]
    assert run_stamps(inputs) == [(0, 1), (3, 4)]


def test_imperfect_match_and_superseded_drops() -> None:
    inputs = [(0, 0), (1, 1), (2, 0), (3, 0), (5, 1), (6, 0), (7, 1)]
    rec = Recorder(2)
    sets = rec.run(inputs)
    assert rec.stamps(sets) == [(0, 1), (6, 5)]
    # x (2 s) loses to b (3 s) when B arrives; b loses to c (6 s) when c arrives.
    assert rec.drops == [(4, 0, 2, DropReason.SUPERSEDED), (5, 0, 3, DropReason.SUPERSEDED)]
    assert [index for index, _ in rec.sets_at] == [2, 5]
    assert rec.flush() == []
    assert rec.drops[-1] == (-1, 1, 6, DropReason.END_OF_INPUT)


def test_acceleration() -> None:
    inputs = [(0, 0), (7, 1), (12, 0), (15, 1), (17, 0), (18, 1)]
    assert run_stamps(inputs) == [(12, 7), (17, 18)]


DROPPED = [(0, 0), (1, 1), (3, 1), (4, 0), (7, 1), (8, 0), (10, 0), (11, 1), (13, 0), (14, 1)]


def test_queue_size_one_overflow_drops() -> None:
    rec = Recorder(2, queue_size=1)
    sets = rec.run(DROPPED)
    assert rec.stamps(sets) == [(4, 3), (10, 11)]
    # B overflows stream 1: A goes; the candidate (a, A) is destroyed, and a cannot start a set
    # whose end stream just dropped a message. Same story for c, then C, when d arrives.
    assert rec.drops == [
        (2, 1, 1, DropReason.QUEUE_OVERFLOW),
        (2, 0, 0, DropReason.AFTER_OVERFLOW),
        (6, 0, 5, DropReason.QUEUE_OVERFLOW),
        (6, 1, 4, DropReason.AFTER_OVERFLOW),
    ]
    assert rec.flush() == [(13, 14)]
    assert rec.policy.counters.by_reason() == {
        DropReason.QUEUE_OVERFLOW: 2,
        DropReason.AFTER_OVERFLOW: 2,
    }


def test_queue_size_two_is_just_enough() -> None:
    assert run_stamps(DROPPED, queue_size=2) == [(0, 1), (4, 3), (8, 7), (10, 11)]


def test_long_queue() -> None:
    inputs = [(t, 0) for t in range(9)] + [(3, 1)] + [(9, 0), (10, 0), (11, 0), (12, 0)]
    inputs += [(10, 1), (13, 0)]
    rec = Recorder(2, queue_size=5)
    assert rec.stamps(rec.run(inputs)) == [(10, 10)]
    assert rec.policy.counters.get(0, DropReason.QUEUE_OVERFLOW) > 0


def test_double_publish() -> None:
    rec = Recorder(2)
    sets = rec.run([(0, 0), (1, 1), (3, 1), (3, 0)])
    assert rec.stamps(sets) == [(0, 1), (3, 3)]
    assert [index for index, _ in rec.sets_at] == [3, 3]  # both sets from the last message


def test_four_topics() -> None:
    inputs = [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (5, 0),
        (5, 3),
        (6, 1),
        (6, 2),
        (8, 0),
        (9, 1),
        (10, 2),
        (11, 3),
        (10, 0),
        (13, 0),
        (14, 1),
    ]
    assert run_stamps(inputs, num_streams=4) == [(0, 1, 2, 3), (5, 6, 6, 5), (10, 9, 10, 11)]


def test_early_publish() -> None:
    inputs = [(0, 0), (1, 1), (2, 2), (3, 3), (7, 0)]
    assert run_stamps(inputs, num_streams=4) == [(0, 1, 2, 3)]


RATE = [(0, 0), (1, 1), (3, 0), (4, 1), (6, 0), (7, 1)]


def test_rate_bound_too_small_to_prove() -> None:
    assert run_stamps(RATE, inter_message_lower_bounds_ns=[int(1.5 * S), 0]) == [(0, 1), (3, 4)]


def test_rate_bound_proves_optimality_early() -> None:
    assert run_stamps(RATE, inter_message_lower_bounds_ns=[2 * S, 0]) == [(0, 1), (3, 4), (6, 7)]


def test_bound_violation_is_logged_once_and_still_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inputs = [(0, 0), (0.5, 0), (0.9, 0), (1, 1)]
    with caplog.at_level(logging.WARNING, logger="fusionrt.runtime.sync.approximate_time"):
        out = run_stamps(inputs, inter_message_lower_bounds_ns=[S, 0])
    assert sum("closer" in r.getMessage() for r in caplog.records) == 1
    # As in the C++, a wrong bound is trusted: the next stream-0 message is assumed >= 1.9 s,
    # which "proves" (0.9, 1) optimal at once; without the bound the set would wait.
    assert out == [(0.9, 1)]
    assert run_stamps(inputs) == []


# -- max interval, age penalty ------------------------------------------------------------


def test_max_interval_drops_wide_sets() -> None:
    rec = Recorder(2, max_interval_ns=2 * S)
    assert rec.run([(0, 0), (3, 1), (10, 0), (11, 1)]) == []
    assert rec.drops == [
        (1, 0, 0, DropReason.OUTSIDE_INTERVAL),
        (2, 1, 1, DropReason.OUTSIDE_INTERVAL),
    ]
    assert rec.flush() == [(10, 11)]


def test_max_interval_is_inclusive() -> None:
    assert run_stamps([(0, 0), (2, 1), (5, 0)], max_interval_ns=2 * S) == [(0, 2)]
    assert run_stamps([(0, 0), (2, 1), (5, 0)], max_interval_ns=2 * S - 1) == []


def test_max_interval_with_lower_bound_publishes_at_once() -> None:
    inputs = [(0, 0), (3, 1), (10, 0), (11, 1)]
    options = {"max_interval_ns": 2 * S, "inter_message_lower_bounds_ns": [5 * S, 0]}
    assert run_stamps(inputs, **options) == [(10, 11)]


@pytest.mark.parametrize(("age_penalty", "expected"), [(0.0, (4, 3)), (0.1, (4, 3)), (2.0, (0, 3))])
def test_age_penalty_prefers_earlier_sets(age_penalty: float, expected: tuple[int, int]) -> None:
    # Candidates (a0, B3) then (a4, B3): the later one is tighter (1 s vs 3 s) but later; it
    # wins unless (4 - 3) × (1 + penalty) >= 4 - 0... i.e. the comparison the C++ makes.
    assert run_stamps([(0, 0), (3, 1), (4, 0)], age_penalty=age_penalty) == [expected]


def test_ties_go_to_the_lower_stream_for_start_and_higher_for_end() -> None:
    # All heads equal: start is stream 0, pivot is stream 2; the set comes out at once.
    assert run_stamps([(1, 0), (1, 1), (1, 2)], num_streams=3) == [(1, 1, 1)]


# -- flush -------------------------------------------------------------------------------


def test_flush_publishes_the_pending_candidate_then_resets() -> None:
    rec = Recorder(2)
    assert rec.run([(0, 0), (1, 1)]) == []
    assert rec.flush() == [(0, 1)]
    assert rec.policy.pending == 0
    # Afresh: the same input behaves the same.
    assert rec.stamps(rec.policy.push(0, 0, 0) + rec.policy.push(1, S, 1)) == []
    assert rec.flush() == [(0, 1)]


def test_flush_continues_the_search_after_publishing() -> None:
    rec = Recorder(3)
    rec.run([(0, 0), (0, 1), (1, 2), (2, 0), (2, 1), (3, 2)])
    out = rec.stamps([items for _, items in rec.sets_at]) + rec.flush()
    assert out == [(0, 0, 1), (2, 2, 3)]


def test_flush_reports_every_remaining_message() -> None:
    rec = Recorder(3)
    rec.run([(0, 0), (1, 0), (2, 0), (1, 1)])
    assert rec.flush() == []
    assert sorted(item for _, _, item, _ in rec.drops) == [0, 1, 2, 3]
    assert {reason for *_, reason in rec.drops} == {DropReason.END_OF_INPUT}


# -- input checks ------------------------------------------------------------------------


def test_invalid_options() -> None:
    with pytest.raises(SyncConfigError):
        ApproximateTimePolicy(2, 0)
    with pytest.raises(ValueError):  # SyncConfigError is also a ValueError
        ApproximateTimePolicy(2, 5, age_penalty=-0.5)
    with pytest.raises(ValueError):
        ApproximateTimePolicy(2, 5, max_interval_ns=-1)
    with pytest.raises(ValueError):
        ApproximateTimePolicy(2, 5, inter_message_lower_bounds_ns=[0])
    with pytest.raises(ValueError):
        ApproximateTimePolicy(2, 5, inter_message_lower_bounds_ns=[0, -1])
    policy = ApproximateTimePolicy(2, 5)
    assert policy.max_interval_ns == DEFAULT_MAX_INTERVAL_NS
    with pytest.raises(IndexError):
        policy.push(2, 0)
    with pytest.raises(TypeError):
        policy.push(0, 1.5)  # type: ignore[arg-type]
    assert policy.push(0, np.int64(5)) == []  # numpy integers are fine


def test_out_of_order_input_is_kept_in_arrival_order_like_the_cpp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="fusionrt.runtime.sync.approximate_time"):
        rec = Recorder(2)
        rec.run([(5, 0), (3, 0), (4, 1), (9, 0)])
    assert any("out of order" in r.getMessage() for r in caplog.records)
    assert rec.policy.pending_stamps(0)[:1] in ([5 * S], [3 * S], [])


# -- rclcpp Duration * double ------------------------------------------------------------


def _long_double_scaled(d: int, scale: float) -> int:
    return int(np.trunc(np.longdouble(d) * np.longdouble(scale)))


@pytest.mark.skipif(np.finfo(np.longdouble).nmant != 63, reason="needs x86 80-bit long double")
def test_duration_scaling_matches_long_double() -> None:
    rng = random.Random(1)
    scales = [1.1, 1.0, 1.5, 1 + 1 / 3, 2.0, 1.0000001, 3.7, 1 + 2**-52]
    for _ in range(20000):
        scale = rng.choice([*scales, 1 + rng.random() * 4])
        scaled = make_duration_scaler(scale)
        magnitude = rng.choice([10, 10**6, 10**9, 10**12, 2**53, 10**17, 2**62 // 4])
        d = rng.randint(-magnitude, magnitude)
        want = _long_double_scaled(d, scale)
        assert scaled(d) == want, (d, scale)
        assert scaled.exact(d) == want, (d, scale)  # type: ignore[attr-defined]


@pytest.mark.skipif(np.finfo(np.longdouble).nmant != 63, reason="needs x86 80-bit long double")
def test_duration_scaling_near_integers() -> None:
    # Products that land within an ulp of an integer are where double and long double differ.
    rng = random.Random(2)
    for _ in range(5000):
        den = rng.choice([3, 7, 10, 1000, 2**20 + 1])
        d = rng.randint(1, 2**60 // den) * den  # int64 durations only
        scale = 1.0 + rng.randint(1, den - 1) / den
        scaled = make_duration_scaler(scale)
        for dd in (d, d + 1, d - 1, -d):
            assert scaled(dd) == _long_double_scaled(dd, scale), (dd, scale)


def test_duration_scaling_default_penalty() -> None:
    scaled = make_duration_scaler(1.0 + 0.1)
    assert scaled(0) == 0
    assert scaled(10) == 11
    assert scaled(1) == 1
    assert scaled(-10) == -11
    assert scaled(-9) == -9  # truncation toward zero
    assert scaled(3 * S) == 3_300_000_000
