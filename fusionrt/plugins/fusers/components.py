"""The built-in fusers of a pipeline's ``fuser:``: ``wbf`` and ``probabilistic``.

Thin components over the pure functions of :mod:`.boxes`: they check their options against
the pipeline's models once, at start, and fuse each frame's detections by model instance
name. A model given as ``None`` (its sensors had nothing in the frame) contributes nothing.

.. code-block:: yaml

    models:
      - {name: reference, instance: lidar_model, options: {variant: lidar}}
      - {name: reference, instance: radar_model, options: {variant: radar}}
    fuser:
      name: wbf                   # or probabilistic
      options:
        weights: {lidar_model: 0.8, radar_model: 0.3}   # wbf; default 1 each
        match: centre             # or bev_iou
        threshold: 1.5            # metres (centre) or IoU (bev_iou); default per match
        # probabilistic: calibration: variants/decision_calibration.json
        #                calibration_keys: {lidar_model: lidar, radar_model: radar}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from fusionrt.plugins.fusers.boxes import (
    MATCH_MODES,
    Calibration,
    probabilistic_fusion,
    weighted_box_fusion,
)
from fusionrt.plugins.fusers.calibration import DecisionCalibration
from fusionrt.runtime.components import Fuser
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import Detections
from fusionrt.runtime.options import Option, resolve_options

__all__ = ["ProbabilisticFuser", "WeightedBoxFuser"]

_MATCHING: dict[str, Option] = {
    "match": Option("centre", str, choices=MATCH_MODES),
    "threshold": Option(None, float, nullable=True, exclusive_minimum=0),
}


def _per_model(
    models: Sequence[str], given: Mapping[str, Any] | None, option: str
) -> dict[str, Any]:
    """``given`` keyed by model instance names, every key one of ``models``."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(models))
    if unknown:
        raise ConfigError(
            f"{option} names {unknown}, which are not models of the pipeline ({list(models)})",
            key=option,
        )
    return given


class WeightedBoxFuser(Fuser):
    """Score-weighted box fusion (:func:`~.boxes.weighted_box_fusion`), class-wise in the BEV.

    Options: ``weights`` (per model instance, > 0; default 1), ``match`` (``centre`` or
    ``bev_iou``), ``threshold`` (1.5 m or IoU 0.1 by default).
    """

    name: ClassVar[str] = "wbf"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "weights": Option(None, dict, nullable=True),
        **_MATCHING,
    }

    def __init__(self, models: Sequence[str], **options: Any) -> None:
        self.options = resolve_options(self.option_specs, options, owner="fuser 'wbf'")
        self.models = tuple(models)
        given = _per_model(self.models, self.options["weights"], "weights")
        weights = []
        for model in self.models:
            weight = given.get(model, 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                raise ConfigError(f"the weight of {model!r} must be a number > 0", key="weights")
            weights.append(float(weight))
        self.weights = tuple(weights)

    def fuse(self, detections: Mapping[str, Detections | None], stamp_ns: int) -> Detections:
        """The frame's fused detections (stamped ``stamp_ns``)."""
        return weighted_box_fusion(
            [detections.get(m) for m in self.models],
            self.weights,
            match=self.options["match"],
            threshold=self.options["threshold"],
            stamp_ns=stamp_ns,
        )


class ProbabilisticFuser(Fuser):
    """Calibrated confidences as independent evidence (:func:`~.boxes.probabilistic_fusion`).

    Options: ``calibration`` (a file of ``fusionrt train calibrate``; without one every model's
    score is taken as its probability, with prior 0.5 and no evidence from a miss),
    ``calibration_keys`` (per model instance, its name in that file; default the instance
    name), ``priors`` (per model instance, its existence prior per class, overriding the
    measured one), ``match`` and ``threshold`` as for ``wbf``.
    """

    name: ClassVar[str] = "probabilistic"
    option_specs: ClassVar[Mapping[str, Option]] = {
        "calibration": Option(None, Path, nullable=True),
        "calibration_keys": Option(None, dict, nullable=True),
        "priors": Option(None, dict, nullable=True),
        **_MATCHING,
    }

    def __init__(self, models: Sequence[str], **options: Any) -> None:
        self.options = resolve_options(self.option_specs, options, owner="fuser 'probabilistic'")
        self.models = tuple(models)
        self.calibrations = self._calibrations()
        priors = _per_model(self.models, self.options["priors"], "priors")
        self.priors: list[list[float]] = [
            self._prior(m, priors[m]) if m in priors else [float(p) for p in cal.prior]
            for m, cal in zip(self.models, self.calibrations, strict=True)
        ]

    def _calibrations(self) -> list[Calibration]:
        keys = _per_model(self.models, self.options["calibration_keys"], "calibration_keys")
        path = self.options["calibration"]
        if path is None:
            if keys:
                raise ConfigError("calibration_keys needs a calibration file", key="calibration")
            return [Calibration.identity() for _ in self.models]
        measured = DecisionCalibration.load(Path(path)).calibration
        out = []
        for model in self.models:
            key = str(keys.get(model, model))
            if key not in measured:
                raise ConfigError(
                    f"the calibration has no model {key!r} (for {model!r}); it has "
                    f"{sorted(measured)}: map the pipeline's models with calibration_keys",
                    key="calibration_keys",
                    file=str(path),
                )
            out.append(measured[key])
        return out

    def _prior(self, model: str, value: Any) -> list[float]:
        classes = len(self.calibrations[self.models.index(model)].prior)
        values = value if isinstance(value, list | tuple) else [value] * classes
        if len(values) != classes or not all(
            isinstance(p, int | float) and not isinstance(p, bool) and 0 < p < 1 for p in values
        ):
            raise ConfigError(
                f"the prior of {model!r} must be a probability in (0, 1) or {classes} of them",
                key="priors",
            )
        return [float(p) for p in values]

    def fuse(self, detections: Mapping[str, Detections | None], stamp_ns: int) -> Detections:
        """The frame's fused detections (stamped ``stamp_ns``)."""
        return probabilistic_fusion(
            [detections.get(m) for m in self.models],
            self.calibrations,
            self.priors,
            match=self.options["match"],
            threshold=self.options["threshold"],
            stamp_ns=stamp_ns,
        )


@hookimpl
def fusionrt_fusers() -> list[type[Fuser]]:
    """The built-in fusers."""
    return [WeightedBoxFuser, ProbabilisticFuser]
