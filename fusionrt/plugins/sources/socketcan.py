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
  ``retry_max_ms``) until it is back (:class:`~.device_source.DeviceSource`). ``reconnects``
  counts the outages survived.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from fusionrt.plugins.sensors.can import CANDUMP_LINE_MSGTYPE, CanFrame, format_candump_line
from fusionrt.plugins.sources.device_source import DeviceSource, describe
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import RecordInbox
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.options import Option, resolve_options

if TYPE_CHECKING:
    import can

__all__ = ["DROP_REASONS", "SocketCanSource", "can_frame"]

#: Why the source counts a frame or an event instead of a record (see the module docstring).
DROP_REASONS = ("error_frame", "bus_error", "bus_down")

# How long one receive waits before the thread looks at its stop event again.
_RECEIVE_POLL_S = 0.1
# A bus stamp further than this from the computer's clock is on another clock (logged once).
_CLOCK_SKEW_WARN_NS = 1_000_000_000


class SocketCanSource(DeviceSource["can.BusABC"]):
    """Receives one CAN bus into the topic of the ``can`` sensor (see the module docstring).

    Constructed ``SocketCanSource(topics=[TOPIC], interface=..., channel=..., ...)`` by the
    pipeline from a sensor's ``source: {name: socketcan, options: {...}}``. An invalid option is
    a ConfigError naming it; a bus that is not there is not (it is retried, reported
    ``bus_down``).
    """

    name = "socketcan"
    down_reason = "bus_down"
    logger = logging.getLogger("fusionrt.sources.socketcan")
    option_specs: ClassVar[Mapping[str, Option]] = {
        "interface": Option("socketcan", str),
        "channel": Option(None, (str, int), nullable=True),
        "bus_options": Option({}, dict),
        "stamp_from": Option("bus", str, choices=("bus", "arrival")),
        "retry_initial_ms": Option(100, int, minimum=1),
        "retry_max_ms": Option(5000, int, minimum=1),
    }

    def __init__(self, topics: Collection[str], **options: Any) -> None:
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
        reserved = {"interface", "channel", "ignore_config"} & set(opts["bus_options"])
        if reserved:
            raise ConfigError(
                f"bus_options may not set {', '.join(sorted(reserved))} (options of their own)",
                key="bus_options",
            )
        super().__init__(
            topics,
            what="bus",
            where=f"{opts['interface']}:{opts['channel']}",
            retry_initial_ms=opts["retry_initial_ms"],
            retry_max_ms=opts["retry_max_ms"],
        )
        self.channel = str(opts["channel"])
        self.stamp_from_bus = opts["stamp_from"] == "bus"
        self._bus_kwargs: dict[str, Any] = {
            "interface": opts["interface"],
            "channel": opts["channel"],
            "ignore_config": True,
            **opts["bus_options"],
        }
        self._frames = 0
        self._bus: can.BusABC | None = None

    @property
    def bus(self) -> can.BusABC | None:
        """The python-can bus while it is open (``None`` while it is being reopened)."""
        return self._bus

    def _open_device(self) -> can.BusABC:
        import can  # noqa: PLC0415

        self._bus = can.Bus(**self._bus_kwargs)
        return self._bus

    def _release(self, bus: can.BusABC) -> None:
        self._bus = None
        bus.shutdown()

    def _read(self, bus: can.BusABC, inbox: RecordInbox) -> str | None:
        """Frames into the inbox until the bus fails twice in a row or the source closes."""
        pending: Exception | None = None  # a failed receive, judged by the next one
        first = True
        while not self._stop.is_set():
            try:
                message = bus.recv(timeout=_RECEIVE_POLL_S)
            except Exception as exc:  # python-can raises CanError; some drivers OSError...
                if pending is not None:
                    return f"receiving failed twice: {describe(exc)}"
                pending = exc
                continue
            if pending is not None:
                self._warn_once("bus_error", "a receive failed: %s", describe(pending))
                self._report(inbox, "bus_error", describe(pending))
                pending = None
            if message is not None:
                self._take(message, inbox, check_clock=first)
                first = False
        return None

    def _take(self, message: can.Message, inbox: RecordInbox, *, check_clock: bool) -> None:
        """One received frame → a candump-line record in the inbox (or an error frame count)."""
        now_ns = time.time_ns()
        stamp_ns = now_ns
        if self.stamp_from_bus and message.timestamp > 0:
            # candump's resolution; also absorbs the float's ~0.2 µs rounding of epoch seconds
            stamp_ns = round(message.timestamp * 1_000_000) * 1000
            if check_clock and abs(stamp_ns - now_ns) > _CLOCK_SKEW_WARN_NS:
                self.logger.warning(
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
            self._warn_once("error_frame", "error frame, class 0x%X", frame.arbitration_id)
            inbox.report_drop(self.topic, "error_frame", record)
        else:
            inbox.put(record)


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
