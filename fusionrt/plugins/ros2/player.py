"""Publishing a recorded drive onto Zenoh as rmw_zenoh does, paced like ``ros2 bag play``.

:class:`Player` takes the records of a recorded source (the rosbag source: the recorded CDR
bytes as they are, so header stamps are unchanged) and publishes each on its topic from a node
with a publisher token per topic. Records are released at their recorded log times scaled by
``rate`` (:class:`~fusionrt.runtime.replay.Replay` in real-time mode); each sample's
attachment carries the wall clock at publishing, as rmw_zenoh's does. With ``loop`` the drive
starts over when it ends (its stamps repeat, as with ``ros2 bag play --loop``). Setting the
``stop`` event ends the play between two records, at once even while it waits for the next.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from fusionrt.plugins.ros2.node import Node, Publisher
from fusionrt.plugins.sources import RecordedSource
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.replay import Replay, ReplayMode

__all__ = ["PlayStats", "Player"]


@dataclass
class PlayStats:
    """What a play published: messages per topic, passes over the drive, wall time."""

    published: Counter[str] = field(default_factory=Counter)
    passes: int = 0
    wall_s: float = 0.0
    stopped: bool = False

    @property
    def total(self) -> int:
        """Messages published on every topic."""
        return sum(self.published.values())


class Player:
    """Publishes a recorded source's topics on a node (see the module docstring).

    Every topic the source yields (after its own topic filter) whose type fusionrt knows gets a
    publisher at construction; ``rate`` (> 0) scales real time.
    """

    def __init__(
        self,
        source: RecordedSource,
        node: Node,
        *,
        rate: float = 1.0,
        loop: bool = False,
        stop: threading.Event | None = None,
        progress: bool | None = None,
    ) -> None:
        if not rate > 0:
            raise ConfigError(f"the play rate must be > 0, got {rate!r}", key="rate")
        self.source = source
        self.node = node
        self.rate = float(rate)
        self.loop = loop
        self.stop = stop if stop is not None else threading.Event()
        self.progress = progress
        self.publishers: dict[str, Publisher] = {
            info.topic: node.publisher(info.topic, info.msgtype, owner="play", block=True)
            for info in sorted(source.topics().values(), key=lambda i: i.topic)
            if info.known and source.wants(info.topic)
        }
        if not self.publishers:
            raise ConfigError(
                "nothing to play: the drive has none of the wanted topics",
                key="topics",
                path=str(getattr(source, "path", "")) or None,
            )

    def wait_for_subscribers(self, timeout_s: float, poll_s: float = 0.05) -> list[str]:
        """Wait until every topic has a subscriber, at most ``timeout_s``; the topics without."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [t for t, p in self.publishers.items() if not p.matched]
            if not missing or self.stop.is_set() or time.monotonic() >= deadline:
                return missing
            self.stop.wait(min(poll_s, max(0.0, deadline - time.monotonic())))

    def run(self, on_pass: Callable[[PlayStats], None] | None = None) -> PlayStats:
        """Publish the drive (again and again with ``loop``) until it ends or ``stop`` is set."""
        stats = PlayStats()
        started = time.monotonic()
        try:
            while not self.stop.is_set():
                self._play_once(stats)
                stats.passes += 1
                if on_pass is not None:
                    on_pass(stats)
                if not self.loop:
                    break
        finally:
            stats.wall_s = time.monotonic() - started
            stats.stopped = self.stop.is_set()
        return stats

    def _play_once(self, stats: PlayStats) -> None:
        replay = Replay(
            self.source,
            ReplayMode.REALTIME,
            rate=self.rate,
            progress=self.progress,
            sleep=self.stop.wait,  # a stop request cuts the wait for the next record short
        )
        with replay:
            for record in replay:
                if self.stop.is_set():
                    return
                publisher = self.publishers.get(record.topic)
                if publisher is None:
                    continue
                publisher.publish(record.data)
                stats.published[record.topic] += 1
