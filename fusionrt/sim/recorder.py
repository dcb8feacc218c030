"""Record a synthetic drive as a ROS 2 bag (MCAP storage), with its rig and CAN log beside it.

Output layout of ``record_drive(config, out)``::

    out/bag/metadata.yaml   rosbag2 metadata (version 9, storage mcap)
    out/bag/bag.mcap        the messages (zstd-compressed chunks unless compress=False; every
                            chunk carries the CRC-32 of its records)
    out/rig.yaml            the rig: extrinsics, intrinsics, clock offsets, vehicle box
    out/can0.log            the CAN frames as a candump -l log (CAN clock)
    out/drive.yaml          what was generated: config, topics, counts

Topics (see ``docs/sim.md``):

==============================================  ==================================  ========
topic                                           type                                stamp
==============================================  ==================================  ========
``/sensors/camera_front/image/compressed``      sensor_msgs/msg/CompressedImage     camera
``/sensors/lidar_top/points``                   sensor_msgs/msg/PointCloud2         lidar
``/sensors/radar_front/points``                 sensor_msgs/msg/PointCloud2         radar
``/vehicle/can0``                               can_msgs/msg/Frame                  can
``/vehicle/log``                                rcl_interfaces/msg/Log              log
``/ground_truth/actors``                        fusionrt_msgs/msg/ActorArray        common
``/ground_truth/ego``                           nav_msgs/msg/Odometry               common
==============================================  ==================================  ========

Header stamps are on each sensor's own clock (``common = stamp + rig time_offset_ns``); the
bag's log time of every message is its arrival at the logger on the common clock, so log order
differs from stamp order. Ground truth is logged with its lidar sweep.

Determinism: every random draw comes from ``rng_for(seed, stream, index)``, messages are merged
by ``(log time, topic rank, sequence)``, and the MCAP writer has no wall clock in it; the same
config therefore gives byte-identical files with the same library versions (rosbags writes its
own version into the MCAP header; OpenCV's JPEG and zstd's output are stable per version).
"""

from __future__ import annotations

import heapq
import json
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

import fusionrt
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.pointcloud2 import encode_pointcloud2
from fusionrt.plugins.sources.mcap_format import add_chunk_crcs
from fusionrt.runtime.errors import ConfigError
from fusionrt.sim.camera import CameraRenderer, encode_jpeg
from fusionrt.sim.can import (
    FRAME_SPACING_S,
    CanFrame,
    candump_line,
    encode_cycle,
    encode_diag_status,
)
from fusionrt.sim.conditions import CONDITIONS, Failure
from fusionrt.sim.config import SimConfig
from fusionrt.sim.degradation import (
    DEGRADABLE,
    camera_fault,
    lidar_blockage,
    radar_blockage,
    smear,
)
from fusionrt.sim.diagnostics import Announcement, announcement_events, announcements, status_at
from fusionrt.sim.lidar import LidarModel, LidarSimulator, Sweep
from fusionrt.sim.radar import RADAR_DTYPE, RadarModel, RadarSimulator
from fusionrt.sim.raycast import visible_fraction
from fusionrt.sim.rig import CAMERA, CAN, LIDAR, LOG, RADAR, build_rig
from fusionrt.sim.textlog import LEVELS, log_events
from fusionrt.sim.timing import DEFAULT_TIMINGS, Schedule, SensorTiming, schedule
from fusionrt.sim.world import ACTOR_CLASSES, CYCLIST, World, rng_for, stamp_ns

__all__ = [
    "BAG_DIR",
    "CAN_LOG",
    "GT_RANGE_M",
    "MANIFEST",
    "RIG_FILE",
    "TOPICS",
    "DriveSimulator",
    "DriveSummary",
    "Record",
    "default_workers",
    "record_drive",
]

BAG_DIR = "bag"
RIG_FILE = "rig.yaml"
CAN_LOG = "can0.log"
MANIFEST = "drive.yaml"

TOPIC_CAMERA = "/sensors/camera_front/image/compressed"
TOPIC_LIDAR = "/sensors/lidar_top/points"
TOPIC_RADAR = "/sensors/radar_front/points"
TOPIC_CAN = "/vehicle/can0"
TOPIC_LOG = "/vehicle/log"
TOPIC_ACTORS = "/ground_truth/actors"
TOPIC_EGO = "/ground_truth/ego"

