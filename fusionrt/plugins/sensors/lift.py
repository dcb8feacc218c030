"""Camera geometry of the model input: the resize/crop plan and the BEV lift table.

Conventions (those of :mod:`fusionrt.calibration.cameras`): pixel ``(u, v)`` = (column, row),
the centre of the top-left pixel is ``(0, 0)``; the camera frame is x right, y down, z forward;
the BEV grid lies in the rig frame (x forward, y left, z up), row ``i`` at
``x_min + (i + 0.5)·resolution``, column ``j`` at ``y_min + (j + 0.5)·resolution``.

**Resize plan.** A camera's full-size image (the rig's ``width × height``) becomes the model's
``image_size`` by an integer crop followed by a resize (``cv2.resize`` pixel-centre convention,
``u' + 0.5 = (u − x0 + 0.5)·sx``). Mode ``crop`` keeps the aspect ratio: the image is scaled so
that it covers the output and the excess is cropped (``anchor`` ``center`` or ``bottom``, which
keeps the road); mode ``stretch`` scales each axis on its own. The plan gives the pinhole
intrinsics of the output image, so geometry downstream never needs the original size.

**Lift table.** For every BEV cell centre at every lift height, the pixel of the *output* image
(undistorted, resized, cropped) at which that point is seen by each camera, normalised for
``torch.nn.functional.grid_sample(..., align_corners=False)``: ``x = (2u + 1) / W − 1``,
``y = (2v + 1) / H − 1``. Points behind the camera, closer than ``min_depth_m`` or outside the
image get ``valid = 0`` and the coordinates ``(−2, −2)`` (outside ``[−1, 1]``, so ``grid_sample``
with ``padding_mode="zeros"`` reads zeros there even without the mask).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fusionrt.runtime.geometry import BevGrid

if TYPE_CHECKING:
    from fusionrt.calibration.rig import Rig

RESIZE_MODES = ("crop", "stretch")
CROP_ANCHORS = ("center", "bottom")
#: Normalised coordinate written where a cell is not seen by a camera.
INVALID_UV = -2.0


@dataclass(frozen=True, slots=True)
class ImageResizePlan:
    """How a ``source_size`` image becomes an ``output_size`` image (both ``(width, height)``).

    ``crop = (x0, y0, width, height)`` is the window of the source that is kept (integer
    pixels), ``scale = (sx, sy)`` output pixels per source pixel along each axis.
    """

    source_size: tuple[int, int]
    output_size: tuple[int, int]
    crop: tuple[int, int, int, int]
    scale: tuple[float, float]

    def output_intrinsics(self, k: np.ndarray) -> np.ndarray:
        """The 3×3 intrinsics of the output image, given those of the source image."""
        x0, y0 = self.crop[:2]
        sx, sy = self.scale
        out = np.array(k, dtype=np.float64, copy=True)
        out[0, 0] *= sx
        out[0, 1] *= sx
        out[1, 1] *= sy
        out[0, 2] = (k[0, 2] - x0 + 0.5) * sx - 0.5
        out[1, 2] = (k[1, 2] - y0 + 0.5) * sy - 0.5
        return out

    def output_to_source(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source pixel coordinates of output pixel coordinates (inverse of the plan)."""
        x0, y0 = self.crop[:2]
        sx, sy = self.scale
        return (u + 0.5) / sx - 0.5 + x0, (v + 0.5) / sy - 0.5 + y0


