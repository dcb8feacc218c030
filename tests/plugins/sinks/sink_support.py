"""Helpers of the sink tests: the sample drive's frames, `fusionrt run` in a subprocess with real
limits, and strict readers of the three output formats.

A module of its own (not ``conftest``) so that test modules import it by a name no other test
folder uses.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from mcap.exceptions import EndOfFile
from mcap.reader import NonSeekingReader

from fusionrt.plugins.sinks.isobmff import whole_end
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_PIPELINE = ROOT / "examples" / "pipelines" / "sample.yaml"
SAMPLE_DRIVE = ROOT / "examples" / "drives" / "sample"
SINK_ERROR = "fusionrt: error: SinkError: "
#: the ``mcap`` sink's channels for the sample pipeline: topic -> Foxglove schema
SAMPLE_MCAP_SCHEMAS = {
    "/fusionrt/transforms": "foxglove.FrameTransforms",
    "/fusionrt/detections": "foxglove.SceneUpdate",
    "/fusionrt/ground_truth": "foxglove.SceneUpdate",
    "/fusionrt/lidar/lidar_top": "foxglove.PointCloud",
    "/fusionrt/radar/radar_front": "foxglove.PointCloud",
    "/fusionrt/camera/camera_front/image": "foxglove.CompressedImage",
    "/fusionrt/camera/camera_front/annotations": "foxglove.ImageAnnotations",
    "/fusionrt/camera/camera_front/calibration": "foxglove.CameraCalibration",
}


# -- frames -------------------------------------------------------------------------------


@dataclass
class Captured:
    """Frames of a real run as a sink receives them, and the run's ``RunInfo``."""

    info: Any = None
    frames: list[tuple[Frame, Detections, dict[str, float]]] = field(default_factory=list)

    name = "capture"

    def start(self, info: Any) -> None:
        self.info = info

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        self.frames.append((frame, detections, dict(timings_ms)))

    def close(self) -> None:
        pass


def capture_sample(out: Path, max_frames: int) -> Captured:
    """The first ``max_frames`` frames of the sample pipeline over the sample drive."""
    captured = Captured()
    options = RunOptions(max_frames=max_frames, out_dir=out)
    Pipeline(
        load_pipeline(SAMPLE_PIPELINE),
        SAMPLE_DRIVE,
        Registry.create(entry_points=False),
        options,
        sinks=[captured],  # type: ignore[list-item]
    ).run()
    return captured


def feed(sink: Any, captured: Captured, frames: int | None = None) -> int:
    """Start ``sink`` (if it has ``start``) and write the captured frames into it; how many."""
    start = getattr(sink, "start", None)
    if start is not None:
        start(captured.info)
    chosen = captured.frames[:frames]
    for frame, detections, timings in chosen:
        sink.write(frame, detections, timings)
    return len(chosen)


# -- fusionrt run in a subprocess ---------------------------------------------------------


def write_sample_pipeline(path: Path, sinks: list[dict[str, Any]]) -> Path:
    """The sample pipeline with ``sinks``, written to ``path`` (its relative paths resolved)."""
    data = yaml.safe_load(SAMPLE_PIPELINE.read_text())
    can = data["sensors"]["can"]["options"]
    can["dbc_paths"] = [str((SAMPLE_PIPELINE.parent / p).resolve()) for p in can["dbc_paths"]]
    data["sinks"] = sinks
    path.write_text(yaml.safe_dump(data))
    return path


def run_command(pipeline: Path, out: Path, *extra: str) -> list[str]:
    """``fusionrt run PIPELINE --source SAMPLE --out OUT EXTRA...`` as a command line."""
    return [
        *[sys.executable, "-m", "fusionrt.runtime.cli", "run", str(pipeline)],
        *["--source", str(SAMPLE_DRIVE), "--out", str(out), *extra],
    ]


def file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child ``RLIMIT_FSIZE``: its writes past it fail with EFBIG
    (CPython ignores SIGXFSZ, so the signal does not kill it)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def run_limited(command: list[str], limit_bytes: int) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with a file-size limit; its completed process (text output)."""
    return subprocess.run(
        command,
        preexec_fn=file_size_limit(limit_bytes),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def sink_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The run's error: exit 1, no traceback, one ``SinkError`` line last on stderr."""
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(SINK_ERROR), done.stderr[-3000:]
    return last


# -- strict readers -----------------------------------------------------------------------


def jsonl_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, each whole: the file ends with a newline, each line parses."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"torn last line: {text[-80:]!r}"
    return [json.loads(line) for line in text.splitlines()]


@cache
def _message_class(name: str, schema: bytes) -> Any:
    files = descriptor_pb2.FileDescriptorSet.FromString(schema)
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def decode_protobuf(name: str, schema: bytes, data: bytes) -> Any:
    """A protobuf message of type ``name`` decoded with its schema (a ``FileDescriptorSet``)."""
    return _message_class(name, bytes(schema)).FromString(data)


def decode(schema: Any, data: bytes) -> Any:
    """A protobuf message of an MCAP schema (``FileDescriptorSet``), decoded strictly."""
    return decode_protobuf(schema.name, bytes(schema.data), data)


def mcap_messages(path: Path, *, torn_tail: bool = False) -> Iterator[tuple[str, Any]]:
    """(topic, decoded message) of every message, read front to back without the index, each
    chunk's CRC checked.

    Without ``torn_tail`` the file must be a complete MCAP (it ends with its footer); with it,
    it may end inside a record (a killed writer's file).
    """
    with path.open("rb") as stream:
        reader = NonSeekingReader(stream, validate_crcs=True)
        try:
            for schema, channel, message in reader.iter_messages(log_time_order=False):
                yield channel.topic, decode(schema, message.data)
        except EndOfFile:
            assert torn_tail, f"{path} ends inside a record"


def check_foxglove_message(topic: str, message: Any) -> None:
    """The message holds what its schema promises: boxes that replace the previous frame's, a
    point cloud of whole points, a JPEG that decodes, line pairs, transforms, a calibration."""
    schema = message.DESCRIPTOR.full_name
    if schema == "foxglove.SceneUpdate":
        assert [d.type for d in message.deletions] == [1]  # ALL: replaces the previous frame
        assert all(len(e.cubes) == 1 and not e.HasField("lifetime") for e in message.entities)
    elif schema == "foxglove.PointCloud":
        assert message.point_stride > 0 and len(message.data) % message.point_stride == 0
    elif schema == "foxglove.CompressedImage":
        assert topic.endswith("/image") and message.format == "jpeg"
        image = cv2.imdecode(np.frombuffer(message.data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.size > 0
    elif schema == "foxglove.ImageAnnotations":
        assert all(len(p.points) % 2 == 0 for p in message.points)  # LINE_LIST: pairs
    elif schema == "foxglove.FrameTransforms":
        assert message.transforms
    else:
        assert schema == "foxglove.CameraCalibration" and message.K[0] > 0, (topic, schema)


def mp4_frames(path: Path) -> int:
    """Frames decoded from an MP4 (each to a full image)."""
    count = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            assert frame.to_ndarray(format="bgr24").ndim == 3
            count += 1
    return count


def ends_with_whole_box(path: Path) -> bool:
    """Whether an MP4 ends at a whole top-level box (no torn fragment)."""
    return whole_end(path) == path.stat().st_size > 0
