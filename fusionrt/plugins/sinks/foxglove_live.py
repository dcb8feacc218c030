"""``foxglove`` sink: a live run served to the Foxglove app over its WebSocket protocol.

Open Foxglove, *Open connection* → *Foxglove WebSocket*, ``ws://HOST:PORT`` (default
``ws://127.0.0.1:8765``). The channels and their messages are those of the ``mcap`` file sink
(:mod:`~fusionrt.plugins.sinks.foxglove_channels`: same topics, schemas, frame ids, the camera's
recorded JPEG bytes), so a live view and a recording look the same.

The server is foxglove-sdk's (``foxglove.start_server``, protocol subprotocol
``foxglove.sdk.v1``) on a :class:`foxglove.Context` of the sink's own, so another sink or
library in the process logging through the SDK's global context does not mix into it. What
the SDK does, and this sink relies on:

* ``channel.log`` never blocks: each client has an outbox of ``backlog`` messages, and when a
  client does not read, the oldest of its outbox is dropped (its control messages, the
  advertisements, have a queue of the same size; a client that lets it fill is disconnected).
  So a slow or stalled client costs the run nothing. The SDK does not report how many it
  dropped (it logs "outbox for client ... full" at most every 30 s): the sink cannot count
  them.
* A channel no client subscribes to has no sinks (``has_sinks()``): a frame whose channels
  nobody watches is not converted at all (counted in :attr:`frames_unwatched`).
* The SDK keeps no latched messages (foxglove-sdk PR 300, closed). The static messages
  (transforms, camera calibrations) are therefore logged again, stamped at the earliest stamp
  of the latest frame: when a client subscribes to their channel (from the SDK's callback,
  before the next frame), and every ``static_period_s`` while frames are written, which also
  replaces a static message the SDK dropped from a slow client's outbox.

Options: ``host`` (default ``127.0.0.1``; ``0.0.0.0`` serves every interface), ``port``
(default 8765; 0 picks a free one), ``jpeg_quality`` (85: only for cameras recorded raw, as the
``mcap`` sink), ``backlog`` (messages queued per client, default 1024, the SDK's: about 170
frames of the sample drive, 20 MB), ``static_period_s`` (default 1.0). The sink writes no file;
the address it serves is printed to stderr when it starts (with ``port: 0``, the port picked).
A port that cannot be bound is a :class:`~fusionrt.runtime.errors.SinkError` naming it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import foxglove
import foxglove.channels
from foxglove.websocket import ChannelView, Client, ServerListener

from fusionrt.plugins.sinks.foxglove_channels import FoxgloveChannels, earliest_stamp
from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import SinkError
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.options import Option, resolve_options

__all__ = ["STOP_WAIT_S", "FoxgloveLiveSink"]

logger = logging.getLogger("fusionrt.foxglove")

#: how long ``close`` waits for the server to stop (it disconnects every client)
STOP_WAIT_S = 2.0


class _Subscriptions(ServerListener):
    """The SDK's callbacks (on its own thread): who watches what, and the static messages
    logged again for a client that subscribes to their channel."""

    def __init__(self, sink: FoxgloveLiveSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.by_client: dict[int, set[str]] = {}
        self.clients_seen: set[int] = set()

    def on_subscribe(self, client: Client, channel: ChannelView) -> None:
        with self._lock:
            if client.id not in self.clients_seen:
                logger.info("foxglove: client %d subscribed", client.id)
            self.clients_seen.add(client.id)
            self.by_client.setdefault(client.id, set()).add(channel.topic)
        self._sink._log_static({channel.topic})

    def on_unsubscribe(self, client: Client, channel: ChannelView) -> None:
        with self._lock:
            topics = self.by_client.get(client.id, set())
            topics.discard(channel.topic)
            if not topics:
                self.by_client.pop(client.id, None)

    def count(self) -> int:
        """Subscriptions now, over all clients."""
        with self._lock:
            return sum(len(topics) for topics in self.by_client.values())


class FoxgloveLiveSink(Sink):
    """Serves a run's Foxglove channels live (see the module docstring)."""

    name = "foxglove"
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "host": Option("127.0.0.1", str),
            "port": Option(8765, int, minimum=0, maximum=65535),
            "jpeg_quality": Option(85, int, minimum=1, maximum=100),
            "backlog": Option(1024, int, minimum=1),
            "static_period_s": Option(1.0, float, exclusive_minimum=0),
        }
    )

    def __init__(self, out_dir: Path = Path("out"), **options: Any) -> None:
        del out_dir  # a live server writes no file
        resolved = resolve_options(self.option_specs, options, owner=f"sink {self.name!r}")
        self.host: str = resolved["host"]
        self.jpeg_quality: int = resolved["jpeg_quality"]
        self.static_period_s: float = resolved["static_period_s"]
        #: frames converted and logged (some client watched), frames nobody watched
        self.frames_published = 0
        self.frames_unwatched = 0
        self._context = foxglove.Context()
        self._subscriptions = _Subscriptions(self)
        self._layout: FoxgloveChannels | None = None
        self._channels: dict[str, Any] = {}  # topic -> the SDK's typed channel
        self._frame_channels: list[Any] = []  # the channels of each frame's messages
        self._static_topics: frozenset[str] = frozenset()  # transforms, calibrations
        self._static_stamp_ns: int | None = None  # None until the first frame
        self._static_next_s = 0.0
        try:
            self._server: Any = foxglove.start_server(
                name="fusionrt",
                host=self.host,
                port=resolved["port"],
                context=self._context,
                server_listener=self._subscriptions,
                message_backlog_size=resolved["backlog"],
            )
        except RuntimeError as exc:  # the SDK's FoxgloveError: a bind that failed
            raise SinkError(
                f"cannot serve: {_sdk_cause(exc)}",
                sink=self.name,
                address=f"{self.host}:{resolved['port']}",
            ) from None
        self.port: int = self._server.port
        print(
            f"fusionrt: foxglove sink serving ws://{self.host}:{self.port} "
            "(open Foxglove, connect to it)",
            file=sys.stderr,
            flush=True,
        )

    @property
    def url(self) -> str:
        """The address a client connects to."""
        return f"ws://{self.host}:{self.port}"

    @property
    def subscriptions(self) -> int:
        """Channel subscriptions now, over all clients."""
        return self._subscriptions.count()

    @property
    def clients_seen(self) -> int:
        """Clients that subscribed to something during the run."""
        return len(self._subscriptions.clients_seen)

    def start(self, info: Any) -> None:
        """Create (and so advertise) the run's channels, from its rig and sensors."""
        if self._server is None:
            raise SinkError("start after close", sink=self.name, address=self.url)
        layout = FoxgloveChannels(info, self.jpeg_quality)
        for channel in layout.channels:
            channel_class = getattr(foxglove.channels, f"{channel.schema.__name__}Channel")
            self._channels[channel.topic] = channel_class(channel.topic, context=self._context)
        self._static_topics = frozenset(topic for topic, _ in layout.static_messages(0))
        self._frame_channels = [
            channel for topic, channel in self._channels.items() if topic not in self._static_topics
        ]
        self._layout = layout

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Log the frame's messages to the clients that watch them (never waits for one)."""
        if self._server is None:
            raise SinkError("write after close", sink=self.name, address=self.url)
        if self._layout is None:
            raise SinkError("write before start", sink=self.name, address=self.url)
        first = self._static_stamp_ns is None
        self._static_stamp_ns = earliest_stamp(frame)
        now = time.monotonic()
        if first or now >= self._static_next_s:
            self._static_next_s = now + self.static_period_s
            self._log_static(self._static_topics)
        if not any(channel.has_sinks() for channel in self._frame_channels):
            self.frames_unwatched += 1
            return
        log_time = int(frame.stamp_ns)
        for topic, message in self._layout.frame_messages(frame, detections):
            channel = self._channels[topic]
            if channel.has_sinks():
                channel.log(message, log_time=log_time)
        self.frames_published += 1

    def _log_static(self, topics: Collection[str]) -> None:
        """Log the static messages of ``topics`` that some client watches, stamped at the
        latest frame's earliest stamp; before the first frame, nothing (it logs them all)."""
        stamp, layout = self._static_stamp_ns, self._layout
        if stamp is None or layout is None:
            return
        for topic, message in layout.static_messages(stamp):  # the mcap sink's order
            channel = self._channels[topic]
            if topic in topics and channel.has_sinks():
                channel.log(message, log_time=stamp)

    def close(self) -> None:
        """Stop the server (clients are disconnected), waiting at most ``STOP_WAIT_S``;
        idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        # The SDK's stop sends each client a Close frame and waits until it is sent, without a
        # time limit: behind the unread bytes of a client that does not read, that is until
        # the client reads or TCP gives up (minutes). The run does not wait for it.
        stopping = threading.Thread(target=server.stop, name="fusionrt-foxglove-stop", daemon=True)
        stopping.start()
        stopping.join(STOP_WAIT_S)
        if stopping.is_alive():
            logger.warning(
                "foxglove: a client that does not read holds the server's stop; "
                "not waiting for it (%s)",
                self.url,
            )
        for channel in self._channels.values():
            channel.close()
        logger.info(
            "foxglove: %d frame(s) served to %d client(s), %d frame(s) unwatched",
            self.frames_published,
            self.clients_seen,
            self.frames_unwatched,
        )


def _sdk_cause(exc: RuntimeError) -> str:
    """The SDK's message without its error-type prefix (``FoxgloveError: ...``)."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("FoxgloveError: ") else text
