"""What the ROS 2 tests share: loopback endpoints, raw Zenoh sessions, waiting with a deadline.

Every session a test opens listens and connects on ``tcp/127.0.0.1:<free port>`` only, with
multicast scouting off, and is closed by the fixture that opened it. The raw sessions here use
``zenoh`` directly, not fusionrt's helpers: they play the other ROS 2 nodes.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import zenoh

T = TypeVar("T")

#: How long a test waits for something to arrive before it fails.
TIMEOUT_S = 20.0


def free_endpoint() -> str:
    """A ``tcp/127.0.0.1:PORT`` endpoint on a port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp/127.0.0.1:{sock.getsockname()[1]}"


def raw_config(*, listen: tuple[str, ...] = (), connect: tuple[str, ...] = ()) -> zenoh.Config:
    """A peer's configuration: these endpoints only, no multicast scouting."""
    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("listen/endpoints", json.dumps(list(listen)))
    config.insert_json5("connect/endpoints", json.dumps(list(connect)))
    config.insert_json5("scouting/multicast/enabled", "false")
    return config


def wait_for(what: str, get: Callable[[], T | None], timeout_s: float = TIMEOUT_S) -> T:
    """Poll ``get`` until it returns something truthy; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = get()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


class Graph:
    """A liveliness subscriber on ``@ros2_lv/<domain>/**``: what ``ros2 node list`` reads."""

    def __init__(self, session: zenoh.Session, domain_id: int = 0) -> None:
        self.alive: set[str] = set()
        self.gone: set[str] = set()
        self._lock = threading.Lock()
        self._subscriber = session.liveliness().declare_subscriber(
            f"@ros2_lv/{domain_id}/**", self._on, history=True
        )

    def _on(self, sample: zenoh.Sample) -> None:
        key = str(sample.key_expr)
        with self._lock:
            if sample.kind == zenoh.SampleKind.PUT:
                self.alive.add(key)
            else:
                self.alive.discard(key)
                self.gone.add(key)

    def tokens(self, kind: str) -> list[list[str]]:
        """The alive tokens of ``kind`` (NN, MP, MS), split at '/'."""
        with self._lock:
            return [k.split("/") for k in self.alive if k.split("/")[5] == kind]
