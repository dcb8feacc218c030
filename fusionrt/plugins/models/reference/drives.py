"""Recorded drives with ground truth → assembled model feeds paired with ground-truth boxes.

A *drive* is a directory as ``fusionrt sim`` writes it: ``bag/`` (ROS 2, MCAP) with the
sensor topics and ``/ground_truth/actors``, and ``rig.yaml``. :func:`iter_drive_frames` runs
the drive through the runtime's own :class:`~fusionrt.runtime.assembly.FrameAssembler` (the
same decode → synchronise → preprocess path as the pipeline) and pairs every frame with the
ground-truth actors stamped nearest to it.

Frames are opened at a fixed 10 Hz tick aligned to the ground-truth stamps (which are the lidar
capture times), not by lidar messages, so that a drive whose lidar fails still yields frames
(with the lidar missing) and every ground-truth sweep is evaluated. Numpy only: the evaluation
path on ONNX Runtime imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.models.reference.layout import GEOMETRY
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.camera import CameraSensor
from fusionrt.plugins.sensors.can import CanSensor
from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sensors.radar import RadarSensor
from fusionrt.plugins.sensors.text import TextLogSensor
from fusionrt.plugins.sources.rosbag import RosbagSource, bag_path
from fusionrt.runtime.assembly import AssembledFrame, FrameAssembler, SensorBinding
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.evaluation import GT_TOLERANCE_NS, detection_targets
from fusionrt.runtime.sensor import PreprocessContext
from fusionrt.runtime.sync import Synchronizer
from fusionrt.runtime.sync.latest import LatestSpec

GT_TOPIC = "/ground_truth/actors"
GT_MSGTYPE = "fusionrt_msgs/msg/ActorArray"
FRAME_PERIOD_NS = 100_000_000

#: Sensor instance (rig name) → (plugin class, topic) of a ``fusionrt sim`` drive.
SIM_TOPICS: dict[str, tuple[type, str]] = {
    "camera_front": (CameraSensor, "/sensors/camera_front/image/compressed"),
    "lidar_top": (LidarSensor, "/sensors/lidar_top/points"),
    "radar_front": (RadarSensor, "/sensors/radar_front/points"),
    "can": (CanSensor, "/vehicle/can0"),
    "log": (TextLogSensor, "/vehicle/log"),
}
_SIM_DBC = Path(__file__).resolve().parents[3] / "sim" / "data" / "fusionrt_car.dbc"
#: The simulator's DBC signals mapped to the CAN sensor's ego-vector slots (SI units).
SIM_CAN_SIGNALS: dict[str, dict[str, object]] = {
    "VEHICLE_SPEED.VehicleSpeed": {"slot": "speed_mps", "scale": 1 / 3.6},
    "YAW_RATE.YawRate": {"slot": "yaw_rate_rps", "scale": math.pi / 180},
    "STEERING.SteeringWheelAngle": {"slot": "steering_angle_rad", "scale": math.pi / 180},
}


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Ground-truth actors of one frame (ego frame): N×7 boxes, labels, velocities."""

    stamp_ns: int
    boxes: np.ndarray  # N×7 float32: x, y, z, length, width, height, yaw
    labels: np.ndarray  # N int64 class index
    velocities: np.ndarray  # N×2 float32 vx, vy
    visibility: np.ndarray  # N float32: unoccluded fraction seen from the top lidar (0..1)

    @classmethod
    def empty(cls, stamp_ns: int) -> GroundTruth:
        """No actors."""
        return cls(
            stamp_ns,
            np.zeros((0, 7), np.float32),
            np.zeros(0, np.int64),
            np.zeros((0, 2), np.float32),
            np.zeros(0, np.float32),
        )


@dataclass(slots=True)
class DriveFrame:
    """One assembled frame of a drive and its ground truth."""

    assembled: AssembledFrame
    truth: GroundTruth


