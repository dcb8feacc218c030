"""Velodyne data packets → one point cloud per revolution, shared by the ``velodyne`` live
source and the ``velodyne_pcap`` replay source, so that a capture replays what the car saw.

**Checks.** Each packet is checked before it reaches the decoder, and one that fails is dropped
with a reason (the sources count it): ``bad_size`` (not 1206 bytes), ``unexpected_sender`` (not
from the lidar's address: the ``sender`` option, else the sender of the first good packet, so
that a second lidar on the same port cannot interleave its returns), ``malformed`` (a block
flag, an azimuth or the return mode byte outside the layout, see
:mod:`~fusionrt.plugins.sources.velodyne_packet`) and ``wrong_model`` (a product id other than
the model's: velodyne-decoder would otherwise raise on the whole revolution that holds it).

**Decoding** is velodyne-decoder's ``StreamDecoder``: it cuts the stream into revolutions (a
revolution is complete once its packets cover 360°; the decoder returns it with the packet that
completes it) and turns returns into points with the model's factory calibration. The points go
into the record as the decoder made them — ``x y z intensity time column ring return_type``,
32-byte points (the last 8 bytes padding, zeroed), x forward, y left, z up, metres — with two
conventions of the ``lidar`` sensor applied in place: ``intensity`` is the reflectivity / 255
(0…1) and ``time`` is seconds from the record's stamp (negative: the stamp is the revolution's
last packet), which is what ego-motion compensation reads.

**Stamps.** A revolution is stamped with the lidar's own clock — the last packet's microseconds
past the hour, in the hour of its arrival on the host (the nearer hour at a boundary) — when that
agrees with the host's clock within ``max_clock_offset_ns``: a lidar synchronised to GPS with a
PPS signal and a host synchronised by NTP or PTP agree within a few milliseconds, and the lidar's
stamp is taken at the firing, free of network and scheduling delay. A lidar without PPS counts
from power-on, so its time within the hour is arbitrary: the revolution is then stamped with the
arrival time of its last packet on the host's clock (the kernel's receive time live, the capture
time in a ``.pcap``), and the switch is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from fusionrt.plugins.sensors.pointcloud2 import encode_pointcloud2
from fusionrt.plugins.sources import velodyne_packet as wire
from fusionrt.runtime.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_CLOCK_OFFSET_MS",
    "DROP_REASONS",
    "PACKET_MSGTYPE",
    "Revolution",
    "RevolutionAssembler",
    "decoder_model",
    "velodyne_decoder",
]

logger = logging.getLogger("fusionrt.velodyne")

#: Why a packet is dropped before decoding (see the module docstring), and ``lost``: dropped by
#: the kernel because the live source's socket buffer was full.
DROP_REASONS = ("bad_size", "unexpected_sender", "malformed", "wrong_model", "lost")
#: ``msgtype`` of the records that carry a dropped packet to ``report_drop``.
PACKET_MSGTYPE = "velodyne/packet"
#: Default agreement between the lidar's clock and the host's for the lidar's to be used.
DEFAULT_MAX_CLOCK_OFFSET_MS = 100.0

_INTENSITY_SCALE = np.float32(1.0 / 255.0)
_HDL64E = ("HDL64E_S1", "HDL64E_S2", "HDL64E_S3")


def velodyne_decoder() -> ModuleType:
    """The ``velodyne_decoder`` module, or a ConfigError saying how to install it."""
    try:
        import velodyne_decoder  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "the velodyne sources need the velodyne-decoder package: "
            "pip install 'fusionrt[velodyne]'"
        ) from None
    return velodyne_decoder


def _normal(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def decoder_model(name: str | None) -> str | None:
    """velodyne-decoder's ``Model`` member name for a model name as the decoder spells it
    (``VLP-16``, ``Puck Hi-Res``, ``VLS-128``) or as its member (``VLP16``); ``None`` for
    ``None`` (detected from the first packet). ConfigError (``key="model"``) for a name it does
    not know or an HDL-64E (which needs a calibration file)."""
    if name is None:
        return None
    models = velodyne_decoder().Model.__members__
    # the decoder's own words for each model: "VLS-128 (aka Alpha Prime)" -> "VLS-128"
    spelled = {member: (model.__doc__ or member).split(" (")[0] for member, model in models.items()}
    wanted = _normal(name)
    member = next((m for m in models if wanted in (_normal(m), _normal(spelled[m]))), None)
    if member in _HDL64E:
        raise ConfigError(
            f"model {name!r}: an HDL-64E needs a calibration file, which the velodyne sources "
            "do not take",
            key="model",
        )
    if member is None or member not in wire.PRODUCT_IDS:
        known = ", ".join(spelled[m] for m in models if m in wire.PRODUCT_IDS)
        raise ConfigError(f"unknown Velodyne model {name!r} (known: {known})", key="model")
    return member


def _zero_padding(points: np.ndarray) -> None:
    """Zero the bytes after the last field of each point: velodyne-decoder leaves them as it
    found the memory, and they go on the wire (a record must not depend on the heap)."""
    fields: Mapping[str, tuple[Any, ...]] = points.dtype.fields or {}
    end = max((offset + dtype.itemsize for dtype, offset, *_ in fields.values()), default=0)
    if len(points) and end < points.dtype.itemsize:
        points.view(np.uint8).reshape(len(points), points.dtype.itemsize)[:, end:] = 0


@dataclass(frozen=True, slots=True)
class Revolution:
    """One revolution's points (velodyne-decoder's layout, see the module docstring), its stamp
    (ns since the epoch) and the clock that gave it (``"lidar"`` or ``"arrival"``)."""

    stamp_ns: int
    points: np.ndarray
    clock: str

    def pointcloud2(self, frame_id: str) -> bytes:
        """The revolution as the CDR bytes of a ``sensor_msgs/msg/PointCloud2``."""
        return encode_pointcloud2(self.points, frame_id, self.stamp_ns, is_dense=True)


class RevolutionAssembler:
    """Checks packets and decodes the good ones into revolutions (see the module docstring).

    ``model``: a velodyne-decoder model name (:func:`decoder_model`) or ``None`` to take the
    first good packet's; ``sender``: the lidar's IP address, ``None`` to take the first good
    packet's; ``name`` names the stream in log lines. Not thread-safe: one receive thread.
    """

    def __init__(
        self,
        *,
        model: str | None,
        sender: str | None,
        max_clock_offset_ns: int,
        name: str,
    ) -> None:
        self._vd = velodyne_decoder()
        self.model = decoder_model(model)
        self.sender = sender
        self.max_clock_offset_ns = max_clock_offset_ns
        self.name = name
        self._product = None if self.model is None else wire.PRODUCT_IDS[self.model]
        self._decoder: Any = None
        self._clock: str | None = None
        self._last_arrival_ns = 0
        if self.model is not None:
            self._open_decoder()

    def _open_decoder(self) -> None:
        model = None if self.model is None else self._vd.Model.__members__[self.model]
        self._decoder = self._vd.StreamDecoder(self._vd.Config(model=model))

    # -- checks -----------------------------------------------------------------------------

    def check(self, packet: bytes, sender: str) -> tuple[str, str] | None:
        """``(reason, detail)`` if the packet from ``sender`` is to be dropped, else ``None``
        (the first good packet fixes the sender and model that were not given)."""
        if len(packet) != wire.PACKET_SIZE:
            return "bad_size", f"{len(packet)} bytes, not {wire.PACKET_SIZE}"
        if self.sender is not None and sender != self.sender:
            return "unexpected_sender", f"from {sender}, not the lidar at {self.sender}"
        problem = wire.malformed(packet)
        if problem is not None:
            return "malformed", problem
        product = wire.product_id(packet)
        if self._product is None:
            if product not in wire.PRODUCT_IDS.values():
                return "wrong_model", f"unknown product id {product:#04x}"
            self._product = product
            self._open_decoder()  # velodyne-decoder detects the model from this packet
            logger.info("%s: product id %#04x (model detected from it)", self.name, product)
        elif product != self._product:
            return "wrong_model", f"product id {product:#04x}, not {self._product:#04x}"
        if self.sender is None:
            self.sender = sender
            logger.info("%s: receiving from %s (others are dropped)", self.name, sender)
        return None

    # -- decoding ---------------------------------------------------------------------------

    def add(self, packet: bytes, arrival_ns: int) -> Revolution | None:
        """Decode one checked packet; the revolution it completes, if it completes one."""
        self._last_arrival_ns = arrival_ns
        result = self._decoder.decode(arrival_ns * 1e-9, packet, True)
        return None if result is None else self._revolution(result, arrival_ns)

    def finish(self) -> Revolution | None:
        """The revolution still open at the end of a recording (incomplete), if any."""
        if self._decoder is None:
            return None
        result = self._decoder.finish(True)
        return None if result is None else self._revolution(result, self._last_arrival_ns)

    def _revolution(self, result: tuple[Any, np.ndarray], arrival_ns: int) -> Revolution:
        stamps, points = result
        lidar_ns = round(stamps.device * 1e6) * 1000  # the lidar counts microseconds
        offset_ns = lidar_ns - arrival_ns
        clock = "lidar" if abs(offset_ns) <= self.max_clock_offset_ns else "arrival"
        if clock != self._clock:
            self._log_clock(clock, offset_ns)
        points["intensity"] *= _INTENSITY_SCALE
        _zero_padding(points)
        return Revolution(lidar_ns if clock == "lidar" else arrival_ns, points, clock)

    def _log_clock(self, clock: str, offset_ns: int) -> None:
        if clock == "lidar":
            logger.info(
                "%s: stamping revolutions with the lidar's clock (%+.1f ms from the host's)",
                self.name, offset_ns / 1e6,
            )  # fmt: skip
        else:
            logger.warning(
                "%s: the lidar's clock is %+.3f s from the host's (no PPS?): stamping "
                "revolutions on arrival", self.name, offset_ns / 1e9,
            )  # fmt: skip
        self._clock = clock
