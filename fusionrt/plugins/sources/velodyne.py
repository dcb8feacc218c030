"""The ``velodyne`` live source: a Velodyne lidar's UDP data packets, one record per revolution.

A pipeline's sensor names it as its own source::

    lidar_top:
      plugin: lidar
      topic: velodyne
      source: {name: velodyne, options: {address: 0.0.0.0, port: 2368, model: VLP-16}}

The socket is bound when the source is built (a port in use is a ConfigError at once, not a
silent sensor) and read by one thread from :meth:`VelodyneSource.start` to :meth:`close`.
Packets are checked and decoded by
:class:`~fusionrt.plugins.sources.velodyne_revolutions.RevolutionAssembler` (which also says how
revolutions are stamped); each completed revolution is put into the inbox as a
``sensor_msgs/msg/PointCloud2`` record that the ``lidar`` sensor decodes like a recorded one
(``path`` ``udp://ADDRESS:PORT``, ``offset`` = the revolution's number). A packet dropped before
decoding goes to ``inbox.report_drop`` with its reason (``bad_size``, ``unexpected_sender``,
``malformed``, ``wrong_model``), as a record holding its bytes, the sender
in ``path`` and its number in ``offset``. Packets the kernel dropped because the socket's
buffer was full are counted as ``lost``, one report each, from the socket's drop counter
(``SO_RXQ_OVFL``, Linux): they are seen with the next packet that arrives. A packet's arrival
time is the kernel's receive time (``SO_TIMESTAMPNS``, 64-bit Linux), else when the thread read
it.
"""

from __future__ import annotations

import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from fusionrt.plugins.sensors.pointcloud2 import MSGTYPE as POINTCLOUD2
from fusionrt.plugins.sources import velodyne_packet as wire
from fusionrt.plugins.sources.velodyne_revolutions import (
    DEFAULT_MAX_CLOCK_OFFSET_MS,
    PACKET_MSGTYPE,
    RevolutionAssembler,
)
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import LiveSource, RecordInbox
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.options import Option, resolve_options

__all__ = ["DEFAULT_RECEIVE_BUFFER", "VelodyneSource"]

logger = logging.getLogger("fusionrt.velodyne")

#: Socket receive buffer asked for (the kernel caps it at ``net.core.rmem_max``): 4 MiB hold
#: about 3 s of a VLP-16, 0.3 s of a VLS-128 in dual-return mode.
DEFAULT_RECEIVE_BUFFER = 4 * 1024 * 1024

# Linux socket options whose ancillary data come with each datagram (include/uapi/asm-generic/
# socket.h; Python's socket module names neither): the count of datagrams dropped for a full
# buffer, and the kernel's receive time (SO_TIMESTAMPNS: a struct timespec, two 64-bit fields
# on 64-bit systems, where it is used).
_SO_RXQ_OVFL = 40
_DROP_COUNTER = struct.Struct("=I")
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("=qq")
_LINUX = sys.platform == "linux"
_KERNEL_TIMESTAMPS = _LINUX and struct.calcsize("P") == 8
_ANCILLARY_SIZE = socket.CMSG_SPACE(_DROP_COUNTER.size) + socket.CMSG_SPACE(_TIMESPEC.size)
_RECEIVE_SIZE = 2048  # larger than any data packet: a longer datagram is seen as bad_size
_POLL_S = 0.1  # how long close() may wait for the receive thread to notice
_JOIN_S = 5.0


