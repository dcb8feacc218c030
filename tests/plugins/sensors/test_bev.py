"""BEV rasterisation: the vectorised rasterisers against a plain per-point reference."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from fusionrt.plugins.sensors.bev import (
    RADAR_BEV_CHANNELS,
    LidarBevRasterizer,
    lidar_bev_channels,
    radar_stencil,
    splat_radar_bev,
    xyz_columns,
)
from fusionrt.runtime.geometry import BevGrid

SMALL_GRID = BevGrid(x_range=(-5, 5), y_range=(-4, 6), z_range=(-1, 2), resolution=0.5,
                     height_slices=3)  # fmt: skip


def reference_lidar_bev(
    xyz: np.ndarray,
    intensity: np.ndarray | None,
    grid: BevGrid,
    *,
    transform: np.ndarray | None = None,
    box: tuple[np.ndarray, np.ndarray] | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """The documented channels, one point at a time (slow and obvious)."""
    rows, cols = grid.shape
    slices = grid.height_slices
    out = np.zeros((3 + slices, rows, cols), np.float32)
    count = np.zeros((rows, cols))
    top = np.full((rows, cols), -np.inf)
    total = np.zeros((rows, cols))
    z_low, z_high = grid.z_range
    for k, point in enumerate(np.asarray(xyz, np.float64)):
        with np.errstate(all="ignore"):
            p = point if transform is None else transform[:3, :3] @ point + transform[:3, 3]
        value = 0.0 if intensity is None else float(intensity[k])
        if not (np.isfinite(p).all() and math.isfinite(value)):
            continue
        if box is not None and all(box[0][a] < p[a] < box[1][a] for a in range(3)):
            continue
        i = math.floor((p[0] - grid.x_range[0]) / grid.resolution)
        j = math.floor((p[1] - grid.y_range[0]) / grid.resolution)
        s = math.floor((p[2] - z_low) / (z_high - z_low) * slices)
        if not (0 <= i < rows and 0 <= j < cols and 0 <= s < slices):
            continue
        count[i, j] += 1
        top[i, j] = max(top[i, j], p[2])
        total[i, j] += value
        out[3 + s, i, j] = 1
    occupied = count > 0
    out[0] = np.minimum(1, np.log1p(count) / math.log(64))
    out[1][occupied] = (top[occupied] - z_low) / (z_high - z_low)
    out[2][occupied] = total[occupied] / count[occupied] * scale
    return out


def _random_cloud(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-7, 8, (count, 3)).astype(np.float32)
    intensity = rng.uniform(0, 1, count).astype(np.float32)
    xyz[::50, 0] = np.nan
    xyz[::77, 1] = np.inf
    xyz[::33, 2] = -np.inf
    intensity[::91] = np.nan
    return xyz, intensity


def _yaw(angle: float, translation: tuple[float, float, float]) -> np.ndarray:
    matrix = np.eye(4)
    c, s = math.cos(angle), math.sin(angle)
    matrix[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    matrix[:3, 3] = translation
    return matrix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lidar_raster_matches_the_per_point_reference(seed: int) -> None:
    xyz, intensity = _random_cloud(seed, 3000)
    transform = _yaw(0.3 * seed, (0.5, -0.2, 0.3))
    box = (np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]))
    raster = LidarBevRasterizer(SMALL_GRID, intensity_scale=0.5).rasterize(
        xyz, intensity, transform, box
    )
    expected = reference_lidar_bev(
        xyz, intensity, SMALL_GRID, transform=transform, box=box, scale=0.5
    )
    assert raster.dtype == np.float32
    assert raster.shape == (6, 20, 20)
    np.testing.assert_allclose(raster, expected, atol=2e-6)
    assert np.isfinite(raster).all()


def test_lidar_raster_without_intensity_or_transform() -> None:
    xyz, _ = _random_cloud(5, 500)
    raster = LidarBevRasterizer(SMALL_GRID).rasterize(xyz.astype(np.float64))
    np.testing.assert_allclose(raster, reference_lidar_bev(xyz, None, SMALL_GRID), atol=2e-6)
    assert not raster[2].any()


def test_cell_edges_follow_the_grid_convention() -> None:
    grid = BevGrid(x_range=(0, 2), y_range=(0, 2), z_range=(0, 2), resolution=1.0,
                   height_slices=2)  # fmt: skip
    xyz = np.array([
        [0.0, 0.0, 0.0],   # lower edges are inside: cell (0, 0), slice 0
        [1.0, 0.5, 1.0],   # x = 1 starts row 1; z = 1 starts slice 1
        [2.0, 0.5, 0.5],   # upper edges are outside
        [0.5, 2.0, 0.5],
        [0.5, 0.5, 2.0],
        [-1e-6, 0.5, 0.5],
    ], np.float32)  # fmt: skip
    raster = LidarBevRasterizer(grid).rasterize(xyz)
    occupied = raster[0] > 0
    np.testing.assert_array_equal(occupied, [[True, False], [True, False]])
    np.testing.assert_array_equal(raster[3], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(raster[4], [[0, 0], [1, 0]])
    assert raster[1, 1, 0] == pytest.approx(0.5)


def test_density_is_log_scaled_and_saturates_at_63_points() -> None:
    counts = [1, 7, 63, 200]
    xyz = np.concatenate([np.tile([[0.25 + i, 0.25, 0.25]], (n, 1)) for i, n in
                          enumerate(counts)]).astype(np.float32)  # fmt: skip
    grid = BevGrid(x_range=(0, 4), y_range=(0, 1), z_range=(0, 1), resolution=1.0,
                   height_slices=1)  # fmt: skip
    density = LidarBevRasterizer(grid).rasterize(xyz)[0, :, 0]
    expected = [min(1.0, math.log1p(n) / math.log(64)) for n in counts]
    np.testing.assert_allclose(density, expected, rtol=1e-6)
    assert density[2] == pytest.approx(1.0)


def test_empty_and_all_dropped_clouds_give_zeros() -> None:
    rasterizer = LidarBevRasterizer(SMALL_GRID)
    channels = len(lidar_bev_channels(SMALL_GRID))
    assert not rasterizer.rasterize(np.zeros((0, 3), np.float32)).any()
    nan = np.full((10, 3), np.nan, np.float32)
    raster = rasterizer.rasterize(nan, np.ones(10, np.float32))
    assert raster.shape == (channels, 20, 20)
    assert not raster.any()


def test_workspace_is_reused_and_grows_without_changing_results() -> None:
    rasterizer = LidarBevRasterizer(SMALL_GRID)
    small, small_i = _random_cloud(7, 100)
    big, big_i = _random_cloud(8, 5000)
    first = rasterizer.rasterize(small, small_i)
    rasterizer.rasterize(big, big_i)
    again = rasterizer.rasterize(small, small_i)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(
        rasterizer.rasterize(big, big_i), LidarBevRasterizer(SMALL_GRID).rasterize(big, big_i)
    )


def test_threads_share_a_rasterizer_safely() -> None:
    rasterizer = LidarBevRasterizer(SMALL_GRID)
    clouds = [_random_cloud(seed, 4000 + 100 * seed) for seed in range(4)]
    expected = [LidarBevRasterizer(SMALL_GRID).rasterize(*cloud) for cloud in clouds]
    results: dict[int, list[np.ndarray]] = {}

    def work(index: int) -> None:
        results[index] = [rasterizer.rasterize(*clouds[index]) for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, rasters in results.items():
        for raster in rasters:
            np.testing.assert_array_equal(raster, expected[index])


def test_xyz_columns_is_a_view_for_consecutive_float_fields() -> None:
    points = np.zeros(5, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("i", "<f4")])
    points["y"] = np.arange(5)
    view = xyz_columns(points)
    assert np.shares_memory(view, points)
    np.testing.assert_array_equal(view[:, 1], np.arange(5))
    scattered = np.zeros(5, [("z", "<f4"), ("x", "<f8"), ("y", "<i2")])
    scattered["y"] = np.arange(5)
    copy = xyz_columns(scattered)
    assert copy.dtype == np.float32 and not np.shares_memory(copy, scattered)
    np.testing.assert_array_equal(copy[:, 1], np.arange(5))


def test_grid_too_large_for_float32_bins_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        LidarBevRasterizer(BevGrid(x_range=(-200, 200), y_range=(-200, 200), resolution=0.05))


def test_radar_stencil_is_a_disc() -> None:
    di, dj = radar_stencil(BevGrid(resolution=0.5), 1.0)
    assert len(di) == 13  # cells whose centres are within 2 cells: 1 + 4 + 4 + 4
    assert set(zip(di.tolist(), dj.tolist(), strict=True)) >= {(0, 0), (2, 0), (0, -2), (1, 1)}
    assert (2, 1) not in set(zip(di.tolist(), dj.tolist(), strict=True))
    assert len(radar_stencil(BevGrid(resolution=0.5), 0.0)[0]) == 1


def test_radar_splat_spreads_points_and_averages_overlaps() -> None:
    grid = BevGrid(x_range=(0, 10), y_range=(0, 10), resolution=1.0)
    x = np.array([2.5, 3.5, 9.9, 50.0, np.nan, 5.5])
    y = np.array([2.5, 2.5, 9.9, 5.0, 5.0, 5.5])
    values = np.array([
        [10.0, 20.0, 5.0, 1.0, 1.0, np.nan],  # rcs (the last point's is NaN: dropped)
        [1.0, 3.0, 0.0, 0.0, 0.0, 0.0],       # vx
        [0.0, 0.0, -2.0, 0.0, 0.0, 0.0],      # vy
    ])  # fmt: skip
    raster = splat_radar_bev(x, y, values, grid, radius_m=1.0)
    assert raster.shape == (len(RADAR_BEV_CHANNELS), 10, 10)
    occupancy, rcs, vx, vy = raster
    assert occupancy[2, 2] == 1 and occupancy[3, 2] == 1 and occupancy[4, 2] == 1
    assert rcs[1, 2] == 10.0  # only the first point reaches row 1
    assert rcs[2, 2] == 15.0 and vx[2, 2] == 2.0  # both points: the mean
    assert rcs[4, 2] == 20.0
    assert occupancy[9, 9] == 1 and occupancy[8, 9] == 1 and occupancy[9, 8] == 1
    assert vy[9, 9] == -2.0
    assert occupancy.sum() == 5 + 3 + 3  # two overlapping discs (8 cells) + a corner disc
    assert occupancy[5, 5] == 0  # the NaN-rcs point is dropped
    assert np.isfinite(raster).all()