def plan_resize(
    source_size: tuple[int, int],
    output_hw: tuple[int, int],
    mode: str = "crop",
    anchor: str = "center",
) -> ImageResizePlan:
    """The crop + resize from ``source_size`` (width, height) to ``output_hw`` (height, width)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if anchor not in CROP_ANCHORS:
        raise ValueError(f"crop anchor must be one of {CROP_ANCHORS}, got {anchor!r}")
    src_w, src_h = int(source_size[0]), int(source_size[1])
    out_h, out_w = int(output_hw[0]), int(output_hw[1])
    if min(src_w, src_h, out_w, out_h) <= 0:
        raise ValueError(f"sizes must be positive: source {source_size}, output {output_hw}")
    if mode == "stretch":
        crop_w, crop_h = src_w, src_h
    else:
        cover = max(out_w / src_w, out_h / src_h)  # scale at which the source covers the output
        crop_w = min(src_w, max(1, round(out_w / cover)))
        crop_h = min(src_h, max(1, round(out_h / cover)))
    x0 = (src_w - crop_w) // 2
    y0 = src_h - crop_h if anchor == "bottom" else (src_h - crop_h) // 2
    return ImageResizePlan(
        source_size=(src_w, src_h),
        output_size=(out_w, out_h),
        crop=(x0, y0, crop_w, crop_h),
        scale=(out_w / crop_w, out_h / crop_h),
    )


def bev_lift_points(bev: BevGrid, heights: Sequence[float]) -> np.ndarray:
    """The 3-D points lifted: ``(Z, rows, cols, 3)`` cell centres at each height, rig frame."""
    xs, ys = bev.cell_centres()
    zs = np.asarray(heights, dtype=np.float64)
    grid = np.empty((zs.size, xs.size, ys.size, 3), dtype=np.float64)
    grid[..., 0] = xs[None, :, None]
    grid[..., 1] = ys[None, None, :]
    grid[..., 2] = zs[:, None, None]
    return grid


def normalise_pixels(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel coordinates to ``grid_sample`` coordinates (``align_corners=False``)."""
    out = np.empty_like(uv, dtype=np.float64)
    out[..., 0] = (2.0 * uv[..., 0] + 1.0) / width - 1.0
    out[..., 1] = (2.0 * uv[..., 1] + 1.0) / height - 1.0
    return out


def camera_lift_table(
    rig: Rig,
    cameras: Sequence[str | None],
    bev: BevGrid,
    heights: Sequence[float],
    *,
    output_intrinsics: Sequence[np.ndarray | None],
    output_hw: tuple[int, int],
    min_depth_m: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Where each BEV cell (at each height) is seen in each camera's output image.

    ``cameras[n]`` is the rig name of batch slot ``n`` (``None``: an empty slot, all invalid)
    and ``output_intrinsics[n]`` the pinhole intrinsics of its output image (an undistorted,
    resized image of ``output_hw``). Projection is the calibration's
    :meth:`~fusionrt.calibration.cameras.CameraModel.project` of a pinhole model with those
    intrinsics, applied to the cell centres moved into the camera frame with
    ``rig.transform(rig.frame, camera)``. Returns ``uv`` ``(N, Z, rows, cols, 2)`` float32 in
    ``[-1, 1]`` where valid (else ``INVALID_UV``) and ``valid`` ``(N, Z, rows, cols)`` float32.
    """
    from fusionrt.calibration.cameras import CameraModel  # noqa: PLC0415  (runtime stays light)

    out_h, out_w = int(output_hw[0]), int(output_hw[1])
    points = bev_lift_points(bev, heights)
    lift_shape = points.shape[:3]
    flat = points.reshape(-1, 3)
    uv_all = np.full((len(cameras), *lift_shape, 2), INVALID_UV, dtype=np.float32)
    valid_all = np.zeros((len(cameras), *lift_shape), dtype=np.float32)
    for slot, (camera, k_out) in enumerate(zip(cameras, output_intrinsics, strict=True)):
        if camera is None or k_out is None:
            continue
        pinhole = CameraModel(
            np.asarray(k_out, dtype=np.float64), np.zeros(0), "pinhole", out_w, out_h
        )
        points_cam = rig.transform(rig.frame, camera).apply(flat)
        uv, depth, valid = pinhole.project(points_cam)
        valid &= depth >= min_depth_m
        normalised = normalise_pixels(uv, out_w, out_h)
        valid &= np.all(np.abs(normalised) <= 1.0, axis=1)
        normalised[~valid] = INVALID_UV
        uv_all[slot] = normalised.reshape(*lift_shape, 2)
        valid_all[slot] = valid.reshape(lift_shape)
    return uv_all, valid_all


__all__ = [
    "CROP_ANCHORS",
    "INVALID_UV",
    "RESIZE_MODES",
    "ImageResizePlan",
    "bev_lift_points",
    "camera_lift_table",
    "normalise_pixels",
    "plan_resize",
]