#: topic -> (message type, rig sensor whose clock stamps it, or None for the common clock)
TOPICS: dict[str, tuple[str, str | None]] = {
    TOPIC_CAMERA: ("sensor_msgs/msg/CompressedImage", CAMERA),
    TOPIC_LIDAR: ("sensor_msgs/msg/PointCloud2", LIDAR),
    TOPIC_RADAR: ("sensor_msgs/msg/PointCloud2", RADAR),
    TOPIC_CAN: ("can_msgs/msg/Frame", CAN),
    TOPIC_LOG: ("rcl_interfaces/msg/Log", LOG),
    TOPIC_ACTORS: ("fusionrt_msgs/msg/ActorArray", None),
    TOPIC_EGO: ("nav_msgs/msg/Odometry", None),
}
_RANK = {topic: i for i, topic in enumerate(TOPICS)}

#: DIAG_STATUS goes out every tenth 10 ms CAN cycle (10 Hz).
DIAG_EVERY_CYCLES = 10
#: Ground truth lists every actor within this distance of the ego origin (metres).
GT_RANGE_M = 100.0
JPEG_FORMAT = "bgr8; jpeg compressed bgr8"  # what image_transport's compressed plugin writes


@dataclass(frozen=True, order=True)
class Record:
    """One message to write: ordered by log time, then topic, then sequence."""

    log_ns: int
    rank: int
    seq: int
    topic: str = field(compare=False)
    data: bytes = field(compare=False)
    stamp_ns: int = field(compare=False)  # header stamp (sensor clock; ``stamp`` of a Log)


@dataclass(frozen=True)
class DriveSummary:
    """What :func:`record_drive` wrote."""

    out: Path
    bag: Path
    counts: dict[str, int]
    bag_bytes: int
    #: ``(topic, log time, header stamp)`` of every message written, in write order.
    messages: list[tuple[str, int, int]]


