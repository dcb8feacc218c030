"""Lying stamps in the bundled sample drive, through the pipeline's own front end.

The sample drive (camera, lidar, radar, CAN, text log; examples/drives/sample) is read by the
real rosbag source, decoded by the real sensors and synchronised by the synchroniser that
examples/pipelines/sample.yaml configures (a collector with CAN and the log as latest streams).
One message is made to lie, either after decoding (its stamp) or in its recorded bytes (a
crafted header): the frames must be those of the drive without that message, and the message
reported once as ``implausible_stamp``.
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from fusionrt.runtime.assembly import FrameAssembler
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.front_end import FrontEnd, build_front_end
from fusionrt.runtime.messages import Frame, RawRecord, SensorMessage
from fusionrt.runtime.registry import Registry

REPO = Path(__file__).resolve().parents[3]
SAMPLE_PIPELINE = REPO / "examples" / "pipelines" / "sample.yaml"
SAMPLE_DRIVE = REPO / "examples" / "drives" / "sample"
S = 1_000_000_000
HOUR = 3600 * S
IMPLAUSIBLE = "implausible_stamp"
SENSORS = ("lidar_top", "camera_front", "radar_front", "can", "log")
CDR_SENSORS = ("lidar_top", "camera_front", "radar_front", "can")  # std_msgs/Header first


def front_end() -> FrontEnd:
    config = load_pipeline(SAMPLE_PIPELINE)
    return build_front_end(
        config, SAMPLE_DRIVE, Registry.create(entry_points=False), ground_truth=False
    )


@pytest.fixture(scope="module")
def records() -> list[RawRecord]:
    front = front_end()
    try:
        return [replace(r, data=bytes(r.data)) for r in front.source.records()]
    finally:
        front.source.close()


@pytest.fixture(scope="module")
def messages(records: list[RawRecord]) -> list[SensorMessage]:
    front = front_end()
    front.source.close()
    decoded = [front.assembler.decode(r) for r in records]
    assert all(m is not None for m in decoded)
    return [m for m in decoded if m is not None]


def summary(frames: Sequence[Frame]) -> list[tuple]:
    """Stamp, missing sensors and, per sensor, the message's stamp and payload digest."""

    def digest(message: SensorMessage | None) -> tuple | None:
        if message is None:
            return None
        payload = message.payload.tobytes() if hasattr(message.payload, "tobytes") else b""
        data = payload or repr(message.payload).encode()
        return message.stamp_ns, hashlib.blake2b(data, digest_size=8).hexdigest()

    return [
        (
            f.stamp_ns,
            tuple(sorted(f.missing.items())),
            tuple((name, digest(m)) for name, m in sorted(f.messages.items())),
        )
        for f in frames
    ]


def synchronise(assembler: FrameAssembler, messages: Iterator[SensorMessage]) -> list[Frame]:
    frames = [f for m in messages for f in assembler.synchronise(m)]
    return frames + assembler.synchronizer.flush()


def run_messages(messages: Sequence[SensorMessage]) -> tuple[list[Frame], Counter, int]:
    front = front_end()
    front.source.close()
    frames = synchronise(front.assembler, iter(messages))
    return frames, front.assembler.faults, front.assembler.synchronizer.resets


def run_records(records: Sequence[RawRecord]) -> tuple[list[Frame], Counter, int]:
    front = front_end()
    front.source.close()
    assembler = front.assembler
    decoded = (assembler.decode(r) for r in records)
    frames = synchronise(assembler, (m for m in decoded if m is not None))
    return frames, assembler.faults, assembler.synchronizer.resets


