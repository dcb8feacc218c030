"""Hypothesis properties of ApproximateTimePolicy: the guarantees message_filters documents.

* every pushed message ends in exactly one set or exactly one drop report (after ``flush``);
* each message is used at most once and sets never cross (per stream strictly increasing);
* the output depends only on the stamps: not on the payloads, and (queues large enough) not on
  how the streams interleave;
* sets are contiguous to the previous set and of minimal (age-penalised) size among the sets
  contiguous to it — checked by brute force;
* inter-message lower bounds that hold change when sets come out, never which sets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.sync import ApproximateTimePolicy


@dataclass
class Input:
    streams: list[list[int]]  # per stream, strictly increasing stamps
    order: list[int]  # arrival order: stream of each push (per-stream order kept)

    @property
    def pushes(self) -> list[tuple[int, int, tuple[int, int]]]:
        """(stream, stamp, (stream, index in stream)) in arrival order."""
        cursors = [0] * len(self.streams)
        out = []
        for stream in self.order:
            index = cursors[stream]
            cursors[stream] += 1
            out.append((stream, self.streams[stream][index], (stream, index)))
        return out


@st.composite
def inputs(
    draw: st.DrawFn,
    *,
    min_streams: int = 2,
    max_streams: int = 4,
    max_len: int = 12,
    unit: int = 1,
    max_gap: int = 6,
) -> Input:
    n = draw(st.integers(min_streams, max_streams))
    streams = []
    for _ in range(n):
        start = draw(st.integers(0, 10))
        gaps = draw(st.lists(st.integers(1, max_gap), max_size=max_len))
        stamps = list(itertools.accumulate([start, *gaps]))
        streams.append([s * unit for s in stamps])
    order = [i for i, s in enumerate(streams) for _ in s]
    order = draw(st.permutations(order))
    # permutations of the stream labels keep each stream's own order once replayed in sequence
    return Input(streams, list(order))


def run(
    inp: Input,
    queue_size: int = 1000,
    flush: bool = True,
    payload: dict | None = None,
    **options: object,
) -> tuple[list[tuple[tuple[int, int], ...]], dict]:
    """Sets as tuples of (stream, index) and drops {(stream, index): [reasons]}."""
    drops: dict[tuple[int, int], list[str]] = {}
    key_of = {}
    policy = ApproximateTimePolicy(
        len(inp.streams),
        queue_size,
        on_drop=lambda s, t, item, reason, d: drops.setdefault(key_of[item], []).append(reason),
        **options,  # type: ignore[arg-type]
    )
    sets = []
    for stream, stamp, key in inp.pushes:
        item = payload[key] if payload is not None else key
        key_of[item] = key
        sets.extend(policy.push(stream, stamp, item))
    if flush:
        sets.extend(policy.flush())
    return [tuple(key_of[item] for item in s) for s in sets], drops


options_strategy = st.fixed_dictionaries(
    {
        "queue_size": st.integers(1, 6) | st.just(1000),
        "age_penalty": st.sampled_from([0.0, 0.1, 0.5, 2.0]),
        "max_interval_ns": st.none() | st.integers(0, 12),
    }
)


@settings(max_examples=300, deadline=None)
@given(inputs(), options_strategy, st.data())
def test_every_message_in_one_set_or_dropped_once(
    inp: Input, options: dict, data: st.DataObject
) -> None:
    n = len(inp.streams)
    bounds = data.draw(st.none() | st.lists(st.integers(0, 4), min_size=n, max_size=n))
    sets, drops = run(inp, inter_message_lower_bounds_ns=bounds, **options)
    used = [key for s in sets for key in s]
    assert len(used) == len(set(used)), "a message was used twice"
    assert all(len(reasons) == 1 for reasons in drops.values()), "a drop was reported twice"
    assert not set(used) & set(drops), "a message was used and dropped"
    everything = {key for *_, key in inp.pushes}
    assert set(used) | set(drops) == everything


@settings(max_examples=300, deadline=None)
@given(inputs(), options_strategy)
def test_sets_never_cross(inp: Input, options: dict) -> None:
    sets, _ = run(inp, **options)
    for s in sets:
        assert [stream for stream, _ in s] == list(range(len(inp.streams)))
    for before, after in itertools.pairwise(sets):
        for (_, i), (_, j) in zip(before, after, strict=True):
            assert i < j


@settings(max_examples=200, deadline=None)
@given(inputs(), options_strategy, st.randoms(use_true_random=False))
def test_output_depends_only_on_stamps_not_payloads(inp: Input, options: dict, rnd) -> None:
    keys = [key for *_, key in inp.pushes]
    shuffled = keys[:]
    rnd.shuffle(shuffled)
    payload = {key: ("payload", other) for key, other in zip(keys, shuffled, strict=True)}
    assert run(inp, payload=payload, **options) == run(inp, **options)


@settings(max_examples=300, deadline=None)
@given(
    inputs(),
    st.sampled_from([0.0, 0.1, 0.5]),
    st.none() | st.integers(0, 12),
    st.randoms(use_true_random=False),
)
def test_output_does_not_depend_on_interleaving(
    inp: Input, age_penalty: float, max_interval: int | None, rnd
) -> None:
    # message_filters: "The output only depends on the time stamps, not on the arrival time of
    # messages" (messages in order per topic, queues large enough).
    other = list(inp.order)
    rnd.shuffle(other)
    a = run(inp, age_penalty=age_penalty, max_interval_ns=max_interval)[0]
    b = run(Input(inp.streams, other), age_penalty=age_penalty, max_interval_ns=max_interval)[0]
    assert a == b


@settings(max_examples=300, deadline=None)
@given(inputs(max_streams=4), st.sampled_from([0.0, 0.1, 0.5]), st.data())
def test_valid_lower_bounds_change_timing_not_sets(
    inp: Input, age_penalty: float, data: st.DataObject
) -> None:
    bounds = []
    for stamps in inp.streams:
        smallest = min((b - a for a, b in itertools.pairwise(stamps)), default=10)
        bounds.append(data.draw(st.integers(0, smallest)))
    with_bounds = run(inp, age_penalty=age_penalty, inter_message_lower_bounds_ns=bounds)[0]
    assert with_bounds == run(inp, age_penalty=age_penalty)[0]


def _penalised_size(stamps: tuple[int, ...], penalty_tenths: int) -> int:
    # (1 + p) · end - start, times 10 to stay in integers (p in tenths).
    return (10 + penalty_tenths) * max(stamps) - 10 * min(stamps)


@settings(max_examples=400, deadline=None)
@given(inputs(max_streams=3, max_len=7, unit=10), st.sampled_from([0, 1, 5]))
def test_sets_are_contiguous_and_minimal(inp: Input, penalty_tenths: int) -> None:
    # Stamps are multiples of 10 ns so that rclcpp's truncated Duration × (1 + p) equals the
    # exact product and "size" is an exact integer.
    sets, _ = run(inp, age_penalty=penalty_tenths / 10)
    n = len(inp.streams)
    previous = [-1] * n  # index of the previous set's message per stream
    for s in sets:
        chosen = [index for _, index in s]
        assert any(chosen[i] == previous[i] + 1 for i in range(n)), "set not contiguous"
        size = _penalised_size(tuple(inp.streams[i][chosen[i]] for i in range(n)), penalty_tenths)
        best = None
        ranges = [range(previous[i] + 1, len(inp.streams[i])) for i in range(n)]
        for combo in itertools.product(*ranges):
            if not any(combo[i] == previous[i] + 1 for i in range(n)):
                continue
            candidate = _penalised_size(
                tuple(inp.streams[i][combo[i]] for i in range(n)), penalty_tenths
            )
            best = candidate if best is None else min(best, candidate)
        assert size == best, (s, size, best)
        previous = chosen
