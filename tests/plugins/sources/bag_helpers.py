"""Helpers of the replay-source tests: real ROS 2 bags written with rosbags' own writer."""

from __future__ import annotations

import shutil
import sqlite3
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from mcap.data_stream import ReadDataStream
from mcap.reader import SeekingReader
from mcap.records import Chunk, ChunkIndex, Message
from mcap.stream_reader import breakup_chunk
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

from fusionrt import RawRecord
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
    definitions: dict[str, str | None] | None = None,
) -> Path:
    """Write ``messages`` (in the given order) to a rosbag2 at ``path``; returns ``path``.

    ``definitions`` maps msgtypes outside fusionrt's typestore to their ``.msg`` text
    (``""``: a message without fields; ``None``: the type is unknown, stored as rosbag2
    stores a type whose definition it cannot find, with the encoding ``unknown``).
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
                        msgdef=definitions[message.msgtype] or "",
                        rihs01="RIHS01_" + "0" * 64,
                    )
                else:
                    connections[key] = writer.add_connection(
                        message.topic, message.msgtype, typestore=store
                    )
            writer.write(connections[key], message.stamp_ns, message.data)
    for msgtype in [t for t, text in (definitions or {}).items() if text is None]:
        _mark_unknown(storage_file(path), msgtype)
    return path


def _mark_unknown(file: Path, msgtype: str) -> None:
    """Store ``msgtype``'s (empty) definition with the encoding ``unknown``, as rosbag2 does
    when it finds no definition (rosbags' writer always writes ``ros2msg``)."""
    if file.suffix == ".db3":
        with closing(sqlite3.connect(file)) as db, db:
            db.execute(
                "UPDATE message_definitions SET encoding = 'unknown' WHERE topic_type = ?",
                (msgtype,),
            )
        return
    # the MCAP schema record: name and encoding as (u32 length, bytes); same-length swap
    name = msgtype.encode()
    schema = struct.pack("<I", len(name)) + name + struct.pack("<I", 7)
    data = file.read_bytes()
    assert data.count(schema + b"ros2msg") >= 1, "uncompressed schema records expected"
    file.write_bytes(data.replace(schema + b"ros2msg", schema + b"unknown"))


def storage_file(bag: Path) -> Path:
    """The one storage file of a bag written by :func:`write_bag`."""
    (found,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    return found


def expected_order(messages: Sequence[Written]) -> list[Written]:
    """The order a source must yield: by log time, equal times in write order."""
    return sorted(messages, key=lambda w: w.stamp_ns)  # sorted() is stable


# -- the bundled sample drive and MCAP internals, for the damage tests ---------------------------

#: The sample drive's bag: written by ``fusionrt sim`` (MCAP, zstd chunks of ~1 MiB, no CRCs).
SAMPLE_BAG = Path(__file__).resolve().parents[3] / "examples" / "drives" / "sample" / "bag"

#: A message as the tests compare them: topic, log time, bytes.
Key = tuple[str, int, bytes]


def copy_bag(bag: Path, target: Path) -> Path:
    """A copy of the bag directory ``bag`` at ``target``; returns its storage file."""
    shutil.copytree(bag, target)
    return storage_file(target)


def chunk_indexes(file: Path) -> list[ChunkIndex]:
    """The chunk index of an intact MCAP file, as the mcap library reads it."""
    with file.open("rb") as f:
        summary = SeekingReader(f).get_summary()
    assert summary is not None
    return list(summary.chunk_indexes)


def mcap_messages(file: Path, chunk: ChunkIndex | None = None) -> Counter[Key]:
    """Every message of an intact MCAP file (or of one chunk), read with the mcap library."""
    with file.open("rb") as f:
        summary = SeekingReader(f).get_summary()
        assert summary is not None
        topics = {c.id: c.topic for c in summary.channels.values()}
        chunks = summary.chunk_indexes if chunk is None else [chunk]
        out: Counter[Key] = Counter()
        for index in chunks:
            f.seek(index.chunk_start_offset + 9)  # after the opcode and the record length
            for record in breakup_chunk(Chunk.read(ReadDataStream(f))):
                if isinstance(record, Message):
                    out[(topics[record.channel_id], record.log_time, record.data)] += 1
    return out


def chunk_data_offset(chunk: ChunkIndex) -> int:
    """Where a chunk's compressed records start (MCAP spec: the Chunk record's fields)."""
    return chunk.chunk_start_offset + 9 + 8 + 8 + 8 + 4 + 4 + len(chunk.compression) + 8


def keys(records: Iterable[RawRecord]) -> Counter[Key]:
    """The records as a multiset of :data:`Key` s."""
    return Counter((r.topic, r.stamp_ns, bytes(r.data)) for r in records)
