"""The synthetic car's CAN bus: speed, yaw rate and steering at 100 Hz, encoded with its DBC.

The DBC ships with fusionrt (:data:`DBC_PATH`, ``fusionrt/sim/data/fusionrt_car.dbc``):
8-byte messages, each with a 4-bit rolling counter and a checksum byte

    checksum = (sum(data[0:7]) + (id & 0xFF) + (id >> 8)) & 0xFF

so a decoder can tell a corrupted frame from a valid one. Each 10 ms cycle sends
``VEHICLE_SPEED`` (0x1A0), ``YAW_RATE`` (0x1B0) and ``STEERING`` (0x1C0), 250 µs apart
(bus serialisation); a drive with self-diagnostics (:mod:`fusionrt.sim.diagnostics`) adds
``DIAG_STATUS`` (0x3F0) every tenth cycle. Frames are recorded as ``can_msgs/msg/Frame`` and
also written as a ``candump -l`` log (``(seconds.micros) can0 1A0#0011223344556677``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cantools
import numpy as np

from fusionrt.sim.world import EgoState

__all__ = [
    "CAN_IDS",
    "DBC_PATH",
    "DIAG_STATUS_ID",
    "CanFrame",
    "candump_line",
    "checksum",
    "encode_cycle",
    "encode_diag_status",
    "load_dbc",
]

DBC_PATH = Path(__file__).parent / "data" / "fusionrt_car.dbc"
CAN_IDS = (0x1A0, 0x1B0, 0x1C0)
DIAG_STATUS_ID = 0x3F0
#: DIAG_STATUS's state signal of each sensor.
_STATE_SIGNALS = {
    "camera_front": "CameraState",
    "lidar_top": "LidarState",
    "radar_front": "RadarState",
}
FRAME_SPACING_S = 0.00025


@dataclass(frozen=True)
class CanFrame:
    """One classic CAN frame."""

    arbitration_id: int
    data: bytes


@cache
def load_dbc() -> Any:
    """The car's DBC as a cantools database."""
    return cantools.database.load_file(str(DBC_PATH))


def checksum(arbitration_id: int, data: bytes) -> int:
    """The checksum byte of a frame (see the module docstring)."""
    return (sum(data[:7]) + (arbitration_id & 0xFF) + (arbitration_id >> 8)) & 0xFF


def _with_checksum(arbitration_id: int, data: bytes) -> bytes:
    out = bytearray(data)
    out[7] = checksum(arbitration_id, bytes(out))
    return bytes(out)


def encode_cycle(ego: EgoState, steering_rate_deg_s: float, counter: int) -> list[CanFrame]:
    """The three frames of one 10 ms cycle for the ego state ``ego`` (scalars)."""
    db = load_dbc()
    speed_kmh = float(np.clip(float(ego.speed) * 3.6, 0.0, 655.35))
    lat_accel = float(ego.speed) * float(ego.yaw_rate)
    values = {
        0x1A0: {
            "VehicleSpeed": speed_kmh,
            "LongitudinalAccel": float(np.clip(ego.accel, -32.0, 32.0)),
        },
        0x1B0: {
            "YawRate": float(np.clip(np.degrees(float(ego.yaw_rate)), -327.0, 327.0)),
            "LateralAccel": float(np.clip(lat_accel, -32.0, 32.0)),
        },
        0x1C0: {
            "SteeringWheelAngle": float(np.clip(ego.steering_wheel_deg, -3276.0, 3276.0)),
            "SteeringWheelRate": float(np.clip(steering_rate_deg_s, -3276.0, 3276.0)),
        },
    }
    frames = []
    for can_id in CAN_IDS:
        msg = db.get_message_by_frame_id(can_id)
        signals = {**values[can_id], "Counter": counter % 16, "Checksum": 0}
        data = msg.encode(signals, scaling=True, strict=False)
        frames.append(CanFrame(can_id, _with_checksum(can_id, bytes(data))))
    return frames


def encode_diag_status(states: dict[str, int], dtc: int, counter: int) -> CanFrame:
    """The ``DIAG_STATUS`` frame: each sensor's state (0 ok, 1 degraded) and the active DTC."""
    signals = {_STATE_SIGNALS[sensor]: state for sensor, state in states.items()}
    signals |= {"ActiveDtc": dtc, "Counter": counter % 16, "Checksum": 0}
    data = load_dbc().get_message_by_frame_id(DIAG_STATUS_ID).encode(signals, strict=True)
    return CanFrame(DIAG_STATUS_ID, _with_checksum(DIAG_STATUS_ID, bytes(data)))


def candump_line(stamp_ns: int, frame: CanFrame, channel: str = "can0") -> str:
    """One line of a ``candump -l`` log: ``(1700000000.123456) can0 1A0#0011223344556677``."""
    sec, ns = divmod(int(stamp_ns), 1_000_000_000)
    return (
        f"({sec}.{ns // 1000:06d}) {channel} {frame.arbitration_id:03X}#{frame.data.hex().upper()}"
    )
