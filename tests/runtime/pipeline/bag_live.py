"""A test-only live source: a recorded bag played into the run's inbox in real time.

It is what a sensor driver does — records arrive on the source's own thread at the pace they
were recorded, whether or not the runtime keeps up — without a network, so the live mode of
the pipeline (inbox, wall clock, staleness) is tested on its own. Options: ``bag`` (path),
``rate`` (1.0), ``silent`` (``{topic: [from_s, to_s]}``: that topic sends nothing in that
window of the drive, a sensor that stops and comes back), ``loops`` (1: how many times the bag
plays, its stamps unchanged, as ``ros2 bag play --loop`` does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection

from fusionrt.plugins.sources.rosbag import RosbagSource
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.live import LiveSource, RecordInbox


class BagLiveSource(LiveSource):
    name = "bag_live"

    def __init__(
        self,
        topics: Collection[str],
        *,
        bag: str,
        rate: float = 1.0,
        silent: dict[str, list[float]] | None = None,
        loops: int = 1,
    ) -> None:
        super().__init__(topics)
        self.bag = bag
        self.rate = rate
        self.silent = dict(silent or {})
        self.loops = loops
        self.sent = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, inbox: RecordInbox) -> None:
        self._thread = threading.Thread(target=self._play, args=(inbox,), daemon=True)
        self._thread.start()

    def _play(self, inbox: RecordInbox) -> None:
        for _ in range(self.loops):
            if not self._play_once(inbox):
                return
        self.finished.set()

    def _play_once(self, inbox: RecordInbox) -> bool:
        with RosbagSource(self.bag, topics=list(self.topics)) as source:
            first = source.first_stamp_ns or 0
            started = time.monotonic()
            for record in source.records():
                at_s = (record.stamp_ns - first) / 1e9
                delay = started + at_s / self.rate - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return False
                window = self.silent.get(record.topic)
                if window is not None and window[0] <= at_s < window[1]:
                    continue
                inbox.put(record)
                self.sent += 1
        return True

    def close(self) -> None:
        super().close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@hookimpl
def fusionrt_sources() -> list[type]:
    return [BagLiveSource]
