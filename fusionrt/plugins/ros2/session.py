"""Opening a Zenoh session the way a ROS 2 node on rmw_zenoh needs one.

The options are those of a pipeline's ``live:`` section (and of the ``ros2`` source, sink and
``fusionrt play``): ``domain_id``, ``mode`` (``peer``, as rmw_zenoh's nodes run, or ``client``
of a router such as ``rmw_zenohd``), ``connect`` and ``listen`` endpoints, and
``multicast_scouting``. Multicast scouting is off unless asked for: like rmw_zenoh, fusionrt
finds its peers through the endpoints it is given (and the router's gossip), never by
broadcasting on whatever network the car is on. An empty ``listen`` binds nothing (Zenoh's own
default would listen on every interface); give ``tcp/127.0.0.1:0`` to accept direct
connections from other peers on this machine as rmw_zenoh's sessions do. Every invalid option
is a :class:`~fusionrt.runtime.errors.ConfigError` naming it; a session that cannot open (a
client without its router, a port in use) is a
:class:`~fusionrt.runtime.errors.SourceError` naming the endpoints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fusionrt.plugins.ros2.wire import validate_namespace, validate_node_name
from fusionrt.runtime.errors import ConfigError, SourceError

if TYPE_CHECKING:
    import zenoh

__all__ = ["MODES", "SessionOptions", "open_session"]

#: The Zenoh modes a ROS 2 node may run in.
MODES = ("peer", "client")

_ENDPOINT_RE = re.compile(r"[a-z][a-z0-9-]*/\S+")
_RUST_LOCATION_RE = re.compile(r"\s+at \S+\.rs:\d+\.?")  # where in Zenoh's source: noise here


@dataclass(frozen=True)
class SessionOptions:
    """Validated settings of one session and of the node on it (see the module docstring).

    ``node_name`` / ``namespace`` name the ROS 2 node fusionrt shows on the session.
    """

    domain_id: int = 0
    mode: str = "peer"
    connect: tuple[str, ...] = ()
    listen: tuple[str, ...] = ()
    multicast_scouting: bool = False
    node_name: str = "fusionrt"
    namespace: str = "/"

    def __post_init__(self) -> None:
        domain = self.domain_id
        if isinstance(domain, bool) or not isinstance(domain, int) or domain < 0:
            raise ConfigError(f"domain_id must be an integer >= 0, got {domain!r}", key="domain_id")
        if self.mode not in MODES:
            raise ConfigError(
                f"mode must be one of {', '.join(MODES)}, got {self.mode!r}", key="mode"
            )
        object.__setattr__(self, "connect", _endpoints(self.connect, "connect"))
        object.__setattr__(self, "listen", _endpoints(self.listen, "listen"))
        if not isinstance(self.multicast_scouting, bool):
            raise ConfigError(
                f"multicast_scouting must be true or false, got {self.multicast_scouting!r}",
                key="multicast_scouting",
            )
        if self.mode == "client" and not self.connect:
            raise ConfigError(
                "a client must connect to a router: give connect (e.g. tcp/127.0.0.1:7447)",
                key="connect",
            )
        for key, check in (("node_name", validate_node_name), ("namespace", validate_namespace)):
            try:
                check(getattr(self, key))
            except ValueError as exc:
                raise ConfigError(str(exc), key=key) from None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], owner: str) -> SessionOptions:
        """Options from keyword arguments; an unknown one is a ConfigError naming ``owner``."""
        known = cls.__dataclass_fields__
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(
                f"{owner}: unknown option {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(known)})",
                key=unknown[0],
            )
        return cls(**options)

    def zenoh_config(self) -> zenoh.Config:
        """The Zenoh configuration of these options."""
        import zenoh  # noqa: PLC0415  (Zenoh loads its Rust core: only when a session opens)

        config = zenoh.Config()
        config.insert_json5("mode", json.dumps(self.mode))
        config.insert_json5("connect/endpoints", json.dumps(list(self.connect)))
        config.insert_json5("listen/endpoints", json.dumps(list(self.listen)))
        config.insert_json5("scouting/multicast/enabled", json.dumps(self.multicast_scouting))
        return config


def _endpoints(value: Iterable[str] | str | None, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(
            f"{key} must be a list of endpoints (e.g. [tcp/127.0.0.1:7447]), got {value!r}",
            key=key,
        )
    endpoints = tuple(value)
    for endpoint in endpoints:
        if not isinstance(endpoint, str) or not _ENDPOINT_RE.fullmatch(endpoint):
            raise ConfigError(
                f"{endpoint!r} is not a Zenoh endpoint (PROTOCOL/ADDRESS, e.g. tcp/127.0.0.1:7447)",
                key=key,
            )
    return endpoints


def open_session(options: SessionOptions) -> zenoh.Session:
    """A Zenoh session with ``options``; SourceError naming the endpoints if it cannot open."""
    import zenoh  # noqa: PLC0415

    try:
        return zenoh.open(options.zenoh_config())
    except zenoh.ZError as exc:
        raise SourceError(
            f"cannot open a Zenoh session ({options.mode}): "
            f"{_RUST_LOCATION_RE.sub('', str(exc)).strip()}",
            connect=list(options.connect) or None,
            listen=list(options.listen) or None,
        ) from None
