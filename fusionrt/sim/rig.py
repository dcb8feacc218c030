"""The synthetic car's rig: front camera, top lidar, front radar, CAN bus and text logger.

Built with :mod:`fusionrt.calibration` and saved as ``rig.yaml`` beside the bag. Mounting
positions are those of a mid-size sedan (ego frame: origin on the ground below the rear axle,
x forward, y left, z up); each sensor is mounted with a small misalignment, so code that
ignores the extrinsics is visibly wrong. Clock offsets are drawn per drive from the seed (see
:mod:`fusionrt.sim.timing` for the sign convention: ``common = sensor_stamp + time_offset_ns``).
"""

from __future__ import annotations

import numpy as np

from fusionrt.calibration import CameraModel, Rig, SensorCalibration, Transform
from fusionrt.calibration.transforms import rpy_to_matrix
from fusionrt.sim.config import SimConfig
from fusionrt.sim.world import EGO_BOX_MAX, EGO_BOX_MIN, rng_for

__all__ = ["CAMERA", "CAN", "LIDAR", "LOG", "RADAR", "SENSOR_ALIASES", "build_rig"]

CAMERA = "camera_front"
LIDAR = "lidar_top"
RADAR = "radar_front"
CAN = "can"
LOG = "log"

#: Short names accepted by ``--fail`` (``radar@10s-15s``).
SENSOR_ALIASES: dict[str, str] = {"camera": CAMERA, "lidar": LIDAR, "radar": RADAR}

#: Horizontal field of view of the front camera (degrees) and its lens distortion
#: (plumb_bob k1 k2 p1 p2 k3: mild barrel distortion).
CAMERA_HFOV_DEG = 80.0
CAMERA_DISTORTION = (-0.12, 0.03, 0.0004, -0.0003, 0.0)

#: Rotation taking camera axes (x right, y down, z forward) to ego axes (x fwd, y left, z up).
_CAMERA_AXES = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_model(width: int, height: int) -> CameraModel:
    """The front camera's intrinsics at ``width``×``height`` (square pixels)."""
    fx = 0.5 * width / np.tan(np.radians(0.5 * CAMERA_HFOV_DEG))
    k = np.array(
        [
            [fx, 0.0, 0.5 * width + 0.004 * width],
            [0.0, fx, 0.5 * height - 0.004 * height],
            [0.0, 0.0, 1.0],
        ]
    )
    return CameraModel(k, np.array(CAMERA_DISTORTION), "plumb_bob", width, height)


def _mount(rpy_deg: tuple[float, float, float], xyz: tuple[float, float, float]) -> Transform:
    return Transform(rpy_to_matrix(np.radians(rpy_deg)), np.array(xyz, dtype=np.float64))


def build_rig(config: SimConfig) -> Rig:
    """The rig of the drive described by ``config`` (clock offsets depend on the seed)."""
    rng = rng_for(config.seed, "rig")

    def offset_ns(lo_ms: float, hi_ms: float) -> int:
        return round(float(rng.uniform(lo_ms, hi_ms)) * 1000.0) * 1000  # whole microseconds

    # Camera: pitched 2° down, 0.3° yaw and 0.2° roll misalignment.
    cam_rot = rpy_to_matrix(np.radians([0.2, 2.0, -0.3])) @ _CAMERA_AXES
    sensors = [
        SensorCalibration(
            name=CAMERA,
            kind="camera",
            extrinsics=Transform(cam_rot, np.array([1.95, 0.0, 1.42])),
            time_offset_ns=offset_ns(5.0, 40.0),
            camera=camera_model(config.camera_width, config.camera_height),
        ),
        SensorCalibration(
            name=LIDAR,
            kind="lidar",
            extrinsics=_mount((0.15, -0.2, 0.8), (1.25, 0.0, 1.95)),
            time_offset_ns=0,
        ),
        SensorCalibration(
            name=RADAR,
            kind="radar",
            extrinsics=_mount((0.0, 0.5, -1.0), (3.75, 0.0, 0.55)),
            time_offset_ns=-offset_ns(10.0, 60.0),
        ),
        SensorCalibration(name=CAN, kind="can", time_offset_ns=offset_ns(-10.0, 10.0)),
        SensorCalibration(name=LOG, kind="text", time_offset_ns=offset_ns(-300.0, 300.0)),
    ]
    box = (np.array(EGO_BOX_MIN), np.array(EGO_BOX_MAX))
    return Rig("ego", sensors, vehicle_box=box, ego_height_m=0.0)  # the ego origin is on the road
