"""Model geometry: what a model declares so that generic sensor plugins can feed it.

The model owns the geometry (DESIGN.md): the BEV grid it reasons on, the image size its camera
branch expects, the lift heights, the token length of its text encoder. Sensor plugins read it
from the :class:`PreprocessContext` and produce tensors of exactly that size.

BEV convention: the grid lies in the ego frame (x forward, y left, metres); row ``i`` covers
``x_min + i·resolution``, column ``j`` covers ``y_min + j·resolution``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class BevGrid:
    """A bird's-eye-view grid over the ego frame, with height slices for occupancy."""

    x_range: tuple[float, float] = (-20.0, 60.0)
    y_range: tuple[float, float] = (-40.0, 40.0)
    z_range: tuple[float, float] = (-2.0, 4.0)
    resolution: float = 0.5
    height_slices: int = 4

    def __post_init__(self) -> None:
        for name in ("x_range", "y_range", "z_range"):
            low, high = getattr(self, name)
            if not high > low:
                raise ValueError(f"BevGrid.{name} must be increasing, got {(low, high)}")
        if self.resolution <= 0 or self.height_slices < 1:
            raise ValueError("BevGrid.resolution must be > 0 and height_slices >= 1")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows along x, columns along y)."""
        rows = round((self.x_range[1] - self.x_range[0]) / self.resolution)
        cols = round((self.y_range[1] - self.y_range[0]) / self.resolution)
        return rows, cols

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """x of each row centre and y of each column centre, in metres."""
        rows, cols = self.shape
        xs = self.x_range[0] + (np.arange(rows) + 0.5) * self.resolution
        ys = self.y_range[0] + (np.arange(cols) + 0.5) * self.resolution
        return xs, ys


@dataclass(frozen=True, slots=True)
class ModelGeometry:
    """Everything about a model's inputs that sensor plugins need to know."""

    bev: BevGrid = field(default_factory=BevGrid)
    image_size: tuple[int, int] = (256, 448)  # (height, width) fed to the camera branch
    num_cameras: int = 1
    lift_heights: tuple[float, ...] = (0.0, 1.0, 2.0)
    images_rectified: bool = False
    token_length: int = 32
    vocab_size: int = 4096
    extra: dict[str, Any] = field(default_factory=dict)
