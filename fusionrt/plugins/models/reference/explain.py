"""Per-frame explanations: how much each modality contributed to the reference model's output.

Two measures, both per frame and per modality, numpy only:

* :func:`fusion_weight_contributions` — what the fusion layer itself weighted: the mean
  ``fusion_weights`` output (gated and attention networks; camera, lidar, radar) over the
  *occupied* cells, the output cells where the heatmap finds an object (max class score
  ≥ ``threshold``), because the weights of empty road say little about the detections. A
  frame with no occupied cell averages over all cells. A missing sensor's weight is 0.
* :func:`drop_one_attribution` — what the detections lose without each modality: the
  network runs again with one modality masked (as if its sensor were missing), and the
  contribution is the mean drop of the heatmap score at the frame's detected peaks (score
  ≥ ``threshold``). Positive: the modality supported the detections; 0 for a modality that
  was not there (masking it changes nothing); negative: the detections are surer without it.
  It costs one extra inference per present modality.

Both return ``{modality: value}``; the runtime writes them per frame (``--explain``) and
``fusionrt eval --explain-plot`` plots them over a drive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.model import MASKABLE, ReferenceModel
from fusionrt.plugins.models.reference.postprocess import local_maxima

__all__ = ["drop_one_attribution", "fusion_weight_contributions", "peaks"]

Infer = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
#: Score above which a heatmap cell counts as an object (occupied cells, explained peaks).
DEFAULT_THRESHOLD = 0.3


def peaks(heatmap: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, ...]:
    """``(labels, rows, cols)`` of the heatmap's detected peaks (3 × 3 local maxima ≥
    ``threshold``), as the postprocess finds them."""
    return tuple(np.nonzero(local_maxima(heatmap) & (heatmap >= threshold)))


def fusion_weight_contributions(
    outputs: Mapping[str, np.ndarray], threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Mean fusion weight of each sensor modality over the occupied cells (module docstring);
    ``{}`` for a network without ``fusion_weights`` (concat fusion)."""
    weights = outputs.get(layout.FUSION_WEIGHTS)
    if weights is None:
        return {}
    occupied = outputs[layout.HEATMAP].max(axis=0) >= threshold
    if not occupied.any():
        occupied = np.ones_like(occupied)
    return {m: float(weights[i][occupied].mean()) for i, m in enumerate(layout.SENSORS)}


def drop_one_attribution(
    infer: Infer,
    model: ReferenceModel,
    tensors: Mapping[str, np.ndarray],
    present: Mapping[str, bool],
    *,
    outputs: Mapping[str, np.ndarray] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, float]:
    """Mean score drop at the frame's detected peaks when each modality is masked.

    ``outputs`` are the network's outputs on the full frame when the caller has them (the
    frame's own inference); otherwise they are computed. Every maskable modality the model
    uses gets a value: 0.0 when it is absent or there is nothing detected.
    """
    full = outputs if outputs is not None else infer(model.make_feed(tensors, present))
    heatmap = full[layout.HEATMAP]
    labels, rows, cols = peaks(heatmap, threshold)
    scores = heatmap[labels, rows, cols]
    out: dict[str, float] = {}
    for modality in MASKABLE:
        if modality not in model.modalities:
            continue
        if not present.get(modality, False) or scores.size == 0:
            out[modality] = 0.0
            continue
        without = dict(present) | {modality: False}
        masked = infer(model.make_feed(tensors, without))[layout.HEATMAP]
        out[modality] = float(np.mean(scores - masked[labels, rows, cols]))
    return out