class VelodyneSource(LiveSource):
    """Receives a Velodyne lidar's UDP packets (see the module docstring).

    Constructed ``VelodyneSource(topics=[TOPIC], **options)``; options: ``address`` (default
    ``0.0.0.0``), ``port`` (default 2368; 0 picks a free one, see :attr:`port`), ``model``
    (velodyne-decoder's names: ``VLP-16``, ``VLP-32C``, ``VLS-128``…; default: the first packet
    says), ``sender`` (the lidar's IP address; default: the first good packet's),
    ``max_clock_offset_ms`` (default 100: see the stamps in
    :mod:`~fusionrt.plugins.sources.velodyne_revolutions`), ``frame_id`` (default
    ``velodyne``) and ``receive_buffer`` (bytes, default 4 MiB).
    """

    name = "velodyne"
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "address": Option("0.0.0.0", str),
            "port": Option(wire.DATA_PORT, int, minimum=0, maximum=65535),
            "model": Option(None, str, nullable=True),
            "sender": Option(None, str, nullable=True),
            "max_clock_offset_ms": Option(DEFAULT_MAX_CLOCK_OFFSET_MS, float, minimum=0),
            "frame_id": Option("velodyne", str),
            "receive_buffer": Option(DEFAULT_RECEIVE_BUFFER, int, minimum=4096),
        }
    )

    def __init__(self, topics: Collection[str], **options: Any) -> None:
        if isinstance(topics, str) or len(tuple(topics)) != 1:
            raise ConfigError(f"the velodyne source gives one topic, got {topics!r}", key="topics")
        super().__init__(topics)
        self.topic = self.topics[0]
        self.options = resolve_options(self.option_specs, options, owner="source 'velodyne'")
        address, port = self.options["address"], self.options["port"]
        self.assembler = RevolutionAssembler(
            model=self.options["model"],
            sender=self.options["sender"],
            max_clock_offset_ns=round(self.options["max_clock_offset_ms"] * 1e6),
            name=f"velodyne {address}:{port}",
        )
        self._socket = self._bind(address, port, self.options["receive_buffer"])
        self.address, self.port = self._socket.getsockname()[:2]
        self.path = f"udp://{self.address}:{self.port}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # touched by the receive thread only
        self._kernel_drops = 0
        self._packets = 0
        self._revolutions = 0

    @staticmethod
    def _bind(address: str, port: int, receive_buffer: int) -> socket.socket:
        """A UDP socket bound to ``address:port``, counting the kernel's drops where it can."""
        try:
            family = socket.getaddrinfo(address, port, type=socket.SOCK_DGRAM)[0][0]
        except socket.gaierror as exc:
            raise ConfigError(f"address {address!r}: {exc.strerror}", key="address") from None
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            if _LINUX:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
            if _KERNEL_TIMESTAMPS:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot receive on {address}:{port}: {exc.strerror or exc}", key="port"
            ) from None
        sock.settimeout(_POLL_S)
        return sock

    def start(self, inbox: RecordInbox) -> None:
        """Start the receive thread (returns at once)."""
        if self._thread is not None:
            raise RuntimeError("the velodyne source is already started")
        self._thread = threading.Thread(
            target=self._receive, args=(inbox,), name=f"fusionrt-velodyne {self.port}", daemon=True
        )
        self._thread.start()

    def _receive(self, inbox: RecordInbox) -> None:
        """The receive thread: until :meth:`close`."""
        sock = self._socket
        while not self._stop.is_set():
            try:
                packet, ancillary, _, sender = sock.recvmsg(_RECEIVE_SIZE, _ANCILLARY_SIZE)
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    logger.error("%s: receiving failed, no more packets: %s", self.path, exc)
                return
            self._packets += 1
            arrival_ns = self._arrival_ns(ancillary, inbox)
            try:
                self._take(packet, sender[0], arrival_ns, inbox)
            except Exception:  # a bug here must not end the lidar's reception for the run
                logger.exception("%s: a packet could not be taken", self.path)

    def _take(self, packet: bytes, sender: str, arrival_ns: int, inbox: RecordInbox) -> None:
        """Check and decode one packet; put the revolution it completes, or report the drop."""
        dropped = self.assembler.check(packet, sender)
        if dropped is None:
            revolution = self.assembler.add(packet, arrival_ns)
            if revolution is not None:
                data = revolution.pointcloud2(self.options["frame_id"])
                number, self._revolutions = self._revolutions, self._revolutions + 1
                stamp_ns = revolution.stamp_ns
                inbox.put(RawRecord(self.topic, stamp_ns, data, POINTCLOUD2, self.path, number))
            return
        reason, detail = dropped
        logger.debug("%s: packet %d from %s dropped: %s: %s", self.path, self._packets, sender,
                     reason, detail)  # fmt: skip
        record = RawRecord(
            self.topic, arrival_ns, packet, PACKET_MSGTYPE, f"udp://{sender}", self._packets
        )
        inbox.report_drop(self.topic, reason, record)

    def _arrival_ns(self, ancillary: list[tuple[int, int, bytes]], inbox: RecordInbox) -> int:
        """When the packet arrived: the kernel's receive time where it gives one (a busy
        process that reads late must not make a synchronised lidar's clock look off), else
        now. Reports the datagrams the kernel dropped since the last count (``lost``)."""
        arrival_ns = lost = 0
        for level, kind, data in ancillary:
            if level != socket.SOL_SOCKET:
                continue
            if kind == _SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                arrival_ns = seconds * 1_000_000_000 + nanoseconds
            elif kind == _SO_RXQ_OVFL:
                total = _DROP_COUNTER.unpack_from(data)[0]
                lost, self._kernel_drops = (total - self._kernel_drops) % 2**32, total
        arrival_ns = arrival_ns or time.time_ns()
        if lost:
            logger.debug("%s: the kernel dropped %d packets (buffer full)", self.path, lost)
        for _ in range(lost):
            record = RawRecord(self.topic, arrival_ns, b"", PACKET_MSGTYPE)
            inbox.report_drop(self.topic, "lost", record)
        return arrival_ns

    def close(self) -> None:
        """Stop the receive thread and close the socket (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)
            if thread.is_alive():
                logger.warning("%s: the receive thread did not stop in %.0f s", self.path, _JOIN_S)
        self._socket.close()
        super().close()