def detectable(boxes: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """Boolean mask of the actors that count as targets on the reference model's grid."""
    return detection_targets(boxes, visibility, GEOMETRY.bev)


def read_ground_truth(bag: Path) -> list[GroundTruth]:
    """Every ``/ground_truth/actors`` message of ``bag``, in stamp order."""
    store = typestore()
    truths = []
    source = RosbagSource(bag, topics=[GT_TOPIC])
    try:
        for record in source.records():
            msg: Any = store.deserialize_cdr(bytes(record.data), GT_MSGTYPE)
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            actors = msg.actors
            boxes = np.array(
                [
                    [a.center.x, a.center.y, a.center.z, a.size.x, a.size.y, a.size.z, a.yaw]
                    for a in actors
                ],
                np.float32,
            ).reshape(-1, 7)
            labels = np.array([a.class_id for a in actors], np.int64)
            velocities = np.array([[a.velocity.x, a.velocity.y] for a in actors], np.float32)
            visibility = np.array([a.visibility for a in actors], np.float32)
            truths.append(GroundTruth(stamp, boxes, labels, velocities.reshape(-1, 2), visibility))
    finally:
        source.close()
    truths.sort(key=lambda t: t.stamp_ns)
    return truths


def drive_bag(drive: Path) -> Path:
    """The bag of a drive (``DRIVE/bag``, or ``DRIVE`` itself: a folder the rosbag source
    opens, ``metadata.yaml`` or not), or ``ConfigError``."""
    bag = bag_path(drive)
    if bag is None:
        raise ConfigError(
            f"{drive} is not a recorded drive: no ROS 2 bag in it (bag/ or .mcap/.db3 files)",
            file=str(drive),
        )
    return bag


def make_assembler(
    rig: Rig,
    build_feed: Callable[[Mapping[str, np.ndarray], Mapping[str, bool]], dict[str, np.ndarray]],
    phase_ns: int,
) -> FrameAssembler:
    """The frame assembler of a sim drive: fixed 10 Hz frames at ``phase_ns``, CAN and log
    sampled as their latest value."""
    bindings = []
    for name, (cls, topic) in SIM_TOPICS.items():
        options: dict[str, object] = {}
        if cls is CanSensor:
            options = {"dbc_paths": [str(_SIM_DBC)], "signals": SIM_CAN_SIGNALS}
        bindings.append(SensorBinding(cls(name, topic, **options), (topic,)))
    offsets = {name: rig.sensor(name).time_offset_ns for name in SIM_TOPICS if name in rig}
    sync = Synchronizer.collector(
        ["lidar_top", "camera_front", "radar_front"],
        period_ns=FRAME_PERIOD_NS,
        phase_ns=phase_ns % FRAME_PERIOD_NS,
        tolerance_ns={
            "lidar_top": 20_000_000,
            "camera_front": 50_000_000,
            "radar_front": 50_000_000,
        },
        timeout_ns=300_000_000,
        latest={"can": LatestSpec(max_age_ns=200_000_000), "log": LatestSpec()},
        time_offsets_ns=offsets,
    )
    context = PreprocessContext(geometry=GEOMETRY, rig=rig)
    return FrameAssembler(bindings, sync, build_feed, context)


def iter_drive_frames(
    drive: Path,
    build_feed: Callable[[Mapping[str, np.ndarray], Mapping[str, bool]], dict[str, np.ndarray]],
) -> Iterator[DriveFrame]:
    """The drive's frames with ground truth, in stamp order (frames without truth skipped)."""
    bag = drive_bag(drive)
    truths = read_ground_truth(bag)
    if not truths:
        raise ConfigError(f"{drive} has no {GT_TOPIC} messages: cannot evaluate", file=str(bag))
    stamps = np.array([t.stamp_ns for t in truths], np.int64)
    rig = Rig.load(Path(drive) / "rig.yaml")
    assembler = make_assembler(rig, build_feed, int(stamps[0]))
    topics = [topic for _, topic in SIM_TOPICS.values()]
    source = RosbagSource(bag, topics=topics, rig=rig)

    def paired(assembled: AssembledFrame) -> DriveFrame | None:
        index = int(np.argmin(np.abs(stamps - assembled.frame.stamp_ns)))
        if abs(int(stamps[index]) - assembled.frame.stamp_ns) > GT_TOLERANCE_NS:
            return None
        return DriveFrame(assembled, truths[index])

    try:
        for record in source.records():
            for assembled in assembler.push(record):
                if (item := paired(assembled)) is not None:
                    yield item
        for assembled in assembler.flush():
            if (item := paired(assembled)) is not None:
                yield item
    finally:
        source.close()
