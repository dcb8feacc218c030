"""Drawing lidar points over a camera image, coloured by depth: the visual calibration check.

Near points are red, far points blue (OpenCV's TURBO colour map); nearer points are drawn on
top of farther ones. A small colour bar with the depth scale goes in the top-right corner.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["depth_colours", "draw_colour_bar", "draw_depth_points"]


def depth_colours(depth: ArrayLike, min_depth: float, max_depth: float) -> np.ndarray:
    """BGR uint8 colours (N×3) of depths: red at ``min_depth``, blue at ``max_depth`` and beyond."""
    d = np.asarray(depth, dtype=np.float64)
    span = max(max_depth - min_depth, 1e-9)
    level = np.clip(1.0 - (d - min_depth) / span, 0.0, 1.0)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0]
    return lut[np.round(level * 255).astype(np.intp)]


def draw_depth_points(
    image: np.ndarray,
    uv: ArrayLike,
    depth: ArrayLike,
    *,
    min_depth: float = 0.0,
    max_depth: float | None = None,
    radius: int = 2,
) -> np.ndarray:
    """A copy of the BGR ``image`` with the points ``uv`` (N×2 px) drawn as filled dots.

    ``max_depth`` defaults to the 98th percentile of ``depth``; far points are drawn first so
    that near ones stay visible.
    """
    out = image.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    pts = np.asarray(uv, dtype=np.float64)
    d = np.asarray(depth, dtype=np.float64)
    if pts.shape[0] == 0:
        return out
    top = float(np.percentile(d, 98)) if max_depth is None else float(max_depth)
    colours = depth_colours(d, min_depth, top)
    order = np.argsort(-d, kind="stable")  # far first, near on top
    ij = np.round(pts[order]).astype(np.int64)
    for (u, v), colour in zip(ij, colours[order], strict=True):
        cv2.circle(out, (int(u), int(v)), radius, tuple(int(c) for c in colour), -1, cv2.LINE_AA)
    return out


def draw_colour_bar(
    image: np.ndarray, min_depth: float, max_depth: float, label: str | None = None
) -> np.ndarray:
    """Draw (in place) a depth colour bar with its scale in the top-right corner; returns image."""
    h, w = image.shape[:2]
    bar_w, bar_h, margin = max(120, w // 6), max(8, h // 60), 8
    x0, y0 = w - bar_w - margin, margin + 14
    depths = np.linspace(min_depth, max_depth, bar_w)
    strip = np.repeat(depth_colours(depths, min_depth, max_depth)[None], bar_h, axis=0)
    cv2.rectangle(image, (x0 - 4, margin - 4), (w - margin + 4, y0 + bar_h + 18), (0, 0, 0), -1)
    image[y0 : y0 + bar_h, x0 : x0 + bar_w] = strip
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    text = label or "depth [m]"
    cv2.putText(image, text, (x0, y0 - 4), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(image, f"{min_depth:g}", (x0, y0 + bar_h + 13), font, scale, (255, 255, 255), 1)
    right = f"{max_depth:.0f}+"
    (tw, _), _ = cv2.getTextSize(right, font, scale, 1)
    cv2.putText(image, right, (x0 + bar_w - tw, y0 + bar_h + 13), font, scale, (255, 255, 255), 1)
    return image
