"""The run report: a JSON document with fixed keys, and the table printed at the end of a run.

Shape (keys fixed so tools can read it; times in milliseconds)::

    {"frames": 200, "dropped": 0, "backend": "onnxruntime", "realtime_factor": 7.5,
     "stages": {"decode.camera": {"p50_ms": .., "p90_ms": .., "p99_ms": .., "max_ms": ..}, ...},
     "end_to_end": {"p50_ms": .., "p90_ms": .., "p99_ms": .., "max_ms": ..},
     "map": {"overall": .., "car": .., "pedestrian": .., "cyclist": ..},
     "startup_s": .., "peak_rss_mb": .., "dropped_by_reason": {..}, "faults": {sensor: {reason: n}},
     "missing": {sensor: frames}, "interrupted": false, "map_note": "..",
     "signal": null, "error": null, "records": 4021, "messages": {"lidar_top": 199, "...": 0},
     "source_damage": 0,
     "timeline_resets": 0, "stale": {}, "models_without_input": {}, "explanations": {},
     "replay_gaps": 0, "replay_skipped_s": 0.0}

``interrupted`` is true when SIGINT or SIGTERM stopped the run (``signal`` names it);
``error`` is the one-line error of a run that failed, whose report is then partial;
``records`` counts the records of the sensors' topics read from the drive, ``messages`` the
messages each sensor decoded (a source that sent nothing shows as 0); ``source_damage``
counts the source's reports that lost messages of the recording (a damaged file: what was lost
is in ``faults``, the rest was replayed, and ``fusionrt run`` exits 3); ``timeline_resets``
counts the jumps every stream made at once (a bag looping), each logged with its size;
``stale`` how many times each sensor went silent for longer than its expected period × k;
``models_without_input`` (several models) the frames each model sat out because none of its
sensors had a message, or its feed held no usable sensor data (``Model.contributes``): it
contributed nothing to them; ``explanations`` the mean over the frames of each modality's
contribution, per measure (the model's ``explain``: ``fusion_weights`` of a gated or
attention network; ``drop_one`` with ``--explain``);
``replay_gaps`` / ``replay_skipped_s`` the gaps in the recording a real-time replay did not
sleep through (``--max-gap``).

``map`` values are ``null`` when the drive has no ground truth or no evaluator is installed
(``map_note`` says which). ``realtime_factor`` is seconds of drive replayed per second of wall
time.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fusionrt.runtime.messages import CLASS_NAMES
from fusionrt.runtime.pipeline import ROUTINE_SYNC_DROPS, RunResult
from fusionrt.runtime.text_table import format_table

PERCENTILE_KEYS = ("p50_ms", "p90_ms", "p99_ms", "max_ms")
MAP_KEYS = ("overall", *CLASS_NAMES)

#: ``evaluator(detections, ground_truth) -> {"overall": .., "car": .., ...}``
Evaluator = Callable[[Sequence[Any], Sequence[Any]], Mapping[str, float]]


def _row(summary: Mapping[str, float]) -> dict[str, float]:
    return {key: float(summary[key]) for key in PERCENTILE_KEYS}


def build_report(
    result: RunResult, map_values: Mapping[str, float | None] | None = None, map_note: str = ""
) -> dict[str, Any]:
    """The report document of a finished run."""
    summary = result.recorder.summary()
    end_to_end = summary.pop("end_to_end", None)
    empty = dict.fromkeys(PERCENTILE_KEYS, 0.0)
    faults: dict[str, dict[str, int]] = {}
    for (sensor, reason), count in sorted(result.faults.items()):
        faults.setdefault(sensor, {})[reason] = int(count)
    return {
        "frames": result.frames,
        "dropped": int(sum(result.dropped.values())),
        "backend": result.backend,
        "realtime_factor": round(result.drive_s / result.wall_s, 3) if result.wall_s > 0 else 0.0,
        "stages": {stage: _row(row) for stage, row in summary.items()},
        "end_to_end": _row(end_to_end) if end_to_end is not None else empty,
        "map": {key: (None if map_values is None else map_values.get(key)) for key in MAP_KEYS},
        "map_note": map_note,
        "startup_s": None if result.startup_s is None else round(result.startup_s, 3),
        "peak_rss_mb": round(result.peak_rss_mb, 1),
        "drive_s": round(result.drive_s, 3),
        "wall_s": round(result.wall_s, 3),
        "dropped_by_reason": dict(sorted(result.dropped.items())),
        "faults": faults,
        "missing": dict(sorted(result.missing.items())),
        "interrupted": result.interrupted,
        "signal": None if result.signal is None else signal.Signals(result.signal).name,
        "error": result.error,
        "records": result.records,
        "messages": result.messages,
        "source_damage": result.source_damage,
        "timeline_resets": result.timeline_resets,
        "stale": dict(sorted(result.stale.items())),
        "models_without_input": result.models_without_input,
        "explanations": {
            measure: {m: round(v, 4) for m, v in sorted(values.items())}
            for measure, values in sorted(result.explanations.items())
        },
        "replay_gaps": result.replay_gaps,
        "replay_skipped_s": round(result.replay_skipped_s, 3),
    }


def write_report(report: Mapping[str, Any], path: Path) -> None:
    """Write the report as indented JSON (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def format_report(report: Mapping[str, Any], detections_summary: str = "") -> str:
    """The text printed at the end of a run: summary lines and the latency table."""
    lines = []
    if detections_summary:
        lines.append(detections_summary)
    lines.append(
        f"frames {report['frames']}, dropped {report['dropped']}, backend {report['backend']}, "
        f"real-time factor {report['realtime_factor']:.2f}x, start-up "
        f"{report['startup_s'] if report['startup_s'] is not None else '?'} s, peak RSS "
        f"{report['peak_rss_mb']:.0f} MiB"
    )
    values = report["map"]
    if values.get("overall") is None:
        lines.append(f"mAP: n/a ({report.get('map_note') or 'no evaluation'})")
    else:
        per_class = ", ".join(
            f"{k} {values[k]:.3f}" for k in MAP_KEYS[1:] if values.get(k) is not None
        )
        lines.append(f"mAP {values['overall']:.3f} ({per_class})")
    for title, routine in (("faults", False), ("synchroniser drops", True)):
        parts = []
        for sensor, reasons in report["faults"].items():
            kept = [f"{r} {n}" for r, n in reasons.items() if (r in ROUTINE_SYNC_DROPS) == routine]
            if kept:
                parts.append(f"{sensor}: {', '.join(kept)}")
        if parts:
            lines.append(f"{title}: {'; '.join(parts)}")
    if report["missing"]:
        lines.append(
            "frames missing a sensor: "
            + ", ".join(f"{s} {n}" for s, n in report["missing"].items())
        )
    rows = [(stage, row) for stage, row in report["stages"].items()]
    rows.append(("end_to_end", report["end_to_end"]))
    header = ["stage", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    table = [[stage] + [f"{row[key]:.2f}" for key in PERCENTILE_KEYS] for stage, row in rows]
    lines.append(format_table(header, table, numbers_right=True))
    return "\n".join(lines)


def summarise_detections(result: RunResult) -> str:
    """One line: detections per class over the run."""
    names = result.class_names or CLASS_NAMES
    counts = dict.fromkeys(names, 0)
    for label, count in result.detection_counts.items():
        if 0 <= label < len(names):
            counts[names[label]] += count
    total = sum(result.detection_counts.values())
    per_class = ", ".join(f"{name} {count}" for name, count in counts.items())
    per_frame = total / result.frames if result.frames else 0.0
    return f"detections: {total} over {result.frames} frames ({per_frame:.1f}/frame; {per_class})"
