"""The Velodyne lidar data packet: its layout, the checks made before decoding, and a builder.

Sources: the Velodyne VLP-16 User Manual (63-9243 Rev. E), chapter 9 "Sensor Data" (the data
packet, the timestamp, the factory bytes, the firing timing) and its table of laser elevation
angles and vertical corrections; the product ids of the factory byte are those velodyne-decoder
checks (``PacketModelId`` in ``include/velodyne_decoder/types.h`` of valgur/velodyne_decoder).
HDL-32E, VLP-32C, Puck Hi-Res and VLS-128 send the same 1206-byte layout; only the meaning of
the returns differs by model, and that is velodyne-decoder's business. Nothing else in fusionrt
spells these bytes.

* **Packet**: the UDP payload, 1206 bytes, sent to port 2368 (:data:`DATA_PORT`).
* **Data block** (12 of 100 bytes): a flag of two bytes, ``FF`` then the laser bank (``EE``,
  ``DD``, ``CC`` or ``BB``: lasers 0-31, 32-63, 64-95, 96-127); the azimuth of the block's first
  firing, uint16 little-endian in hundredths of a degree (0-35999); 32 returns of 3 bytes:
  distance uint16 LE (VLP-16: 2 mm units, 0 = no return) and reflectivity uint8.
* **Timestamp**: uint32 LE, microseconds past the top of the hour, of the first firing of the
  packet's first block (the lidar's clock: synchronised to GPS with a PPS signal, else free
  running from power-on).
* **Factory bytes**: return mode (:data:`RETURN_MODES`) and product id (:data:`PRODUCT_IDS`).
* **VLP-16 geometry** (:data:`VLP16_ELEVATION_DEG`, :data:`VLP16_VERTICAL_CORRECTION_M`): the
  32 returns of a block are two firing sequences of lasers 0-15; laser ``k`` of sequence ``s``
  fires ``s·55.296 + k·2.304`` µs after the block's first firing, and the azimuth advances
  linearly between consecutive blocks (the manual's precise azimuth interpolation).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = [
    "BLOCKS_PER_PACKET",
    "BLOCK_SIZE",
    "DATA_PORT",
    "PACKET_SIZE",
    "PRODUCT_IDS",
    "RETURNS_PER_BLOCK",
    "RETURN_MODES",
    "VLP16_DISTANCE_UNIT_M",
    "VLP16_ELEVATION_DEG",
    "VLP16_FIRING_US",
    "VLP16_SEQUENCE_US",
    "VLP16_VERTICAL_CORRECTION_M",
    "build_packet",
    "malformed",
    "product_id",
    "timestamp_us",
]

PACKET_SIZE = 1206
BLOCKS_PER_PACKET = 12
BLOCK_SIZE = 100
RETURNS_PER_BLOCK = 32
DATA_PORT = 2368

#: Return mode byte (offset 1204) → name.
RETURN_MODES = {0x37: "strongest", 0x38: "last", 0x39: "dual"}

#: Product id byte (offset 1205) of each model, by velodyne-decoder's ``Model`` member name.
PRODUCT_IDS = {
    "HDL32E": 0x21,
    "VLP16": 0x22,
    "PuckLite": 0x22,  # the same sensor as the VLP-16
    "VLP32A": 0x23,
    "VLP32B": 0x23,
    "PuckHiRes": 0x24,
    "VLP32C": 0x28,
    "VLS128": 0xA1,
    "AlphaPrime": 0xA1,  # the same sensor as the VLS-128
}

#: Laser banks (the flag's second byte) a data block may name.
_BANKS = b"\xee\xdd\xcc\xbb"
#: One unpack reads every block's flag bytes and azimuth: ``(ff, bank, azimuth) × 12``.
_BLOCK_HEADS = struct.Struct("<" + "BBH96x" * BLOCKS_PER_PACKET)
_FLAG_FIRST = 0xFF
_AZIMUTH_UNITS = 36000
_TIMESTAMP = struct.Struct("<I")
_TIMESTAMP_OFFSET = BLOCKS_PER_PACKET * BLOCK_SIZE  # 1200
_RETURN_MODE_OFFSET = _TIMESTAMP_OFFSET + 4
_PRODUCT_ID_OFFSET = _TIMESTAMP_OFFSET + 5

VLP16_DISTANCE_UNIT_M = 0.002
#: Elevation angle of VLP-16 lasers 0-15, degrees.
VLP16_ELEVATION_DEG = (-15, 1, -13, 3, -11, 5, -9, 7, -7, 9, -5, 11, -3, 13, -1, 15)
#: Vertical offset of each VLP-16 laser's origin, metres (added to z).
VLP16_VERTICAL_CORRECTION_M = (
    0.0112, -0.0007, 0.0097, -0.0022, 0.0081, -0.0037, 0.0066, -0.0051,
    0.0051, -0.0066, 0.0037, -0.0081, 0.0022, -0.0097, 0.0007, -0.0112,
)  # fmt: skip
#: Time between consecutive lasers of a firing sequence, and between sequences, µs.
VLP16_FIRING_US = 2.304
VLP16_SEQUENCE_US = 55.296


def malformed(packet: bytes) -> str | None:
    """What is wrong with a packet of :data:`PACKET_SIZE` bytes, ``None`` if nothing is.

    Checked: every block's flag (``FF`` and a laser bank), every azimuth (< 36000) and the
    return mode byte. The product id is the caller's to compare (:func:`product_id`).
    """
    heads = _BLOCK_HEADS.unpack_from(packet)
    for block in range(BLOCKS_PER_PACKET):
        first, bank, azimuth = heads[3 * block : 3 * block + 3]
        if first != _FLAG_FIRST or bank not in _BANKS:
            return f"block {block} flag is {first:02X} {bank:02X}, not FF EE/DD/CC/BB"
        if azimuth >= _AZIMUTH_UNITS:
            return f"block {block} azimuth {azimuth} is not below 36000 (0.01°)"
    mode = packet[_RETURN_MODE_OFFSET]
    if mode not in RETURN_MODES:
        return f"return mode byte {mode:#04x} is none of 0x37, 0x38, 0x39"
    return None


def product_id(packet: bytes) -> int:
    """The product id byte (which model sent the packet)."""
    return packet[_PRODUCT_ID_OFFSET]


def timestamp_us(packet: bytes) -> int:
    """Microseconds past the top of the hour, on the lidar's clock."""
    return int(_TIMESTAMP.unpack_from(packet, _TIMESTAMP_OFFSET)[0])


