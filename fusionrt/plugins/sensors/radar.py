"""The radar sensor plugin: radar point clouds in, a sparse-friendly BEV tensor out.

**Decode** takes the same record types as the lidar plugin (``sensor_msgs/msg/PointCloud2``
with radar fields, ``fusionrt/pcd`` such as the nuScenes radar ``.pcd`` files with their
43-byte records, ``fusionrt/kitti_bin`` / ``fusionrt/nuscenes_pcd_bin``), see
:mod:`fusionrt.plugins.sensors.lidar`. With ``devkit_filter=True`` the nuScenes devkit's
default validity filter is applied at decode (``invalid_state == 0``, ``dyn_prop`` in 0…6,
``ambig_state == 3``, each where the field exists); the payload is then a copy.

**Preprocess** moves the points into the rig frame, rotates their velocity into it (the
ego-motion-compensated ``vx_comp, vy_comp`` when present, else ``vx, vy`` — raw in nuScenes,
compensated in fusionrt's simulator — else a radial ``doppler`` / ``radial_velocity`` / ``vr``
/ ``v_r`` speed along the line of sight, else zero) and spreads each point over the cells
within ``radius_m`` (default 1 m) of it: channels
``occupancy, rcs, vx, vy`` (RCS in dBsm, velocities in m/s in the ego frame; 0 where empty).
The radar's z is not used (automotive radars such as the ARS 408 report z = 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fusionrt.plugins.sensors import pointcloud2
from fusionrt.plugins.sensors.bev import RADAR_BEV_CHANNELS, splat_radar_bev
from fusionrt.plugins.sensors.lidar import (
    MSGTYPE_PCD,
    MSGTYPE_POINTCLOUD2,
    SAMPLE_STAMP_NS,
    decode_record,
    read_point_file,
    require_xyz,
    sample_context,
)
from fusionrt.plugins.sensors.pcd import write_pcd
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import RawRecord, SensorMessage, TensorSpec
from fusionrt.runtime.options import Option
from fusionrt.runtime.sensor import Modality, NonFinitePolicy, PreprocessContext, Sensor

#: Radial (line-of-sight) velocity field names, tried in order when vx/vy are absent.
RADIAL_VELOCITY_FIELDS = ("doppler", "radial_velocity", "vr", "v_r")
#: nuScenes devkit defaults (``RadarPointCloud``): field → accepted values.
DEVKIT_FILTER: dict[str, tuple[int, ...]] = {
    "invalid_state": (0,),
    "dyn_prop": tuple(range(7)),
    "ambig_state": (3,),
}
#: The nuScenes radar record (PCD ``SIZE 4 4 4 1 2 4 4 4 4 4 1 1 1 1 1 1 1 1``): 43 packed bytes.
NUSCENES_RADAR_DTYPE = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("dyn_prop", "i1"),
        ("id", "<i2"),
        ("rcs", "<f4"),
        ("vx", "<f4"),
        ("vy", "<f4"),
        ("vx_comp", "<f4"),
        ("vy_comp", "<f4"),
        ("is_quality_valid", "i1"),
        ("ambig_state", "i1"),
        ("x_rms", "i1"),
        ("y_rms", "i1"),
        ("invalid_state", "i1"),
        ("pdh0", "i1"),
        ("vx_rms", "i1"),
        ("vy_rms", "i1"),
    ]
)


def devkit_valid(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points the nuScenes devkit's default filter keeps."""
    keep = np.ones(points.shape, np.bool_)
    for name, accepted in DEVKIT_FILTER.items():
        if points.dtype.names and name in points.dtype.names:
            keep &= np.isin(points[name], accepted)
    return keep


def read_points(path: str | Path, devkit_filter: bool = False) -> np.ndarray:
    """Read a radar point file into a numpy structured array with named fields.

    Format by suffix as :func:`fusionrt.plugins.sensors.lidar.read_points`; a nuScenes radar
    ``.pcd`` gives its 18 fields (``x, y, z, dyn_prop, id, rcs, vx, vy, vx_comp, vy_comp,
    is_quality_valid, ambig_state, x_rms, y_rms, invalid_state, pdh0, vx_rms, vy_rms``), read
    from exactly ``POINTS × 43`` bytes. ``devkit_filter`` keeps only the points the nuScenes
    devkit keeps by default (70 of 125 in the sample file).
    """
    points = read_point_file(path)
    return points[devkit_valid(points)] if devkit_filter else points


