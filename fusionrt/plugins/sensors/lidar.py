"""The lidar sensor plugin: point clouds in, one bird's-eye-view raster tensor out.

**Decode** (``LidarSensor.decode``) accepts a :class:`~fusionrt.RawRecord` whose ``msgtype`` is

* ``sensor_msgs/msg/PointCloud2``: ROS 2 CDR bytes, any field layout (see
  :mod:`~fusionrt.plugins.sensors.pointcloud2`); ``stamp_ns`` and ``frame_id`` come from the
  message header;
* ``fusionrt/kitti_bin``: the bytes of a KITTI velodyne ``.bin`` file, N × 4 little-endian
  float32 ``x, y, z, intensity`` (intensity 0…1);
* ``fusionrt/nuscenes_pcd_bin``: the bytes of a nuScenes lidar ``.pcd.bin`` file, N × 5
  float32 ``x, y, z, intensity, ring`` (intensity 0…255, so it is scaled by 1/255);
* ``fusionrt/pcd``: the bytes of a PCD file (ascii, binary or binary_compressed);
* an empty ``msgtype`` with a ``path`` ending in ``.bin`` / ``.pcd.bin`` / ``.pcd``.

For the file formats ``stamp_ns`` is the record's. The payload is a numpy structured array,
a view of the record bytes wherever the format allows. The rig's ``time_offset_ns`` is applied
by the synchroniser, not here.

**Preprocess** (``LidarSensor.preprocess``) drops non-finite points, moves the points from the
sensor into the rig frame (``rig.transform(instance, rig.frame)``; without a rig they are taken
to be in the ego frame already), drops returns inside ``rig.vehicle_box``, compensates ego
motion when the points carry per-point times and the context has ``ego_poses``, and rasterises
into ``context.geometry.bev`` (channels: :func:`~fusionrt.plugins.sensors.bev.lidar_bev_channels`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrt.plugins.sensors import pointcloud2
from fusionrt.plugins.sensors.bev import LidarBevRasterizer, lidar_bev_channels, xyz_columns
from fusionrt.plugins.sensors.pcd import read_pcd
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor
from fusionrt.runtime.sync import compensate_points

MSGTYPE_POINTCLOUD2 = pointcloud2.MSGTYPE
MSGTYPE_KITTI_BIN = "fusionrt/kitti_bin"
MSGTYPE_NUSCENES_PCD_BIN = "fusionrt/nuscenes_pcd_bin"
MSGTYPE_PCD = "fusionrt/pcd"
POINT_MSGTYPES = (MSGTYPE_POINTCLOUD2, MSGTYPE_KITTI_BIN, MSGTYPE_NUSCENES_PCD_BIN, MSGTYPE_PCD)

KITTI_BIN_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
NUSCENES_PCD_BIN_DTYPE = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("ring", "<f4")]
)
#: Intensity scale of each format whose intensity is not already in 0…1.
_FORMAT_INTENSITY_SCALE = {MSGTYPE_NUSCENES_PCD_BIN: 1.0 / 255.0}
#: Field names drivers use for per-point time, tried in this order.
POINT_TIME_FIELDS = ("time", "t", "timestamp", "time_stamp", "offset_time")
_ABSOLUTE_SECONDS = 1e6  # per-point times above this (float seconds) are absolute, not offsets
_ABSOLUTE_NANOSECONDS = 1e15  # same for integer nanoseconds


# -- decoding (shared with the radar plugin) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedPoints:
    """Points of one record: structured array, header stamp (None: use the record's), frame."""

    points: np.ndarray
    stamp_ns: int | None
    frame_id: str
    meta: dict[str, Any]


def msgtype_for_path(file: str | Path, **where: Any) -> str:
    """The point msgtype of a file, by suffix (``.pcd.bin``, ``.bin``, ``.pcd``)."""
    name = str(file).lower()
    if name.endswith(".pcd.bin"):
        return MSGTYPE_NUSCENES_PCD_BIN
    if name.endswith(".bin"):
        return MSGTYPE_KITTI_BIN
    if name.endswith(".pcd"):
        return MSGTYPE_PCD
    where.setdefault("path", str(file))
    raise DecodeError(
        "unknown point file suffix (expected .bin KITTI, .pcd.bin nuScenes or .pcd)", **where
    )


def _fixed_records(data: Any, dtype: np.dtype, what: str, **where: Any) -> np.ndarray:
    buffer = memoryview(data).cast("B")
    remainder = len(buffer) % dtype.itemsize
    if remainder:
        raise DecodeError(
            f"{what} holds {len(buffer)} bytes, not a multiple of its {dtype.itemsize}-byte "
            f"records (last record truncated)",
            **where,
            offset=len(buffer) - remainder,
        )
    return np.frombuffer(buffer, dtype)


def decode_points(
    data: bytes | bytearray | memoryview, msgtype: str, **where: Any
) -> DecodedPoints:
    """Decode the bytes of one point record of ``msgtype`` (one of :data:`POINT_MSGTYPES`).

    ``where`` (``sensor``, ``topic``, ``path``, ``record_offset``) is context for errors.
    """
    meta: dict[str, Any] = {"msgtype": msgtype}
    if msgtype == MSGTYPE_POINTCLOUD2:
        cloud = pointcloud2.decode_pointcloud2(data, **where)
        meta.update(
            height=cloud.height,
            width=cloud.width,
            point_step=cloud.point_step,
            is_bigendian=cloud.is_bigendian,
            is_dense=cloud.is_dense,
        )
        return DecodedPoints(cloud.points, cloud.stamp_ns, cloud.frame_id, meta)
    if msgtype == MSGTYPE_KITTI_BIN:
        points = _fixed_records(data, KITTI_BIN_DTYPE, "KITTI .bin", **where)
    elif msgtype == MSGTYPE_NUSCENES_PCD_BIN:
        points = _fixed_records(data, NUSCENES_PCD_BIN_DTYPE, "nuScenes .pcd.bin", **where)
    elif msgtype == MSGTYPE_PCD:
        points = read_pcd(memoryview(data), **where)
    else:
        raise DecodeError(
            f"unsupported msgtype {msgtype!r} (expected one of {', '.join(POINT_MSGTYPES)})",
            **where,
        )
    if msgtype in _FORMAT_INTENSITY_SCALE:
        meta["intensity_scale"] = _FORMAT_INTENSITY_SCALE[msgtype]
    return DecodedPoints(points, None, "", meta)


def decode_record(raw: RawRecord, sensor: str) -> DecodedPoints:
    """Decode a point :class:`RawRecord` (msgtype, or the path's suffix when it has none)."""
    where = {"sensor": sensor, "topic": raw.topic, "path": raw.path, "record_offset": raw.offset}
    msgtype = raw.msgtype or (msgtype_for_path(raw.path, **where) if raw.path else "")
    decoded = decode_points(raw.data, msgtype, **where)
    require_xyz(decoded.points, **where)
    return decoded


def require_xyz(points: Any, **where: Any) -> np.ndarray:
    """``points`` if it is a structured array with ``x``, ``y`` and ``z``, else DecodeError."""
    if not isinstance(points, np.ndarray) or points.dtype.names is None:
        raise DecodeError(
            f"point payload is {type(points).__name__}, not a structured point array", **where
        )
    names = points.dtype.names
    missing = [axis for axis in ("x", "y", "z") if axis not in names]
    if missing:
        raise DecodeError(
            f"points lack field(s) {', '.join(missing)} (fields: {', '.join(names)})", **where
        )
    return points


def read_point_file(path: str | Path) -> np.ndarray:
    """A point file as a writable structured array, format by suffix (see :func:`read_points`)."""
    file = Path(path)
    msgtype = msgtype_for_path(file)
    try:
        with file.open("rb") as stream:
            data = bytearray(file.stat().st_size)
            stream.readinto(data)
    except OSError as exc:
        raise DecodeError(f"cannot read point file: {exc}", path=str(file)) from exc
    return decode_points(data, msgtype, path=str(file)).points


def read_points(path: str | Path) -> np.ndarray:
    """Read a lidar point file into a numpy structured array with named fields.

    Format by suffix: ``.bin`` KITTI (``x, y, z, intensity`` float32), ``.pcd.bin`` nuScenes
    (``x, y, z, intensity, ring`` float32, values as stored), ``.pcd`` PCD (its own fields,
    ``POINTS`` records exactly). Raises ``DecodeError`` naming the file and byte offset.
    """
    return read_point_file(path)


# -- ego motion ---------------------------------------------------------------------------


def pose_table(ego_poses: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(stamps_ns (K,) int64 sorted, poses (K, 4, 4))`` from a context's ``ego_poses``.

    Accepted: a ``(stamps_ns, poses)`` pair, a mapping ``{stamp_ns: 4×4}``, or an object
    with ``stamps_ns`` and ``poses`` attributes. Poses are ego → world.
    """
    if isinstance(ego_poses, Mapping):
        stamps = np.array(sorted(ego_poses), np.int64)
        poses = np.array([ego_poses[s] for s in sorted(ego_poses)], np.float64)
    elif hasattr(ego_poses, "stamps_ns") and hasattr(ego_poses, "poses"):
        stamps = np.asarray(ego_poses.stamps_ns, np.int64)
        poses = np.asarray(ego_poses.poses, np.float64)
    elif isinstance(ego_poses, tuple | list) and len(ego_poses) == 2:
        stamps = np.asarray(ego_poses[0], np.int64)
        poses = np.asarray(ego_poses[1], np.float64)
    else:
        raise ConfigError(
            f"ego_poses must be (stamps_ns, poses), {{stamp_ns: pose}} or have .stamps_ns and "
            f".poses, got {type(ego_poses).__name__}",
            key="ego_poses",
        )
    if stamps.ndim != 1 or poses.shape != (len(stamps), 4, 4) or len(stamps) == 0:
        raise ConfigError(
            f"ego_poses: {stamps.shape} stamps and {poses.shape} poses (need K and K×4×4, K≥1)",
            key="ego_poses",
        )
    if stamps.size > 1 and np.any(stamps[1:] < stamps[:-1]):  # sources give them sorted
        order = np.argsort(stamps, kind="stable")
        return stamps[order], poses[order]
    return stamps, poses


def point_stamps_ns(points: np.ndarray, stamp_ns: int, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-point stamps (int64 ns, common clock) and a mask of the points whose time is finite.

    Float fields are seconds, integer fields nanoseconds; values above 1e6 s (1e15 ns) are
    absolute stamps, smaller ones offsets from the message ``stamp_ns``.
    """
    values = points[field]
    if values.dtype.kind == "f":
        seconds = values.astype(np.float64)
        finite = np.isfinite(seconds)
        all_finite = bool(finite.all())
        if not all_finite:
            seconds[~finite] = 0.0
        absolute = _largest_magnitude(seconds) > _ABSOLUTE_SECONDS
        np.multiply(seconds, 1e9, out=seconds)  # in place: a sweep's times are read once
        stamps = np.rint(seconds, out=seconds).astype(np.int64)
    else:
        stamps = values.astype(np.int64)
        finite = np.ones(stamps.shape, np.bool_)
        all_finite = True
        absolute = _largest_magnitude(stamps) > _ABSOLUTE_NANOSECONDS
    if not absolute:
        stamps += stamp_ns
    if not all_finite:
        stamps[~finite] = stamp_ns
    return stamps, finite


def _largest_magnitude(values: np.ndarray) -> float:
    """``max(|values|)`` (0 for none) without an array of absolute values."""
    return max(float(-values.min()), float(values.max())) if values.size else 0.0


# -- the sensor ---------------------------------------------------------------------------


class LidarSensor(Sensor):
    """A lidar: point clouds → ``(3 + height_slices, rows, cols)`` float32 BEV raster.

    Options: ``tensor_name`` (default ``lidar_bev``); ``intensity_scale`` (default: the
    format's, 1/255 for nuScenes ``.pcd.bin``, 1/max for integer intensity fields, else 1);
    ``time_field`` (per-point time field, default: the first of :data:`POINT_TIME_FIELDS`
    present); ``motion_compensation`` (default True); ``time_resolution_ns`` (default 1 ms:
    per-point times are rounded to it before compensation, so that the poses are interpolated
    ~100 times per sweep instead of once per point — at 30 m/s a 0.5 ms rounding moves a
    point by 1.5 cm).
    """

    name = "lidar"
    modality = Modality.LIDAR
    nonfinite = NonFinitePolicy.DROP
    option_specs: ClassVar[Mapping[str, Option]] = {
        "tensor_name": Option("lidar_bev", str),
        "intensity_scale": Option(None, float, exclusive_minimum=0, nullable=True),
        "time_field": Option(None, str, nullable=True),
        "motion_compensation": Option(True, bool),
        "time_resolution_ns": Option(1_000_000, int, minimum=1),
    }

    def __init__(self, instance: str | None = None, topic: str = "", **options: Any) -> None:
        super().__init__(instance, topic, **options)
        self.tensor_name: str = self.options["tensor_name"]
        self.intensity_scale: float | None = self.options["intensity_scale"]
        self.time_field: str | None = self.options["time_field"]
        self.motion_compensation: bool = self.options["motion_compensation"]
        self.time_resolution_ns: int = self.options["time_resolution_ns"]
        self._rasterizers: dict[tuple[BevGrid, float], LidarBevRasterizer] = {}

    # decode ------------------------------------------------------------------------------

    def decode(self, raw: RawRecord) -> SensorMessage:
        """Decode one point record (see the module docstring for the msgtypes)."""
        decoded = decode_record(raw, self.instance)
        return SensorMessage(
            sensor=self.instance,
            stamp_ns=raw.stamp_ns if decoded.stamp_ns is None else decoded.stamp_ns,
            payload=decoded.points,
            frame_id=decoded.frame_id or self.instance,
            topic=raw.topic,
            meta=decoded.meta,
        )

    # preprocess --------------------------------------------------------------------------

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """One float32 ``(channels, rows, cols)`` raster over the model's BEV grid."""
        grid = context.geometry.bev
        shape = (len(lidar_bev_channels(grid)), *grid.shape)
        return [TensorSpec(self.tensor_name, shape, "float32", sensor=self.instance)]

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """Rasterise the message's points into the model's BEV grid (zeros when missing)."""
        if message is None:
            return {spec.name: spec.zeros() for spec in self.tensor_specs(context)}
        points = require_xyz(message.payload, sensor=self.instance, topic=message.topic)
        names = points.dtype.names or ()
        intensity = points["intensity"] if "intensity" in names else None
        scale = self._intensity_scale(message, intensity)
        rasterizer = self._rasterizer(context.geometry.bev, scale)
        transform, box = self._placement(context)
        xyz = xyz_columns(points)
        time_field = self._time_field(names)
        if time_field is not None and context.ego_poses is not None and len(points):
            xyz = self._compensated(message, xyz, transform, context, time_field)
            transform = None
        raster = rasterizer.rasterize(xyz, intensity, transform, box)
        return {self.tensor_name: raster}

    def _intensity_scale(self, message: SensorMessage, intensity: np.ndarray | None) -> float:
        if self.intensity_scale is not None:
            return float(self.intensity_scale)
        if "intensity_scale" in message.meta:
            return float(message.meta["intensity_scale"])
        if intensity is not None and intensity.dtype.kind in "iu":
            return 1.0 / float(np.iinfo(intensity.dtype).max)
        return 1.0

    def _rasterizer(self, grid: BevGrid, scale: float) -> LidarBevRasterizer:
        key = (grid, scale)
        rasterizer = self._rasterizers.get(key)
        if rasterizer is None:
            rasterizer = self._rasterizers[key] = LidarBevRasterizer(grid, scale)
        return rasterizer

    def _placement(
        self, context: PreprocessContext
    ) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        """Sensor → rig 4×4 and the vehicle box, or ``(None, None)`` without a rig."""
        rig = context.rig
        if rig is None:
            return None, None
        return rig.transform(self.instance, rig.frame).matrix, rig.vehicle_box

    def _time_field(self, names: tuple[str, ...]) -> str | None:
        if not self.motion_compensation:
            return None
        if self.time_field is not None:
            return self.time_field if self.time_field in names else None
        return next((name for name in POINT_TIME_FIELDS if name in names), None)

    def _compensated(
        self,
        message: SensorMessage,
        xyz: np.ndarray,
        transform: np.ndarray | None,
        context: PreprocessContext,
        time_field: str,
    ) -> np.ndarray:
        """Ego-frame points moved to the ego pose at the reference stamp (N×3, xyz's dtype)."""
        assert isinstance(message.payload, np.ndarray)  # checked by preprocess
        stamps, finite = point_stamps_ns(message.payload, message.stamp_ns, time_field)
        pose_stamps, poses = pose_table(context.ego_poses)
        reference = context.reference_stamp_ns
        reference = message.stamp_ns if reference is None else reference
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf points stay NaN: dropped
            ego = compensate_points(
                xyz,
                stamps,
                int(reference),
                pose_stamps,
                poses,
                time_resolution_ns=self.time_resolution_ns,
                sensor_to_ego=transform,
            )
        if not finite.all():
            ego[~finite] = np.nan  # a point without a valid time is dropped
        return ego

    # samples -----------------------------------------------------------------------------

    def sample_records(self) -> list[RawRecord]:
        """Two generated sweeps as PointCloud2 (:data:`VELODYNE_LAYOUT`, :data:`COMPACT_LAYOUT`)."""
        topic = self.topic or f"/{self.instance}/points"
        return [
            RawRecord(topic, stamp, data, MSGTYPE_POINTCLOUD2)
            for stamp, data in sample_pointclouds(self.instance)
        ]

    def default_context(self) -> PreprocessContext:
        """The default geometry, a rig with this lidar 1.73 m above the ego origin and a
        vehicle box, and ego poses of a constant 5 m/s drive covering the samples."""
        return sample_context(self.instance, "lidar")


# -- generated samples --------------------------------------------------------------------

SAMPLE_STAMP_NS = 1_700_000_000_000_000_000
SAMPLE_SWEEP_NS = 100_000_000
SAMPLE_MOUNT = (0.0, 0.0, 1.73)  # lidar origin in the ego frame (KITTI's height)
SAMPLE_VEHICLE_BOX = ((-1.0, -0.9, 0.0), (3.7, 0.9, 1.6))
SAMPLE_SPEED_MPS = 5.0
#: Boxes of the generated scene in the ego frame: centre xyz, size xyz (axis-aligned).
SAMPLE_BOXES = (
    ((12.0, 3.0, 0.8), (4.5, 1.9, 1.6)),
    ((-9.0, -4.0, 0.75), (4.2, 1.8, 1.5)),
    ((25.0, -7.0, 1.5), (10.0, 2.5, 3.0)),
)


def synthetic_scan(rings: int = 16, azimuths: int = 360) -> dict[str, np.ndarray]:
    """A deterministic lidar sweep (no random numbers): rays from a spinning lidar at
    :data:`SAMPLE_MOUNT` hit a flat ground at z = 0 and the boxes of :data:`SAMPLE_BOXES`.

    Returns float64 columns ``x, y, z`` (sensor frame), ``intensity`` (0…1), ``ring`` and
    ``time`` (seconds from the sweep start, one 100 ms revolution), for rays that hit within
    60 m.
    """
    elevation = np.radians(np.linspace(-24.8, 2.0, rings))
    azimuth = 2 * math.pi * np.arange(azimuths) / azimuths
    el, az = np.meshgrid(elevation, azimuth, indexing="ij")
    direction = np.stack(
        [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1
    ).reshape(-1, 3)
    origin = np.array(SAMPLE_MOUNT)
    with np.errstate(divide="ignore", invalid="ignore"):
        ground = np.where(direction[:, 2] < 0, -origin[2] / direction[:, 2], np.inf)
        hit, value = ground, np.full(len(direction), 0.12)
        for index, (centre, size) in enumerate(SAMPLE_BOXES):
            low = np.array(centre) - np.array(size) / 2 - origin
            high = np.array(centre) + np.array(size) / 2 - origin
            t1, t2 = low / direction, high / direction
            near = np.nanmax(np.minimum(t1, t2), axis=1)
            far = np.nanmin(np.maximum(t1, t2), axis=1)
            box_hit = (near <= far) & (near > 0) & (near < hit)
            hit = np.where(box_hit, near, hit)
            value = np.where(box_hit, 0.5 + 0.15 * index, value)
    keep = hit < 60.0
    points = direction[keep] * hit[keep, None]
    ring = np.repeat(np.arange(rings), azimuths)[keep]
    column = np.tile(np.arange(azimuths), rings)[keep]
    intensity = value[keep] + 0.02 * (ring % 3)
    return {
        "x": points[:, 0],
        "y": points[:, 1],
        "z": points[:, 2],
        "intensity": intensity,
        "ring": ring,
        "time": column * (SAMPLE_SWEEP_NS * 1e-9) / azimuths,
    }


#: velodyne_pointcloud (ROS 2) ``XYZIRT``: packed 22-byte points, time = float seconds from
#: the message stamp.
VELODYNE_LAYOUT = np.dtype(
    {
        "names": ["x", "y", "z", "intensity", "ring", "time"],
        "formats": ["<f4", "<f4", "<f4", "<f4", "<u2", "<f4"],
        "offsets": [0, 4, 8, 12, 16, 18],
        "itemsize": 22,
    }
)
#: A compact packed layout: uint8 intensity and ring, ``t`` = uint32 nanoseconds from the
#: message stamp (18-byte points, so most floats are unaligned).
COMPACT_LAYOUT = np.dtype(
    {
        "names": ["x", "y", "z", "intensity", "ring", "t"],
        "formats": ["<f4", "<f4", "<f4", "u1", "u1", "<u4"],
        "offsets": [0, 4, 8, 12, 13, 14],
        "itemsize": 18,
    }
)


@cache
def sample_pointclouds(frame_id: str) -> tuple[tuple[int, bytes], ...]:
    """Two consecutive generated sweeps as PointCloud2 CDR bytes: ``((stamp_ns, bytes), ...)``.

    The first uses :data:`VELODYNE_LAYOUT`, the second :data:`COMPACT_LAYOUT`.
    """
    scan = synthetic_scan()
    out = []
    for index, layout in enumerate((VELODYNE_LAYOUT, COMPACT_LAYOUT)):
        points = np.zeros(len(scan["x"]), layout)
        for name in ("x", "y", "z", "ring"):
            points[name] = scan[name]
        if layout == VELODYNE_LAYOUT:
            points["intensity"] = scan["intensity"]
            points["time"] = scan["time"]
        else:
            points["intensity"] = np.rint(scan["intensity"] * 255)
            points["t"] = np.rint(scan["time"] * 1e9)
        stamp = SAMPLE_STAMP_NS + index * SAMPLE_SWEEP_NS
        out.append((stamp, pointcloud2.encode_pointcloud2(points, frame_id, stamp)))
    return tuple(out)


def sample_context(instance: str, kind: str) -> PreprocessContext:
    """Default geometry, a rig with ``instance`` at :data:`SAMPLE_MOUNT` (identity rotation)
    and :data:`SAMPLE_VEHICLE_BOX`, and ego poses of a 5 m/s straight drive around the
    sample stamps."""
    from fusionrt.calibration import Rig, SensorCalibration, Transform  # noqa: PLC0415

    rig = Rig(
        "ego",
        [SensorCalibration(instance, kind, Transform(translation=SAMPLE_MOUNT))],
        vehicle_box=SAMPLE_VEHICLE_BOX,
    )
    stamps = SAMPLE_STAMP_NS + np.arange(-2, 5) * SAMPLE_SWEEP_NS
    poses = np.repeat(np.eye(4)[None], len(stamps), axis=0)
    poses[:, 0, 3] = (stamps - SAMPLE_STAMP_NS) * 1e-9 * SAMPLE_SPEED_MPS
    return PreprocessContext(
        geometry=ModelGeometry(), rig=rig, sensor_names=(instance,), ego_poses=(stamps, poses)
    )


@hookimpl
def fusionrt_sensors() -> list[type[Sensor]]:
    """The built-in lidar sensor."""
    return [LidarSensor]