def build_packet(
    azimuths: Sequence[int],
    distances: Sequence[Sequence[int]],
    reflectivities: Sequence[Sequence[int]],
    timestamp: int,
    *,
    return_mode: int = 0x37,
    product: int = PRODUCT_IDS["VLP16"],
    banks: Sequence[int] | None = None,
) -> bytes:
    """A data packet: 12 block azimuths (0.01°), 12 × 32 distances (sensor units) and
    reflectivities, the timestamp (µs past the hour) and the factory bytes.

    For tests, benchmarks and simulators: fusionrt only reads packets.
    """
    if len(azimuths) != BLOCKS_PER_PACKET or len(distances) != BLOCKS_PER_PACKET:
        raise ValueError(f"a packet has {BLOCKS_PER_PACKET} blocks")
    out = bytearray()
    for block in range(BLOCKS_PER_PACKET):
        if len(distances[block]) != RETURNS_PER_BLOCK:
            raise ValueError(f"a block has {RETURNS_PER_BLOCK} returns")
        bank = 0xEE if banks is None else banks[block]
        out += struct.pack("<BBH", _FLAG_FIRST, bank, azimuths[block])
        for distance, reflectivity in zip(distances[block], reflectivities[block], strict=True):
            out += struct.pack("<HB", distance, reflectivity)
    out += _TIMESTAMP.pack(timestamp) + bytes((return_mode, product))
    return bytes(out)