class RadarSensor(Sensor):
    """A radar: point clouds → ``(4, rows, cols)`` float32 BEV (occupancy, rcs, vx, vy).

    Options: ``tensor_name`` (default ``radar_bev``), ``radius_m`` (default 1.0),
    ``devkit_filter`` (default False).
    """

    name = "radar"
    modality = Modality.RADAR
    nonfinite = NonFinitePolicy.DROP
    option_specs: ClassVar[Mapping[str, Option]] = {
        "tensor_name": Option("radar_bev", str),
        "radius_m": Option(1.0, float, exclusive_minimum=0),
        "devkit_filter": Option(False, bool),
    }

    def __init__(self, instance: str | None = None, topic: str = "", **options: Any) -> None:
        super().__init__(instance, topic, **options)
        self.tensor_name: str = self.options["tensor_name"]
        self.radius_m: float = self.options["radius_m"]
        self.devkit_filter: bool = self.options["devkit_filter"]

    def decode(self, raw: RawRecord) -> SensorMessage:
        """Decode one radar point record (PointCloud2, PCD or the lidar file formats)."""
        decoded = decode_record(raw, self.instance)
        points = decoded.points
        meta = dict(decoded.meta)
        if self.devkit_filter:
            keep = devkit_valid(points)
            meta["devkit_dropped"] = int(keep.size - np.count_nonzero(keep))
            points = points[keep]
        return SensorMessage(
            sensor=self.instance,
            stamp_ns=raw.stamp_ns if decoded.stamp_ns is None else decoded.stamp_ns,
            payload=points,
            frame_id=decoded.frame_id or self.instance,
            topic=raw.topic,
            meta=meta,
        )

    def tensor_specs(self, context: PreprocessContext) -> list[TensorSpec]:
        """One float32 ``(4, rows, cols)`` tensor over the model's BEV grid."""
        shape = (len(RADAR_BEV_CHANNELS), *context.geometry.bev.shape)
        return [TensorSpec(self.tensor_name, shape, "float32", sensor=self.instance)]

    def preprocess(
        self, message: SensorMessage | None, context: PreprocessContext
    ) -> dict[str, np.ndarray]:
        """Spread the radar points over the model's BEV grid (zeros when missing)."""
        if message is None:
            return {spec.name: spec.zeros() for spec in self.tensor_specs(context)}
        points = require_xyz(message.payload, sensor=self.instance, topic=message.topic)
        xyz = np.stack([points[a].astype(np.float64) for a in ("x", "y", "z")], axis=1)
        velocity = radar_velocity(points, xyz)
        rcs = points["rcs"].astype(np.float64) if "rcs" in (points.dtype.names or ()) else None
        if context.rig is not None:
            transform = context.rig.transform(self.instance, context.rig.frame)
            with np.errstate(invalid="ignore", over="ignore"):
                xyz = transform.apply(xyz)
                velocity = transform.rotate(velocity)
        values = np.stack(
            [
                np.zeros(len(xyz)) if rcs is None else rcs,
                velocity[:, 0],
                velocity[:, 1],
            ]
        )
        raster = splat_radar_bev(xyz[:, 0], xyz[:, 1], values, context.geometry.bev, self.radius_m)
        return {self.tensor_name: raster}

    def sample_records(self) -> list[RawRecord]:
        """A generated radar scan as PointCloud2 and as a nuScenes-layout PCD file."""
        topic = self.topic or f"/{self.instance}/points"
        points = synthetic_radar_points()
        cloud = pointcloud2.encode_pointcloud2(points, self.instance, SAMPLE_STAMP_NS)
        return [
            RawRecord(topic, SAMPLE_STAMP_NS, cloud, MSGTYPE_POINTCLOUD2),
            RawRecord(topic, SAMPLE_STAMP_NS + 72_000_000, write_pcd(points), MSGTYPE_PCD),
        ]

    def default_context(self) -> PreprocessContext:
        """Default geometry and a rig with this radar at the lidar sample mount."""
        return sample_context(self.instance, "radar")


def radar_velocity(points: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """``(N, 3)`` velocity in the sensor frame: ``vx_comp/vy_comp``, else ``vx/vy``, else the
    radial speed along the line of sight, else zeros."""
    names = points.dtype.names or ()
    velocity = np.zeros((len(points), 3))
    for vx, vy in (("vx_comp", "vy_comp"), ("vx", "vy")):
        if vx in names and vy in names:
            velocity[:, 0] = points[vx]
            velocity[:, 1] = points[vy]
            return velocity
    radial = next((name for name in RADIAL_VELOCITY_FIELDS if name in names), None)
    if radial is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            direction = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
        velocity[:] = direction * points[radial].astype(np.float64)[:, None]
    return velocity


def synthetic_radar_points() -> np.ndarray:
    """A deterministic radar scan in :data:`NUSCENES_RADAR_DTYPE` (no random numbers): returns
    on the lidar sample scene's boxes (the first one moving at 5 m/s) and sparse clutter."""
    from fusionrt.plugins.sensors.lidar import SAMPLE_BOXES, SAMPLE_MOUNT  # noqa: PLC0415

    rows = []
    for index, (centre, size) in enumerate(SAMPLE_BOXES):
        for corner in (-0.5, 0.0, 0.5):  # three returns along each box's near face
            x = centre[0] - np.sign(centre[0]) * size[0] / 2
            y = centre[1] + corner * size[1]
            moving = index == 0
            rows.append((x, y, 10.0 + 4 * index, 5.0 if moving else 0.0, 0 if moving else 1))
    for k in range(12):  # clutter on a spiral
        angle = 0.9 * k
        radius = 6.0 + 3.5 * k
        rows.append((radius * np.cos(angle), radius * np.sin(angle), -5.0 + k, 0.0, 1))
    points = np.zeros(len(rows), NUSCENES_RADAR_DTYPE)
    table = np.array(rows)
    points["x"] = table[:, 0] - SAMPLE_MOUNT[0]
    points["y"] = table[:, 1] - SAMPLE_MOUNT[1]
    points["rcs"] = table[:, 2]
    points["vx_comp"] = points["vx"] = table[:, 3]
    points["dyn_prop"] = table[:, 4]
    points["id"] = np.arange(len(rows))
    points["ambig_state"] = 3
    points["is_quality_valid"] = 1
    points["pdh0"] = 1
    points["invalid_state"][::7] = 1  # a few points the devkit filter drops
    return points


@hookimpl
def fusionrt_sensors() -> list[type[Sensor]]:
    """The built-in radar sensor."""
    return [RadarSensor]
