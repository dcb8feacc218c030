"""DropCounters and StaleDetector (against a brute-force model)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.sync import DropCounters, DropReason, StaleDetector


def test_drop_counters() -> None:
    counters = DropCounters()
    counters.add("cam", DropReason.SUPERSEDED)
    counters.add("cam", DropReason.SUPERSEDED)
    counters.add("lidar", DropReason.QUEUE_OVERFLOW, 3)
    assert counters.total == 5
    assert counters.get("cam", DropReason.SUPERSEDED) == 2
    assert counters.get("cam", DropReason.TOO_OLD) == 0
    assert counters.by_reason() == {"superseded": 2, "queue_overflow": 3}
    assert counters.by_source() == {"cam": 2, "lidar": 3}
    assert counters.as_dict() == {"cam": {"superseded": 2}, "lidar": {"queue_overflow": 3}}
    counters.clear()
    assert counters.total == 0


def test_reasons_are_distinct_words() -> None:
    assert len(set(DropReason.ALL)) == len(DropReason.ALL)
    assert all(r.isidentifier() and r.islower() for r in DropReason.ALL)


def test_invalid_periods() -> None:
    with pytest.raises(ValueError):
        StaleDetector({"a": 0})
    with pytest.raises(ValueError):
        StaleDetector({"a": 10}, factor=0)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from("abc"), st.integers(1, 20), min_size=1),
    st.floats(0.5, 4.0),
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 15)), max_size=60),
)
def test_stale_detector_matches_a_brute_force_model(
    periods: dict[str, int], factor: float, steps: list[tuple[str, int]]
) -> None:
    reports: list[tuple[str, int | None, int]] = []
    detector = StaleDetector(periods, factor, lambda *a: reports.append(a))
    limits = {s: int(p * factor) for s, p in periods.items()}
    last: dict[str, int | None] = dict.fromkeys(periods)
    stale: set[str] = set()
    expected: list[tuple[str, int | None, int]] = []
    origin = None
    now = 0
    for sensor, gap in steps:
        now += gap
        detector.seen(sensor, now)
        detector.check(now)
        # model
        if sensor in periods:
            last[sensor] = now
            stale.discard(sensor)
        if origin is None:
            origin = now
        for name in periods:
            since = origin if last[name] is None else last[name]
            if name not in stale and now - since > limits[name]:
                stale.add(name)
                expected.append((name, last[name], now))
    assert reports == expected
