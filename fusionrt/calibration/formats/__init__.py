"""Importers that build a :class:`~fusionrt.calibration.Rig` from other calibration formats.

* :mod:`~fusionrt.calibration.formats.kitti` — KITTI object-detection ``calib/*.txt``.
* :mod:`~fusionrt.calibration.formats.nuscenes` — nuScenes ``calibrated_sensor`` (+ ``ego_pose``)
  records.
* :mod:`~fusionrt.calibration.formats.ros` — ROS ``sensor_msgs/CameraInfo`` and static ``tf``.

Each returns an ordinary rig: save it with ``rig.save(path)`` to get an editable rig file.
"""

from fusionrt.calibration.formats.kitti import load_kitti_calib, read_kitti_calib
from fusionrt.calibration.formats.nuscenes import nuscenes_rig
from fusionrt.calibration.formats.ros import camera_model_from_camera_info, ros_rig

__all__ = [
    "camera_model_from_camera_info",
    "load_kitti_calib",
    "nuscenes_rig",
    "read_kitti_calib",
    "ros_rig",
]
