"""Live sources that read one device — a CAN bus, a camera, a stream — on a thread of their own
and reopen it with back-off when it goes away.

The thread opens the device (retrying while it is not there), reads it until reading fails, the
device ends or the source closes, releases it, and starts again. An outage — the device cannot
be opened, or reading it failed — is reported once, however many attempts to reopen it fail:
``inbox.report_drop(topic, down_reason, record)`` (the record holds the detail) and a warning,
and another warning when the device is back; ``reconnects`` counts the outages survived. Waits
between attempts follow :class:`~fusionrt.plugins.sources.retry.Backoff` and end at once when
the source closes. Subclasses say how to open, read and release their device.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Collection
from typing import Any, ClassVar, Generic, TypeVar

from fusionrt.plugins.sources.retry import Backoff
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import RawRecord

__all__ = ["DeviceSource", "describe"]

Device = TypeVar("Device")


class DeviceSource(LiveSource, Generic[Device]):
    """One device read into one topic by a thread that reopens it (see the module docstring).

    ``what`` names the device in messages (``bus``, ``camera``); ``where`` locates it in logs
    and in the records' ``path``. ``join_timeout_s`` is the longest ``close`` waits for the
    thread, which may be blocked in the device's driver.
    """

    #: The drop reason of an outage (``bus_down``, ``stream_down``).
    down_reason: ClassVar[str]
    logger: ClassVar[logging.Logger]

    def __init__(
        self,
        topics: Collection[str],
        *,
        what: str,
        where: str,
        retry_initial_ms: int,
        retry_max_ms: int,
        join_timeout_s: float = 2.0,
    ) -> None:
        if isinstance(topics, str) or len(topics) != 1:
            raise ConfigError(
                f"the {self.name} source reads one {what} into one topic, got topics "
                f"{list(topics)}",
                key="topics",
            )
        if retry_max_ms < retry_initial_ms:
            raise ConfigError("retry_max_ms must be >= retry_initial_ms", key="retry_max_ms")
        super().__init__(topics)
        self.topic = self.topics[0]
        self.where = where
        #: Outages the source recovered from (the device came back).
        self.reconnects = 0
        self._retry_s = (retry_initial_ms / 1000, retry_max_ms / 1000)
        self._join_timeout_s = join_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down = False  # an outage is reported and not yet over
        self._warned: set[str] = set()

    # -- what a device source provides ---------------------------------------------------------

    @abstractmethod
    def _open_device(self) -> Device:
        """The opened device; raises (any exception, its text the reason) if it is not there."""

    @abstractmethod
    def _read(self, device: Device, inbox: RecordInbox) -> str | None:
        """Read ``device`` into ``inbox`` until the source closes or the device ends (``None``)
        or fails (why, in words)."""

    @abstractmethod
    def _release(self, device: Device) -> None:
        """Close ``device`` (called on the receive thread)."""

    # -- the contract of a live source ---------------------------------------------------------

    def start(self, inbox: RecordInbox) -> None:
        """Start the thread (it opens the device, retrying until it is there); return at once."""
        if self._thread is not None:
            raise RuntimeError(f"the {self.name} source is already started")
        self._thread = threading.Thread(
            target=self._run, args=(inbox,), name=f"fusionrt-{self.name} {self.where}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop reading and release the device (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self._join_timeout_s)
            if thread.is_alive():
                self.logger.warning("%s: the receive thread did not end in time", self.where)
        super().close()

    # -- the thread --------------------------------------------------------------------------

    def _run(self, inbox: RecordInbox) -> None:
        backoff = Backoff(*self._retry_s)
        while backoff.wait(self._stop):
            try:
                device = self._open_device()
            except Exception as exc:  # drivers raise anything: OSError, their own errors...
                self._went_down(inbox, f"cannot open: {describe(exc)}")
                continue
            if self._down:
                self._down = False
                self.reconnects += 1
                self.logger.warning("%s: back after %d attempts", self.where, backoff.attempts)
            backoff.reset()
            try:
                failed = None if self._stop.is_set() else self._read(device, inbox)
            finally:
                self._release(device)
            if failed is None:
                return
            self._went_down(inbox, failed)

    # -- reports -------------------------------------------------------------------------------

    def _went_down(self, inbox: RecordInbox, detail: str) -> None:
        """Report an outage once, however many attempts to reopen it fail."""
        if self._down:
            self.logger.debug("%s: still down (%s)", self.where, detail)
            return
        self._down = True
        self.logger.warning("%s: %s (%s); retrying", self.where, self.down_reason, detail)
        self._report(inbox, self.down_reason, detail)

    def _warn_once(self, reason: str, detail: str, *args: Any) -> None:
        """Log the first event of each reason as a warning, the others at debug level."""
        level = logging.DEBUG if reason in self._warned else logging.WARNING
        self._warned.add(reason)
        self.logger.log(level, "%s: " + detail, self.where, *args)

    def _report(self, inbox: RecordInbox, reason: str, detail: str) -> None:
        """Count an event that carries no data (its record holds the detail, for the log)."""
        record = RawRecord(self.topic, time.time_ns(), detail.encode(), "", self.where)
        inbox.report_drop(self.topic, reason, record)


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, with its cause (python-can wraps the OSError)."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    return text if cause is None else f"{text} ({type(cause).__name__}: {cause})"
