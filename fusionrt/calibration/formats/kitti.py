"""KITTI object-detection calibration files (``calib/000000.txt``) as a rig.

A KITTI object calib file holds, one ``KEY: v1 v2 ...`` line each (row-major):
``P0``..``P3`` (3×4 projection matrices of the *rectified* cameras 0-3), ``R0_rect`` (3×3
rectifying rotation of reference camera 0), ``Tr_velo_to_cam`` (3×4, Velodyne -> unrectified
camera 0) and ``Tr_imu_to_velo`` (3×4, OXTS IMU -> Velodyne). The devkit projects a Velodyne
point ``X`` into image ``i`` as ``P_i · R0_rect · Tr_velo_to_cam · X`` (homogeneous).

The rig built here:

* frame ``ego`` is **on the road below the Velodyne** (x forward, y left, z up — ISO 8855 like
  every fusionrt ego frame; ``ego_height_m: 0``): the Velodyne frame moved down by
  :data:`KITTI_VELODYNE_HEIGHT_M`, the mounting height the KITTI setup documents (Geiger et
  al., IJRR 2013, fig. 3). The calib files do not place the rear axle, so the origin is below
  the lidar rather than below the axle. ``lidar_height_m=None`` keeps the Velodyne frame as
  ``ego`` (declared ``ego_height_m: 1.73``: a road-level model refuses that rig);
* ``lidar``: the Velodyne, axes those of ``ego``, origin :data:`KITTI_VELODYNE_HEIGHT_M` up;
* ``imu``: the OXTS unit, extrinsics ``Tr_imu_to_velo``;
* ``cam0``..``cam3``: the **rectified** cameras, pinhole without distortion. Writing
  ``P_i = K_i [I | b_i]`` with ``b_i = K_i⁻¹ P_i[:, 3]`` (the camera's offset from the
  rectified reference camera, in camera-0 axes), camera ``i`` sees a Velodyne point at
  ``R0_rect · Tr_velo_to_cam · X + b_i``; its extrinsics are the inverse of that transform.
  Hence ``rig.project(X, "lidar", "cam2")`` equals the devkit's ``P2 · R0_rect · Tr · X``.

KITTI calib files do not store the image size, which varies slightly between drives
(1242×375, 1241×376, 1224×370, 1226×370, 1238×374); pass ``image_size`` from the images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusionrt.calibration.cameras import CameraModel
from fusionrt.calibration.rig import Rig, SensorCalibration, _Invalid, nearest_rotation
from fusionrt.calibration.transforms import Transform
from fusionrt.runtime.errors import CalibrationError

__all__ = ["KITTI_IMAGE_SIZE", "KITTI_VELODYNE_HEIGHT_M", "load_kitti_calib", "read_kitti_calib"]

#: (width, height) of most KITTI object / raw images.
KITTI_IMAGE_SIZE = (1242, 375)
#: Height of the Velodyne HDL-64E above the road on the KITTI car (the setup's documented 1.73 m).
KITTI_VELODYNE_HEIGHT_M = 1.73

# Names used by the object, tracking and raw-data devkits for the same matrices.
_ALIASES = {
    "R_rect": "R0_rect",
    "R0": "R0_rect",
    "Tr_velo_cam": "Tr_velo_to_cam",
    "Tr_imu_velo": "Tr_imu_to_velo",
}
_SHAPES = {
    "P0": (3, 4),
    "P1": (3, 4),
    "P2": (3, 4),
    "P3": (3, 4),
    "R0_rect": (3, 3),
    "Tr_velo_to_cam": (3, 4),
    "Tr_imu_to_velo": (3, 4),
}


def read_kitti_calib(path: str | Path) -> dict[str, np.ndarray]:
    """Parse a KITTI object calib file into ``{name: matrix}`` (float64, shapes as in KITTI).

    Accepts ``KEY: values`` and the tracking benchmark's ``KEY values`` lines, and the
    tracking names ``R_rect``, ``Tr_velo_cam``, ``Tr_imu_velo``. Unknown keys are kept as
    flat vectors. Raises ``CalibrationError`` naming the file and key on malformed lines or
    when one of P0..P3, R0_rect, Tr_velo_to_cam is missing (Tr_imu_to_velo is optional).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CalibrationError(
            f"cannot read KITTI calib file: {e.strerror or e}", file=str(p)
        ) from None
    out: dict[str, np.ndarray] = {}
    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            continue
        key, sep, rest = line.partition(":")
        if not sep:
            key, _, rest = line.partition(" ")
        key = _ALIASES.get(key.strip(), key.strip())
        try:
            values = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            raise CalibrationError(
                f"line {lineno}: values are not numbers: {rest.strip()[:60]!r}",
                field=key,
                file=str(p),
            ) from None
        shape = _SHAPES.get(key)
        if shape is not None:
            if values.size != shape[0] * shape[1]:
                raise CalibrationError(
                    f"line {lineno}: {key} needs {shape[0] * shape[1]} values, got {values.size}",
                    field=key,
                    file=str(p),
                )
            values = values.reshape(shape)
        out[key] = values
    missing = [k for k in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam") if k not in out]
    if missing:
        raise CalibrationError(
            f"KITTI calib file lacks {', '.join(missing)}", field=missing[0], file=str(p)
        )
    return out


def _rigid(m: np.ndarray, name: str, source: str) -> Transform:
    """A 3×4 ``[R|t]`` as a Transform, with the rig's orthonormality check."""
    try:
        rot = nearest_rotation(m[:3, :3], name)
    except _Invalid as e:
        raise CalibrationError(e.message, sensor=name, field=e.field, file=source) from None
    return Transform(rot, m[:3, 3])


def load_kitti_calib(
    path: str | Path,
    image_size: tuple[int, int] = KITTI_IMAGE_SIZE,
    *,
    lidar_height_m: float | None = KITTI_VELODYNE_HEIGHT_M,
) -> Rig:
    """A rig (frame ``ego`` on the road below the Velodyne) with sensors ``lidar``, ``imu``,
    ``cam0``..``cam3``.

    ``image_size`` is ``(width, height)`` of the (rectified) images; ``lidar_height_m`` the
    Velodyne's height above the road (``None``: ``ego`` is the Velodyne frame itself). See the
    module docstring for the frames; ``imu`` is left out when the file has no
    ``Tr_imu_to_velo``.
    """
    source = str(path)
    m = read_kitti_calib(path)
    r0 = np.eye(4)
    r0[:3, :3] = m["R0_rect"]
    tr = np.eye(4)
    tr[:3] = m["Tr_velo_to_cam"]
    # Velodyne -> rectified camera 0 (the devkit's R0_rect · Tr_velo_to_cam).
    velo_to_rect = _rigid((r0 @ tr)[:3], "Tr_velo_to_cam", source)

    # Velodyne -> ego: the lidar's axes, its origin lidar_height_m above ego's (on the road).
    velo_to_ego = Transform(np.eye(3), np.array([0.0, 0.0, lidar_height_m or 0.0]))
    sensors = [
        SensorCalibration("lidar", "lidar", velo_to_ego, rotation_format="rpy_deg"),
    ]
    if "Tr_imu_to_velo" in m:
        imu = velo_to_ego @ _rigid(m["Tr_imu_to_velo"], "imu", source)
        sensors.append(
            SensorCalibration(
                "imu",
                "imu",
                imu,
                rotation_format="matrix",
                _rotation_values=m["Tr_imu_to_velo"][:, :3],
            )
        )
    for i in range(4):
        p = m[f"P{i}"]
        k = p[:, :3].copy()
        name = f"cam{i}"
        if k[0, 0] <= 0 or k[1, 1] <= 0 or np.any(k[1:, 0] != 0) or k[2, 1] != 0 or k[2, 2] != 1:
            raise CalibrationError(
                f"P{i}[:, :3] is not an upper-triangular K with positive focal lengths: "
                f"{k.tolist()}",
                sensor=name,
                field=f"P{i}",
                file=source,
            )
        offset = np.linalg.solve(k, p[:, 3])  # P = K [I | b]
        velo_to_cam = Transform(np.eye(3), offset) @ velo_to_rect
        camera = CameraModel(k, np.zeros(0), "pinhole", image_size[0], image_size[1])
        sensors.append(
            SensorCalibration(
                name,
                "camera",
                velo_to_ego @ velo_to_cam.inverse(),
                camera=camera,
                rotation_format="matrix",
            )
        )
    ego_height = 0.0 if lidar_height_m is not None else KITTI_VELODYNE_HEIGHT_M
    return Rig("ego", sensors, source=source, ego_height_m=ego_height)
