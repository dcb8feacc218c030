"""Fixtures of the ROS 2 tests: loopback endpoints and raw Zenoh sessions closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import zenoh
from zenoh_helpers import free_endpoint, raw_config


@pytest.fixture
def endpoint() -> str:
    """A free ``tcp/127.0.0.1:PORT`` endpoint."""
    return free_endpoint()


@pytest.fixture
def raw_session() -> Iterator[Callable[..., zenoh.Session]]:
    """``raw_session(listen=(...), connect=(...))``: a plain Zenoh peer, closed at teardown."""
    sessions: list[zenoh.Session] = []

    def open_(*, listen: tuple[str, ...] = (), connect: tuple[str, ...] = ()) -> zenoh.Session:
        session = zenoh.open(raw_config(listen=listen, connect=connect))
        sessions.append(session)
        return session

    yield open_
    for session in reversed(sessions):
        session.close()
