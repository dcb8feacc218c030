"""Camera models: projection of camera-frame points to pixels, and undistortion maps.

Conventions: the camera frame is x right, y down, z forward (OpenCV / ROS optical frame);
pixel ``(u, v)`` has ``u`` along image columns and ``v`` along rows, and the centre of the
top-left pixel is ``(0, 0)`` (OpenCV). ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.

Models (distortion coefficients in OpenCV's order):

* ``pinhole`` — no distortion, ``distortion = []``.
* ``plumb_bob`` — Brown–Conrady radial–tangential, ``[k1, k2, p1, p2, k3]``; also accepts the
  8-coefficient rational model ``[k1, k2, p1, p2, k3, k4, k5, k6]`` (ROS
  ``rational_polynomial``). Same formula as ``cv2.projectPoints``.
* ``fisheye`` — Kannala–Brandt equidistant, ``[k1, k2, k3, k4]`` (ROS ``equidistant``). Same
  formula as ``cv2.fisheye.projectPoints``.

Projection is a vectorised numpy path (tested equal to OpenCV); undistortion maps come from
``cv2.initUndistortRectifyMap`` / ``cv2.fisheye.initUndistortRectifyMap`` and are cached per
camera model instance.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DISTORTION_LENGTHS", "MODELS", "CameraModel"]

#: Accepted distortion vector lengths per model.
DISTORTION_LENGTHS: dict[str, tuple[int, ...]] = {
    "pinhole": (0,),
    "plumb_bob": (5, 8),
    "fisheye": (4,),
}
MODELS: tuple[str, ...] = tuple(DISTORTION_LENGTHS)

#: Points closer than this to the camera plane (z, metres) are never valid projections.
MIN_DEPTH_M = 1e-3


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Intrinsics of one camera: ``K`` (3×3), ``distortion``, ``model``, image ``width``×``height``.

    Instances are immutable (arrays are read-only) and hashable by identity; the undistortion
    maps built by :meth:`undistort_maps` are cached on the instance.
    """

    K: np.ndarray
    distortion: np.ndarray
    model: str
    width: int
    height: int
    _maps: dict[tuple[bytes, int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _radius2: list[float] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        k = np.array(self.K, dtype=np.float64)
        d = np.array(self.distortion, dtype=np.float64).reshape(-1)
        if k.shape != (3, 3):
            raise ValueError(f"K must be 3×3, got shape {k.shape}")
        if self.model not in DISTORTION_LENGTHS:
            raise ValueError(f"unknown camera model {self.model!r}; expected one of {MODELS}")
        if d.size not in DISTORTION_LENGTHS[self.model]:
            raise ValueError(
                f"model {self.model!r} takes {_lengths(self.model)} distortion coefficients, "
                f"got {d.size}"
            )
        k.setflags(write=False)
        d.setflags(write=False)
        object.__setattr__(self, "K", k)
        object.__setattr__(self, "distortion", d)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def __reduce__(self) -> tuple[type[CameraModel], tuple[np.ndarray, np.ndarray, str, int, int]]:
        # The map cache and its lock stay behind (locks cannot be pickled).
        return (CameraModel, (self.K, self.distortion, self.model, self.width, self.height))

    # -- convenience ----------------------------------------------------------------------

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels (OpenCV's order)."""
        return self.width, self.height

    @property
    def is_distorted(self) -> bool:
        """Whether the model has any non-zero distortion coefficient."""
        return bool(np.any(self.distortion != 0.0))

    def resized(self, width: int, height: int) -> CameraModel:
        """The same camera after resizing its images to ``width``×``height`` (K scaled)."""
        sx, sy = width / self.width, height / self.height
        k = self.K.copy()
        k[0] *= sx
        k[1] *= sy
        # Pixel centres: u' + 0.5 = (u + 0.5)·sx, as cv2.resize samples.
        k[0, 2] = (self.K[0, 2] + 0.5) * sx - 0.5
        k[1, 2] = (self.K[1, 2] + 0.5) * sy - 0.5
        return CameraModel(k, self.distortion, self.model, width, height)

    # -- projection -----------------------------------------------------------------------

    def distort_normalized(self, xy: ArrayLike) -> np.ndarray:
        """Apply the distortion model to normalised coordinates ``(x/z, y/z)`` (N×2).

        Returns distorted normalised coordinates (before ``K``); identity for ``pinhole``.
        """
        p = np.asarray(xy, dtype=np.float64)
        d = self.distortion
        if self.model == "pinhole" or d.size == 0:
            return p.copy()
        x, y = p[..., 0], p[..., 1]
        r2 = x * x + y * y
        if self.model == "fisheye":
            r = np.sqrt(r2)
            theta = np.arctan(r)
            t2 = theta * theta
            theta_d = theta * (1.0 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3]))))
            scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
            return np.stack([x * scale, y * scale], axis=-1)
        k1, k2, p1, p2, k3 = d[:5]
        k4, k5, k6 = d[5:8] if d.size == 8 else (0.0, 0.0, 0.0)
        radial = (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xy2 = 2.0 * x * y
        xd = x * radial + p1 * xy2 + p2 * (r2 + 2.0 * x * x)
        yd = y * radial + p1 * (r2 + 2.0 * y * y) + p2 * xy2
        return np.stack([xd, yd], axis=-1)

    def project(self, points_cam: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project camera-frame points (N×3) to pixels.

        Returns ``(uv, depth, valid)``: ``uv`` N×2 float64 pixel coordinates (meaningless where
        not valid, but finite), ``depth`` N float64 (= z, metres along the optical axis) and
        ``valid`` N bool: in front of the camera (``z > 1 mm``), inside the image
        (``0 <= u < width``, ``0 <= v < height``) and, for distorted models, inside the region
        where the distortion polynomial is monotonic (so points far outside the field of view
        cannot fold back into the image).
        """
        p = np.asarray(points_cam, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be N×3, got shape {p.shape}")
        depth = p[:, 2].copy()
        in_front = depth > MIN_DEPTH_M
        safe_z = np.where(in_front, depth, 1.0)
        xy = p[:, :2] / safe_z[:, None]
        valid = in_front & np.all(np.isfinite(xy), axis=1)
        xy = np.where(valid[:, None], xy, 0.0)
        if self.is_distorted:
            valid &= np.sum(xy * xy, axis=1) <= self._max_radius2()
        xy_d = self.distort_normalized(xy)
        k = self.K
        uv = np.empty((p.shape[0], 2), dtype=np.float64)
        uv[:, 0] = k[0, 0] * xy_d[:, 0] + k[0, 1] * xy_d[:, 1] + k[0, 2]
        uv[:, 1] = k[1, 1] * xy_d[:, 1] + k[1, 2]
        valid &= (uv[:, 0] >= 0.0) & (uv[:, 0] < self.width)
        valid &= (uv[:, 1] >= 0.0) & (uv[:, 1] < self.height)
        return uv, depth, valid

    def in_domain(self, points_cam: ArrayLike, min_depth_m: float = MIN_DEPTH_M) -> np.ndarray:
        """N bool: which camera-frame points (N×3) :meth:`project` maps to meaningful pixels,
        inside the image or not: at least ``min_depth_m`` in front of the camera and, for
        distorted models, inside the region where the distortion is monotonic. (Drawing a
        line to a point outside the image needs its pixel; a point beyond that region has
        none.)"""
        p = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        depth = p[:, 2]
        ok = depth >= max(min_depth_m, MIN_DEPTH_M)
        xy = p[:, :2] / np.where(ok, depth, 1.0)[:, None]
        ok &= np.all(np.isfinite(xy), axis=1)
        if self.is_distorted:
            ok &= np.sum(np.where(ok[:, None], xy, 0.0) ** 2, axis=1) <= self._max_radius2()
        return ok

    def undistort_points(self, uv: ArrayLike) -> np.ndarray:
        """Normalised, undistorted coordinates ``(x/z, y/z)`` (N×2) of pixel coordinates (N×2).

        ``cv2.undistortPoints(Iter)`` / ``cv2.fisheye.undistortPoints`` (iterative inverse, run to
        convergence rather than OpenCV's default five iterations).
        """
        pts = np.asarray(uv, dtype=np.float64).reshape(-1, 1, 2)
        if pts.shape[0] == 0:
            return np.zeros((0, 2))
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
        if self.model == "fisheye":
            out = cv2.fisheye.undistortPoints(pts, self.K, self.distortion, criteria=criteria)
        elif self.is_distorted:
            iterate = getattr(cv2, "undistortPointsIter", None)  # OpenCV 4.x
            if iterate is not None:
                out = iterate(pts, self.K, self.distortion, None, None, criteria)
            else:  # OpenCV 5 folded the criteria into undistortPoints
                out = cv2.undistortPoints(pts, self.K, self.distortion, None, None, None, criteria)
        else:
            out = cv2.undistortPoints(pts, self.K, None)
        return np.asarray(out, dtype=np.float64).reshape(-1, 2)

    # -- undistortion ---------------------------------------------------------------------

    def undistort_maps(
        self,
        new_K: ArrayLike | None = None,  # noqa: N803
        size: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Maps for ``cv2.remap`` from this camera's image to an undistorted pinhole image.

        ``new_K`` is the pinhole intrinsics of the output (default: ``K``), ``size`` its
        ``(width, height)`` (default: the camera's). Returns float32 ``(map_x, map_y)`` of shape
        ``(height, width)``: output pixel ``(u, v)`` samples input pixel
        ``(map_x[v, u], map_y[v, u])``. Built once per ``(new_K, size)`` and cached; the same
        (read-only) arrays are returned on later calls.
        """
        k_new = self.K if new_K is None else np.asarray(new_K, dtype=np.float64)
        if k_new.shape != (3, 3):
            raise ValueError(f"new_K must be 3×3, got shape {k_new.shape}")
        w, h = self.size if size is None else (int(size[0]), int(size[1]))
        key = (k_new.tobytes(), w, h)
        with self._lock:
            cached = self._maps.get(key)
            if cached is not None:
                return cached
            eye = np.eye(3)
            if self.model == "fisheye":
                map_x, map_y = cv2.fisheye.initUndistortRectifyMap(
                    self.K, self.distortion, eye, k_new, (w, h), cv2.CV_32FC1
                )
            else:
                dist = self.distortion if self.distortion.size else np.zeros(5)
                map_x, map_y = cv2.initUndistortRectifyMap(
                    self.K, dist, eye, k_new, (w, h), cv2.CV_32FC1
                )
            map_x.setflags(write=False)
            map_y.setflags(write=False)
            self._maps[key] = (map_x, map_y)
            return map_x, map_y

    # -- validity region ------------------------------------------------------------------

    def _max_radius2(self) -> float:
        """Squared normalised radius up to which the distortion is monotonic (cached).

        Beyond it ``r_d(r)`` turns back, and points far outside the field of view would land
        inside the image; :meth:`project` marks them invalid.
        """
        if self._radius2:
            return self._radius2[0]
        # Sample the radial distortion along r and stop where its derivative turns negative.
        r = np.linspace(0.0, 20.0, 20001)[1:]
        rd = np.linalg.norm(self.distort_normalized(np.stack([r, np.zeros_like(r)], -1)), axis=1)
        rd_diag = np.linalg.norm(
            self.distort_normalized(np.stack([r, r], -1) / np.sqrt(2.0)), axis=1
        )
        bad = (np.diff(rd) <= 0.0) | (np.diff(rd_diag) <= 0.0)
        r_max = float(r[np.argmax(bad)]) if np.any(bad) else float(r[-1])
        if self.model == "fisheye" and not np.any(bad):
            r_max = np.inf  # monotonic over the whole front hemisphere
        self._radius2[:] = [r_max * r_max]
        return self._radius2[0]


def _lengths(model: str) -> str:
    return " or ".join(str(n) for n in DISTORTION_LENGTHS[model])
