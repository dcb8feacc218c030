"""Rig description and geometry: transforms, camera models, the rig file and its importers."""

from fusionrt.calibration.transforms import Transform

__all__ = ["Transform"]