def middle_of(items: Sequence[RawRecord | SensorMessage], sensor: str, front: FrontEnd) -> int:
    topics = {t for b in front.assembler.bindings if b.name == sensor for t in b.topics}
    indices = [
        i
        for i, item in enumerate(items)
        if (item.sensor == sensor if isinstance(item, SensorMessage) else item.topic in topics)
    ]
    return indices[len(indices) // 2]


LIES = {
    "zero": lambda t: 0,
    "negative": lambda t: -t,
    "an hour ahead": lambda t: t + HOUR,
    "before the drive's epoch": lambda t: 42 * S,
}


@pytest.mark.parametrize("sensor", SENSORS)
@pytest.mark.parametrize("kind", list(LIES))
def test_one_lying_message_of_the_sample_drive_costs_that_message_only(
    messages: list[SensorMessage], sensor: str, kind: str
) -> None:
    index = middle_of(messages, sensor, front_end())
    original = messages[index]
    liar = replace(original, stamp_ns=LIES[kind](original.stamp_ns))
    without = messages[:index] + messages[index + 1 :]

    frames, faults, resets = run_messages([*messages[:index], liar, *messages[index + 1 :]])
    clean_frames, clean_faults, _ = run_messages(without)

    assert resets == 0
    assert len(clean_frames) == (198 if sensor == "lidar_top" else 199)  # lidar opens frames
    assert summary(frames) == summary(clean_frames)
    assert faults - clean_faults == Counter({(sensor, IMPLAUSIBLE): 1})
    assert clean_faults - faults == Counter()


def _craft(record: RawRecord, *, sec: int | None = None, nanosec: int | None = None) -> RawRecord:
    """``record`` with its header stamp rewritten in the CDR bytes (little-endian)."""
    data = bytearray(record.data)
    assert data[:2] == b"\x00\x01"  # CDR_LE: the header's stamp is at bytes 4..12
    if sec is not None:
        struct.pack_into("<i", data, 4, sec)
    if nanosec is not None:
        struct.pack_into("<I", data, 8, nanosec)
    return replace(record, data=bytes(data))


@pytest.mark.parametrize("sensor", CDR_SENSORS)
@pytest.mark.parametrize(
    ("crafted", "offset"),
    [({"nanosec": 10**9}, 8), ({"nanosec": 2**32 - 1}, 8), ({"sec": -5}, 4)],
    ids=["nanosec 1e9", "nanosec max", "negative sec"],
)
def test_an_impossible_header_stamp_is_an_implausible_stamp_not_a_decode_error(
    records: list[RawRecord], sensor: str, crafted: dict[str, int], offset: int
) -> None:
    index = middle_of(records, sensor, front_end())
    bad = _craft(records[index], **crafted)

    front = front_end()
    front.source.close()
    reports: list[tuple[str, str, str]] = []
    front.assembler.on_fault = lambda s, _stamp, reason, detail: reports.append((s, reason, detail))
    assert front.assembler.decode(bad) is None
    ((who, reason, detail),) = reports
    assert (who, reason) == (sensor, IMPLAUSIBLE)
    assert f"offset={offset}" in detail and f"topic='{bad.topic}'" in detail

    frames, faults, resets = run_records([*records[:index], bad, *records[index + 1 :]])
    clean_frames, clean_faults, _ = run_records(records[:index] + records[index + 1 :])
    assert resets == 0
    assert summary(frames) == summary(clean_frames)
    assert faults - clean_faults == Counter({(sensor, IMPLAUSIBLE): 1})


def test_a_lidar_header_an_hour_ahead_is_dropped_by_the_synchroniser(
    records: list[RawRecord],
) -> None:
    index = middle_of(records, "lidar_top", front_end())
    sec = struct.unpack_from("<i", records[index].data, 4)[0]
    bad = _craft(records[index], sec=sec + 3600)
    frames, faults, resets = run_records([*records[:index], bad, *records[index + 1 :]])
    clean_frames, clean_faults, _ = run_records(records[:index] + records[index + 1 :])
    assert resets == 0
    assert summary(frames) == summary(clean_frames)
    assert faults - clean_faults == Counter({("lidar_top", IMPLAUSIBLE): 1})


def test_the_sample_drive_looping_resets_once_and_gives_the_same_frames_twice(
    messages: list[SensorMessage],
) -> None:
    front = front_end()
    front.source.close()
    jumps: list[object] = []
    front.assembler.synchronizer.on_timeline_reset = jumps.append
    frames = synchronise(front.assembler, iter(messages + messages))
    assert len(jumps) == 1
    assert len(frames) == 2 * 199
    assert summary(frames[:199]) == summary(frames[199:])
    assert IMPLAUSIBLE not in {reason for _, reason in front.assembler.faults}
