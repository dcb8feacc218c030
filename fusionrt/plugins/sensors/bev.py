"""Vectorised bird's-eye-view rasterisation of point sets, shared by the lidar and radar plugins.

Conventions are :class:`~fusionrt.runtime.geometry.BevGrid`'s: points are in the ego frame
(x forward, y left, z up, metres); row ``i`` covers ``[x_min + i·res, x_min + (i+1)·res)``,
column ``j`` covers ``[y_min + j·res, y_min + (j+1)·res)``. Every function here works on whole
arrays (``ufunc.at``, ``np.bincount``): there is no Python loop over points. Points that
are NaN or ±inf fail every range comparison and are dropped with the points outside the grid.

Lidar channels (``lidar_bev_channels``), in order, all float32 and 0 in empty cells:

* ``density``: ``min(1, ln(1 + n) / ln(64))`` of the cell's point count ``n`` (Complex-YOLO's
  log scaling: 1 point → 0.17, 63 or more points → 1);
* ``max_height``: the highest point's ``(z − z_min) / (z_max − z_min)``, in [0, 1);
* ``mean_intensity``: the mean of the points' intensity (times the caller's scale);
* ``occupancy_<k>``: 1 where the cell holds a point in height slice ``k`` of ``height_slices``
  equal slices of ``z_range``.

Radar channels (``RADAR_BEV_CHANNELS``): each point covers the cells whose centres lie within
``radius_m`` of the point's cell centre (radar is sparse: one return per object); ``occupancy``
is 1 on covered cells, ``rcs``, ``vx`` and ``vy`` the mean over the points covering the cell.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from fusionrt.runtime.geometry import BevGrid

RADAR_BEV_CHANNELS: tuple[str, ...] = ("occupancy", "rcs", "vx", "vy")
DENSITY_SATURATION_POINTS = 64  # density reaches 1 at 63 points per cell


def lidar_bev_channels(grid: BevGrid) -> tuple[str, ...]:
    """Names of the lidar BEV channels for ``grid``, in tensor order."""
    slices = tuple(f"occupancy_{k}" for k in range(grid.height_slices))
    return ("density", "max_height", "mean_intensity", *slices)


def xyz_columns(points: np.ndarray) -> np.ndarray:
    """The ``x, y, z`` fields of a structured array as an ``(N, 3)`` float array.

    A strided **view** when the three fields are native float32 (or float64) at consecutive
    offsets (KITTI, nuScenes, most drivers), so BLAS reads the message bytes directly;
    otherwise a float32 copy.
    """
    fields: Mapping[str, Any] = points.dtype.fields or {}
    dtypes = [fields[name][0] for name in ("x", "y", "z")]
    offsets = [fields[name][1] for name in ("x", "y", "z")]
    first = dtypes[0]
    if (
        first in (np.dtype(np.float32), np.dtype(np.float64))
        and all(d == first for d in dtypes)
        and offsets[1] == offsets[0] + first.itemsize
        and offsets[2] == offsets[1] + first.itemsize
    ):
        return np.ndarray(
            (points.shape[0], 3), first, points, offsets[0], (points.strides[0], first.itemsize)
        )
    xyz = np.empty((points.shape[0], 3), np.float32)
    for column, name in enumerate(("x", "y", "z")):
        xyz[:, column] = points[name]
    return xyz


class LidarBevRasterizer:
    """Rasterises lidar points into one BEV grid; build once per grid and reuse.

    ``rasterize`` fuses the sensor → ego transform and the grid scaling into one 3×3 BLAS
    product, computes one bin per (height slice, cell) for every point, and reduces all
    channels from that one index: one ``bincount`` for counts and occupancy, one for the
    intensity sum, one ``np.maximum.at`` for the height. Points outside the grid, inside the
    excluded (ego-vehicle) box, or with a non-finite coordinate or intensity go to one extra
    "dropped" bin that is cut off at the end.
    """

    def __init__(self, grid: BevGrid, intensity_scale: float = 1.0) -> None:
        self.grid = grid
        self.intensity_scale = float(intensity_scale)
        self.rows, self.cols = grid.shape
        self.slices = grid.height_slices
        self.channels = lidar_bev_channels(grid)
        z_low, z_high = grid.z_range
        # ego metres → grid units, shifted by +1 so that every kept unit is >= 1 (see below)
        self._scale = np.array(
            [1.0 / grid.resolution, 1.0 / grid.resolution, self.slices / (z_high - z_low)]
        )
        self._origin = np.array([grid.x_range[0], grid.y_range[0], z_low])
        cells = self.rows * self.cols
        self._bins = self.slices * cells
        if self._bins + self.cols + cells >= 1 << 24:  # bin numbers must be exact in float32
            raise ValueError(f"BEV grid with {self._bins} bins is too large for float32 binning")
        self._weights = np.array([[self.cols, 1.0, cells]], np.float32)
        self._upper = np.array([self.rows, self.cols, self.slices], np.float32) + 1
        self._local = threading.local()

    def _to_units(self, metres: np.ndarray) -> np.ndarray:
        return (np.asarray(metres, np.float64) - self._origin) * self._scale + 1.0

    def rasterize(
        self,
        xyz: np.ndarray,
        intensity: np.ndarray | None = None,
        transform: np.ndarray | None = None,
        exclude_box: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """``(len(channels), rows, cols)`` float32 raster of ``xyz`` (``(N, 3)``, any strides).

        ``transform`` (4×4) maps ``xyz`` into the ego frame (None: already there);
        ``exclude_box`` ``(min_xyz, max_xyz)`` in the ego frame drops the points strictly
        inside it; ``intensity`` ``(N,)`` feeds ``mean_intensity`` (None: channel 0).
        """
        if xyz.shape[0] == 0:
            return np.zeros((len(self.channels), self.rows, self.cols), np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf points are dropped below
            return self._rasterize(xyz, intensity, transform, exclude_box)

    def _rasterize(
        self,
        xyz: np.ndarray,
        intensity: np.ndarray | None,
        transform: np.ndarray | None,
        exclude_box: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        rows, cols, slices, bins = self.rows, self.cols, self.slices, self._bins
        cells = rows * cols
        count = xyz.shape[0]
        work = self._workspace(count)
        matrix = np.eye(4) if transform is None else np.asarray(transform, np.float64)
        linear = (self._scale[:, None] * matrix[:3, :3]).astype(np.float32)
        shift = self._to_units(matrix[:3, 3]).astype(np.float32)
        source = xyz if xyz.dtype == np.float32 else xyz.astype(np.float32)
        units = work.units[: 3 * count].reshape(3, count)
        np.matmul(linear, source.T, out=units)  # (3, N) grid units
        units += shift[:, None]
        # a kept point has 1 <= units < upper on every axis; NaN and inf fail the comparisons
        keep, test = work.keep[:count], work.test[:count]
        np.greater_equal(units[0], 1, out=keep)
        for axis in range(3):
            if axis:
                np.greater_equal(units[axis], 1, out=test)
                keep &= test
            np.less(units[axis], self._upper[axis], out=test)
            keep &= test
        if exclude_box is not None:
            low, high = (self._to_units(corner).astype(np.float32) for corner in exclude_box)
            inside = work.inside[:count]
            np.greater(units[0], low[0], out=inside)
            for axis in range(3):
                if axis:
                    np.greater(units[axis], low[axis], out=test)
                    inside &= test
                np.less(units[axis], high[axis], out=test)
                inside &= test
            np.logical_not(inside, out=inside)
            keep &= inside
        if intensity is not None:
            np.isfinite(intensity, out=test)
            keep &= test
        height = work.height[:count]
        np.copyto(height, units[2])
        np.floor(units, out=units)
        # bin = slice·cells + row·cols + col, exact in float32; dropped points → bin `bins`
        flat_bins = work.bins[:count].reshape(1, count)
        np.matmul(self._weights, units, out=flat_bins)
        bin_index = work.index[:count]
        np.subtract(flat_bins[0], cells + cols + 1, out=bin_index, casting="unsafe")
        np.logical_not(keep, out=test)
        np.copyto(bin_index, bins, where=test)

        # per-bin reductions into reused tables with ufunc.at (same-dtype fast path)
        out = np.zeros((len(self.channels), rows, cols), np.float32)
        counts, top = work.counts, work.top
        counts.fill(0.0)
        np.add.at(counts, bin_index, np.float32(1.0))  # float32 counts are exact below 2**24
        per_bin = counts[:bins].reshape(slices, cells)
        np.greater(per_bin.reshape(slices, rows, cols), 0, out=out[3:], casting="unsafe")
        points_per_cell = per_bin.sum(axis=0)
        density = out[0].reshape(-1)
        np.log1p(points_per_cell, out=density, casting="unsafe")
        density *= np.float32(1.0 / math.log(DENSITY_SATURATION_POINTS))
        np.minimum(density, 1.0, out=density)

        top.fill(0.0)  # kept heights are >= 1 in grid units
        np.maximum.at(top, bin_index, height)
        height_channel = out[1].reshape(-1)
        np.max(top[:bins].reshape(slices, cells), axis=0, out=height_channel)
        height_channel -= 1.0  # empty cells: 0 - 1, clipped back to 0
        np.maximum(height_channel, 0.0, out=height_channel)
        height_channel *= np.float32(1.0 / slices)

        if intensity is not None:
            if intensity.dtype != np.float32:
                intensity = intensity.astype(np.float32)
            sums = work.sums
            sums.fill(0.0)
            np.add.at(sums, bin_index, intensity)
            mean = out[2].reshape(-1)
            np.sum(sums[:bins].reshape(slices, cells), axis=0, out=mean)
            mean /= np.maximum(points_per_cell, 1.0)  # empty cells: 0 / 1
            if self.intensity_scale != 1.0:
                mean *= np.float32(self.intensity_scale)
        return out

    def _workspace(self, count: int) -> _Workspace:
        """This thread's scratch arrays, grown to hold ``count`` points (reused across calls:
        fresh multi-megabyte arrays every frame cost more in page faults than the work)."""
        work: _Workspace | None = getattr(self._local, "work", None)
        if work is None or work.capacity < count:
            work = _Workspace(max(count, int(1.25 * (work.capacity if work else 0))), self._bins)
            self._local.work = work
        return work


class _Workspace:
    """Per-thread scratch arrays of :class:`LidarBevRasterizer` for up to ``capacity`` points."""

    def __init__(self, capacity: int, bins: int) -> None:
        self.capacity = capacity
        self.units = np.empty(3 * capacity, np.float32)
        self.keep = np.empty(capacity, np.bool_)
        self.test = np.empty(capacity, np.bool_)
        self.inside = np.empty(capacity, np.bool_)
        self.height = np.empty(capacity, np.float32)
        self.bins = np.empty(capacity, np.float32)
        self.index = np.empty(capacity, np.intp)
        self.counts = np.empty(bins + 1, np.float32)
        self.top = np.empty(bins + 1, np.float32)
        self.sums = np.empty(bins + 1, np.float32)


def radar_stencil(grid: BevGrid, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the cells within ``radius_m`` of a cell centre (incl. itself)."""
    reach = math.floor(radius_m / grid.resolution + 1e-9)
    steps = np.arange(-reach, reach + 1)
    di, dj = np.meshgrid(steps, steps, indexing="ij")
    inside = (di * di + dj * dj) * grid.resolution**2 <= radius_m**2 + 1e-9
    return di[inside], dj[inside]


