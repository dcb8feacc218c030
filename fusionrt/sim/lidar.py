"""A rotating multi-beam lidar, ray-cast against the ground, the boxes of the world and the ego.

The sensor spins clockwise seen from above, starting each 100 ms sweep facing backwards, and
fires one column of ``beams`` lasers at a time. Every column is cast from the sensor pose *at its
own firing time*, and every point is expressed in the sensor frame at that time (as a real
spinning lidar reports it): the sweep is skewed by the ego's motion, and consumers
motion-compensate with the per-point time ``t``.

Ray casting is vectorised: the columns of a sweep are processed in chunks; each chunk tests all
its rays against the boxes whose azimuth range overlaps the chunk (slab intersection in each
box's own frame, ``rays × boxes`` arrays) and against the ground plane ``z = 0``.

Point fields (``sensor_msgs/PointField``, little-endian, 22 bytes a point): ``x y z`` float32
metres in the lidar frame, ``intensity`` float32 0..255, ``t`` uint32 nanoseconds since the
message stamp (the sweep start), ``ring`` uint16 beam index (0 = lowest). Coordinates are
quantised to 1/256 m and intensity to integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrt.calibration import Rig
from fusionrt.sim.conditions import Condition
from fusionrt.sim.degradation import LidarBlockage
from fusionrt.sim.raycast import cast_boxes
from fusionrt.sim.world import (
    BARRIER,
    BUILDING,
    CAR,
    CONE,
    CYCLIST,
    LANE_WIDTH,
    PEDESTRIAN,
    POLE,
    SIDEWALK,
    Boxes,
    World,
    wrap_angle,
)

__all__ = ["POINT_DTYPE", "LidarModel", "LidarSimulator", "Sweep", "beam_elevations"]

POINT_DTYPE = np.dtype(
    {
        "names": ["x", "y", "z", "intensity", "t", "ring"],
        "formats": ["<f4", "<f4", "<f4", "<f4", "<u4", "<u2"],
        "offsets": [0, 4, 8, 12, 16, 20],
        "itemsize": 22,
    }
)

#: Coordinates are quantised to 1/256 m (3.9 mm) and intensity to whole numbers, like a real
#: sensor's range and reflectivity resolution (it also lets the bag's zstd chunks compress).
QUANTUM_INV = 256.0

#: Diffuse reflectivity (0..1) of each box kind (cars vary with their paint, see below).
_REFLECTIVITY = {
    CAR: 0.35,
    PEDESTRIAN: 0.25,
    CYCLIST: 0.3,
    POLE: 0.45,
    BARRIER: 0.85,  # retro-reflective stripes
    CONE: 0.9,
    BUILDING: 0.3,
}
EGO_BODY = -2  # hit code of the ego's own body
GROUND = -1  # hit code of the ground
MISS = -3


def beam_elevations(beams: int) -> np.ndarray:
    """Beam elevations (radians, ascending): half the beams within -8°..+2°, the rest spread
    down to -25° and up to +15° (a 32-beam automotive pattern; 16 and 64 scale it)."""
    dense = beams // 2
    low = (beams - dense) * 2 // 3
    high = beams - dense - low
    deg = np.concatenate(
        [
            np.linspace(-25.0, -8.0, low, endpoint=False),
            np.linspace(-8.0, 2.0, dense, endpoint=False),
            np.linspace(2.0, 15.0, high),
        ]
    )
    return np.radians(deg)


@dataclass(frozen=True)
class LidarModel:
    """Geometry and noise of the spinning lidar."""

    beams: int = 32
    columns: int = 1024
    rate_hz: float = 10.0
    max_range_m: float = 100.0
    min_range_m: float = 1.0
    range_noise_m: float = 0.02
    dropout: float = 0.02
    chunk_columns: int = 64

    @property
    def sweep_s(self) -> float:
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class Sweep:
    """One sweep: the points, and for each the track id of the actor it hit (``-1``: other)."""

    t0_s: float
    points: np.ndarray  # POINT_DTYPE
    hit_track: np.ndarray  # (N,) int64


class LidarSimulator:
    """Sweeps of the rig's lidar through a world under a condition."""

    def __init__(
        self, world: World, rig: Rig, sensor: str, model: LidarModel, condition: Condition
    ) -> None:
        self.world = world
        self.model = model
        self.condition = condition
        ext = rig.transform(sensor, rig.frame)
        self._r_se = ext.rotation
        self._t_se = ext.translation
        n, b = model.columns, model.beams
        self.elevation = beam_elevations(b)
        self.azimuth = np.pi - 2.0 * np.pi * np.arange(n) / n  # clockwise, starting backwards
        ce, se = np.cos(self.elevation), np.sin(self.elevation)
        ca, sa = np.cos(self.azimuth), np.sin(self.azimuth)
        self.dirs_sensor = np.stack(
            [ca[:, None] * ce[None], sa[:, None] * ce[None], np.broadcast_to(se, (n, b))], axis=-1
        )  # (N, B, 3)
        self._ego_body_range = self._cast_ego_body(rig)

    def _cast_ego_body(self, rig: Rig) -> np.ndarray:
        """Range (N, B) at which each ray hits the ego's own body (``inf``: never)."""
        if rig.vehicle_box is None:
            return np.full(self.dirs_sensor.shape[:2], np.inf)
        lo, hi = rig.vehicle_box
        center, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        dirs = self.dirs_sensor @ self._r_se.T
        best, _, _ = cast_boxes(
            self._t_se[None], dirs.reshape(1, -1, 3), center[None], half[None], np.zeros(1)
        )
        return best.reshape(dirs.shape[:2])

    def sweep(self, t0_s: float, rng: np.random.Generator) -> Sweep:
        """The sweep starting at simulation time ``t0_s``."""
        m, cond = self.model, self.condition
        n, b = m.columns, m.beams
        col_t = t0_s + np.arange(n) * (m.sweep_s / n)
        ego = self.world.ego(col_t)
        cy, sy = np.cos(ego.yaw), np.sin(ego.yaw)
        r_ew = np.zeros((n, 3, 3))
        r_ew[:, 0, 0], r_ew[:, 0, 1], r_ew[:, 1, 0], r_ew[:, 1, 1], r_ew[:, 2, 2] = (
            cy,
            -sy,
            sy,
            cy,
            1,
        )
        r_sw = r_ew @ self._r_se  # sensor -> world rotation per column
        origins = np.einsum("nij,j->ni", r_ew, self._t_se) + np.column_stack(
            [ego.x, ego.y, np.zeros(n)]
        )
        dirs = np.einsum("nij,nbj->nbi", r_sw, self.dirs_sensor)

        max_range = cond.lidar_max_range_m if np.isfinite(cond.lidar_max_range_m) else m.max_range_m
        max_range = min(max_range, m.max_range_m)
        # Ground plane.
        dz = dirs[..., 2]
        ground = np.where(dz < -1e-9, -origins[:, None, 2] / np.minimum(dz, -1e-9), np.inf)
        hit_range = np.minimum(ground, self._ego_body_range)
        code = np.where(self._ego_body_range < ground, EGO_BODY, GROUND)
        axis_hit = np.full((n, b), 2, dtype=np.int64)

        # Boxes, extrapolated with their velocity to each chunk's mid time.
        boxes = self.world.boxes_at(t0_s, radius_m=max_range + 30.0)
        rel = boxes.center[:, :2] - origins[0, :2]
        dist = np.hypot(rel[:, 0], rel[:, 1])
        radius = 0.5 * np.hypot(boxes.size[:, 0], boxes.size[:, 1])
        near = dist - radius <= max_range
        boxes = boxes.select(near)
        radius = radius[near]
        half = 0.5 * boxes.size
        sensor_yaw = np.arctan2(r_sw[:, 1, 0], r_sw[:, 0, 0])
        world_az = wrap_angle(self.azimuth + sensor_yaw)
        step = m.chunk_columns
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            t_mid = 0.5 * (col_t[sl][0] + col_t[sl][-1])
            center = boxes.center + boxes.velocity * (t_mid - t0_s)
            o_mid = origins[sl][len(col_t[sl]) // 2]
            rel = center[:, :2] - o_mid[:2]
            dist_c = np.hypot(rel[:, 0], rel[:, 1])
            az = np.arctan2(rel[:, 1], rel[:, 0])
            width = np.arcsin(np.clip((radius + 0.5) / np.maximum(dist_c, 1e-6), 0.0, 1.0))
            az_mid = world_az[sl][len(col_t[sl]) // 2]
            span = 0.5 * abs(float(wrap_angle(world_az[sl][0] - world_az[sl][-1]))) + 0.02
            sel = np.flatnonzero(
                (np.abs(wrap_angle(az - az_mid)) <= span + width) | (dist_c <= radius + 0.5)
            )
            if sel.size == 0:
                continue
            best, k, ax = cast_boxes(origins[sl], dirs[sl], center[sel], half[sel], boxes.yaw[sel])
            closer = best < hit_range[sl]
            hit_range[sl] = np.where(closer, best, hit_range[sl])
            code[sl] = np.where(closer, sel[np.maximum(k, 0)], code[sl])
            axis_hit[sl] = np.where(closer, ax, axis_hit[sl])

        # Which returns are detected.
        r = hit_range
        valid = np.isfinite(r) & (r >= m.min_range_m) & (r <= max_range)
        reflect, cos_inc = self._reflectivity(
            code, axis=axis_hit, r=r, origins=origins, dirs=dirs, boxes=boxes, t0_s=t0_s
        )
        atten = np.exp(-2.0 * cond.lidar_attenuation_per_m * np.where(np.isfinite(r), r, 0.0))
        signal = reflect * (0.35 + 0.65 * cos_inc) * atten
        far = np.clip((r - 0.6 * max_range) / (0.4 * max_range), 0.0, 1.0)
        p_keep = (1.0 - m.dropout) * (1.0 - far * (1.0 - np.clip(signal * 2.5, 0.0, 1.0)))
        valid &= rng.random((n, b)) < p_keep
        intensity = np.clip(255.0 * signal * rng.normal(1.0, 0.05, (n, b)), 0.0, 255.0)
        r = r + rng.normal(0.0, m.range_noise_m, (n, b))
        track = np.full((n, b), -1, dtype=np.int64)
        is_box = code >= 0
        track[is_box] = boxes.track_id[code[is_box]]

        # Spurious near returns from fog droplets or rain.
        if cond.lidar_spurious_probability > 0.0:
            lo, hi = cond.lidar_spurious_range_m
            spur_r = rng.uniform(lo, hi, (n, b))
            spur = (rng.random((n, b)) < cond.lidar_spurious_probability) & (
                spur_r < np.where(valid, r, np.inf)
            )
            r = np.where(spur, spur_r, r)
            intensity = np.where(spur, rng.uniform(1.0, 12.0, (n, b)), intensity)
            track = np.where(spur, -1, track)
            valid |= spur

        col_idx, beam_idx = np.nonzero(valid)
        pts = np.zeros(col_idx.size, dtype=POINT_DTYPE)
        xyz = r[col_idx, beam_idx, None] * self.dirs_sensor[col_idx, beam_idx]
        xyz = np.round(xyz * QUANTUM_INV) / QUANTUM_INV
        pts["x"], pts["y"], pts["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        pts["intensity"] = np.round(intensity[col_idx, beam_idx])
        pts["t"] = np.round((col_t[col_idx] - t0_s) * 1e9).astype(np.uint32)
        pts["ring"] = beam_idx.astype(np.uint16)
        return Sweep(t0_s, pts, track[col_idx, beam_idx])

    def blocked(self, sweep: Sweep, blockage: LidarBlockage, rng: np.random.Generator) -> Sweep:
        """``sweep`` through a contaminated window: inside the blocked sector a return is lost
        with ``loss_probability``, and a firing echoes off the dirt with
        ``spurious_probability`` (that near echo replaces whatever the firing returned).
        Points keep the sweep's (column, ring) order."""
        m = self.model
        pts = sweep.points
        col = np.rint(pts["t"].astype(np.float64) * m.columns / (m.sweep_s * 1e9)).astype(int)
        col = np.clip(col, 0, m.columns - 1)
        sector_cols = np.flatnonzero(blockage.covers(self.azimuth))
        spur = rng.random((sector_cols.size, m.beams)) < blockage.spurious_probability
        spur_col, spur_beam = sector_cols[np.nonzero(spur)[0]], np.nonzero(spur)[1]
        lost = blockage.covers(self.azimuth[col]) & (
            rng.random(len(pts)) < blockage.loss_probability
        )
        echoed = np.zeros((m.columns, m.beams), bool)
        echoed[spur_col, spur_beam] = True
        keep = ~lost & ~echoed[col, pts["ring"].astype(int)]
        lo, hi = blockage.spurious_range_m
        r = rng.uniform(lo, hi, spur_col.size)
        xyz = r[:, None] * self.dirs_sensor[spur_col, spur_beam]
        xyz = np.round(xyz * QUANTUM_INV) / QUANTUM_INV
        extra = np.zeros(spur_col.size, dtype=POINT_DTYPE)
        extra["x"], extra["y"], extra["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        extra["intensity"] = np.round(rng.uniform(1.0, 20.0, spur_col.size))
        extra["t"] = np.round(spur_col * (m.sweep_s / m.columns) * 1e9).astype(np.uint32)
        extra["ring"] = spur_beam.astype(np.uint16)
        points = np.concatenate([pts[keep], extra])
        track = np.concatenate([sweep.hit_track[keep], np.full(spur_col.size, -1, np.int64)])
        order = np.lexsort((points["ring"], points["t"]))
        return Sweep(sweep.t0_s, points[order], track[order])

    def _reflectivity(
        self,
        code: np.ndarray,
        *,
        axis: np.ndarray,
        r: np.ndarray,
        origins: np.ndarray,
        dirs: np.ndarray,
        boxes: Boxes,
        t0_s: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Reflectivity (0..1) and cosine of the incidence angle of every ray's hit."""
        n, b = code.shape
        reflect = np.full((n, b), 0.2)
        cos_inc = np.abs(dirs[..., 2]).copy()  # ground and roof: the normal is z
        # Ground: asphalt, painted lane markings, sidewalks.
        g = (code == GROUND) & np.isfinite(r) & (r < self.model.max_range_m)
        if np.any(g):
            col, beam = np.nonzero(g)
            hit = origins[col, :2] + r[col, beam, None] * dirs[col, beam, :2]
            s, d = self.world.road.project(hit, self.world.ego_s(t0_s))
            reflect[col, beam] = _ground_reflectivity(s, d)
        is_box = code >= 0
        if np.any(is_box):
            col, beam = np.nonzero(is_box)
            k = code[col, beam]
            kinds = boxes.kind[k]
            base = np.array([_REFLECTIVITY[int(x)] for x in range(7)])[kinds]
            paint = ((boxes.appearance[k] % 97) / 96.0) * 0.5 + 0.1  # cars: dark to bright paint
            reflect[col, beam] = np.where(kinds == CAR, paint, base)
            ax = axis[col, beam]
            yaw = boxes.yaw[k]
            d = dirs[col, beam]
            local = np.stack(
                [
                    np.cos(yaw) * d[:, 0] + np.sin(yaw) * d[:, 1],
                    -np.sin(yaw) * d[:, 0] + np.cos(yaw) * d[:, 1],
                    d[:, 2],
                ],
                axis=-1,
            )
            cos_inc[col, beam] = np.abs(np.take_along_axis(local, ax[:, None], axis=1)[:, 0])
        return reflect, cos_inc


def _ground_reflectivity(s: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Asphalt 0.08, lane markings 0.6 (dashed between lanes), kerb-side strips and sidewalk."""
    ad = np.abs(d)
    out = np.full(s.shape, 0.08)
    out[ad > SIDEWALK[0]] = 0.18
    line = np.zeros(s.shape, dtype=bool)
    for offset in (0.0, LANE_WIDTH * 2.0):  # solid centre and edge lines
        line |= np.abs(ad - offset) < 0.08
    dashed = (np.abs(ad - LANE_WIDTH) < 0.08) & ((s % 12.0) < 4.0)
    out[line | dashed] = 0.6
    return out
