"""``jsonl`` sink: one JSON object per line and frame.

Each line: ``stamp_ns``, ``seq``, ``detections`` (``label``, ``score``, ``box`` = x, y, z,
length, width, height, yaw in the ego frame, metres / radians, ``velocity`` when predicted),
``latency_ms`` (the frame's per-stage timings), ``missing`` (sensor → reason) and ``inputs_ns``
(sensor → the stamp of the message the frame used: which inputs made it), and
``explanations`` (measure → modality → contribution) when the model gave any. Each line is
written whole as it comes (:class:`~fusionrt.plugins.sinks.files.RecordFile`), so a killed run
leaves a file whose every line parses, and a write that fails (full disk, file-size limit)
raises :class:`~fusionrt.runtime.errors.SinkError` after cutting the torn line off.
Options: ``path`` (default ``OUT/detections.jsonl``), ``decimals`` (default 4).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusionrt.plugins.sinks.files import RecordFile
from fusionrt.runtime.components import Sink
from fusionrt.runtime.messages import Detections, Frame

__all__ = ["JsonLinesSink", "detections_to_dicts"]


def detections_to_dicts(detections: Detections, decimals: int = 4) -> list[dict[str, Any]]:
    """The detections as JSON-ready dicts (rounded, so equal runs give equal text)."""
    names = detections.class_names
    out = []
    for i in range(len(detections)):
        label = int(detections.labels[i])
        item: dict[str, Any] = {
            "label": names[label] if 0 <= label < len(names) else str(label),
            "score": round(float(detections.scores[i]), decimals),
            "box": [round(float(v), decimals) for v in detections.boxes[i]],
        }
        if detections.velocities is not None:
            item["velocity"] = [round(float(v), decimals) for v in detections.velocities[i]]
        out.append(item)
    return out


class JsonLinesSink(Sink):
    """Writes one JSON line per frame (see the module docstring)."""

    name = "jsonl"

    def __init__(self, out_dir: Path = Path("out"), *, path: str | None = None, decimals: int = 4):
        self.path = Path(path) if path is not None else Path(out_dir) / "detections.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.decimals = int(decimals)
        self._file = RecordFile(self.path, self.name)

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Append the frame's line; a failed write raises SinkError, leaving whole lines only."""
        missing = dict(frame.missing)
        for name, message in frame.messages.items():
            if message is None:
                missing.setdefault(name, "missing")
        line = {
            "stamp_ns": int(frame.stamp_ns),
            "seq": int(frame.seq),
            "detections": detections_to_dicts(detections, self.decimals),
            "latency_ms": {k: round(float(v), 3) for k, v in timings_ms.items()},
            "missing": dict(sorted(missing.items())),
            "inputs_ns": {
                name: int(frame.stamp_ns - age) for name, age in sorted(frame.ages_ns.items())
            },
        }
        if detections.explanations:
            line["explanations"] = {
                measure: {m: round(float(v), self.decimals) for m, v in values.items()}
                for measure, values in detections.explanations.items()
            }
        self._file.append((json.dumps(line) + "\n").encode())

    def close(self) -> None:
        """Close the file (idempotent); every line written is whole."""
        self._file.close()
