"""Decision-level fusion of the single-sensor reference models, for ``fusionrt eval``.

The members are the shipped single-sensor variants (``lidar``, ``camera``, ``radar``, each
with CAN) or other ONNX files of the same family; a member whose sensor is missing in a frame
contributes nothing (``None``). Two fusions combine them per frame:
:func:`~fusionrt.plugins.fusers.boxes.weighted_box_fusion` (``wbf``) and
:func:`~fusionrt.plugins.fusers.boxes.probabilistic_fusion` (``probabilistic``).

Both fusers are tuned on the **training** drives, never the held-out ones, by
:func:`calibrate` (``fusionrt train calibrate``): each member runs on the cached training
frames; its :class:`~fusionrt.plugins.fusers.boxes.Calibration` is measured there, and its
WBF weight is its mAP there (a model that is right more often counts more). The result is a
JSON file, shipped as ``variants/decision_calibration.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from fusionrt.plugins.fusers.boxes import probabilistic_fusion, weighted_box_fusion
from fusionrt.plugins.fusers.calibration import CalibrationCounts, DecisionCalibration
from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.eval.runner import (
    EVAL_SCORE_THRESHOLD,
    Fusion,
    Infer,
    Member,
    frame_result,
)
from fusionrt.plugins.models.reference.model import VARIANTS_DIR, ReferenceModel
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.evaluation import mean_average_precision

__all__ = [
    "CALIBRATION_PATH",
    "DecisionCalibration",
    "calibrate",
    "decision_members",
    "fusions",
]

CALIBRATION_PATH = VARIANTS_DIR / "decision_calibration.json"


def member_model(sensor: str, onnx: Path | None = None) -> ReferenceModel:
    """The single-sensor model of ``sensor``: the shipped variant or ``onnx`` (scores kept
    down to the evaluation's threshold)."""
    if onnx is not None:
        return ReferenceModel([sensor], onnx=str(onnx), score_threshold=EVAL_SCORE_THRESHOLD)
    model = ReferenceModel(variant=sensor, score_threshold=EVAL_SCORE_THRESHOLD)
    if not model.artefacts.onnx.is_file():
        raise ConfigError(
            f"no single-sensor {sensor} model is shipped: train one (fusionrt train fit "
            f"--modalities {sensor}), ship it (fusionrt train ship --variant {sensor}) or "
            f"pass --decision-onnx {sensor}=FILE.onnx",
            file=str(model.artefacts.onnx),
        )
    return model


def decision_members(models: Mapping[str, tuple[ReferenceModel, Infer]]) -> list[Member]:
    """One member per sensor model, contributing nothing when its sensor is missing."""
    return [
        Member(f"{sensor}-model", model, infer, requires=(sensor,))
        for sensor, (model, infer) in models.items()
    ]


def fusions(calibration: DecisionCalibration, sensors: Iterable[str]) -> list[Fusion]:
    """The ``wbf`` and ``probabilistic`` fusions of the sensor models' members."""
    sensors = tuple(sensors)
    missing = [s for s in sensors if s not in calibration.calibration]
    if missing:
        raise ConfigError(f"the decision calibration has no model for {missing}")
    weights = [calibration.weights[s] for s in sensors]
    cals = [calibration.calibration[s] for s in sensors]
    names = tuple(f"{s}-model" for s in sensors)
    return [
        Fusion("wbf", names, lambda per_model: weighted_box_fusion(per_model, weights)),
        Fusion("probabilistic", names, lambda per_model: probabilistic_fusion(per_model, cals)),
    ]


def calibrate(
    cache_files: Iterable[Path],
    models: Mapping[str, tuple[ReferenceModel, Infer]],
    progress: Callable[[str], None] | None = None,
) -> DecisionCalibration:
    """Measure each sensor model's calibration and training mAP on cached training drives."""
    from fusionrt.plugins.models.reference.train.data import read_cached_frames  # noqa: PLC0415

    counts = {s: CalibrationCounts(layout.NUM_CLASSES) for s in models}
    results: dict[str, list[Any]] = {s: [] for s in models}
    drives = []
    for file in cache_files:
        drives.append(Path(file).stem)
        for frame in read_cached_frames(Path(file)):
            for sensor, (model, infer) in models.items():
                if not frame.present.get(sensor, False):
                    continue  # a missing sensor's model does not run: nothing to learn
                feed = model.make_feed(frame.tensors, frame.present)
                detections = model.postprocess(infer(feed), frame.stamp_ns)
                counts[sensor].add(detections, frame.boxes[:, :2], frame.labels)
                results[sensor].append(frame_result(detections, frame.boxes, frame.labels))
        if progress is not None:
            progress(f"{file}: calibrated")
    return DecisionCalibration(
        {s: c.calibration() for s, c in counts.items()},
        # floor 0.01: a weight must be > 0, and a model that scored nothing still ran
        {
            s: max(float(mean_average_precision(results[s]).map["overall"] or 0.0), 0.01)
            for s in models
        },
        tuple(drives),
    )
