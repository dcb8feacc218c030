"""The back-off between a live source's attempts to reopen its device or stream."""

from __future__ import annotations

import threading

import pytest

from fusionrt.plugins.sources.retry import Backoff


def test_backoff_retries_at_once_then_doubles_to_its_cap_and_resets():
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next_delay_s() for _ in range(6)] == [0.0, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert backoff.attempts == 6
    backoff.reset()
    assert backoff.next_delay_s() == 0.0


def test_backoff_wait_gives_up_when_stopped():
    stop = threading.Event()
    backoff = Backoff(60.0, 60.0)
    assert backoff.wait(stop)  # the first attempt is at once
    stop.set()
    assert not backoff.wait(stop)  # a 60 s wait, ended by the stop event
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)
