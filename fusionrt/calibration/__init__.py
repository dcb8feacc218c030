"""Rig description and geometry: transforms, camera models, the rig file and its importers.

Conventions (see :mod:`fusionrt.calibration.transforms`): Hamilton quaternions in w, x, y, z
order, active rotations, transforms map source-frame points into the destination frame; the
common frame ``ego`` is x forward, y left, z up; camera frames are x right, y down, z forward.
"""

from fusionrt.calibration.cameras import CameraModel
from fusionrt.calibration.rig import Rig, SensorCalibration
from fusionrt.calibration.transforms import Transform

__all__ = ["CameraModel", "Rig", "SensorCalibration", "Transform"]
