"""nuScenes ``calibrated_sensor`` (and optionally ``ego_pose``) records as a rig.

nuScenes conventions (https://www.nuscenes.org/nuscenes#data-format): quaternions are
``[w, x, y, z]``; ``calibrated_sensor`` is the transform *sensor -> ego*
(``p_ego = R(q) p_sensor + t``), ego = rear-axle centre on the road, x forward, y left, z up
— exactly a fusionrt rig frame ``ego`` at road level (the rig declares ``ego_height_m: 0``; the
lidar returns of the road around the car lie at ego z ≈ 0, and ``ego_pose`` z is always 0).
``ego_pose`` is *ego -> global* at one sensor's own timestamp.
Cameras carry ``camera_intrinsic`` (3×3 K; images are already undistorted, 1600×900).

Sensor names: the channel name in lower case (``CAM_FRONT`` -> ``cam_front``,
``LIDAR_TOP`` -> ``lidar_top``, ``RADAR_FRONT_LEFT`` -> ``radar_front_left``), as in the rig
files of this project; ``lowercase=False`` keeps the channel names. Kinds follow the prefix:
``CAM`` -> camera, ``LIDAR`` -> lidar, ``RADAR`` -> radar.

**Static rig** (``ego_pose=None``): the extrinsics are the calibrated_sensor records
(rotation kept verbatim as ``quaternion_wxyz``). Every sensor is then related through the ego
frame *at one instant*; between a lidar sweep and a camera exposure taken 30-40 ms apart the
car moves (0.3 m at 9 m/s), which the runtime compensates with ego poses.

**Rig of one sample** (``ego_pose`` = ``{channel: ego_pose record}``): each sensor is moved
to where it was *relative to the ego frame at the reference channel's timestamp*
(``reference``, default ``LIDAR_TOP``):
``T_sensor->ego(t_ref) = inv(E(t_ref)) · E(t_sensor) · T_sensor->ego``.
Then ``rig.transform("lidar_top", "cam_front")`` is the nuScenes devkit / mmdetection3d
lidar -> camera chain *including* the ego motion between the two timestamps. Channels absent
from ``ego_pose`` keep their static extrinsics (treated as taken at the reference time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fusionrt.calibration.cameras import CameraModel
from fusionrt.calibration.rig import Rig, SensorCalibration, _Invalid, parse_rotation
from fusionrt.calibration.transforms import Transform
from fusionrt.runtime.errors import CalibrationError

__all__ = ["NUSCENES_IMAGE_SIZE", "nuscenes_rig", "pose_from_record"]

#: (width, height) of every nuScenes camera image.
NUSCENES_IMAGE_SIZE = (1600, 900)

_KINDS = (("CAM", "camera"), ("LIDAR", "lidar"), ("RADAR", "radar"))


def _kind(channel: str) -> str:
    for prefix, kind in _KINDS:
        if channel.upper().startswith(prefix):
            return kind
    raise CalibrationError(
        f"cannot tell the sensor kind of nuScenes channel {channel!r} "
        "(expected a CAM_*, LIDAR_* or RADAR_* channel)",
        sensor=channel,
    )


def pose_from_record(record: Mapping[str, Any], channel: str, what: str) -> Transform:
    """A Transform from a nuScenes record with ``translation`` and ``rotation`` (w, x, y, z)."""
    try:
        if not isinstance(record, Mapping):
            raise _Invalid(f"expected a record (mapping), got {type(record).__name__}", what)
        for key in ("translation", "rotation"):
            if key not in record:
                raise _Invalid(f"record lacks {key!r}", f"{what}.{key}")
        _, _, rot = parse_rotation(
            {"quaternion_wxyz": list(record["rotation"])}, f"{what}.rotation"
        )
        trans = np.asarray(record["translation"], dtype=np.float64)
        if trans.shape != (3,) or not np.all(np.isfinite(trans)):
            raise _Invalid(
                f"translation must be 3 finite numbers, got {record['translation']!r}",
                f"{what}.translation",
            )
    except _Invalid as e:
        raise CalibrationError(e.message, sensor=channel, field=e.field) from None
    return Transform(rot, trans)


def nuscenes_rig(
    calibrated_sensors: Mapping[str, Mapping[str, Any]],
    ego_pose: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    reference: str = "LIDAR_TOP",
    lowercase: bool = True,
    image_size: tuple[int, int] = NUSCENES_IMAGE_SIZE,
) -> Rig:
    """A rig with frame ``ego`` from nuScenes ``calibrated_sensor`` records keyed by channel.

    ``calibrated_sensors[channel]`` has ``translation``, ``rotation`` (w, x, y, z) and, for
    cameras, ``camera_intrinsic`` (optional ``width`` / ``height`` override ``image_size``).
    ``ego_pose`` optionally maps channels to their ``ego_pose`` records (module docstring).
    """
    if ego_pose is not None:
        if not isinstance(ego_pose, Mapping) or "translation" in ego_pose:
            raise CalibrationError(
                "ego_pose must map channel names to ego_pose records (one per sample_data), "
                "not be a single record",
                field="ego_pose",
            )
        if reference not in ego_pose:
            raise CalibrationError(
                f"ego_pose has no record for the reference channel {reference!r}",
                sensor=reference,
                field="ego_pose",
            )
        ref_inv = pose_from_record(ego_pose[reference], reference, "ego_pose").inverse()
    sensors = []
    for channel, record in calibrated_sensors.items():
        kind = _kind(channel)
        name = channel.lower() if lowercase else channel
        ext = pose_from_record(record, channel, "calibrated_sensor")
        values: Any = None
        if ego_pose is not None and channel in ego_pose and channel != reference:
            moved = ref_inv @ pose_from_record(ego_pose[channel], channel, "ego_pose")
            ext = moved @ ext
        else:
            values = np.asarray(record["rotation"], dtype=np.float64)
        camera = None
        if kind == "camera":
            intrinsic = record.get("camera_intrinsic")
            if intrinsic is None or np.asarray(intrinsic).shape != (3, 3):
                raise CalibrationError(
                    f"camera record needs a 3×3 camera_intrinsic, got {intrinsic!r}",
                    sensor=channel,
                    field="camera_intrinsic",
                )
            width = int(record.get("width", image_size[0]))
            height = int(record.get("height", image_size[1]))
            try:
                camera = CameraModel(
                    np.asarray(intrinsic, dtype=np.float64), np.zeros(0), "pinhole", width, height
                )
            except ValueError as e:
                raise CalibrationError(str(e), sensor=channel, field="camera_intrinsic") from None
            if camera.fx <= 0 or camera.fy <= 0:
                raise CalibrationError(
                    "camera_intrinsic has a negative focal length "
                    f"(fx={camera.fx:g}, fy={camera.fy:g})",
                    sensor=channel,
                    field="camera_intrinsic",
                )
        sensors.append(
            SensorCalibration(
                name,
                kind,
                ext,
                camera=camera,
                rotation_format="quaternion_wxyz",
                _rotation_values=values,
            )
        )
    return Rig("ego", sensors, ego_height_m=0.0)
