"""The rig: every sensor's extrinsics, intrinsics and time offset, loaded from one YAML file.

A rig has one common frame (``frame``, conventionally ``ego``: x forward, y left, z up) and a
set of named sensors. ``ego_height_m`` declares where that frame's origin is: that many metres
above the road (``0``: on the road, the ISO 8855 vehicle frame a road-level model such as the
reference model assumes; absent: not declared). Each sensor's ``extrinsics`` is the transform
*sensor -> rig frame* (``p_frame = R @ p_sensor + t``). Cameras also carry a
:class:`CameraModel`. The file format is documented in ``docs/calibration.md``;
:meth:`Rig.load` / :meth:`Rig.save` round-trip it exactly (the user's rotation representation
and values are kept).

Validation tolerances:

* quaternions: ``| |q| - 1 | <= 1e-2`` (:data:`QUATERNION_NORM_TOLERANCE`) is accepted and
  normalised; anything further from unit norm is an error.
* rotation matrices: ``max |RᵀR - I| <= 1e-3`` (:data:`ROTATION_MATRIX_TOLERANCE`) and
  ``det R > 0`` are accepted and replaced by the nearest rotation (SVD); otherwise an error.

Every error is a :class:`fusionrt.CalibrationError` naming the sensor and the field.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import ArrayLike

from fusionrt.calibration.cameras import DISTORTION_LENGTHS, MODELS, CameraModel
from fusionrt.calibration.transforms import (
    Transform,
    matrix_to_quat,
    matrix_to_rpy,
    quat_to_matrix,
    rpy_to_matrix,
)
from fusionrt.runtime.errors import CalibrationError, ConfigError, brief
from fusionrt.runtime.safe_yaml import read_yaml

__all__ = [
    "QUATERNION_NORM_TOLERANCE",
    "ROAD_LEVEL_TOLERANCE_M",
    "ROTATION_FORMATS",
    "ROTATION_MATRIX_TOLERANCE",
    "CameraModel",
    "Rig",
    "SensorCalibration",
]

QUATERNION_NORM_TOLERANCE = 1e-2
ROTATION_MATRIX_TOLERANCE = 1e-3
ROTATION_FORMATS: tuple[str, ...] = ("quaternion_wxyz", "quaternion_xyzw", "rpy_deg", "matrix")
#: An ``ego_height_m`` within this of 0 is on the road (a declaration, not a measurement).
ROAD_LEVEL_TOLERANCE_M = 0.05

_TOP_KEYS = ("frame", "ego_height_m", "sensors", "vehicle")
_SENSOR_KEYS = (
    "kind",
    "model",
    "width",
    "height",
    "K",
    "distortion",
    "extrinsics",
    "time_offset_ns",
)
_INTRINSIC_KEYS = ("model", "width", "height", "K", "distortion")
_OPTIONAL_KEYS = frozenset({"model", "distortion", "time_offset_ns"})


class _Invalid(Exception):
    """Internal: a validation failure at ``field`` (turned into a CalibrationError)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# -- sensors ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SensorCalibration:
    """One sensor of the rig.

    ``extrinsics`` maps sensor coordinates to the rig frame; ``time_offset_ns`` is added to
    the sensor's own stamps to put them on the common clock; ``camera`` holds the intrinsics
    of cameras (``None`` otherwise). ``rotation_format`` is how :meth:`to_dict` writes the
    rotation (one of :data:`ROTATION_FORMATS`); a sensor read from a file keeps the values
    exactly as written.
    """

    name: str
    kind: str
    extrinsics: Transform = field(default_factory=Transform.identity)
    time_offset_ns: int = 0
    camera: CameraModel | None = None
    rotation_format: str = "quaternion_wxyz"
    _rotation_values: Any = field(default=None, repr=False)
    _present_keys: frozenset[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rotation_format not in ROTATION_FORMATS:
            raise CalibrationError(
                f"unknown rotation format {self.rotation_format!r}; expected one of "
                f"{', '.join(ROTATION_FORMATS)}",
                sensor=self.name,
                field="extrinsics.rotation",
            )

    @property
    def position(self) -> np.ndarray:
        """The sensor origin in the rig frame (metres)."""
        return np.array(self.extrinsics.translation)

    @property
    def rpy_deg(self) -> np.ndarray:
        """The sensor -> rig rotation as roll, pitch, yaw in degrees."""
        return np.degrees(matrix_to_rpy(self.extrinsics.rotation))

    @classmethod
    def from_dict(
        cls, name: str, d: Mapping[str, Any], source: str | None = None
    ) -> SensorCalibration:
        """Validate one ``sensors.<name>`` entry of a rig file."""
        try:
            return _parse_sensor(name, d)
        except _Invalid as e:
            raise CalibrationError(e.message, sensor=name, field=e.field, file=source) from None

    def to_dict(self) -> dict[str, Any]:
        """The ``sensors.<name>`` entry of the rig file (plain Python types)."""
        present = self._present_keys
        out: dict[str, Any] = {"kind": self.kind}
        cam = self.camera
        if cam is not None:
            if present is None or "model" in present or cam.model != "pinhole":
                out["model"] = cam.model
            out["width"] = cam.width
            out["height"] = cam.height
            out["K"] = [[float(v) for v in row] for row in cam.K]
            if present is None or "distortion" in present or cam.distortion.size:
                out["distortion"] = [float(v) for v in cam.distortion]
        out["extrinsics"] = {
            "translation": [float(v) for v in self.extrinsics.translation],
            "rotation": {self.rotation_format: self._rotation_out()},
        }
        if present is None or "time_offset_ns" in present or self.time_offset_ns != 0:
            out["time_offset_ns"] = int(self.time_offset_ns)
        return out

    def _rotation_out(self) -> Any:
        if self._rotation_values is not None:
            return _plain(self._rotation_values)
        r = self.extrinsics.rotation
        if self.rotation_format == "matrix":
            return _plain(r)
        if self.rotation_format == "rpy_deg":
            return _plain(np.degrees(matrix_to_rpy(r)))
        q = matrix_to_quat(r)
        if self.rotation_format == "quaternion_xyzw":
            q = np.roll(q, -1)
        return _plain(q)


def _plain(a: Any) -> Any:
    """Nested lists of Python floats (YAML-friendly, exact repr round trip)."""
    arr = np.asarray(a, dtype=np.float64)
    return arr.tolist()


# -- parsing helpers ----------------------------------------------------------------------


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Invalid(f"expected a number, got {brief(v)}", where)
    f = float(v)
    if not math.isfinite(f):
        raise _Invalid(f"expected a finite number, got {brief(v)}", where)
    return f


def _vector(v: Any, n: int, where: str) -> np.ndarray:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise _Invalid(f"expected a list of {n} numbers, got {brief(v)}", where)
    return np.array([_number(x, f"{where}[{i}]") for i, x in enumerate(v)], dtype=np.float64)


def _matrix3(v: Any, where: str) -> np.ndarray:
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise _Invalid(f"expected a 3×3 matrix (3 rows of 3 numbers), got {brief(v)}", where)
    return np.stack([_vector(row, 3, f"{where}[{i}]") for i, row in enumerate(v)])


def _positive_int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise _Invalid(f"expected a positive integer, got {brief(v)}", where)
    return int(v)


def _check_keys(d: Any, allowed: Iterable[str], where: str) -> None:
    if not isinstance(d, Mapping):
        raise _Invalid(f"expected a mapping, got {type(d).__name__} {brief(d)}", where)
    allowed = tuple(allowed)
    for key in d:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Invalid(
                f"unknown key {brief(key)}{extra}; allowed: {', '.join(allowed)}",
                f"{where}.{key}" if where else str(key),
            )


def parse_rotation(spec: Any, where: str = "extrinsics.rotation") -> tuple[str, Any, np.ndarray]:
    """Validate a rotation mapping; returns ``(format, values as given, rotation matrix)``."""
    _check_keys(spec, ROTATION_FORMATS, where)
    if len(spec) != 1:
        raise _Invalid(
            f"expected exactly one of {', '.join(ROTATION_FORMATS)}, got {sorted(spec) or 'none'}",
            where,
        )
    ((fmt, values),) = spec.items()
    here = f"{where}.{fmt}"
    if fmt in ("quaternion_wxyz", "quaternion_xyzw"):
        q = _vector(values, 4, here)
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
            raise _Invalid(
                f"quaternion norm is {norm:.6g}, too far from 1 "
                f"(tolerance {QUATERNION_NORM_TOLERANCE:g}; check the order: {fmt})",
                here,
            )
        wxyz = q if fmt == "quaternion_wxyz" else np.roll(q, 1)
        return fmt, q, quat_to_matrix(wxyz / norm)
    if fmt == "rpy_deg":
        rpy = _vector(values, 3, here)
        return fmt, rpy, rpy_to_matrix(np.radians(rpy))
    r = _matrix3(values, here)
    return fmt, r, nearest_rotation(r, here)


def nearest_rotation(r: np.ndarray, where: str = "rotation") -> np.ndarray:
    """The rotation closest to ``r`` if ``r`` is orthonormal within tolerance, else an error."""
    err = float(np.max(np.abs(r.T @ r - np.eye(3))))
    if err > ROTATION_MATRIX_TOLERANCE:
        raise _Invalid(
            f"rotation matrix is not orthonormal: max |RᵀR - I| = {err:.3g} > "
            f"{ROTATION_MATRIX_TOLERANCE:g}",
            where,
        )
    det = float(np.linalg.det(r))
    if det <= 0.0:
        raise _Invalid(
            f"rotation matrix has determinant {det:.6g} (a reflection, not a rotation)", where
        )
    u, _, vt = np.linalg.svd(r)
    return u @ vt


def _parse_camera(d: Mapping[str, Any], kind: str) -> CameraModel | None:
    present = [k for k in _INTRINSIC_KEYS if k in d]
    if not present:
        if kind == "camera":
            raise _Invalid("a camera needs intrinsics: width, height and K", "K")
        return None
    for key in ("width", "height", "K"):
        if key not in d:
            raise _Invalid(f"missing required key {key!r} (intrinsics need width, height, K)", key)
    model = d.get("model", "pinhole")
    if model not in MODELS:
        raise _Invalid(
            f"unknown camera model {brief(model)}; expected one of {', '.join(MODELS)}", "model"
        )
    width = _positive_int(d["width"], "width")
    height = _positive_int(d["height"], "height")
    k = _matrix3(d["K"], "K")
    if k[0, 0] <= 0.0 or k[1, 1] <= 0.0:
        raise _Invalid(
            f"K has a negative or zero focal length (fx={k[0, 0]:g}, fy={k[1, 1]:g})", "K"
        )
    if np.any(k[1:, 0] != 0.0) or k[2, 1] != 0.0 or k[2, 2] != 1.0:
        raise _Invalid(
            f"K must have the form [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}", "K"
        )
    dist_raw = d.get("distortion", [])
    if not isinstance(dist_raw, (list, tuple)):
        raise _Invalid(f"expected a list of numbers, got {brief(dist_raw)}", "distortion")
    dist = np.array(
        [_number(v, f"distortion[{i}]") for i, v in enumerate(dist_raw)], dtype=np.float64
    )
    allowed = DISTORTION_LENGTHS[model]
    if dist.size not in allowed:
        names = {
            "pinhole": "none",
            "plumb_bob": "k1 k2 p1 p2 k3 (or k1 k2 p1 p2 k3 k4 k5 k6)",
            "fisheye": "k1 k2 k3 k4",
        }[model]
        raise _Invalid(
            f"model {model!r} takes {' or '.join(map(str, allowed))} distortion coefficients "
            f"({names}), got {dist.size}",
            "distortion",
        )
    return CameraModel(k, dist, model, width, height)


def _parse_sensor(name: str, d: Any) -> SensorCalibration:
    _check_keys(d, _SENSOR_KEYS, "")
    if "kind" not in d:
        raise _Invalid("missing required key 'kind' (camera, lidar, radar, imu, ...)", "kind")
    kind = d["kind"]
    if not isinstance(kind, str) or not kind:
        raise _Invalid(f"expected a non-empty string, got {brief(kind)}", "kind")
    camera = _parse_camera(d, kind)
    if "extrinsics" not in d:
        raise _Invalid("missing required key 'extrinsics' (translation, rotation)", "extrinsics")
    ext = d["extrinsics"]
    _check_keys(ext, ("translation", "rotation"), "extrinsics")
    for key in ("translation", "rotation"):
        if key not in ext:
            raise _Invalid(f"missing required key {key!r}", f"extrinsics.{key}")
    translation = _vector(ext["translation"], 3, "extrinsics.translation")
    fmt, values, rotation = parse_rotation(ext["rotation"])
    offset = d.get("time_offset_ns", 0)
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise _Invalid(
            f"expected an integer number of nanoseconds, got {brief(offset)}", "time_offset_ns"
        )
    return SensorCalibration(
        name=name,
        kind=kind,
        extrinsics=Transform(rotation, translation),
        time_offset_ns=int(offset),
        camera=camera,
        rotation_format=fmt,
        _rotation_values=values,
        _present_keys=frozenset(k for k in _OPTIONAL_KEYS if k in d),
    )


# -- the rig ------------------------------------------------------------------------------


class Rig:
    """A named set of calibrated sensors around one common frame.

    ``frame`` is the name of the common frame (usually ``ego``), ``sensors`` maps sensor names
    to :class:`SensorCalibration`, ``vehicle_box`` is the optional ``(min xyz, max xyz)`` box
    of the ego body in the rig frame. ``ego_height_m`` is the height of the frame's origin
    above the road (``0``: road level; ``None``: not declared). ``source`` is the file the rig
    came from (for errors).
    """

    def __init__(
        self,
        frame: str,
        sensors: Mapping[str, SensorCalibration] | Iterable[SensorCalibration],
        vehicle_box: tuple[ArrayLike, ArrayLike] | None = None,
        source: str | None = None,
        ego_height_m: float | None = None,
    ) -> None:
        items = dict(sensors) if isinstance(sensors, Mapping) else {s.name: s for s in sensors}
        if not isinstance(frame, str) or not frame:
            raise CalibrationError(
                f"the rig frame must be a non-empty string, got {brief(frame)}",
                field="frame",
                file=source,
            )
        for key, s in items.items():
            if key != s.name:
                raise CalibrationError(
                    f"sensor registered as {key!r} is named {s.name!r}", sensor=key, file=source
                )
            if key == frame:
                raise CalibrationError(
                    f"a sensor may not be named like the rig frame {frame!r}",
                    sensor=key,
                    field="sensors",
                    file=source,
                )
        box: tuple[np.ndarray, np.ndarray] | None = None
        if vehicle_box is not None:
            lo = np.array(vehicle_box[0], dtype=np.float64).reshape(3)
            hi = np.array(vehicle_box[1], dtype=np.float64).reshape(3)
            if not np.all(lo < hi):
                raise CalibrationError(
                    f"vehicle box_min {lo.tolist()} must be below box_max {hi.tolist()} "
                    "on every axis",
                    field="vehicle",
                    file=source,
                )
            lo.setflags(write=False)
            hi.setflags(write=False)
            box = (lo, hi)
        if ego_height_m is not None:
            try:
                ego_height_m = _number(ego_height_m, "ego_height_m")
            except _Invalid as e:
                raise CalibrationError(e.message, field=e.field, file=source) from None
        self.frame: str = frame
        self.sensors: dict[str, SensorCalibration] = items
        self.vehicle_box: tuple[np.ndarray, np.ndarray] | None = box
        self.ego_height_m: float | None = ego_height_m
        self.source: str | None = source
        self._transforms: dict[tuple[str, str], Transform] = {}

    # -- file I/O -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Rig:
        """Read and validate a rig YAML file."""
        p = Path(path)
        try:
            data = read_yaml(p)
        except ConfigError as e:  # unreadable, not UTF-8, not YAML, an alias bomb
            raise CalibrationError(f"rig file: {e.message}", **e.context) from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, d: Any, source: str | None = None) -> Rig:
        """Validate a rig given as a dict (the parsed YAML). ``d`` is not modified."""
        try:
            _check_keys(d, _TOP_KEYS, "")
        except _Invalid as e:
            raise CalibrationError(e.message, field=e.field, file=source) from None
        if "frame" not in d:
            raise CalibrationError(
                "missing required key 'frame' (e.g. frame: ego)", field="frame", file=source
            )
        if "sensors" not in d or not isinstance(d["sensors"], Mapping):
            raise CalibrationError(
                "missing required mapping 'sensors' (sensor name -> calibration)",
                field="sensors",
                file=source,
            )
        sensors: dict[str, SensorCalibration] = {}
        for name, entry in d["sensors"].items():
            if not isinstance(name, str) or not name:
                raise CalibrationError(
                    f"sensor names must be non-empty strings, got {brief(name)}",
                    field="sensors",
                    file=source,
                )
            sensors[name] = SensorCalibration.from_dict(name, entry, source=source)
        box = None
        if "vehicle" in d:
            try:
                v = d["vehicle"]
                _check_keys(v, ("box_min", "box_max"), "vehicle")
                for key in ("box_min", "box_max"):
                    if key not in v:
                        raise _Invalid(f"missing required key {key!r}", f"vehicle.{key}")
                box = (
                    _vector(v["box_min"], 3, "vehicle.box_min"),
                    _vector(v["box_max"], 3, "vehicle.box_max"),
                )
            except _Invalid as e:
                raise CalibrationError(e.message, field=e.field, file=source) from None
        return cls(
            d["frame"], sensors, vehicle_box=box, source=source, ego_height_m=d.get("ego_height_m")
        )

    def to_dict(self) -> dict[str, Any]:
        """The rig file as plain Python types; ``Rig.from_dict(d).to_dict() == d``."""
        out: dict[str, Any] = {"frame": self.frame}
        if self.ego_height_m is not None:
            out["ego_height_m"] = self.ego_height_m
        out["sensors"] = {name: s.to_dict() for name, s in self.sensors.items()}
        if self.vehicle_box is not None:
            out["vehicle"] = {
                "box_min": [float(v) for v in self.vehicle_box[0]],
                "box_max": [float(v) for v in self.vehicle_box[1]],
            }
        return out

    def save(self, path: str | Path, header: str | None = None) -> None:
        """Write the rig as YAML (``Rig.load`` of the file gives back an equal rig).

        ``header`` is written as leading ``#`` comment lines (provenance, for instance).
        """
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)
        if header:
            text = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) + text
        Path(path).write_text(text, encoding="utf-8")

    # -- lookup ---------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self.sensors

    def __repr__(self) -> str:
        return f"Rig(frame={self.frame!r}, sensors={list(self.sensors)})"

    def names(self, kind: str | None = None) -> list[str]:
        """Sensor names in file order, optionally only those of one ``kind``."""
        return [n for n, s in self.sensors.items() if kind is None or s.kind == kind]

    def sensor(self, name: str) -> SensorCalibration:
        """The calibration of sensor ``name``; ``CalibrationError`` naming it if absent."""
        s = self.sensors.get(name)
        if s is None:
            raise CalibrationError(
                f"sensor {name!r} is not in the rig{self._suggest(name)}",
                sensor=name,
                field="sensors",
                file=self.source,
            )
        return s

    def camera(self, name: str) -> CameraModel:
        """The camera model of sensor ``name``; ``CalibrationError`` if it has no intrinsics."""
        s = self.sensor(name)
        if s.camera is None:
            raise CalibrationError(
                f"sensor {name!r} (kind {s.kind!r}) has no camera intrinsics",
                sensor=name,
                field="K",
                file=self.source,
            )
        return s.camera

    def require(
        self, names: Iterable[str], where: str | None = None, kind: str | None = None
    ) -> None:
        """Check that every sensor in ``names`` is in the rig (and is of ``kind`` if given).

        ``where`` says who references them (a pipeline config, a plugin) for the message.
        Raises one ``CalibrationError`` listing every missing sensor.
        """
        wanted = list(names)
        missing = [n for n in wanted if n not in self.sensors]
        origin = f" (referenced by {where})" if where else ""
        if missing:
            hints = "".join(self._suggest(n) for n in missing)
            raise CalibrationError(
                f"sensor{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                f"not in the rig{origin}{hints}",
                sensor=", ".join(missing),
                field="sensors",
                file=self.source,
            )
        if kind is not None:
            wrong = [n for n in wanted if self.sensors[n].kind != kind]
            if wrong:
                kinds = ", ".join(f"{n!r} is {self.sensors[n].kind!r}" for n in wrong)
                raise CalibrationError(
                    f"expected sensors of kind {kind!r}{origin}: {kinds}",
                    sensor=", ".join(wrong),
                    field="kind",
                    file=self.source,
                )

    def _suggest(self, name: str) -> str:
        candidates = [*self.sensors, self.frame]
        lower = {c.lower(): c for c in candidates}
        hint = lower.get(name.lower()) or next(
            iter(difflib.get_close_matches(name, candidates, n=1)), None
        )
        known = ", ".join(self.sensors) or "none"
        return f" (did you mean {hint!r}?; sensors: {known})" if hint else f" (sensors: {known})"

    @property
    def road_level(self) -> bool | None:
        """Whether the rig frame's origin is declared on the road (``None``: not declared)."""
        if self.ego_height_m is None:
            return None
        return abs(self.ego_height_m) <= ROAD_LEVEL_TOLERANCE_M

    def require_road_level(self, where: str) -> bool:
        """For ``where`` (a model) whose geometry assumes the ego frame on the road: a
        ``CalibrationError`` when the rig declares its origin elsewhere; ``True`` when it
        declares it on the road, ``False`` when it does not say (the caller warns)."""
        if self.road_level is False:
            raise CalibrationError(
                f"{where} assumes the ego frame on the road (ISO 8855), but this rig declares "
                f"ego_height_m: {self.ego_height_m:g} (its origin {self.ego_height_m:g} m above "
                "the road): its detections would float that high. Move the frame to the road "
                "(the KITTI and nuScenes importers do) and declare ego_height_m: 0",
                field="ego_height_m",
                file=self.source,
            )
        return self.road_level is True

    # -- geometry -------------------------------------------------------------------------

    def _to_frame(self, name: str) -> Transform:
        if name == self.frame:
            return Transform.identity()
        return self.sensor(name).extrinsics

    def transform(self, src: str, dst: str) -> Transform:
        """The transform mapping points in ``src`` coordinates to ``dst`` coordinates.

        ``src`` and ``dst`` are sensor names or the rig frame's name. Cached per pair.
        """
        key = (src, dst)
        t = self._transforms.get(key)
        if t is None:
            t = self._to_frame(dst).inverse() @ self._to_frame(src)
            self._transforms[key] = t
        return t

    def project(
        self, points: ArrayLike, src: str, camera: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project points (N×3, in ``src`` coordinates) into camera ``camera``.

        Returns ``(uv, depth, valid)``: N×2 float64 pixels, N float64 depth along the optical
        axis (metres), N bool (in front of the camera and inside the image); see
        :meth:`CameraModel.project`.
        """
        model = self.camera(camera)
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be N×3, got shape {p.shape}")
        return model.project(self.transform(src, camera).apply(p))

    def undistort_maps(
        self,
        camera: str,
        new_K: ArrayLike | None = None,  # noqa: N803
        size: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``cv2.remap`` maps undistorting ``camera``'s images (cached; see CameraModel)."""
        return self.camera(camera).undistort_maps(new_K=new_K, size=size)
