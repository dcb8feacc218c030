"""Run networks over recorded drives and score them: per condition, per masked modality set,
per model and per decision-level fusion.

Each drive is decoded, synchronised and preprocessed once (the runtime's frame assembly);
every *member* (a network and a set of kept modalities: the shipped model's ablation
variants, other models, the single-sensor models of a decision-level pipeline) then builds
its own feed from the same sensor tensors with :meth:`ReferenceModel.make_feed`, runs its
engine and is postprocessed, and every *fusion* combines some members' detections; so an
ablation costs one network run per variant, not one replay. Numpy only (the engines decide
what else is imported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
#: Score down to which the evaluation keeps detections: mAP ranks them all, and the operating
#: point (the model's default ``score_threshold``) is chosen among them.
EVAL_SCORE_THRESHOLD = 0.05

Infer = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def drive_condition(drive: Path) -> str:
    """The condition group of a drive from its ``drive.yaml``: ``degraded-SENSOR`` when a
    sensor is degraded (plausible but wrong data; ``degraded-lidar``...), ``sensor_failure``
    when it has other failures, else its weather/light (``clear``, ``fog``, ``night``,
    ``rain``)."""
    manifest = Path(drive) / "drive.yaml"
    if not manifest.is_file():
        return "unknown"
    config = (read_yaml(manifest) or {}).get("config", {})
    failures = config.get("failures") or []
    degraded = [f for f in failures if isinstance(f, dict) and f.get("mode") == "degraded"]
    if degraded:
        return f"{DEGRADED}-{str(degraded[0].get('sensor', '')).split('_')[0]}"
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


@dataclass(frozen=True)
class Member:
    """One network run per frame: ``model`` builds the feed (masking what it does not use)
    and decodes the outputs of ``infer``. A member that ``requires`` a sensor yields ``None``
    (no detections, as in a decision-level pipeline) on a frame without that sensor."""

    name: str
    model: ReferenceModel
    infer: Infer
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fusion:
    """Detections fused from some members' (``None``: the member had nothing this frame)."""

    name: str
    members: tuple[str, ...]
    fuse: Callable[[Sequence[Detections | None]], Detections]


def frame_detections(
    members: Sequence[Member],
    tensors: Mapping[str, np.ndarray],
    present: Mapping[str, bool],
    stamp_ns: int,
) -> dict[str, Detections | None]:
    """Every member's detections of one frame (``None`` where a required sensor is missing)."""
    out: dict[str, Detections | None] = {}
    for member in members:
        if not all(present.get(sensor, False) for sensor in member.requires):
            out[member.name] = None
            continue
        feed = member.model.make_feed(tensors, present)
        out[member.name] = member.model.postprocess(member.infer(feed), stamp_ns)
    return out


def run_drives(
    drives: Sequence[Path],
    members: Sequence[Member],
    fusions: Sequence[Fusion] = (),
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, list[FrameResult]]]:
    """Frame results per member and fusion, per condition group of ``drives``; a member
    with nothing on a frame scores it as no detections."""
    names = [m.name for m in members] + [f.name for f in fusions]
    results: dict[str, dict[str, list[FrameResult]]] = {name: {} for name in names}
    for drive in drives:
        group = drive_condition(drive)
        count = 0
        for item in iter_drive_frames(Path(drive), lambda tensors, present: dict(tensors)):
            truth = item.truth
            keep = detectable(truth.boxes, truth.visibility)
            boxes, labels = truth.boxes[keep], truth.labels[keep]
            stamp = item.assembled.frame.stamp_ns
            found = frame_detections(members, item.assembled.feed, item.assembled.present, stamp)
            for fusion in fusions:
                found[fusion.name] = fusion.fuse([found[m] for m in fusion.members])
            for name, detections in found.items():
                scored = detections if detections is not None else Detections.empty(stamp)
                results[name].setdefault(group, []).append(frame_result(scored, boxes, labels))
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