class DriveSimulator:
    """The messages of one drive, generated lazily in log order."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.world = World.generate(config.seed, config.duration_s)
        self.rig = build_rig(config)
        self.condition = CONDITIONS[config.condition]
        for f in config.failures:
            if f.sensor not in self.rig.sensors:
                raise ConfigError(
                    f"cannot fail unknown sensor {f.sensor!r}; the sensors are "
                    f"{', '.join(self.rig.sensors)} (or camera, lidar, radar)",
                    key="fail",
                )
            if f.mode == "degraded" and f.sensor not in DEGRADABLE:
                raise ConfigError(
                    f"only {', '.join(DEGRADABLE)} have a degraded mode, not {f.sensor!r}",
                    key="fail",
                )
        self.announced: list[Announcement] = (
            announcements(config.failures, config.duration_s, config.diagnostics, config.seed)
            if config.diagnostics is not None
            else []
        )
        self.store = typestore()
        self._types = self.store.types
        self._schedules: dict[str, Schedule] = {}
        self.candump: list[str] = []  # candump -l lines, filled as CAN records are generated
        self._camera: CameraRenderer | None = None
        self._lidar_sim: LidarSimulator | None = None
        self._radar_sim: RadarSimulator | None = None
        self._pool: Executor | None = None

    # -- helpers --------------------------------------------------------------------------

    def schedule_of(self, sensor: str, timing: SensorTiming) -> Schedule:
        """The capture/arrival schedule of ``sensor`` (cached)."""
        if sensor not in self._schedules:
            rng = rng_for(self.config.seed, "schedule", sensor)
            self._schedules[sensor] = schedule(timing, self.config.duration_s, rng)
        return self._schedules[sensor]

    def _sensor_stamp(self, sensor: str, t_s: float) -> int:
        return int(stamp_ns(t_s)) - self.rig.sensor(sensor).time_offset_ns

    def _header(self, stamp: int, frame_id: str) -> Any:
        sec, nsec = divmod(int(stamp), 1_000_000_000)
        t = self._types
        return t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=frame_id
        )

    def _serialize(self, msg: Any, msgtype: str) -> bytes:
        return bytes(self.store.serialize_cdr(msg, msgtype))

    def _failure(self, sensor: str, t_s: float) -> Failure | None:
        return self.config.failed(sensor, t_s)

    def _failure_index(self, failure: Failure) -> int:
        return self.config.failures.index(failure)

    def _frozen_index(self, failure: Failure) -> int | None:
        """The camera image a frozen camera keeps re-sending: the last one sent before the
        failure (``None`` if there was none)."""
        sched = self.camera_schedule()
        before = np.flatnonzero((sched.capture_s < failure.start_s) & ~sched.dropped)
        return int(before[-1]) if before.size else None

    def _corrupt(self, data: bytes, sensor: str, index: int) -> bytes:
        rng = rng_for(self.config.seed, "corrupt", sensor, index)
        return rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()

    # -- streams --------------------------------------------------------------------------

    def camera_schedule(self) -> Schedule:
        timing = _with_rate(DEFAULT_TIMINGS["camera"], self.config.camera_rate_hz)
        return self.schedule_of(CAMERA, timing)

    def lidar_schedule(self) -> Schedule:
        return self.schedule_of(LIDAR, DEFAULT_TIMINGS["lidar"])

    def radar_schedule(self) -> Schedule:
        timing = _with_rate(DEFAULT_TIMINGS["radar"], self.config.radar_rate_hz)
        return self.schedule_of(RADAR, timing)

    def _renderer(self) -> CameraRenderer:
        if self._camera is None:
            cfg = self.config
            self._camera = CameraRenderer(self.world, self.rig, CAMERA, self.condition, cfg.seed)
        return self._camera

    def camera_message(self, i: int) -> bytes | None:
        """The serialized image ``i`` of the camera schedule (None: dropped or silent)."""
        cfg = self.config
        sched = self.camera_schedule()
        t = float(sched.capture_s[i])
        failure = self._failure(CAMERA, t)
        if sched.dropped[i] or (failure and failure.mode == "silent"):
            return None
        rng = rng_for(cfg.seed, CAMERA, i)
        fault = None
        if failure and failure.mode == "degraded":
            fault = camera_fault(cfg.seed, failure, self._failure_index(failure))
        if failure and failure.mode == "garbage":
            jpeg = rng.integers(0, 256, int(rng.integers(2000, 30000)), dtype=np.uint8)
        elif fault is not None and fault.kind == "frozen" and failure is not None:
            frozen = self._frozen_index(failure)
            if frozen is None:  # frozen before the first image: the driver sends nothing
                return None
            image = self._renderer().render(
                float(sched.capture_s[frozen]), rng_for(cfg.seed, CAMERA, frozen)
            )
            jpeg = np.frombuffer(encode_jpeg(image.image, cfg.jpeg_quality), np.uint8)
        else:
            frame = self._renderer().render(t, rng)
            image_bgr = frame.image
            if fault is not None:
                image_bgr = smear(image_bgr, fault, rng_for(cfg.seed, "degraded", CAMERA, i))
            jpeg = np.frombuffer(encode_jpeg(image_bgr, cfg.jpeg_quality), np.uint8)
        msgtype = TOPICS[TOPIC_CAMERA][0]
        stamp = self._sensor_stamp(CAMERA, t)
        msg = self._types[msgtype](
            header=self._header(stamp, CAMERA), format=JPEG_FORMAT, data=jpeg
        )
        data = self._serialize(msg, msgtype)
        if failure and failure.mode == "corrupt":
            data = self._corrupt(data, CAMERA, i)
        return data

    def _lidar(self) -> LidarSimulator:
        if self._lidar_sim is None:
            cfg = self.config
            model = LidarModel(beams=cfg.lidar_beams, columns=cfg.lidar_columns)
            self._lidar_sim = LidarSimulator(self.world, self.rig, LIDAR, model, self.condition)
        return self._lidar_sim

    def lidar_messages(self, i: int) -> tuple[bytes | None, bytes]:
        """Sweep ``i`` of the lidar schedule (None: dropped or silent) and its ground truth."""
        cfg = self.config
        sched = self.lidar_schedule()
        t = float(sched.capture_s[i])
        sweep = self._lidar().sweep(t, rng_for(cfg.seed, LIDAR, i))
        origin = self.rig.transform(LIDAR, self.rig.frame).translation
        gt = self._ground_truth(t, int(stamp_ns(t)), sweep, origin)
        failure = self._failure(LIDAR, t)
        if sched.dropped[i] or (failure and failure.mode == "silent"):
            return None, gt
        stamp = self._sensor_stamp(LIDAR, t)
        if failure and failure.mode == "degraded":
            blockage = lidar_blockage(cfg.seed, failure, self._failure_index(failure))
            sweep = self._lidar().blocked(sweep, blockage, rng_for(cfg.seed, "degraded", LIDAR, i))
        points = sweep.points
        if failure and failure.mode == "garbage":
            raw = rng_for(cfg.seed, "garbage", LIDAR, i).integers(0, 256, points.nbytes, np.uint8)
            points = raw.view(points.dtype)
        data = encode_pointcloud2(points, LIDAR, stamp)
        if failure and failure.mode == "corrupt":
            data = self._corrupt(data, LIDAR, i)
        return data, gt

    def _ground_truth(self, t_s: float, stamp: int, sweep: Sweep, origin: np.ndarray) -> bytes:
        boxes = self.world.boxes_in_ego(t_s, radius_m=GT_RANGE_M + 10.0)
        in_range = np.hypot(boxes.center[:, 0], boxes.center[:, 1]) <= GT_RANGE_M
        actor = np.flatnonzero((boxes.kind <= CYCLIST) & in_range)
        order = actor[np.argsort(boxes.track_id[actor], kind="stable")]
        vis = visible_fraction(origin, boxes, order)
        hits = Counter(sweep.hit_track[sweep.hit_track >= 0].tolist())
        t = self._types
        point, vec = t["geometry_msgs/msg/Point"], t["geometry_msgs/msg/Vector3"]
        actors = []
        for j, i in enumerate(order.tolist()):
            c, sz, v = boxes.center[i], boxes.size[i], boxes.velocity[i]
            kind = int(boxes.kind[i])
            track = int(boxes.track_id[i])
            actors.append(
                t["fusionrt_msgs/msg/Actor"](
                    track_id=track,
                    class_id=kind,
                    class_name=ACTOR_CLASSES[kind],
                    center=point(x=float(c[0]), y=float(c[1]), z=float(c[2])),
                    size=vec(x=float(sz[0]), y=float(sz[1]), z=float(sz[2])),
                    yaw=float(boxes.yaw[i]),
                    velocity=vec(x=float(v[0]), y=float(v[1]), z=float(v[2])),
                    visibility=float(vis[j]),
                    num_lidar_points=int(hits.get(track, 0)),
                )
            )
        msgtype = TOPICS[TOPIC_ACTORS][0]
        msg = t[msgtype](header=self._header(stamp, self.rig.frame), actors=actors)
        return self._serialize(msg, msgtype)

    def radar_message(self, i: int) -> bytes | None:
        """Scan ``i`` of the radar schedule (None: dropped or silent)."""
        cfg = self.config
        sched = self.radar_schedule()
        t = float(sched.capture_s[i])
        failure = self._failure(RADAR, t)
        if sched.dropped[i] or (failure and failure.mode == "silent"):
            return None
        if self._radar_sim is None:
            self._radar_sim = RadarSimulator(self.world, self.rig, RADAR, RadarModel())
        points = self._radar_sim.scan(t, rng_for(cfg.seed, RADAR, i))
        if failure and failure.mode == "degraded":
            blockage = radar_blockage(cfg.seed, failure, self._failure_index(failure))
            points = self._radar_sim.blocked(
                points, t, blockage, rng_for(cfg.seed, "degraded", RADAR, i)
            )
        if failure and failure.mode == "garbage":
            size = max(points.nbytes, RADAR_DTYPE.itemsize * 8)
            raw = rng_for(cfg.seed, "garbage", RADAR, i).integers(0, 256, size, np.uint8)
            points = raw[: size // RADAR_DTYPE.itemsize * RADAR_DTYPE.itemsize].view(RADAR_DTYPE)
        stamp = self._sensor_stamp(RADAR, t)
        data = encode_pointcloud2(points, RADAR, stamp)
        if failure and failure.mode == "corrupt":
            data = self._corrupt(data, RADAR, i)
        return data

    # -- streams --------------------------------------------------------------------------

    def _run(self, method: str, count: int) -> Iterator[tuple[int, Any]]:
        """``(i, self.method(i))`` for ``i < count``, in order, in the pool if there is one."""
        if self._pool is None:
            fn = getattr(self, method)
            return ((i, fn(i)) for i in range(count))
        return self._pool.map(_task, [method] * count, range(count), chunksize=2)

    def camera_records(self) -> Iterator[Record]:
        sched = self.camera_schedule()
        for i, data in self._run("camera_message", len(sched)):
            if data is not None:
                t = float(sched.capture_s[i])
                log_ns = int(stamp_ns(sched.arrival_s[i]))
                stamp = self._sensor_stamp(CAMERA, t)
                yield Record(log_ns, _RANK[TOPIC_CAMERA], i, TOPIC_CAMERA, data, stamp)

    def lidar_records(self) -> Iterator[Record]:
        """Lidar sweeps, and the ground truth at each sweep's stamp (logged with it)."""
        sched = self.lidar_schedule()
        for i, (data, gt) in self._run("lidar_messages", len(sched)):
            t = float(sched.capture_s[i])
            log_ns = int(stamp_ns(sched.arrival_s[i]))
            if data is not None:
                stamp = self._sensor_stamp(LIDAR, t)
                yield Record(log_ns, _RANK[TOPIC_LIDAR], i, TOPIC_LIDAR, data, stamp)
            gt_stamp = int(stamp_ns(t))
            yield Record(log_ns, _RANK[TOPIC_ACTORS], i, TOPIC_ACTORS, gt, gt_stamp)

    def radar_records(self) -> Iterator[Record]:
        sched = self.radar_schedule()
        for i, data in self._run("radar_message", len(sched)):
            if data is not None:
                t = float(sched.capture_s[i])
                log_ns = int(stamp_ns(sched.arrival_s[i]))
                stamp = self._sensor_stamp(RADAR, t)
                yield Record(log_ns, _RANK[TOPIC_RADAR], i, TOPIC_RADAR, data, stamp)

    def can_records(self) -> Iterator[Record]:
        """Three frames per 10 ms cycle; ``self.candump`` collects the candump log lines."""
        cfg = self.config
        sched = self.schedule_of(CAN, DEFAULT_TIMINGS["can"])
        msgtype = TOPICS[TOPIC_CAN][0]
        frame_type = self._types[msgtype]
        prev_steer: float | None = None
        seq = 0
        for i, (t, arrival) in enumerate(zip(sched.capture_s, sched.arrival_s, strict=True)):
            ego = self.world.ego(float(t))
            steer = float(ego.steering_wheel_deg)
            rate = (
                0.0 if prev_steer is None else (steer - prev_steer) * DEFAULT_TIMINGS["can"].rate_hz
            )
            prev_steer = steer
            failure = self._failure(CAN, t)
            if sched.dropped[i] or (failure and failure.mode == "silent"):
                continue
            frames = encode_cycle(ego, rate, counter=i)
            if cfg.diagnostics is not None and i % DIAG_EVERY_CYCLES == 0:
                states, dtc = status_at(self.announced, float(t))
                frames.append(encode_diag_status(states, dtc, counter=i // DIAG_EVERY_CYCLES))
            for k, sent in enumerate(frames):
                frame = sent
                if failure and failure.mode == "garbage":
                    junk = rng_for(cfg.seed, "garbage", CAN, i, k).integers(
                        0, 256, 8, dtype=np.uint8
                    )
                    frame = CanFrame(frame.arbitration_id, junk.tobytes())
                t_frame = float(t) + k * FRAME_SPACING_S
                stamp = self._sensor_stamp(CAN, t_frame)
                msg = frame_type(
                    header=self._header(stamp, "can0"),
                    id=frame.arbitration_id,
                    is_rtr=False,
                    is_extended=False,
                    is_error=False,
                    dlc=len(frame.data),
                    data=np.frombuffer(frame.data, dtype=np.uint8).copy(),
                )
                data = self._serialize(msg, msgtype)
                if failure and failure.mode == "corrupt":
                    data = self._corrupt(data, CAN, seq)
                log_ns = int(stamp_ns(float(arrival) + k * FRAME_SPACING_S))
                self.candump.append(candump_line(stamp, frame))
                yield Record(log_ns, _RANK[TOPIC_CAN], seq, TOPIC_CAN, data, stamp)
                seq += 1

    def log_records(self) -> Iterator[Record]:
        cfg = self.config
        rng = rng_for(cfg.seed, LOG)
        events = log_events(self.world, self.condition, cfg.failures, cfg.duration_s, rng)
        if cfg.diagnostics is not None:
            events = sorted(
                events + announcement_events(self.announced, cfg.duration_s, cfg.diagnostics)
            )
        msgtype = TOPICS[TOPIC_LOG][0]
        t = self._types
        last = -1
        for i, ev in enumerate(events):
            failure = self._failure(LOG, ev.t_s)
            if failure and failure.mode == "silent":
                continue
            stamp = self._sensor_stamp(LOG, ev.t_s)
            text = ev.text
            if failure and failure.mode == "garbage":
                junk = rng_for(cfg.seed, "garbage", LOG, i).integers(32, 127, len(text))
                text = bytes(junk.astype(np.uint8)).decode("ascii")
            sec, nsec = divmod(stamp, 1_000_000_000)
            msg = t[msgtype](
                stamp=t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                level=LEVELS[ev.level],
                name=ev.source,
                msg=text,
                file="fusionrt/sim",
                function="",
                line=0,
            )
            data = self._serialize(msg, msgtype)
            if failure and failure.mode == "corrupt":
                data = self._corrupt(data, LOG, i)
            log_ns = max(int(stamp_ns(ev.t_s + 0.002 + 0.003 * rng.random())), last + 1)
            last = log_ns
            yield Record(log_ns, _RANK[TOPIC_LOG], i, TOPIC_LOG, data, stamp)

    def ego_records(self) -> Iterator[Record]:
        sched = self.schedule_of("ego", DEFAULT_TIMINGS["ego"])
        t = self._types
        msgtype = TOPICS[TOPIC_EGO][0]
        ego = self.world.ego(sched.capture_s)
        zeros = np.zeros(36)
        for i, t_s in enumerate(sched.capture_s):
            stamp = int(stamp_ns(t_s))
            half = 0.5 * float(ego.yaw[i])
            pose = t["geometry_msgs/msg/Pose"](
                position=t["geometry_msgs/msg/Point"](x=float(ego.x[i]), y=float(ego.y[i]), z=0.0),
                orientation=t["geometry_msgs/msg/Quaternion"](
                    x=0.0, y=0.0, z=float(np.sin(half)), w=float(np.cos(half))
                ),
            )
            twist = t["geometry_msgs/msg/Twist"](
                linear=t["geometry_msgs/msg/Vector3"](x=float(ego.speed[i]), y=0.0, z=0.0),
                angular=t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=float(ego.yaw_rate[i])),
            )
            msg = t[msgtype](
                header=self._header(stamp, "world"),
                child_frame_id=self.rig.frame,
                pose=t["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=zeros),
                twist=t["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=zeros),
            )
            data = self._serialize(msg, msgtype)
            yield Record(stamp, _RANK[TOPIC_EGO], i, TOPIC_EGO, data, stamp)

    def records(self, pool: Executor | None = None) -> Iterator[Record]:
        """Every message of the drive, in log order.

        With ``pool`` (a process pool whose workers ran :func:`_init_worker`), the camera,
        lidar and radar frames are computed there; the bytes are the same either way.
        """
        self.candump = []
        self._pool = pool
        return heapq.merge(
            self.camera_records(),
            self.lidar_records(),
            self.radar_records(),
            self.can_records(),
            self.log_records(),
            self.ego_records(),
        )


# -- pool workers -------------------------------------------------------------------------

_WORKER: DriveSimulator | None = None


def _init_worker(config: SimConfig) -> None:
    global _WORKER  # noqa: PLW0603  (one simulator per worker process)
    cv2.setNumThreads(1)
    _WORKER = DriveSimulator(config)


def _task(method: str, i: int) -> tuple[int, Any]:
    assert _WORKER is not None
    return i, getattr(_WORKER, method)(i)


def _with_rate(timing: SensorTiming, rate_hz: float) -> SensorTiming:
    return SensorTiming(
        rate_hz,
        jitter_s=timing.jitter_s,
        latency_s=timing.latency_s,
        latency_jitter_s=timing.latency_jitter_s,
        drop_probability=timing.drop_probability,
    )


def default_workers() -> int:
    """Worker processes used by default: the CPUs available, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def record_drive(
    config: SimConfig, out: str | Path, overwrite: bool = False, workers: int | None = None
) -> DriveSummary:
    """Simulate the drive ``config`` and write it under ``out`` (see the module docstring).

    ``workers`` processes render the camera, lidar and radar frames (default
    :func:`default_workers`; 1 = all in this process). The output does not depend on it.
    """
    out = Path(out)
    targets = [out / BAG_DIR, out / RIG_FILE, out / CAN_LOG, out / MANIFEST]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{existing[0]} exists; choose another --out or pass --overwrite", file=str(out)
        )
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)

    sim = DriveSimulator(config)
    store = sim.store
    counts: Counter[str] = Counter()
    index: list[tuple[str, int, int]] = []
    writer = Writer(out / BAG_DIR, version=9, storage_plugin=StoragePlugin.MCAP)
    if config.compress:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.set_custom_data("fusionrt.sim", json.dumps(_config_dict(config), sort_keys=True))
    writer.open()
    try:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=store)
            for topic, (msgtype, _) in TOPICS.items()
        }
        workers = default_workers() if workers is None else max(1, workers)
        pool = None
        if workers > 1:
            pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(config,),
            )
        try:
            for rec in sim.records(pool):
                writer.write(connections[rec.topic], rec.log_ns, rec.data)
                counts[rec.topic] += 1
                index.append((rec.topic, rec.log_ns, rec.stamp_ns))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    bag_file = out / BAG_DIR / f"{BAG_DIR}.mcap"
    # rosbags writes every chunk CRC as 0 ("not computed"); with a CRC a reader can tell a
    # damaged chunk (flipped bits, a garbled copy) from a good one.
    add_chunk_crcs(bag_file)

    header = (
        f"Rig of the fusionrt synthetic car (seed {config.seed}).\n"
        "time_offset_ns: common clock = sensor stamp + time_offset_ns."
    )
    sim.rig.save(out / RIG_FILE, header=header)
    (out / CAN_LOG).write_text("\n".join(sim.candump) + ("\n" if sim.candump else ""), "utf-8")
    manifest = {
        "generator": f"fusionrt {fusionrt.__version__} (fusionrt.sim)",
        "config": _config_dict(config),
        "bag": f"{BAG_DIR}/{bag_file.name}",
        "rig": RIG_FILE,
        "can_log": CAN_LOG,
        "dbc": "fusionrt/sim/data/fusionrt_car.dbc",
        "epoch_ns": int(stamp_ns(0.0)),
        "topics": {
            topic: {"type": msgtype, "clock": clock or "common", "count": counts[topic]}
            for topic, (msgtype, clock) in TOPICS.items()
        },
        "road_works_s": [round(x, 3) for x in sim.world.road_works],
        "actors": sim.world.num_actors,
    }
    (out / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False), "utf-8")
    return DriveSummary(out, out / BAG_DIR, dict(counts), bag_file.stat().st_size, index)


def _config_dict(config: SimConfig) -> dict[str, Any]:
    d = asdict(config)
    if config.diagnostics is None:  # drives recorded before diagnostics existed keep their bytes
        del d["diagnostics"]
    d["failures"] = [
        {"sensor": f.sensor, "start_s": f.start_s, "end_s": f.end_s, "mode": f.mode}
        for f in config.failures
    ]
    return d
