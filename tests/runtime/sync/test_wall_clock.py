"""The live run's clock: wall time in the stamps' domain, never later than an arrival."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.runtime.sync.clock import WallClock


class FakeLocal:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@given(
    offset=st.integers(-(10**12), 10**12),
    messages=st.lists(
        st.tuples(st.integers(1, 10**8), st.integers(0, 50 * 10**6)), min_size=1, max_size=40
    ),
    timeout=st.integers(1, 10**9),
)
@settings(max_examples=300, deadline=None)
def test_a_deadline_is_reached_at_most_timeout_after_its_message_arrived(offset, messages, timeout):
    """Whatever the clock offset and the latencies, ``stamp + timeout`` is reached on the clock
    no later than ``arrival + timeout`` on the local clock."""
    local = FakeLocal()
    clock = WallClock(local, window_ns=10**12)
    stamp = 10**18
    for gap, latency in messages:
        stamp += gap
        arrival = stamp + offset + latency
        local.now = max(local.now, arrival)
        clock.observe(stamp, local.now)
        local.now += timeout
        now = clock.now_ns()
        assert now is not None and now >= stamp + timeout


def test_before_any_message_there_is_no_now():
    assert WallClock(FakeLocal()).now_ns() is None


def test_the_estimate_follows_a_sensor_clock_step_within_the_window():
    local = FakeLocal()
    clock = WallClock(local, window_ns=1_000)
    for t in range(0, 5_000, 100):  # latency 5, then the sensor clock steps 1 s ahead
        local.now = t
        clock.observe(t - 5 if t < 2_000 else t - 5 + 10**9, t)
    assert clock.offset_ns == 5 - 10**9
    local.now = 5_000
    assert clock.now_ns() == 5_000 + 10**9 - 5
