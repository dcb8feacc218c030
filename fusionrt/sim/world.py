"""The synthetic world: a road, the ego car's trajectory, moving actors and static clutter.

Frames and units: the **world** frame is a flat ground plane, x/y horizontal, z up, metres;
the **ego** frame is ISO 8855 (x forward, y left, z up) with its origin on the ground below the
centre of the rear axle. Simulation time ``t`` is float seconds since the start of the drive;
:func:`stamp_ns` turns it into nanoseconds on the common clock.

The road is described by its centreline and arc length ``s``; everything that moves along it is
placed by ``(s, d)``: ``d`` is the lateral offset, positive to the left of the direction of
increasing ``s``. Right-hand traffic: the ego's direction uses the lanes at ``d < 0``.

Determinism: every random choice comes from :func:`rng_for` (``numpy.random.Generator`` over
``PCG64`` seeded with the drive seed and a fixed stream key), so one seed gives one world.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ACTOR_CLASSES",
    "DRIVE_EPOCH_NS",
    "KIND_NAMES",
    "Boxes",
    "EgoState",
    "Road",
    "World",
    "rng_for",
    "stamp_ns",
]

#: The common clock's value at ``t = 0`` (2023-11-14T22:13:20Z), fixed so bags are reproducible.
DRIVE_EPOCH_NS = 1_700_000_000_000_000_000

#: Box kinds. The first three are the ground-truth actor classes (their ids are the
#: ``class_id`` of ``fusionrt_msgs/msg/Actor``); the others are static clutter.
KIND_NAMES: tuple[str, ...] = (
    "car",
    "pedestrian",
    "cyclist",
    "pole",
    "barrier",
    "cone",
    "building",
)
ACTOR_CLASSES: tuple[str, ...] = KIND_NAMES[:3]
CAR, PEDESTRIAN, CYCLIST, POLE, BARRIER, CONE, BUILDING = range(7)

#: Road layout (lateral offsets ``|d|``, metres): two 3.5 m lanes each way, then a bike lane,
#: a parking strip and a sidewalk on each side; buildings start at ``BUILDING_D``.
LANE_WIDTH = 3.5
LANES_PER_DIRECTION = 2
CARRIAGEWAY_HALF = LANE_WIDTH * LANES_PER_DIRECTION  # 7.0
BIKE_LANE = (7.0, 8.5)
PARKING = (8.5, 10.5)
SIDEWALK = (10.5, 13.0)
BUILDING_D = 15.0

ROAD_STEP_M = 0.5
TIME_STEP_S = 0.005
#: Margin of the precomputed time grid around the drive (sensor jitter and latency reach it).
TIME_MARGIN_S = 2.0

#: Mean and spread of the box size ``(length, width, height)`` per actor class (metres).
CLASS_SIZES: dict[int, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    CAR: ((4.6, 1.85, 1.55), (0.35, 0.08, 0.12)),
    PEDESTRIAN: ((0.6, 0.6, 1.75), (0.06, 0.06, 0.08)),
    CYCLIST: ((1.8, 0.65, 1.7), (0.08, 0.04, 0.06)),
}


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent, reproducible generator for one stream of one drive.

    ``keys`` name the stream (strings are hashed with CRC-32, which, unlike ``hash``, is the
    same in every process).
    """
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key) & 0xFFFFFFFF)
    return np.random.Generator(np.random.PCG64(words))


def stamp_ns(t_s: float | np.ndarray) -> np.ndarray:
    """Simulation time (seconds since the drive start) → int64 ns on the common clock."""
    return DRIVE_EPOCH_NS + np.round(np.asarray(t_s, dtype=np.float64) * 1e9).astype(np.int64)


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles wrapped to ``[-π, π)``."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


