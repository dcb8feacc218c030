"""The ``socketcan`` live source: a CAN bus read with python-can, as the lines a candump log holds.

Any python-can interface works — ``socketcan`` on Linux (``can0``, ``vcan0``), ``virtual`` (in
one process, for tests), ``udp_multicast`` (between processes), ``pcan``, ``kvaser`` … — chosen
by the ``interface`` and ``channel`` options; ``bus_options`` go to ``can.Bus`` unchanged
(``bitrate``, ``fd``, ``can_filters``, ``port`` …). python-can's configuration files and
``CAN_*`` environment variables are ignored: the pipeline file alone says which bus is read.

Each frame becomes one :class:`~fusionrt.runtime.messages.RawRecord` holding its candump ``-L``
line (msgtype ``fusionrt/candump_line``, the format
:func:`~fusionrt.plugins.sensors.can.format_candump_line` writes), so the ``can`` sensor decodes
a live bus exactly as it decodes a recorded log. ``path`` is ``INTERFACE:CHANNEL`` and ``offset``
counts the frames received. The stamp is the interface's receive time when it gives one on the
computer's clock (SocketCAN and ``udp_multicast``: the kernel's socket timestamp; ``virtual``:
the send time), to the microsecond like candump, else the arrival time; ``stamp_from: arrival``
always takes the arrival time (for adapters whose hardware clock is not the computer's — the
first frame of a bus says so in the log when its stamp is over a second off).

What does not become a record is counted with ``inbox.report_drop(topic, reason, record)``:

* ``error_frame`` — an error frame on the bus (SocketCAN delivers them: python-can sets the
  error filter); the record holds its candump line, the error class in its identifier;
* ``bus_error`` — a receive that failed once (a datagram ``udp_multicast`` cannot unpack, a
  driver error) followed by a working receive: one frame may be lost, the bus goes on;
* ``bus_down`` — the bus cannot be opened, or two receives in a row failed (the interface went
  down, the adapter was unplugged, the bus was shut down): reported once per outage, the bus
  closed and reopened with back-off (at once, then ``retry_initial_ms`` doubling to
  ``retry_max_ms``) until it is back. ``reconnects`` counts the outages survived.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from fusionrt.plugins.sensors.can import CANDUMP_LINE_MSGTYPE, CanFrame, format_candump_line
from fusionrt.plugins.sources.retry import Backoff
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.options import Option, resolve_options

if TYPE_CHECKING:
    import can

__all__ = ["DROP_REASONS", "SocketCanSource", "can_frame"]

logger = logging.getLogger("fusionrt.sources.socketcan")

#: Why the source counts a frame or an event instead of a record (see the module docstring).
DROP_REASONS = ("error_frame", "bus_error", "bus_down")

# How long one receive waits before the thread looks at its stop event again.
_RECEIVE_POLL_S = 0.1
# A bus stamp further than this from the computer's clock is on another clock (logged once).
_CLOCK_SKEW_WARN_NS = 1_000_000_000
_JOIN_TIMEOUT_S = 2.0


class SocketCanSource(LiveSource):
    """Receives one CAN bus into the topic of the ``can`` sensor (see the module docstring).

    Constructed ``SocketCanSource(topics=[TOPIC], interface=..., channel=..., ...)`` by the
    pipeline from a sensor's ``source: {name: socketcan, options: {...}}``. An invalid option is
    a ConfigError naming it; a bus that is not there is not (it is retried, reported
    ``bus_down``).
    """

    name = "socketcan"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "interface": Option("socketcan", str),
        "channel": Option(None, (str, int), nullable=True),
        "bus_options": Option({}, dict),
        "stamp_from": Option("bus", str, choices=("bus", "arrival")),
        "retry_initial_ms": Option(100, int, minimum=1),
        "retry_max_ms": Option(5000, int, minimum=1),
    }

    def __init__(self, topics: Collection[str], **options: Any) -> None:
        if isinstance(topics, str) or len(topics) != 1:
            raise ConfigError(
                f"the socketcan source reads one bus into one topic, got topics {list(topics)}",
                key="topics",
            )
        super().__init__(topics)
        opts = resolve_options(self.option_specs, options, owner="socketcan source")
        import can  # noqa: PLC0415  (80 ms of imports: only CAN users pay them)

        if opts["interface"] not in can.VALID_INTERFACES:
            raise ConfigError(
                f"unknown python-can interface {opts['interface']!r} "
                f"(known: {', '.join(sorted(can.VALID_INTERFACES))})",
                key="interface",
            )
        if opts["channel"] is None:
            raise ConfigError("the socketcan source needs a channel (e.g. can0)", key="channel")
        if opts["retry_max_ms"] < opts["retry_initial_ms"]:
            raise ConfigError("retry_max_ms must be >= retry_initial_ms", key="retry_max_ms")
        reserved = {"interface", "channel", "ignore_config"} & set(opts["bus_options"])
        if reserved:
            raise ConfigError(
                f"bus_options may not set {', '.join(sorted(reserved))} (options of their own)",
                key="bus_options",
            )
        self.topic = self.topics[0]
        self.interface: str = opts["interface"]
        self.channel = str(opts["channel"])
        self.where = f"{self.interface}:{self.channel}"
        self.stamp_from_bus = opts["stamp_from"] == "bus"
        self._bus_kwargs: dict[str, Any] = {
            "interface": self.interface,
            "channel": opts["channel"],
            "ignore_config": True,
            **opts["bus_options"],
        }
        self._retry_s = (opts["retry_initial_ms"] / 1000, opts["retry_max_ms"] / 1000)
        #: Outages the source recovered from (the bus came back).
        self.reconnects = 0
        self._frames = 0
        self._bus: can.BusABC | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._down = False  # an outage is reported and not yet over

    @property
    def bus(self) -> can.BusABC | None:
        """The python-can bus while it is open (``None`` while it is being reopened)."""
        return self._bus

    def start(self, inbox: RecordInbox) -> None:
        """Start the receive thread (it opens the bus, retrying until it is there)."""
        if self._thread is not None:
            raise RuntimeError("the socketcan source is already started")
        self._thread = threading.Thread(
            target=self._run, args=(inbox,), name=f"fusionrt-socketcan {self.where}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop receiving and shut the bus down (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=_JOIN_TIMEOUT_S)
            if thread.is_alive():
                logger.warning("%s: the receive thread did not end within 2 s", self.where)
        super().close()

    # -- the receive thread -------------------------------------------------------------------

    def _run(self, inbox: RecordInbox) -> None:
        backoff = Backoff(*self._retry_s)
        while True:
            bus = self._open(inbox, backoff)
            if bus is None:
                return
            self._bus = bus
            try:
                self._receive(bus, inbox)
            finally:
                self._bus = None
                bus.shutdown()
            if self._stop.is_set():
                return

    def _open(self, inbox: RecordInbox, backoff: Backoff) -> can.BusABC | None:
        """The bus, opened (retried with back-off); ``None`` once the source is closed."""
        import can  # noqa: PLC0415

        while backoff.wait(self._stop):
            try:
                bus = can.Bus(**self._bus_kwargs)
            except Exception as exc:  # python-can and its drivers raise CanError, OSError...
                self._went_down(inbox, f"cannot open the bus: {_describe(exc)}")
                continue
            if self._down:
                self._down = False
                self.reconnects += 1
                logger.warning("%s: the bus is back", self.where)
            backoff.reset()
            return bus
        return None

    def _receive(self, bus: can.BusABC, inbox: RecordInbox) -> None:
        """Frames into the inbox until the bus fails twice in a row or the source closes."""
        pending: Exception | None = None  # a failed receive, judged by the next one
        first = True
        while not self._stop.is_set():
            try:
                message = bus.recv(timeout=_RECEIVE_POLL_S)
            except Exception as exc:  # python-can raises CanError; some drivers OSError...
                if pending is not None:
                    self._went_down(inbox, f"receiving failed twice: {_describe(exc)}")
                    return
                pending = exc
                continue
            if pending is not None:
                self._warn_once("bus_error", f"a receive failed: {_describe(pending)}")
                self._report(inbox, "bus_error", _describe(pending))
                pending = None
            if message is not None:
                self._take(message, inbox, check_clock=first)
                first = False

    def _take(self, message: can.Message, inbox: RecordInbox, *, check_clock: bool) -> None:
        """One received frame → a candump-line record in the inbox (or an error frame count)."""
        now_ns = time.time_ns()
        stamp_ns = now_ns
        if self.stamp_from_bus and message.timestamp > 0:
            # candump's resolution; also absorbs the float's ~0.2 µs rounding of epoch seconds
            stamp_ns = round(message.timestamp * 1_000_000) * 1000
            if check_clock and abs(stamp_ns - now_ns) > _CLOCK_SKEW_WARN_NS:
                logger.warning(
                    "%s: the interface's timestamps are %.1f s off this computer's clock; "
                    "set stamp_from: arrival if its clock is not the computer's",
                    self.where,
                    (stamp_ns - now_ns) / 1e9,
                )
        frame = can_frame(message, self.channel, stamp_ns)
        self._frames += 1
        record = RawRecord(
            self.topic,
            stamp_ns,
            format_candump_line(frame).encode("ascii"),
            CANDUMP_LINE_MSGTYPE,
            self.where,
            self._frames,
        )
        if frame.is_error:
            self._warn_once("error_frame", f"error frame, class 0x{frame.arbitration_id:X}")
            inbox.report_drop(self.topic, "error_frame", record)
        else:
            inbox.put(record)

    # -- reports ------------------------------------------------------------------------------

    def _went_down(self, inbox: RecordInbox, detail: str) -> None:
        """Report an outage once, however many attempts to reopen it fail."""
        if self._down:
            logger.debug("%s: still down (%s)", self.where, detail)
            return
        self._down = True
        logger.warning("%s: bus down (%s); retrying with back-off", self.where, detail)
        self._report(inbox, "bus_down", detail)

    def _warn_once(self, reason: str, detail: str) -> None:
        """The first event of each reason as a warning, the others at debug level."""
        level = logging.DEBUG if reason in self._warned else logging.WARNING
        self._warned.add(reason)
        logger.log(level, "%s: %s", self.where, detail)

    def _report(self, inbox: RecordInbox, reason: str, detail: str) -> None:
        """Count an event that carries no frame (its record holds the detail, for the log)."""
        record = RawRecord(self.topic, time.time_ns(), detail.encode(), "", self.where)
        inbox.report_drop(self.topic, reason, record)


def can_frame(message: can.Message, channel: str, stamp_ns: int) -> CanFrame:
    """A python-can message as the ``can`` sensor's :class:`CanFrame` (its candump line)."""
    is_error = bool(message.is_error_frame)
    return CanFrame(
        stamp_ns,
        channel,
        message.arbitration_id,
        bytes(message.data or b""),
        is_extended=bool(message.is_extended_id) or is_error,  # candump prints 8 digits for both
        is_remote=bool(message.is_remote_frame),
        is_error=is_error,
        is_fd=bool(message.is_fd),
        fd_flags=int(message.bitrate_switch) | (int(message.error_state_indicator) << 1),
    )


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, with its cause (python-can wraps the OSError)."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    return text if cause is None else f"{text} ({type(cause).__name__}: {cause})"