def splat_radar_bev(
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    grid: BevGrid,
    radius_m: float,
) -> np.ndarray:
    """Spread ego-frame radar points over a disc of cells: ``(1 + V, rows, cols)`` float32.

    ``values`` is ``(V, N)`` (e.g. rcs, vx, vy); channel 0 is occupancy, channel ``1 + k`` the
    mean of ``values[k]`` over the points covering the cell. Points outside the grid's x/y
    ranges or with a non-finite x, y or value are ignored (radar z is not used).
    """
    rows, cols = grid.shape
    out = np.zeros((1 + values.shape[0], rows, cols), np.float32)
    fx = (np.asarray(x, np.float64) - grid.x_range[0]) / grid.resolution
    fy = (np.asarray(y, np.float64) - grid.y_range[0]) / grid.resolution
    keep = (fx >= 0) & (fx < rows) & (fy >= 0) & (fy < cols) & np.isfinite(values).all(axis=0)
    if not keep.any():
        return out
    ix, iy, kept = fx[keep].astype(np.intp), fy[keep].astype(np.intp), values[:, keep]
    di, dj = radar_stencil(grid, radius_m)
    ci = ix[:, None] + di[None, :]  # (N, K) covered rows and columns
    cj = iy[:, None] + dj[None, :]
    inside = (ci >= 0) & (ci < rows) & (cj >= 0) & (cj < cols)
    cell = (ci * cols + cj)[inside]
    owner = np.broadcast_to(np.arange(ix.size)[:, None], ci.shape)[inside]
    cells = rows * cols
    count = np.bincount(cell, minlength=cells)
    covered = count > 0
    out[0].reshape(-1)[covered] = 1.0
    for k in range(kept.shape[0]):  # loop over the few value channels, not over points
        total = np.bincount(cell, weights=kept[k][owner], minlength=cells)
        out[1 + k].reshape(-1)[covered] = total[covered] / count[covered]
    return out
