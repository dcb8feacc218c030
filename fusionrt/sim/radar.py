"""A front automotive radar: sparse detections with RCS and Doppler in a narrow field of view.

Each scan detects actors and roadside clutter (poles, barriers, cones) in the field of view
(±30° azimuth, ±8° elevation, up to 150 m), with a probability that grows with the target's
radar cross-section (RCS, by class, Swerling-1 fluctuation) and falls with range⁴ and
occlusion. A car gives one to several detections spread over its visible side; a pedestrian or
a cyclist usually one. Every detection carries its radial (Doppler) velocity; false alarms from
ground clutter appear at random. Fog, rain and night do not affect the radar.

Point fields (``sensor_msgs/PointField``, little-endian float32, 28 bytes a point), radar
frame: ``x y z`` metres, ``rcs`` dBsm, ``vr`` raw radial velocity relative to the sensor
(m/s, positive = moving away), ``vx vy`` the ego-motion-compensated radial velocity as a vector
in the radar's x-y plane (nuScenes' ``vx_comp vy_comp``: zero for stationary objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fusionrt.calibration import Rig
from fusionrt.sim.degradation import RadarBlockage
from fusionrt.sim.raycast import visible_fraction
from fusionrt.sim.world import (
    BARRIER,
    CAR,
    CONE,
    CYCLIST,
    PEDESTRIAN,
    POLE,
    Boxes,
    World,
    yaw_matrix,
)

__all__ = ["RADAR_DTYPE", "RadarModel", "RadarSimulator"]

RADAR_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rcs", "<f4"), ("vr", "<f4"), ("vx", "<f4"),
     ("vy", "<f4")]
)  # fmt: skip

#: Mean RCS (dBsm) of each detectable kind; buildings are not reported (outside the gate).
MEAN_RCS_DBSM = {CAR: 10.0, PEDESTRIAN: -8.0, CYCLIST: -3.0, POLE: 2.0, BARRIER: 4.0, CONE: -6.0}


@dataclass(frozen=True)
class RadarModel:
    """Field of view, range, noise and clutter of the radar."""

    azimuth_fov_deg: float = 60.0
    elevation_fov_deg: float = 16.0
    max_range_m: float = 150.0
    min_range_m: float = 0.5
    range_noise_m: float = 0.15
    azimuth_noise_deg: float = 0.3
    elevation_noise_deg: float = 0.5
    velocity_noise_mps: float = 0.08
    false_alarms_per_scan: float = 2.5
    #: RCS (dBsm) detected with 50 % probability at 100 m; the margin falls 40 dB per decade.
    sensitivity_dbsm_at_100m: float = 3.0


class RadarSimulator:
    """Scans of the rig's radar ``sensor`` through ``world``."""

    def __init__(self, world: World, rig: Rig, sensor: str, model: RadarModel) -> None:
        self.world = world
        self.model = model
        ext = rig.transform(sensor, rig.frame)
        self._r_re = ext.rotation  # radar -> ego
        self._t_re = ext.translation

    def scan(self, t_s: float, rng: np.random.Generator) -> np.ndarray:
        """The detections of the scan at simulation time ``t_s`` (RADAR_DTYPE)."""
        m = self.model
        world = self.world
        # Everything in the radar frame: world -> ego -> radar.
        yaw_we, r_we, t_we = world.world_to_ego(t_s)
        boxes_ego = world.boxes_at(t_s, radius_m=m.max_range_m + 10.0).transformed(
            yaw_we, r_we, t_we
        )
        r_er = self._r_re.T
        center = (boxes_ego.center - self._t_re) @ r_er.T
        rng_c = np.linalg.norm(center, axis=1)
        az = np.degrees(np.arctan2(center[:, 1], center[:, 0]))
        el = np.degrees(np.arcsin(np.clip(center[:, 2] / np.maximum(rng_c, 1e-6), -1.0, 1.0)))
        half_extent = np.degrees(
            np.arctan2(0.5 * np.hypot(boxes_ego.size[:, 0], boxes_ego.size[:, 1]), rng_c)
        )
        kinds = boxes_ego.kind
        candidate = np.isin(kinds, list(MEAN_RCS_DBSM))
        candidate &= (rng_c > m.min_range_m) & (rng_c < m.max_range_m)
        candidate &= np.abs(az) <= 0.5 * m.azimuth_fov_deg + half_extent
        candidate &= np.abs(el) <= 0.5 * m.elevation_fov_deg + half_extent
        idx = np.flatnonzero(candidate)
        v_radar = self._velocity(t_s)
        rows = []
        if idx.size:
            vis = visible_fraction(self._t_re, boxes_ego, idx)
            for j, i in enumerate(idx.tolist()):
                rows.extend(
                    self._detections(
                        boxes_ego, i, visibility=float(vis[j]), v_radar=v_radar, rng=rng
                    )
                )
        rows.extend(self._false_alarms(v_radar, rng))
        arr = np.array(rows, dtype=np.float64).reshape(-1, len(RADAR_DTYPE.names or ()))
        # Only what falls inside the field of view is reported (a box may straddle its edge).
        rng_xy = np.hypot(arr[:, 0], arr[:, 1])
        inside = np.abs(np.degrees(np.arctan2(arr[:, 1], arr[:, 0]))) <= 0.5 * m.azimuth_fov_deg
        inside &= np.abs(np.degrees(np.arctan2(arr[:, 2], rng_xy))) <= 0.5 * m.elevation_fov_deg
        inside &= (rng_xy >= m.min_range_m) & (rng_xy <= m.max_range_m)
        arr = arr[inside]
        out = np.zeros(len(arr), dtype=RADAR_DTYPE)
        for k, name in enumerate(RADAR_DTYPE.names or ()):
            out[name] = arr[:, k]
        return out

    def _velocity(self, t_s: float) -> np.ndarray:
        """Velocity of the radar over ground (ego frame): v_ego + ω × lever arm."""
        ego = self.world.ego(t_s)
        return np.array(
            [float(ego.speed) - float(ego.yaw_rate) * self._t_re[1],
             float(ego.yaw_rate) * self._t_re[0], 0.0]
        )  # fmt: skip

    def blocked(
        self, points: np.ndarray, t_s: float, blockage: RadarBlockage, rng: np.random.Generator
    ) -> np.ndarray:
        """The scan ``points`` (at ``t_s``) through a blocked radome: each detection is lost
        with ``loss_probability``; Poisson(``ghosts_per_scan``) ghosts are added, each with a
        car's cross-section and a random ground velocity, so it reads as a moving target."""
        m = self.model
        kept = points[rng.random(len(points)) >= blockage.loss_probability]
        v_radar = self._velocity(t_s)
        rows = []
        for _ in range(int(rng.poisson(blockage.ghosts_per_scan))):
            az = np.radians(rng.uniform(-0.45, 0.45) * m.azimuth_fov_deg)
            r = rng.uniform(*blockage.ghost_range_m)
            p_radar = np.array([r * np.cos(az), r * np.sin(az), rng.normal(0.3, 0.3)])
            p_ego = self._r_re @ p_radar + self._t_re
            velocity = np.append(rng.uniform(-1.0, 1.0, 2) * blockage.ghost_speed_mps, 0.0)
            rcs = rng.uniform(*blockage.ghost_rcs_dbsm)
            rows.append(self._measure(p_ego, velocity, rcs=rcs, v_radar=v_radar, rng=rng))
        ghosts = np.zeros(len(rows), dtype=RADAR_DTYPE)
        for k, name in enumerate(RADAR_DTYPE.names or ()):
            ghosts[name] = [row[k] for row in rows]
        return np.concatenate([kept, ghosts])

    def _detections(
        self,
        boxes: Boxes,
        i: int,
        *,
        visibility: float,
        v_radar: np.ndarray,
        rng: np.random.Generator,
    ) -> list[tuple[float, ...]]:
        """Detections of box ``i`` (ego frame boxes), as radar-frame rows."""
        m = self.model
        kind = int(boxes.kind[i])
        centre = boxes.center[i]
        dist = float(np.linalg.norm(centre - self._t_re))
        if visibility < 0.15:
            return []
        # Swerling-1 fluctuation of the RCS; detection probability from the link margin.
        rcs = MEAN_RCS_DBSM[kind] + 10.0 * np.log10(rng.exponential(1.0) + 1e-3)
        margin = rcs - m.sensitivity_dbsm_at_100m - 40.0 * np.log10(max(dist, 1.0) / 100.0)
        p_detect = visibility / (1.0 + np.exp(-margin / 3.0))
        if rng.random() >= p_detect:
            return []
        count = 1
        if kind == CAR:
            count += int(rng.poisson(min(3.0, 40.0 / max(dist, 1.0))))
        elif kind in (CYCLIST, BARRIER):
            count += int(rng.random() < 0.35)
        half = 0.5 * boxes.size[i]
        rot = yaw_matrix(float(boxes.yaw[i]))
        radar_local = rot.T @ (self._t_re - centre)
        rows = []
        for _ in range(count):
            local = rng.uniform(-half, half)
            # Put the point on the face that looks towards the radar the most.
            axis = int(np.argmax(np.abs(radar_local[:2]) / half[:2]))
            local[axis] = np.sign(radar_local[axis]) * half[axis]
            p_ego = centre + rot @ local
            rows.append(self._measure(p_ego, boxes.velocity[i], rcs=rcs, v_radar=v_radar, rng=rng))
        return rows

    def _measure(
        self,
        p_ego: np.ndarray,
        v_target_ego: np.ndarray,
        *,
        rcs: float,
        v_radar: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[float, ...]:
        """One detection of the point ``p_ego`` (ego frame) as a noisy radar-frame row."""
        m = self.model
        rel_ego = p_ego - self._t_re
        u_ego = rel_ego / max(float(np.linalg.norm(rel_ego)), 1e-6)
        vr = float((v_target_ego - v_radar) @ u_ego)
        vr_comp = float(v_target_ego @ u_ego)
        p = self._r_re.T @ rel_ego
        r = float(np.linalg.norm(p)) + rng.normal(0.0, m.range_noise_m)
        az = np.arctan2(p[1], p[0]) + np.radians(rng.normal(0.0, m.azimuth_noise_deg))
        el = np.arcsin(p[2] / max(np.linalg.norm(p), 1e-6))
        el += np.radians(rng.normal(0.0, m.elevation_noise_deg))
        x = r * np.cos(el) * np.cos(az)
        y = r * np.cos(el) * np.sin(az)
        z = r * np.sin(el)
        vr += rng.normal(0.0, m.velocity_noise_mps)
        vr_comp += rng.normal(0.0, m.velocity_noise_mps)
        return (x, y, z, rcs, vr, vr_comp * np.cos(az), vr_comp * np.sin(az))

    def _false_alarms(
        self, v_radar: np.ndarray, rng: np.random.Generator
    ) -> list[tuple[float, ...]]:
        """Ghosts from ground clutter and multipath: stationary, weak, anywhere in the FOV."""
        m = self.model
        rows = []
        for _ in range(int(rng.poisson(m.false_alarms_per_scan))):
            az = np.radians(rng.uniform(-0.5, 0.5) * m.azimuth_fov_deg)
            r = rng.uniform(3.0, m.max_range_m)
            p_radar = np.array([r * np.cos(az), r * np.sin(az), rng.normal(-0.3, 0.3)])
            p_ego = self._r_re @ p_radar + self._t_re
            rcs = rng.uniform(-15.0, 0.0)
            rows.append(self._measure(p_ego, np.zeros(3), rcs=rcs, v_radar=v_radar, rng=rng))
        return rows