# -- road ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Road:
    """A road centreline sampled every :data:`ROAD_STEP_M` of arc length."""

    s: np.ndarray  # (N,) arc length, metres
    xy: np.ndarray  # (N, 2) world position of the centreline
    heading: np.ndarray  # (N,) direction of increasing s, radians (unwrapped)

    @classmethod
    def generate(cls, rng: np.random.Generator, s_min: float, s_max: float) -> Road:
        """A gently curving road: curvature is a sum of two slow sinusoids (radius ≥ ~110 m)."""
        s = np.arange(s_min, s_max + ROAD_STEP_M, ROAD_STEP_M)
        amp1, amp2 = rng.uniform(0.003, 0.006), rng.uniform(0.001, 0.003)
        per1, per2 = rng.uniform(250.0, 450.0), rng.uniform(90.0, 160.0)
        ph1, ph2 = rng.uniform(0.0, 2.0 * np.pi, size=2)
        kappa = amp1 * np.sin(2 * np.pi * s / per1 + ph1) + amp2 * np.sin(
            2 * np.pi * s / per2 + ph2
        )
        heading = _cumulative(kappa, ROAD_STEP_M, s, zero_at=0.0)
        heading -= np.interp(0.0, s, heading)
        dx = _cumulative(np.cos(heading), ROAD_STEP_M, s, zero_at=0.0)
        dy = _cumulative(np.sin(heading), ROAD_STEP_M, s, zero_at=0.0)
        return cls(s=s, xy=np.stack([dx, dy], axis=1), heading=heading)

    def frame(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centreline point ``(..., 2)`` and heading ``(...)`` at arc lengths ``s``."""
        s = np.asarray(s, dtype=np.float64)
        x = np.interp(s, self.s, self.xy[:, 0])
        y = np.interp(s, self.s, self.xy[:, 1])
        return np.stack([x, y], axis=-1), np.interp(s, self.s, self.heading)

    def curvature(self, s: np.ndarray) -> np.ndarray:
        """Curvature ``dheading/ds`` (1/m, positive = turning left) at arc lengths ``s``."""
        return np.interp(s, self.s, np.gradient(self.heading, ROAD_STEP_M))

    def to_world(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World xy ``(..., 2)`` and road heading of the points at ``(s, d)``."""
        c, h = self.frame(s)
        d = np.asarray(d, dtype=np.float64)
        normal = np.stack([-np.sin(h), np.cos(h)], axis=-1)
        return c + d[..., None] * normal, h

    def project(self, xy: np.ndarray, s_guess: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(s, d)`` of world points ``(..., 2)`` near arc length ``s_guess`` (Newton steps)."""
        xy = np.asarray(xy, dtype=np.float64)
        s = np.broadcast_to(np.asarray(s_guess, dtype=np.float64), xy.shape[:-1]).copy()
        for _ in range(3):
            c, h = self.frame(s)
            delta = xy - c
            s = s + delta[..., 0] * np.cos(h) + delta[..., 1] * np.sin(h)
        c, h = self.frame(s)
        delta = xy - c
        d = -delta[..., 0] * np.sin(h) + delta[..., 1] * np.cos(h)
        return s, d


def _cumulative(f: np.ndarray, step: float, x: np.ndarray, zero_at: float) -> np.ndarray:
    """Trapezoidal running integral of samples ``f`` (spacing ``step``), zero at ``zero_at``."""
    out = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * step)])
    return out - np.interp(zero_at, x, out)


# -- boxes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Boxes:
    """Oriented boxes standing on the ground (yaw about z only), in one frame.

    ``center`` is the box centre (so ``center z = height / 2`` on flat ground), ``size`` is
    ``(length, width, height)`` along the box's own x, y, z, ``velocity`` is over ground in the
    same frame. ``track_id`` is ``-1`` for clutter; ``appearance`` picks colours and textures.
    """

    center: np.ndarray  # (M, 3)
    size: np.ndarray  # (M, 3)
    yaw: np.ndarray  # (M,)
    velocity: np.ndarray  # (M, 3)
    kind: np.ndarray  # (M,) int, index into KIND_NAMES
    track_id: np.ndarray  # (M,) int
    appearance: np.ndarray  # (M,) int

    def __len__(self) -> int:
        return int(self.center.shape[0])

    def select(self, mask: np.ndarray) -> Boxes:
        """The boxes where ``mask`` is true (or at the given indices)."""
        return Boxes(*(getattr(self, f)[mask] for f in _BOX_FIELDS))

    @staticmethod
    def concatenate(parts: list[Boxes]) -> Boxes:
        return Boxes(*(np.concatenate([getattr(p, f) for p in parts]) for f in _BOX_FIELDS))

    def transformed(
        self, rotation_yaw: float, rotation: np.ndarray, translation: np.ndarray
    ) -> Boxes:
        """The boxes in another frame: ``p' = R p + t`` with ``R`` a rotation about z by
        ``rotation_yaw`` (given both as the angle and the 3×3 matrix)."""
        return Boxes(
            center=self.center @ rotation.T + translation,
            size=self.size,
            yaw=wrap_angle(self.yaw + rotation_yaw),
            velocity=self.velocity @ rotation.T,
            kind=self.kind,
            track_id=self.track_id,
            appearance=self.appearance,
        )

    def corners(self) -> np.ndarray:
        """The 8 corners ``(M, 8, 3)``; order: x∈{+,-} major, then y∈{+,-}, then z∈{-,+}."""
        signs = np.array(
            [[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (-1, 1)], dtype=np.float64
        )
        local = signs[None] * (0.5 * self.size)[:, None, :]
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x = c * local[..., 0] - s * local[..., 1]
        y = s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y, local[..., 2]], axis=-1) + self.center[:, None, :]

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """``(N, M)`` bool: point ``n`` lies inside box ``m`` grown by ``margin`` on every side."""
        rel = points[:, None, :] - self.center[None]
        c, s = np.cos(self.yaw)[None], np.sin(self.yaw)[None]
        lx = c * rel[..., 0] + s * rel[..., 1]
        ly = -s * rel[..., 0] + c * rel[..., 1]
        half = 0.5 * self.size[None] + margin
        return (
            (np.abs(lx) <= half[..., 0])
            & (np.abs(ly) <= half[..., 1])
            & (np.abs(rel[..., 2]) <= half[..., 2])
        )


_BOX_FIELDS = ("center", "size", "yaw", "velocity", "kind", "track_id", "appearance")


def yaw_matrix(yaw: float) -> np.ndarray:
    """3×3 rotation about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# -- ego ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EgoState:
    """The ego car at some times (each field has the shape of the query)."""

    x: np.ndarray  # world position of the ego origin, m
    y: np.ndarray
    yaw: np.ndarray  # heading in the world, rad (unwrapped)
    speed: np.ndarray  # m/s, along the ego x axis
    yaw_rate: np.ndarray  # rad/s
    accel: np.ndarray  # longitudinal acceleration, m/s²
    steering_wheel_deg: np.ndarray  # positive = left, steering ratio applied

    def pose_matrices(self) -> np.ndarray:
        """``(N, 4, 4)`` ego -> world transforms."""
        x, y, yaw = np.atleast_1d(self.x), np.atleast_1d(self.y), np.atleast_1d(self.yaw)
        m = np.zeros((x.size, 4, 4))
        c, s = np.cos(yaw), np.sin(yaw)
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
        m[:, 2, 2] = m[:, 3, 3] = 1.0
        m[:, 0, 3], m[:, 1, 3] = x, y
        return m


#: Ego vehicle geometry (ego frame: origin below the rear axle).
WHEELBASE_M = 2.8
STEERING_RATIO = 15.0
EGO_BOX_MIN = (-1.0, -0.95, 0.0)
EGO_BOX_MAX = (3.8, 0.95, 1.5)


# -- the world ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Actors:
    """Actors as arrays; position ``s(t) = s0 + direction · S[group](t)``, offset ``d``."""

    track_id: np.ndarray
    kind: np.ndarray
    size: np.ndarray
    group: np.ndarray
    s0: np.ndarray
    d: np.ndarray
    direction: np.ndarray
    yaw_offset: np.ndarray
    appearance: np.ndarray


class World:
    """A seeded road scene for a drive of ``duration_s`` seconds.

    Build it with :meth:`generate`; query the ego with :meth:`ego` and the boxes (actors and
    clutter, world frame) with :meth:`boxes_at` / :meth:`boxes_in_ego`.
    """

    def __init__(
        self,
        *,
        seed: int,
        duration_s: float,
        road: Road,
        t_grid: np.ndarray,
        ego_s: np.ndarray,
        ego_d: np.ndarray,
        group_s: np.ndarray,
        actors: _Actors,
        clutter: Boxes,
        road_works: tuple[float, float],
    ) -> None:
        self.seed = seed
        self.duration_s = duration_s
        self.road = road
        self.road_works = road_works  # (s_start, s_end) of the road-works zone (right side)
        self._t = t_grid
        self._ego_s = ego_s
        self._ego_d = ego_d
        self._group_s = group_s
        self._actors = actors
        self.clutter = clutter
        xy, heading = road.to_world(ego_s, ego_d)
        dt = TIME_STEP_S
        ds = np.gradient(ego_s, dt)
        dd = np.gradient(ego_d, dt)
        yaw = heading + np.arctan2(dd, ds)
        self._ego_xy = xy
        self._ego_yaw = yaw
        self._ego_speed = np.hypot(np.gradient(xy[:, 0], dt), np.gradient(xy[:, 1], dt))
        self._ego_yaw_rate = np.gradient(yaw, dt)
        self._ego_accel = np.gradient(self._ego_speed, dt)
        self._group_v = np.gradient(group_s, dt, axis=1)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def generate(cls, seed: int, duration_s: float, min_actors: int = 30) -> World:
        """The world of drive ``seed``: road, ego speed profile, actors, clutter."""
        if duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {duration_s}")
        rng = rng_for(seed, "world")
        t = np.arange(-TIME_MARGIN_S, duration_s + TIME_MARGIN_S + TIME_STEP_S, TIME_STEP_S)

        # Ego speed: 10 m/s ± slow and faster variation, never below 4 m/s.
        v_mean = rng.uniform(9.0, 12.0)
        a1, a2 = rng.uniform(2.0, 3.5), rng.uniform(0.6, 1.4)
        p1, p2 = rng.uniform(14.0, 22.0), rng.uniform(5.0, 9.0)
        f1, f2 = rng.uniform(0.0, 2 * np.pi, size=2)
        v = v_mean + a1 * np.sin(2 * np.pi * t / p1 + f1) + a2 * np.sin(2 * np.pi * t / p2 + f2)
        v = np.maximum(v, 4.0)
        ego_s = _cumulative(v, TIME_STEP_S, t, zero_at=0.0)
        wobble_amp, wobble_per, wobble_ph = (
            rng.uniform(0.1, 0.3),
            rng.uniform(6, 12),
            rng.uniform(0, 6.3),
        )
        ego_d = -0.5 * LANE_WIDTH + wobble_amp * np.sin(2 * np.pi * t / wobble_per + wobble_ph)

        s_lo, s_hi = float(ego_s[0]) - 250.0, float(ego_s[-1]) + 1200.0
        road = Road.generate(rng, s_lo, s_hi)
        ego_span = (float(np.interp(0.0, t, ego_s)), float(np.interp(duration_s, t, ego_s)))
        works_start = ego_span[0] + rng.uniform(0.35, 0.6) * (ego_span[1] - ego_span[0]) + 30.0
        road_works = (works_start, works_start + rng.uniform(30.0, 50.0))

        builder = _ActorBuilder(rng, t, ego_s, duration_s, road_works)
        builder.populate(min_actors)
        actors, group_s = builder.build()
        clutter = _clutter(rng, road, s_lo + 50.0, ego_span[1] + 200.0, road_works)
        return cls(
            seed=seed,
            duration_s=duration_s,
            road=road,
            t_grid=t,
            ego_s=ego_s,
            ego_d=ego_d,
            group_s=group_s,
            actors=actors,
            clutter=clutter,
            road_works=road_works,
        )

    # -- queries --------------------------------------------------------------------------

    @property
    def num_actors(self) -> int:
        return int(self._actors.track_id.size)

    def ego(self, t_s: float | np.ndarray) -> EgoState:
        """The ego state at simulation times ``t_s`` (linear interpolation on a 5 ms grid)."""
        t_s = np.asarray(t_s, dtype=np.float64)
        t = self._t

        def at(f: np.ndarray) -> np.ndarray:
            return np.interp(t_s, t, f)

        speed = at(self._ego_speed)
        yaw_rate = at(self._ego_yaw_rate)
        curvature = yaw_rate / np.maximum(speed, 0.5)
        steer = np.degrees(np.arctan(WHEELBASE_M * curvature)) * STEERING_RATIO
        return EgoState(
            x=at(self._ego_xy[:, 0]),
            y=at(self._ego_xy[:, 1]),
            yaw=at(self._ego_yaw),
            speed=speed,
            yaw_rate=yaw_rate,
            accel=at(self._ego_accel),
            steering_wheel_deg=steer,
        )

    def ego_s(self, t_s: float) -> float:
        """The ego's arc length along the road at ``t_s``."""
        return float(np.interp(t_s, self._t, self._ego_s))

    def _grid_index(self, t_s: float) -> tuple[int, float]:
        """Index ``i`` and weight ``w`` such that ``t_s ≈ (1-w)·t[i] + w·t[i+1]`` (clamped)."""
        pos = (float(t_s) - self._t[0]) / TIME_STEP_S
        i = min(max(int(np.floor(pos)), 0), self._t.size - 2)
        return i, min(max(pos - i, 0.0), 1.0)

    def actors_at(self, t_s: float) -> Boxes:
        """Every actor's box at ``t_s``, world frame."""
        a = self._actors
        i, w = self._grid_index(t_s)
        s_group = self._group_s[:, i] * (1.0 - w) + self._group_s[:, i + 1] * w
        v_group = self._group_v[:, i] * (1.0 - w) + self._group_v[:, i + 1] * w
        s = a.s0 + a.direction * s_group[a.group]
        speed = a.direction * v_group[a.group]
        xy, heading = self.road.to_world(s, a.d)
        yaw = wrap_angle(heading + np.where(a.direction < 0, np.pi, 0.0) + a.yaw_offset)
        # d(position)/ds at offset d is (1 - κ d) times the centreline's unit tangent.
        ground_speed = speed * (1.0 - self.road.curvature(s) * a.d)
        vel = np.zeros((s.size, 3))
        vel[:, 0] = ground_speed * np.cos(heading)
        vel[:, 1] = ground_speed * np.sin(heading)
        center = np.column_stack([xy, 0.5 * a.size[:, 2]])
        return Boxes(center, a.size, yaw, vel, a.kind, a.track_id, a.appearance)

    def boxes_at(self, t_s: float, radius_m: float = 160.0) -> Boxes:
        """Actors and clutter within ``radius_m`` of the ego at ``t_s``, world frame."""
        boxes = Boxes.concatenate([self.actors_at(t_s), self.clutter])
        e = self.ego(t_s)
        dist = np.hypot(boxes.center[:, 0] - e.x, boxes.center[:, 1] - e.y)
        reach = radius_m + 0.5 * np.hypot(boxes.size[:, 0], boxes.size[:, 1])
        return boxes.select(dist <= reach)

    def world_to_ego(self, t_s: float) -> tuple[float, np.ndarray, np.ndarray]:
        """``(yaw, R, t)`` of the world -> ego transform at ``t_s`` (``p_ego = R p + t``)."""
        e = self.ego(t_s)
        r = yaw_matrix(-float(e.yaw))
        return -float(e.yaw), r, -r @ np.array([float(e.x), float(e.y), 0.0])

    def boxes_in_ego(self, t_s: float, radius_m: float = 160.0) -> Boxes:
        """:meth:`boxes_at` expressed in the ego frame at ``t_s`` (velocities over ground)."""
        yaw, r, tr = self.world_to_ego(t_s)
        return self.boxes_at(t_s, radius_m).transformed(yaw, r, tr)


# -- actor placement ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ActorRow:
    kind: int
    group: int
    s0: float
    d: float
    direction: float
    size: tuple[float, float, float]
    yaw_offset: float


class _ActorBuilder:
    """Places actors in motion groups so that they come near the ego during the drive.

    A group is one arc-length profile ``S(t)`` shared by its actors (a lane's platoon moves with
    one speed profile, so its cars never run into each other); each actor adds its own ``s0``.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        t: np.ndarray,
        ego_s: np.ndarray,
        duration_s: float,
        road_works: tuple[float, float],
    ) -> None:
        self.rng = rng
        self.t = t
        self.ego_s = ego_s
        self.in_drive = (t >= 0.0) & (t <= duration_s)
        self.road_works = road_works
        self.groups: list[np.ndarray] = []
        self.rows: list[_ActorRow] = []

    def _group(self, s_of_t: np.ndarray) -> int:
        self.groups.append(s_of_t)
        return len(self.groups) - 1

    def _window(
        self, group_s: np.ndarray, direction: float, behind: float, ahead: float
    ) -> tuple[float, float]:
        """The ``s0`` that bring an actor of this group within ``[-behind, +ahead]`` metres of
        the ego at some time of the drive."""
        rel = (self.ego_s - direction * group_s)[self.in_drive]
        return float(rel.min()) - behind, float(rel.max()) + ahead

    def _add(
        self,
        kind: int,
        group: int,
        s0: float,
        d: float,
        *,
        direction: float = 1.0,
        yaw_offset: float = 0.0,
    ) -> None:
        mean, std = CLASS_SIZES[kind]
        size = np.clip(self.rng.normal(mean, std), np.multiply(mean, 0.85), np.multiply(mean, 1.15))
        dims = (float(size[0]), float(size[1]), float(size[2]))
        row = _ActorRow(kind, group, float(s0), float(d), direction, dims, yaw_offset)
        self.rows.append(row)

    def _profile(
        self, mean_speed: float, rel_amp: tuple[float, float], period: tuple[float, float]
    ) -> np.ndarray:
        """``S(t)`` of a smooth speed profile ``v(t) = mean + amp·sin(...)`` (never negative)."""
        rng = self.rng
        amp = rng.uniform(*rel_amp) * mean_speed
        v = mean_speed + amp * np.sin(
            2 * np.pi * self.t / rng.uniform(*period) + rng.uniform(0, 2 * np.pi)
        )
        return _cumulative(np.maximum(v, 0.0), TIME_STEP_S, self.t, zero_at=0.0)

    def _platoon(
        self,
        kind: int,
        d: float,
        direction: float,
        *,
        mean_speed: float,
        gap: tuple[float, float],
        jitter_d: float,
    ) -> None:
        """A line of actors along offset ``d`` moving together (``mean_speed = 0``: parked)."""
        if mean_speed > 0.0:
            group_s = self._profile(mean_speed, (0.05, 0.15), (10.0, 25.0))
        else:
            group_s = np.zeros_like(self.t)
        g = self._group(group_s)
        lo, hi = self._window(group_s, direction, 40.0, 100.0)
        s0 = lo + self.rng.uniform(0.0, gap[1])
        while s0 < hi:
            offset = d + self.rng.uniform(-jitter_d, jitter_d)
            blocked = d < 0 and self.road_works[0] - 6.0 < s0 < self.road_works[1] + 6.0
            if not (blocked and abs(d) > CARRIAGEWAY_HALF):  # keep the road-works strip clear
                self._add(kind, g, s0, offset, direction=direction)
            s0 += self.rng.uniform(*gap)

    def populate(self, min_actors: int) -> None:
        rng = self.rng
        # The ego lane: a lead car ahead and a follower behind, each keeping a varying gap.
        for sign, mean_gap, amp in ((1.0, 22.0, 6.0), (-1.0, 15.0, 4.0)):
            wobble = amp * np.sin(2 * np.pi * self.t / rng.uniform(15, 30) + rng.uniform(0, 6.3))
            g = self._group(self.ego_s + sign * mean_gap + wobble)
            self._add(CAR, g, 0.0, -0.5 * LANE_WIDTH + rng.uniform(-0.2, 0.2))

        # The other lanes: platoons with their lane's speed profile.
        def either() -> float:
            return 1.0 if rng.random() < 0.5 else -1.0

        # kind, lateral offset, direction, mean speed, gap range, lateral jitter
        lanes: tuple[tuple[int, float, float, float, tuple[float, float], float], ...] = (
            (CAR, -1.5 * LANE_WIDTH, 1.0, rng.uniform(11.0, 14.0), (14.0, 45.0), 0.2),
            (CAR, 0.5 * LANE_WIDTH, -1.0, rng.uniform(9.0, 12.0), (18.0, 60.0), 0.2),
            (CAR, 1.5 * LANE_WIDTH, -1.0, rng.uniform(8.0, 11.0), (18.0, 60.0), 0.2),
            # parked cars, facing either way
            (CAR, -sum(PARKING) / 2, either(), 0.0, (6.0, 25.0), 0.1),
            (CAR, sum(PARKING) / 2, either(), 0.0, (6.0, 25.0), 0.1),
            # cyclists in the bike lanes, with the traffic of their side
            (CYCLIST, -sum(BIKE_LANE) / 2, 1.0, rng.uniform(4.0, 6.0), (15.0, 60.0), 0.15),
            (CYCLIST, sum(BIKE_LANE) / 2, -1.0, rng.uniform(4.0, 6.0), (20.0, 80.0), 0.15),
        )
        for kind, d, direction, speed, spacing, jitter in lanes:
            self._platoon(kind, d, direction, mean_speed=float(speed), gap=spacing, jitter_d=jitter)
        # Pedestrians on the sidewalks: walkers both ways, and some standing still.
        for side in (-1.0, 1.0):
            self._pedestrians(side, spacing=25.0)
        side = 1.0
        while len(self.rows) < min_actors:  # short drives: more pedestrians
            self._pedestrians(side, spacing=15.0)
            side = -side

    def _pedestrians(self, side: float, spacing: float) -> None:
        rng = self.rng
        lo, hi = self._window(np.zeros_like(self.t), 1.0, 20.0, 80.0)
        count = max(3, int((hi - lo) / spacing))
        for s0 in np.sort(rng.uniform(lo, hi, size=count)):
            d = side * rng.uniform(SIDEWALK[0] + 0.4, SIDEWALK[1] - 0.4)
            if rng.random() < 0.2:  # standing, any heading
                g = self._group(np.zeros_like(self.t))
                self._add(PEDESTRIAN, g, s0, d, yaw_offset=float(rng.uniform(-np.pi, np.pi)))
            else:
                g = self._group(self._profile(rng.uniform(0.9, 1.6), (0.1, 0.5), (4.0, 12.0)))
                self._add(PEDESTRIAN, g, s0, d, direction=1.0 if rng.random() < 0.5 else -1.0)

    def build(self) -> tuple[_Actors, np.ndarray]:
        rows = self.rows
        actors = _Actors(
            track_id=np.arange(1, len(rows) + 1, dtype=np.int64),
            kind=np.array([r.kind for r in rows], dtype=np.int64),
            size=np.array([r.size for r in rows], dtype=np.float64),
            group=np.array([r.group for r in rows], dtype=np.int64),
            s0=np.array([r.s0 for r in rows]),
            d=np.array([r.d for r in rows]),
            direction=np.array([r.direction for r in rows]),
            yaw_offset=np.array([r.yaw_offset for r in rows]),
            appearance=self.rng.integers(0, 1 << 30, size=len(rows)),
        )
        return actors, np.stack(self.groups)


# -- clutter ------------------------------------------------------------------------------


def _clutter(
    rng: np.random.Generator, road: Road, s_lo: float, s_hi: float, road_works: tuple[float, float]
) -> Boxes:
    """Street lamps, buildings, and the barriers and cones of the road-works zone."""
    rows: list[
        tuple[float, float, int, tuple[float, float, float], float]
    ] = []  # s, d, kind, size, yaw
    for side in (-1.0, 1.0):
        s = s_lo + rng.uniform(0, 30)
        while s < s_hi:  # lamp posts at the kerb of the sidewalk
            rows.append((s, side * (SIDEWALK[0] + 0.3), POLE, (0.25, 0.25, 6.0), 0.0))
            s += rng.uniform(25.0, 35.0)
        s = s_lo
        while s < s_hi:  # building facades with gaps
            length = rng.uniform(12.0, 40.0)
            depth = rng.uniform(8.0, 14.0)
            height = rng.uniform(6.0, 22.0)
            rows.append(
                (
                    s + 0.5 * length,
                    side * (BUILDING_D + 0.5 * depth),
                    BUILDING,
                    (length, depth, height),
                    0.0,
                )
            )
            s += length + rng.uniform(2.0, 12.0)
    # Road works on the right: a line of barriers along the parking strip and cones at the ends.
    s = road_works[0]
    while s < road_works[1]:
        rows.append((s + 1.0, -(PARKING[0] + 0.4), BARRIER, (2.0, 0.5, 0.9), 0.0))
        s += 2.2
    for s in (road_works[0] - 4.0, road_works[0] - 2.0, road_works[1] + 2.0):
        rows.append(
            (s, -(BIKE_LANE[0] + 0.6 + 0.3 * (s > road_works[1])), CONE, (0.4, 0.4, 0.7), 0.0)
        )
    s_arr = np.array([r[0] for r in rows])
    d_arr = np.array([r[1] for r in rows])
    xy, heading = road.to_world(s_arr, d_arr)
    size = np.array([r[3] for r in rows], dtype=np.float64)
    kind = np.array([r[2] for r in rows], dtype=np.int64)
    return Boxes(
        center=np.column_stack([xy, 0.5 * size[:, 2]]),
        size=size,
        yaw=wrap_angle(heading + np.array([r[4] for r in rows])),
        velocity=np.zeros((len(rows), 3)),
        kind=kind,
        track_id=np.full(len(rows), -1, dtype=np.int64),
        appearance=rng.integers(0, 1 << 30, size=len(rows)),
    )
