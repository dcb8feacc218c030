"""ROS calibration: ``sensor_msgs/CameraInfo`` intrinsics and a static ``tf`` tree as a rig.

Messages may be given as ROS 1 / ROS 2 message objects (``rosbags`` dataclasses, rclpy or
rospy messages) or as plain mappings (a YAML dump, ``camera_calibration_parsers`` output).
Both ROS 1 (``K``, ``D``, ``P``, ``R``) and ROS 2 (``k``, ``d``, ``p``, ``r``) field names work.

Distortion models (``CameraInfo.distortion_model``):

* ``plumb_bob`` -> ``plumb_bob`` (k1 k2 p1 p2 k3; a 4-element D gets k3 = 0)
* ``rational_polynomial`` -> ``plumb_bob`` with the 8 coefficients k1 k2 p1 p2 k3 k4 k5 k6
  (OpenCV's rational model; extra trailing zeros, as some drivers publish 14, are dropped)
* ``equidistant`` (and ``fisheye``) -> ``fisheye`` (k1 k2 k3 k4)
* an empty model or D, or all-zero D -> ``pinhole``

``rectified=True`` describes the *rectified* image instead (``image_rect``): ``K`` becomes
``P[:3, :3]`` and there is no distortion (the rotation ``R`` of stereo rectification is not
applied to the extrinsics; for monocular cameras it is the identity).

tf: a ``geometry_msgs/TransformStamped`` with ``header.frame_id = parent`` and
``child_frame_id = child`` is the pose of the child in the parent, i.e. it maps child
coordinates to parent coordinates (REP 105). ROS quaternions are **x, y, z, w**. ROS camera
optical frames (``*_optical_frame``: x right, y down, z forward, REP 103) are fusionrt camera
frames, so use the optical frame (``CameraInfo.header.frame_id``) for cameras.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from fusionrt.calibration.cameras import CameraModel
from fusionrt.calibration.rig import Rig, SensorCalibration
from fusionrt.calibration.transforms import Transform, quat_to_matrix
from fusionrt.runtime.errors import CalibrationError

__all__ = ["TfTree", "camera_model_from_camera_info", "ros_rig"]

_MODELS = {
    "plumb_bob": "plumb_bob",
    "rational_polynomial": "plumb_bob",
    "equidistant": "fisheye",
    "fisheye": "fisheye",
}


def _get(msg: Any, *names: str, default: Any = None) -> Any:
    """Field ``names[0]`` (or an alternative spelling) of a message object or mapping."""
    for name in names:
        if isinstance(msg, Mapping):
            if name in msg:
                return msg[name]
        elif hasattr(msg, name):
            return getattr(msg, name)
    return default


def camera_model_from_camera_info(
    info: Any, rectified: bool = False, name: str | None = None
) -> CameraModel:
    """A :class:`CameraModel` from a ``sensor_msgs/CameraInfo`` (object or mapping)."""
    where = name or _frame_id(info) or "camera_info"
    width = int(_get(info, "width", default=0))
    height = int(_get(info, "height", default=0))
    if width <= 0 or height <= 0:
        raise CalibrationError(
            f"CameraInfo has no image size ({width}×{height})", sensor=where, field="width"
        )
    if rectified:
        p = np.asarray(_get(info, "P", "p", default=()), dtype=np.float64).reshape(-1)
        if p.size != 12:
            raise CalibrationError(
                f"CameraInfo.P needs 12 values, got {p.size}", sensor=where, field="P"
            )
        return _camera(
            p.reshape(3, 4)[:, :3], np.zeros(0), "pinhole", (width, height), where=where, field="P"
        )
    k = np.asarray(_get(info, "K", "k", default=()), dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise CalibrationError(
            f"CameraInfo.K needs 9 values, got {k.size}", sensor=where, field="K"
        )
    d = np.asarray(_get(info, "D", "d", default=()), dtype=np.float64).reshape(-1)
    ros_model = str(_get(info, "distortion_model", default="") or "")
    if d.size == 0 or not np.any(d):
        return _camera(
            k.reshape(3, 3), np.zeros(0), "pinhole", (width, height), where=where, field="K"
        )
    model = _MODELS.get(ros_model)
    if model is None:
        raise CalibrationError(
            f"unsupported distortion_model {ros_model!r}; supported: {', '.join(_MODELS)}",
            sensor=where,
            field="distortion_model",
        )
    if ros_model == "plumb_bob" and d.size == 4:
        d = np.append(d, 0.0)
    elif ros_model == "rational_polynomial" and d.size > 8:
        if np.any(d[8:]):
            raise CalibrationError(
                "rational_polynomial with thin-prism / tilt terms is not supported: "
                f"D = {d.tolist()}",
                sensor=where,
                field="D",
            )
        d = d[:8]
    elif ros_model == "rational_polynomial" and d.size == 5:
        model = "plumb_bob"
    return _camera(k.reshape(3, 3), d, model, (width, height), where=where, field="D")


def _camera(
    k: np.ndarray,
    d: Any,
    model: str,
    size: tuple[int, int],
    *,
    where: str,
    field: str,
) -> CameraModel:
    width, height = size
    try:
        cam = CameraModel(k, d, model, width, height)
    except ValueError as e:
        raise CalibrationError(str(e), sensor=where, field=field) from None
    if cam.fx <= 0 or cam.fy <= 0:
        raise CalibrationError(
            f"K has a negative or zero focal length (fx={cam.fx:g}, fy={cam.fy:g})",
            sensor=where,
            field="K",
        )
    return cam


def _frame_id(msg: Any) -> str | None:
    header = _get(msg, "header")
    frame = _get(header, "frame_id") if header is not None else None
    return str(frame).lstrip("/") if frame else None


class TfTree:
    """A static transform tree built from ``TransformStamped`` messages (objects or mappings).

    ``lookup(target, source)`` returns the transform mapping ``source`` coordinates to
    ``target`` coordinates (tf2's ``lookupTransform(target, source)``).
    """

    def __init__(self, transforms: Iterable[Any] = ()) -> None:
        self._parent: dict[str, tuple[str, Transform]] = {}
        for t in _flatten(transforms):
            self.add(t)

    def add(self, msg: Any) -> None:
        """Add one ``geometry_msgs/TransformStamped``."""
        parent = _frame_id(msg)
        child = str(_get(msg, "child_frame_id", default="") or "").lstrip("/")
        if not parent or not child:
            raise CalibrationError(
                f"tf transform lacks header.frame_id or child_frame_id: {msg!r}", field="tf"
            )
        tf = _get(msg, "transform")
        tr = _get(tf, "translation")
        rot = _get(tf, "rotation")
        if tr is None or rot is None:
            raise CalibrationError(
                f"tf {parent} -> {child} lacks translation or rotation", sensor=child, field="tf"
            )
        xyz = [float(_get(tr, a, default=0.0)) for a in "xyz"]
        q_xyzw = np.array([float(_get(rot, a, default=0.0)) for a in "xyzw"])
        norm = float(np.linalg.norm(q_xyzw))
        if abs(norm - 1.0) > 1e-2:
            raise CalibrationError(
                f"tf {parent} -> {child}: quaternion norm {norm:.6g} is not 1 (x, y, z, w order)",
                sensor=child,
                field="tf.rotation",
            )
        if child in self._parent and self._parent[child][0] != parent:
            raise CalibrationError(
                f"frame {child!r} has two parents: {self._parent[child][0]!r} and {parent!r}",
                sensor=child,
                field="tf",
            )
        self._parent[child] = (parent, Transform(quat_to_matrix(np.roll(q_xyzw, 1)), xyz))

    @property
    def frames(self) -> set[str]:
        return set(self._parent) | {p for p, _ in self._parent.values()}

    def _to_root(self, frame: str) -> tuple[str, Transform]:
        t = Transform.identity()
        seen = {frame}
        while frame in self._parent:
            parent, edge = self._parent[frame]
            t = edge @ t
            frame = parent
            if frame in seen:
                raise CalibrationError(f"tf tree has a cycle through {frame!r}", field="tf")
            seen.add(frame)
        return frame, t

    def lookup(self, target: str, source: str) -> Transform:
        """Transform mapping ``source`` coordinates to ``target`` coordinates."""
        for f in (target, source):
            if f not in self.frames:
                raise CalibrationError(f"frame {f!r} is not in the tf tree", sensor=f, field="tf")
        root_t, target_to_root = self._to_root(target)
        root_s, source_to_root = self._to_root(source)
        if root_t != root_s:
            raise CalibrationError(
                f"frames {source!r} and {target!r} are not connected in the tf tree "
                f"(roots {root_s!r} and {root_t!r})",
                sensor=source,
                field="tf",
            )
        return target_to_root.inverse() @ source_to_root


def _flatten(transforms: Iterable[Any]) -> Iterable[Any]:
    """TransformStamped messages from a list of them or of tf2_msgs/TFMessage."""
    for t in transforms:
        inner = _get(t, "transforms")
        if inner is not None and _get(t, "child_frame_id") is None:
            yield from inner
        else:
            yield t


def ros_rig(
    sensors: Mapping[str, Mapping[str, Any]],
    tf_static: Iterable[Any],
    base_frame: str = "base_link",
    frame: str = "ego",
    rectified: bool = False,
) -> Rig:
    """A rig from ROS calibration.

    ``sensors`` maps rig sensor names to ``{"kind": ..., "frame_id": ..., "camera_info": ...}``
    (``camera_info`` optional; for cameras ``frame_id`` defaults to its ``header.frame_id``,
    ``kind`` defaults to ``camera`` when a ``camera_info`` is given, ``time_offset_ns`` to 0).
    ``tf_static`` is a list of ``TransformStamped`` (or ``TFMessage``s, e.g. the messages of a
    bag's ``/tf_static`` topic). ``base_frame`` is the tf frame that becomes the rig frame
    (named ``frame``); it must be x forward, y left, z up (REP 103 ``base_link``).
    """
    tree = TfTree(tf_static)
    out = []
    for name, spec in sensors.items():
        info = spec.get("camera_info")
        kind = spec.get("kind", "camera" if info is not None else None)
        if not kind:
            raise CalibrationError("sensor needs a 'kind'", sensor=name, field="kind")
        frame_id = spec.get("frame_id") or (_frame_id(info) if info is not None else None)
        if not frame_id:
            raise CalibrationError(
                "sensor needs a 'frame_id' (or a camera_info with header.frame_id)",
                sensor=name,
                field="frame_id",
            )
        try:
            ext = tree.lookup(base_frame, str(frame_id).lstrip("/"))
        except CalibrationError as e:
            raise CalibrationError(
                f"{e.message} (sensor {name!r})", sensor=name, field="tf"
            ) from None
        camera = (
            camera_model_from_camera_info(info, rectified=rectified, name=name)
            if info is not None
            else None
        )
        out.append(
            SensorCalibration(
                name,
                str(kind),
                ext,
                time_offset_ns=int(spec.get("time_offset_ns", 0)),
                camera=camera,
                rotation_format="quaternion_wxyz",
            )
        )
    return Rig(frame, out)
