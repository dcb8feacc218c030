"""What the ROS 2 tests share: loopback endpoints, raw Zenoh sessions, waiting with a deadline.

Every session a test opens listens and connects on ``tcp/127.0.0.1:<free port>`` only, with
multicast scouting off, and is closed by the fixture that opened it. The raw sessions here use
``zenoh`` directly, not fusionrt's helpers: they play the other ROS 2 nodes.
"""

from __future__ import annotations

import json
import socket
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
