"""Helpers of the replay-source tests: real ROS 2 bags written with rosbags' own writer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from fusionrt.plugins.ros_types import typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
CAN_FRAME = "can_msgs/msg/Frame"


@dataclass(frozen=True)
class Written:
    """One message as the test wrote it (log time = ``stamp_ns``)."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes


def _header(stamp_ns: int, frame_id: str) -> object:
    store = typestore()
    time = store.types["builtin_interfaces/msg/Time"](
        sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000
    )
    return store.types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def pointcloud2(stamp_ns: int, points: np.ndarray) -> bytes:
    """CDR bytes of a PointCloud2 with float32 x, y, z, intensity."""
    store = typestore()
    field = store.types["sensor_msgs/msg/PointField"]
    cloud = np.ascontiguousarray(points, dtype=np.float32)
    msg = store.types[POINTCLOUD2](
        header=_header(stamp_ns, "lidar_top"),
        height=1,
        width=len(cloud),
        fields=[
            field(name=name, offset=4 * i, datatype=7, count=1)  # 7: FLOAT32
            for i, name in enumerate(("x", "y", "z", "intensity"))
        ],
        is_bigendian=False,
        point_step=16,
        row_step=16 * len(cloud),
        data=cloud.view(np.uint8).ravel(),
        is_dense=True,
    )
    return bytes(store.serialize_cdr(msg, POINTCLOUD2))


def compressed_image(stamp_ns: int, width: int = 64, height: int = 48) -> bytes:
    """CDR bytes of a CompressedImage holding a JPEG with a gradient."""
    store = typestore()
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[..., 1] = (stamp_ns // 1_000_000) % 256
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    msg = store.types[COMPRESSED_IMAGE](
        header=_header(stamp_ns, "camera_front"), format="jpeg", data=jpeg.ravel()
    )
    return bytes(store.serialize_cdr(msg, COMPRESSED_IMAGE))


def string(text: str) -> bytes:
    store = typestore()
    return bytes(store.serialize_cdr(store.types[STRING](data=text), STRING))


def can_frame(stamp_ns: int, can_id: int, payload: bytes) -> bytes:
    store = typestore()
    msg = store.types[CAN_FRAME](
        header=_header(stamp_ns, "can0"),
        id=can_id,
        is_rtr=False,
        is_extended=False,
        is_error=False,
        dlc=len(payload),
        data=np.frombuffer(payload.ljust(8, b"\0"), np.uint8),
    )
    return bytes(store.serialize_cdr(msg, CAN_FRAME))


def drive(seconds: float = 1.0, start_ns: int = 1_700_000_000_000_000_000) -> list[Written]:
    """A small multi-sensor drive in stamp order: lidar 10 Hz, camera 20 Hz, CAN 100 Hz, logs."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(round(seconds * 10)):
        t = start_ns + i * 100_000_000
        out.append(Written("/lidar", POINTCLOUD2, t, pointcloud2(t, rng.normal(size=(50, 4)))))
    for i in range(round(seconds * 20)):
        t = start_ns + i * 50_000_000 + 3_000_000
        out.append(Written("/camera/compressed", COMPRESSED_IMAGE, t, compressed_image(t)))
    for i in range(round(seconds * 100)):
        t = start_ns + i * 10_000_000 + 1_000
        payload = int(i).to_bytes(2, "little") + b"\x01\x02"
        out.append(Written("/can", CAN_FRAME, t, can_frame(t, 0x1A0 + i % 3, payload)))
    for i, text in enumerate(["fog advisory", "road works ahead", "system ok"]):
        t = start_ns + 250_000_000 * (i + 1) + 17
        out.append(Written("/log", STRING, t, string(text)))
    return sorted(out, key=lambda w: w.stamp_ns)


def write_bag(
    path: Path,
    messages: Iterable[Written],
    storage: str = "mcap",
    *,
    compression: CompressionMode | None = None,
    definitions: dict[str, str] | None = None,
) -> Path:
    """Write ``messages`` (in the given order) to a rosbag2 at ``path``; returns ``path``.

    ``definitions`` maps msgtypes outside fusionrt's typestore to their ``.msg`` text
    (``""``: write the type without any definition, as an unknown type).
    """
    store = typestore()
    writer = Writer(path, version=9, storage_plugin=STORAGES[storage])
    if compression is not None:
        writer.set_compression(compression, CompressionFormat.ZSTD)
    connections = {}
    with writer:
        for message in messages:
            key = (message.topic, message.msgtype)
            if key not in connections:
                if definitions is not None and message.msgtype in definitions:
                    connections[key] = writer.add_connection(
                        message.topic,
                        message.msgtype,
                        msgdef=definitions[message.msgtype],
                        rihs01="RIHS01_" + "0" * 64,
                    )
                else:
                    connections[key] = writer.add_connection(
                        message.topic, message.msgtype, typestore=store
                    )
            writer.write(connections[key], message.stamp_ns, message.data)
    return path


def storage_file(bag: Path) -> Path:
    """The one storage file of a bag written by :func:`write_bag`."""
    (found,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    return found


def expected_order(messages: Sequence[Written]) -> list[Written]:
    """The order a source must yield: by log time, equal times in write order."""
    return sorted(messages, key=lambda w: w.stamp_ns)  # sorted() is stable
