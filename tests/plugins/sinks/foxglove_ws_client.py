"""The client side of the Foxglove WebSocket protocol, as much as the tests need: a client that
connects like the Foxglove app, reads ``serverInfo`` and the channel advertisements, subscribes,
and decodes each binary ``messageData`` with the protobuf schema its channel advertised.

The rules, from the protocol's specification (https://github.com/foxglove/ws-protocol,
``docs/spec.md``) and foxglove-sdk's server (``rust/foxglove/src/websocket``):

* the client asks for a subprotocol; foxglove-sdk 0.30 accepts only ``foxglove.sdk.v1`` (the
  spec's ``foxglove.websocket.v1`` is answered with HTTP 400);
* text frames are JSON with an ``op``: the server sends ``serverInfo`` first, then
  ``advertise`` (``channels``: ``id``, ``topic``, ``encoding``, ``schemaName``, ``schema``,
  ``schemaEncoding``); a ``protobuf`` schema is a base64 ``FileDescriptorSet``;
* the client sends ``{"op": "subscribe", "subscriptions": [{"id", "channelId"}]}``;
* a binary frame whose first byte is 1 is ``messageData``: little-endian ``uint32``
  subscription id, ``uint64`` log time (ns), then the message's bytes.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from sink_support import decode_protobuf
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_DATA = 1
_MESSAGE_DATA_HEADER = struct.Struct("<BIQ")


@dataclass(frozen=True)
class Advertised:
    """A channel as the server advertised it."""

    id: int
    topic: str
    encoding: str
    schema_name: str
    schema_encoding: str
    schema: bytes


@dataclass(frozen=True)
class Received:
    """A ``messageData``: its channel's topic, log time and the raw message bytes."""

    topic: str
    log_time_ns: int
    data: bytes
    schema_name: str
    schema: bytes = field(repr=False)

    def decoded(self) -> Any:
        """The message decoded with its channel's advertised schema."""
        return decode_protobuf(self.schema_name, self.schema, self.data)


class FoxgloveClient:
    """A connection to a Foxglove WebSocket server (module docstring). ``receive_buffer``
    shrinks the socket's receive buffer and ``max_queue`` the frames the library reads ahead:
    a client that then never calls :meth:`receive` stalls the server's sends to it."""

    def __init__(
        self,
        url: str,
        *,
        receive_buffer: int | None = None,
        max_queue: int = 16,
        timeout_s: float = 10.0,
    ) -> None:
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connect: it bounds the TCP window offered
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout_s)
        sock.connect((host, int(port)))
        self.timeout_s = timeout_s
        self._stack = ExitStack()
        self.connection: ClientConnection = self._stack.enter_context(
            connect(
                url,
                sock=sock,
                subprotocols=[SUBPROTOCOL],
                max_size=None,
                max_queue=max_queue,
                open_timeout=timeout_s,
                close_timeout=1,
                ping_interval=None,  # no keepalive: a stalled client stays stalled, not closed
            )
        )
        self.server_info: dict[str, Any] = {}
        self.closed_by_server = False
        self.channels: dict[int, Advertised] = {}
        self._subscribed: dict[int, Advertised] = {}  # subscription id -> channel

    @property
    def subprotocol(self) -> str | None:
        return self.connection.subprotocol

    def read_advertisements(self, topics: set[str]) -> dict[str, Advertised]:
        """Read ``serverInfo`` and advertisements until every topic of ``topics`` is
        advertised; the advertised channels by topic."""
        while not topics <= {c.topic for c in self.channels.values()}:
            self._handle_text(json.loads(self.connection.recv(timeout=self.timeout_s)))
        return {c.topic: c for c in self.channels.values()}

    def subscribe(self, topics: set[str]) -> None:
        """Subscribe to the advertised channels of ``topics``."""
        chosen = [c for c in self.channels.values() if c.topic in topics]
        subscriptions = []
        for channel in chosen:
            subscription = len(self._subscribed) + 1
            self._subscribed[subscription] = channel
            subscriptions.append({"id": subscription, "channelId": channel.id})
        self.connection.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))

    def receive(self, timeout_s: float | None = None) -> Received | None:
        """The next ``messageData`` (text frames met on the way are handled), or ``None``
        after ``timeout_s`` without one or once the server has closed the connection
        (:attr:`closed_by_server`)."""
        while True:
            try:
                frame = self.connection.recv(
                    timeout=self.timeout_s if timeout_s is None else timeout_s
                )
            except TimeoutError:
                return None
            except ConnectionClosed:
                self.closed_by_server = True
                return None
            if isinstance(frame, str):
                self._handle_text(json.loads(frame))
                continue
            opcode, subscription, log_time = _MESSAGE_DATA_HEADER.unpack_from(frame)
            assert opcode == MESSAGE_DATA, opcode
            channel = self._subscribed[subscription]
            return Received(
                channel.topic,
                log_time,
                bytes(frame[_MESSAGE_DATA_HEADER.size :]),
                channel.schema_name,
                channel.schema,
            )

    def receive_until(self, done: Any, timeout_s: float | None = None) -> list[Received]:
        """Messages received until ``done(message)`` is true for one (included); fails on a
        silence of ``timeout_s``."""
        received = []
        while True:
            message = self.receive(timeout_s)
            assert message is not None, f"no message for {timeout_s or self.timeout_s} s"
            received.append(message)
            if done(message):
                return received

    def drain(self, quiet_s: float) -> list[Received]:
        """Every message until the server has been silent for ``quiet_s`` or has closed."""
        received = []
        while (message := self.receive(quiet_s)) is not None:
            received.append(message)
        return received

    def close(self) -> None:
        self._stack.close()

    def _handle_text(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "serverInfo":
            self.server_info = message
        elif op == "advertise":
            for c in message["channels"]:
                self.channels[c["id"]] = Advertised(
                    c["id"],
                    c["topic"],
                    c["encoding"],
                    c["schemaName"],
                    c["schemaEncoding"],
                    base64.b64decode(c["schema"]),
                )
        elif op == "unadvertise":
            for channel_id in message["channelIds"]:
                self.channels.pop(channel_id, None)
