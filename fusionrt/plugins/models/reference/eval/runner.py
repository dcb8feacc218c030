"""Run a network over recorded drives and score it: per condition and per masked modality set.

Each drive is decoded, synchronised and preprocessed once (the runtime's frame assembly);
every *variant* (a set of kept modalities) then builds its own feed from the same sensor
tensors with :meth:`ReferenceModel.make_feed`, runs the engine and is postprocessed, so an
ablation costs one network run per variant, not one replay. Numpy only (the engine decides
what else is imported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from fusionrt.plugins.models.reference.drives import detectable, iter_drive_frames
from fusionrt.plugins.models.reference.model import ReferenceModel
from fusionrt.runtime.evaluation import (
    FrameResult,
    MapReport,
    mean_average_precision,
)
from fusionrt.runtime.messages import Detections
from fusionrt.runtime.safe_yaml import read_yaml

#: The masked-modality ablation of ``fusionrt eval`` (CAN ego motion is always kept): the
#: six variants of the fixed interface, then one sensor lost at a time (what losing it costs).
ABLATION: dict[str, tuple[str, ...]] = {
    "all": ("camera", "lidar", "radar", "text"),
    "camera": ("camera",),
    "lidar": ("lidar",),
    "radar": ("radar",),
    "lidar+camera": ("lidar", "camera"),
    "all-but-text": ("camera", "lidar", "radar"),
    "all-but-camera": ("lidar", "radar", "text"),
    "all-but-lidar": ("camera", "radar", "text"),
    "all-but-radar": ("camera", "lidar", "text"),
}
SENSOR_FAILURE = "sensor_failure"
DEGRADED = "degraded"

Infer = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def drive_condition(drive: Path) -> str:
    """The condition group of a drive from its ``drive.yaml``: ``degraded`` when a sensor is
    degraded (plausible but wrong data), ``sensor_failure`` when it has other failures, else
    its weather/light (``clear``, ``fog``, ``night``, ``rain``)."""
    manifest = Path(drive) / "drive.yaml"
    if not manifest.is_file():
        return "unknown"
    config = (read_yaml(manifest) or {}).get("config", {})
    failures = config.get("failures") or []
    if any(isinstance(f, dict) and f.get("mode") == "degraded" for f in failures):
        return DEGRADED
    if failures:
        return SENSOR_FAILURE
    return str(config.get("condition", "unknown"))


def frame_result(detections: Detections, boxes: np.ndarray, labels: np.ndarray) -> FrameResult:
    """Predictions and (already filtered) ground truth of one frame, for the metrics."""
    return FrameResult(
        pred_xy=detections.boxes[:, :2].astype(np.float64),
        pred_labels=detections.labels,
        pred_scores=detections.scores,
        gt_xy=boxes[:, :2].astype(np.float64),
        gt_labels=labels.astype(np.int64),
    )


def run_drives(
    drives: Sequence[Path],
    infer: Infer,
    variants: Mapping[str, Sequence[str]],
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, list[FrameResult]]]:
    """Frame results per variant and per condition group of ``drives``."""
    models = {name: ReferenceModel(kept) for name, kept in variants.items()}
    results: dict[str, dict[str, list[FrameResult]]] = {name: {} for name in variants}
    for drive in drives:
        group = drive_condition(drive)
        count = 0
        for item in iter_drive_frames(Path(drive), lambda tensors, present: dict(tensors)):
            truth = item.truth
            keep = detectable(truth.boxes, truth.visibility)
            boxes, labels = truth.boxes[keep], truth.labels[keep]
            for name, model in models.items():
                feed = model.make_feed(item.assembled.feed, item.assembled.present)
                detections = model.postprocess(infer(feed), item.assembled.frame.stamp_ns)
                results[name].setdefault(group, []).append(frame_result(detections, boxes, labels))
            count += 1
        if progress is not None:
            progress(f"{drive}: {count} frames ({group})")
    return results


def summarise(
    results: Mapping[str, Mapping[str, list[FrameResult]]],
) -> dict[str, dict[str, MapReport]]:
    """mAP reports per variant: per condition group and ``overall`` (all frames)."""
    reports: dict[str, dict[str, MapReport]] = {}
    for name, groups in results.items():
        reports[name] = {group: mean_average_precision(frames) for group, frames in groups.items()}
        reports[name]["overall"] = mean_average_precision([f for fs in groups.values() for f in fs])
    return reports
