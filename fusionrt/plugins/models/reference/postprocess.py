"""CenterPoint decoding in numpy: heatmap peaks → boxes in the ego frame.

A peak is a cell that equals the maximum of its 3 × 3 neighbourhood in its class's heatmap
(the max-pool "NMS" of CenterNet: one detection per local maximum, no IoU-based NMS needed)
and scores at least ``score_threshold``; the ``top_k`` best peaks over all classes are decoded
with the regression channels of :data:`~.layout.REGRESSION_CHANNELS`.
"""

from __future__ import annotations

import cv2
import numpy as np

from fusionrt.plugins.models.reference.layout import GEOMETRY, OUT_RESOLUTION, REGRESSION_CHANNELS
from fusionrt.runtime.errors import EngineError
from fusionrt.runtime.messages import CLASS_NAMES, Detections

_CHANNEL = {name: i for i, name in enumerate(REGRESSION_CHANNELS)}


def local_maxima(heatmap: np.ndarray) -> np.ndarray:
    """Boolean mask of the cells equal to the max of their 3 × 3 neighbourhood (per class).

    The 3 × 3 max is OpenCV's dilation, classes as image channels (its default border never
    wins the max): ~50× faster than a numpy sliding-window max on the 3 × 64 × 64 heatmap.
    """
    channels_last = np.ascontiguousarray(heatmap.transpose(1, 2, 0), dtype=np.float32)
    pooled = cv2.dilate(channels_last, np.ones((3, 3), np.uint8))
    return heatmap >= pooled.reshape(channels_last.shape).transpose(2, 0, 1)


def decode(
    heatmap: np.ndarray,
    regression: np.ndarray,
    stamp_ns: int,
    *,
    top_k: int = 100,
    score_threshold: float = 0.05,
) -> Detections:
    """Detections of one frame from the network outputs (classes×H×W and channels×H×W)."""
    if heatmap.ndim != 3 or regression.shape != (len(REGRESSION_CHANNELS), *heatmap.shape[1:]):
        raise EngineError(
            f"reference postprocess: heatmap {heatmap.shape} and regression {regression.shape} "
            f"do not match ({len(CLASS_NAMES)}×H×W and {len(REGRESSION_CHANNELS)}×H×W)"
        )
    peaks = local_maxima(heatmap) & (heatmap >= score_threshold)
    labels, rows, cols = np.nonzero(peaks)
    scores = heatmap[labels, rows, cols]
    order = np.argsort(-scores, kind="stable")[:top_k]
    labels, rows, cols, scores = labels[order], rows[order], cols[order], scores[order]
    r = regression[:, rows, cols]
    x = GEOMETRY.bev.x_range[0] + (rows + r[_CHANNEL["dx"]]) * OUT_RESOLUTION
    y = GEOMETRY.bev.y_range[0] + (cols + r[_CHANNEL["dy"]]) * OUT_RESOLUTION
    sizes = np.exp(np.clip(r[[_CHANNEL["log_l"], _CHANNEL["log_w"], _CHANNEL["log_h"]]], -4, 4))
    yaw = np.arctan2(r[_CHANNEL["sin_yaw"]], r[_CHANNEL["cos_yaw"]])
    boxes = np.stack([x, y, r[_CHANNEL["z"]], *sizes, yaw], axis=1).astype(np.float32)
    velocities = np.stack([r[_CHANNEL["vx"]], r[_CHANNEL["vy"]]], axis=1).astype(np.float32)
    return Detections(
        stamp_ns=stamp_ns,
        boxes=boxes.reshape(-1, 7),
        scores=scores.astype(np.float32),
        labels=labels.astype(np.int64),
        class_names=CLASS_NAMES,
        velocities=velocities.reshape(-1, 2),
    )
