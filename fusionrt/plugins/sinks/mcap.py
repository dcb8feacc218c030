"""``mcap`` sink: one MCAP file a user opens in Foxglove.

The channels are those of :mod:`~fusionrt.plugins.sinks.foxglove_channels` (protobuf-encoded
with the published Foxglove schemas of ``foxglove-sdk``): the rig's transforms and the camera
calibrations once, before the first frame and stamped at or before it; then per frame the
detections and ground truth as scene updates that replace the previous frame's, each lidar and
radar as a point cloud in its own frame, each camera's recorded JPEG as it is with the boxes as
image annotations. Log time = the frame's stamp for every message of a frame (the messages'
own stamps are in them); the static messages' log time is their stamp. When the model explains
its frames (``--explain``, or a gated or attention network's fusion weights), each frame's
explanations go to ``/fusionrt/explanations`` as JSON (``{"timestamp": {"sec", "nsec"},
MEASURE: {MODALITY: value}}``): a Foxglove Plot panel draws
``/fusionrt/explanations.drop_one.lidar`` over the drive.

The messages are written by :class:`~fusionrt.plugins.sinks.mcap_file.McapFile` (the ``mcap``
package's writer, small zstd chunks flushed after every frame): a failed write raises
:class:`~fusionrt.runtime.errors.SinkError` and leaves the file readable up to the failure, a
killed run leaves it readable up to its last chunk (``fusionrt mcap-recover`` indexes it).
Options: ``path`` (default ``OUT/run.mcap``), ``jpeg_quality`` (default 85: only for cameras
recorded raw, encoded once), ``chunk_kib`` (uncompressed chunk size in KiB, default 64: about
one frame of the sample drive, so a killed run loses about one frame).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusionrt.plugins.sinks.foxglove_channels import FoxgloveChannels, earliest_stamp
from fusionrt.plugins.sinks.mcap_file import McapFile
from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import SinkError
from fusionrt.runtime.messages import Detections, Frame

__all__ = ["TOPIC_EXPLANATIONS", "FoxgloveMcapSink"]

TOPIC_EXPLANATIONS = "/fusionrt/explanations"
#: The JSON Schema of the explanations channel (MCAP's ``jsonschema`` schema encoding).
_EXPLANATIONS_SCHEMA = {
    "title": "fusionrt.Explanations",
    "description": "How much each modality contributed to a frame, per measure",
    "type": "object",
    "properties": {
        "timestamp": {
            "type": "object",
            "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
        }
    },
    "additionalProperties": {"type": "object", "additionalProperties": {"type": "number"}},
}


class FoxgloveMcapSink(Sink):
    """Writes a run's Foxglove channels (module docstring) to one MCAP file."""

    name = "mcap"

    def __init__(
        self,
        out_dir: Path = Path("out"),
        *,
        path: str | None = None,
        jpeg_quality: int = 85,
        chunk_kib: int = 64,
    ):
        self.path = Path(path) if path is not None else Path(out_dir) / "run.mcap"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jpeg_quality = int(jpeg_quality)
        self._file: McapFile | None = McapFile(self.path, self.name, int(chunk_kib) * 1024)
        self._layout: FoxgloveChannels | None = None
        self._channel_ids: dict[str, int] = {}
        self._static_written = False

    def start(self, info: Any) -> None:
        """Register the run's channels (from its rig and sensors) and their schemas."""
        if self._file is None:
            raise SinkError("start after close", sink=self.name, file=str(self.path))
        self._layout = FoxgloveChannels(info, self.jpeg_quality)
        schema_ids: dict[str, int] = {}
        for channel in self._layout.channels:
            schema = channel.schema.get_schema()  # type: ignore[attr-defined]
            if schema.name not in schema_ids:
                schema_ids[schema.name] = self._file.add_schema(
                    schema.name, schema.encoding, bytes(schema.data)
                )
            self._channel_ids[channel.topic] = self._file.add_channel(
                channel.topic, schema.encoding, schema_ids[schema.name]
            )
        self._file.flush()

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Log the frame's messages and flush the chunks completed.

        A failed write raises :class:`~fusionrt.runtime.errors.SinkError`.
        """
        if self._file is None:
            raise SinkError("write after close", sink=self.name, file=str(self.path))
        if self._layout is None:
            raise SinkError("write before start", sink=self.name, file=str(self.path))
        if not self._static_written:  # before the first frame, at or before its stamps
            self._static_written = True
            stamp = earliest_stamp(frame)
            for topic, message in self._layout.static_messages(stamp):
                self._file.add_message(self._channel_ids[topic], stamp, message.encode())
        log_time = int(frame.stamp_ns)
        for topic, message in self._layout.frame_messages(frame, detections):
            self._file.add_message(self._channel_ids[topic], log_time, message.encode())
        if detections.explanations:
            self._write_explanations(log_time, detections.explanations)
        self._file.flush()

    def _write_explanations(self, stamp_ns: int, explanations: Mapping[str, Any]) -> None:
        assert self._file is not None
        if TOPIC_EXPLANATIONS not in self._channel_ids:  # registered with the first one
            schema = json.dumps(_EXPLANATIONS_SCHEMA).encode()
            schema_id = self._file.add_schema("fusionrt.Explanations", "jsonschema", schema)
            self._channel_ids[TOPIC_EXPLANATIONS] = self._file.add_channel(
                TOPIC_EXPLANATIONS, "json", schema_id
            )
        sec, nsec = divmod(stamp_ns, 1_000_000_000)
        message = {"timestamp": {"sec": sec, "nsec": nsec}, **explanations}
        self._file.add_message(
            self._channel_ids[TOPIC_EXPLANATIONS], stamp_ns, json.dumps(message).encode()
        )

    def close(self) -> None:
        """Finish the MCAP file (summary, index; after a failed write, readable up to it);
        idempotent. A write that fails here raises SinkError."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
