"""Look at a recorded drive: a camera frame with ground-truth boxes, and a bird's-eye view of a
lidar sweep with the ground-truth boxes, both drawn with OpenCV.

    python -m fusionrt.sim.preview DRIVE_DIR --time 5.0 --out preview/

writes ``camera.png`` (the image nearest the time, GT boxes projected through the rig) and
``bev.png`` (the lidar sweep nearest the time in the ego frame, coloured by height, with the GT
boxes, the radar detections and the ego box) and ``image.png`` (the frame as recorded).
``python -m fusionrt.sim.preview --docs --out docs/images --time 8`` writes the images of
``docs/sim.md``.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rosbags.rosbag2 import Reader

from fusionrt.calibration import Rig
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.pointcloud2 import decode_pointcloud2
from fusionrt.sim.recorder import (
    BAG_DIR,
    RIG_FILE,
    TOPIC_ACTORS,
    TOPIC_CAMERA,
    TOPIC_LIDAR,
    TOPIC_RADAR,
)
from fusionrt.sim.rig import CAMERA, LIDAR, RADAR
from fusionrt.sim.world import DRIVE_EPOCH_NS

__all__ = ["CLASS_COLOURS", "GroundTruth", "bev_image", "camera_overlay", "read_ground_truth"]

#: BGR colour per ground-truth class id (car, pedestrian, cyclist).
CLASS_COLOURS = ((255, 160, 40), (60, 60, 255), (40, 220, 60))


@dataclass(frozen=True)
class GroundTruth:
    """The ground truth at one stamp (common clock), ego frame."""

    stamp_ns: int
    track_id: np.ndarray
    class_id: np.ndarray
    center: np.ndarray  # (N, 3)
    size: np.ndarray  # (N, 3)
    yaw: np.ndarray
    velocity: np.ndarray  # (N, 3)
    visibility: np.ndarray
    num_lidar_points: np.ndarray

    def corners(self) -> np.ndarray:
        """``(N, 8, 3)`` box corners (x∈{+,-} major, then y, then z∈{-,+})."""
        signs = np.array([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (-1, 1)])
        local = signs[None] * (0.5 * self.size)[:, None, :]
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x = c * local[..., 0] - s * local[..., 1]
        y = s * local[..., 0] + c * local[..., 1]
        return np.stack([x, y, local[..., 2]], axis=-1) + self.center[:, None, :]


def ground_truth_from_msg(msg: Any) -> GroundTruth:
    """A :class:`GroundTruth` from a deserialized ``fusionrt_msgs/msg/ActorArray``."""
    a = msg.actors

    def vec(items: list[Any], name: str) -> np.ndarray:
        return np.array(
            [[getattr(x, name).x, getattr(x, name).y, getattr(x, name).z] for x in items]
        ).reshape(-1, 3)

    return GroundTruth(
        stamp_ns=msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
        track_id=np.array([x.track_id for x in a], dtype=np.int64),
        class_id=np.array([x.class_id for x in a], dtype=np.int64),
        center=vec(a, "center"),
        size=vec(a, "size"),
        yaw=np.array([x.yaw for x in a], dtype=np.float64),
        velocity=vec(a, "velocity"),
        visibility=np.array([x.visibility for x in a], dtype=np.float64),
        num_lidar_points=np.array([x.num_lidar_points for x in a], dtype=np.int64),
    )


def read_ground_truth(bag: Path) -> Iterator[GroundTruth]:
    """Every ground-truth message of a drive's bag, in log order."""
    store = typestore()
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == TOPIC_ACTORS]
        for conn, _, raw in reader.messages(connections=conns):
            yield ground_truth_from_msg(store.deserialize_cdr(raw, conn.msgtype))


def _nearest(bag: Path, topic: str, t_ns: int) -> tuple[bytes, int]:
    """Raw bytes and log time of the message of ``topic`` logged nearest ``t_ns``."""
    best: tuple[int, bytes, int] | None = None
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        for _, log_ns, raw in reader.messages(connections=conns):
            d = abs(log_ns - t_ns)
            if best is None or d < best[0]:
                best = (d, bytes(raw), log_ns)
    if best is None:
        raise LookupError(f"no message on {topic} in {bag}")
    return best[1], best[2]


def bev_image(
    points_ego: np.ndarray,
    gt: GroundTruth | None,
    *,
    radar_ego: np.ndarray | None = None,
    vehicle_box: tuple[np.ndarray, np.ndarray] | None = None,
    extent_m: float = 50.0,
    size_px: int = 800,
) -> np.ndarray:
    """A bird's-eye view (x forward = up, y left = left) of ego-frame points and boxes."""
    img = np.full((size_px, size_px, 3), 18, np.uint8)
    scale = size_px / (2.0 * extent_m)

    def px(xy: np.ndarray) -> np.ndarray:
        u = size_px / 2.0 - xy[..., 1] * scale
        v = size_px / 2.0 - xy[..., 0] * scale
        return np.stack([u, v], axis=-1)

    for r in range(10, int(extent_m) + 1, 10):  # range rings
        cv2.circle(img, (size_px // 2, size_px // 2), int(r * scale), (50, 50, 50), 1, cv2.LINE_AA)
    if points_ego.size:
        z = np.clip((points_ego[:, 2] + 0.3) / 2.8, 0.0, 1.0)
        colours = cv2.applyColorMap((z * 255).astype(np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0]
        uv = np.round(px(points_ego[:, :2])).astype(int)
        for du, dv in ((0, 0), (1, 0), (0, 1), (1, 1)):  # 2×2-pixel dots
            u, v = uv[:, 0] + du, uv[:, 1] + dv
            ok = (u >= 0) & (u < size_px) & (v >= 0) & (v < size_px)
            img[v[ok], u[ok]] = colours[ok]
    if gt is not None and len(gt.track_id):
        for corners, cls, vel in zip(gt.corners(), gt.class_id, gt.velocity, strict=True):
            poly = np.round(px(corners[[0, 2, 6, 4], :2]) * 16).astype(np.int32)
            colour = CLASS_COLOURS[int(cls)]
            cv2.polylines(img, [poly], True, colour, 2, cv2.LINE_AA, 4)
            c = corners.mean(axis=0)
            a, b = px(c[:2]), px(c[:2] + vel[:2] * 0.5)  # 0.5 s of motion
            cv2.line(img, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), colour, 1)
    if radar_ego is not None and radar_ego.size:
        for p in px(radar_ego[:, :2]):
            cv2.drawMarker(
                img, tuple(np.round(p).astype(int)), (255, 255, 255), cv2.MARKER_CROSS, 9, 1
            )
    if vehicle_box is not None:
        lo, hi = vehicle_box
        poly = px(np.array([[hi[0], hi[1]], [hi[0], lo[1]], [lo[0], lo[1]], [lo[0], hi[1]]]))
        cv2.polylines(
            img, [np.round(poly * 16).astype(np.int32)], True, (230, 230, 230), 1, cv2.LINE_AA, 4
        )
    return img


def camera_overlay(image: np.ndarray, gt: GroundTruth, rig: Rig, camera: str) -> np.ndarray:
    """``image`` with the ground-truth boxes projected through the rig (12 edges each)."""
    out = image.copy()
    edges = (
        (0, 1),
        (2, 3),
        (4, 5),
        (6, 7),
        (0, 2),
        (1, 3),
        (4, 6),
        (5, 7),
        (0, 4),
        (1, 5),
        (2, 6),
        (3, 7),
    )
    for corners, cls in zip(gt.corners(), gt.class_id, strict=True):
        # Subdivide the edges so lens distortion bends them as it bends the image.
        t = np.linspace(0.0, 1.0, 9)[:, None]
        for a, b in edges:
            seg = corners[a] * (1 - t) + corners[b] * t
            uv, _, valid = rig.project(seg, rig.frame, camera)
            if valid.sum() >= 2:
                pts = np.round(uv[valid] * 16).astype(np.int32)
                cv2.polylines(out, [pts], False, CLASS_COLOURS[int(cls)], 1, cv2.LINE_AA, 4)
    return out


def preview(drive: Path, t_s: float, out: Path) -> list[Path]:
    """Write ``bev.png``, ``camera.png`` (with the ground truth) and ``image.png`` (the frame as
    recorded) for the moment ``t_s`` seconds into ``drive``."""
    bag = drive / BAG_DIR
    rig = Rig.load(drive / RIG_FILE)
    store = typestore()
    t_ns = DRIVE_EPOCH_NS + int(t_s * 1e9)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    gts = list(read_ground_truth(bag))

    def gt_at(stamp: int) -> GroundTruth:
        return min(gts, key=lambda g: abs(g.stamp_ns - stamp))

    raw, _ = _nearest(bag, TOPIC_LIDAR, t_ns)
    cloud = decode_pointcloud2(raw)
    pts = np.stack([cloud.points[k].astype(np.float64) for k in "xyz"], axis=1)
    lidar_common = cloud.stamp_ns + rig.sensor(LIDAR).time_offset_ns
    pts_ego = rig.transform(LIDAR, rig.frame).apply(pts)
    radar_ego = None
    try:
        raw_r, _ = _nearest(bag, TOPIC_RADAR, t_ns)
        rc = decode_pointcloud2(raw_r)
        radar = np.stack([rc.points[k].astype(np.float64) for k in "xyz"], axis=1)
        radar_ego = rig.transform(RADAR, rig.frame).apply(radar)
    except LookupError:
        pass
    bev = bev_image(pts_ego, gt_at(lidar_common), radar_ego=radar_ego, vehicle_box=rig.vehicle_box)
    cv2.imwrite(str(out / "bev.png"), bev, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    written.append(out / "bev.png")

    raw_c, _ = _nearest(bag, TOPIC_CAMERA, t_ns)
    msg: Any = store.deserialize_cdr(raw_c, "sensor_msgs/msg/CompressedImage")
    image = cv2.imdecode(np.asarray(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"the camera image logged near {t_s} s is not a valid JPEG")
    cam_common = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    cam_common += rig.sensor(CAMERA).time_offset_ns
    png = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    cv2.imwrite(str(out / "camera.png"), camera_overlay(image, gt_at(cam_common), rig, CAMERA), png)
    written.append(out / "camera.png")
    cv2.imwrite(str(out / "image.png"), image, png)
    written.append(out / "image.png")
    return written


def doc_images(out: Path, seed: int = 7, t_s: float = 8.0, size: str = "800x450") -> list[Path]:
    """The images of ``docs/sim.md``: one camera frame per condition (clear, fog, rain, night)
    at the same moment of the same drive, the clear frame with its ground truth, and a
    bird's-eye view of the lidar sweep with the ground-truth boxes."""
    import tempfile  # noqa: PLC0415

    from fusionrt.sim.config import SimConfig  # noqa: PLC0415
    from fusionrt.sim.recorder import record_drive  # noqa: PLC0415

    width, height = (int(v) for v in size.split("x"))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for condition in ("clear", "fog", "rain", "night"):
            config = SimConfig(
                duration_s=t_s + 0.3, seed=seed, condition=condition, camera_width=width,
                camera_height=height, jpeg_quality=90,
            )  # fmt: skip
            drive = Path(tmp) / condition
            record_drive(config, drive)
            bev, overlay, frame = preview(drive, t_s, drive / "preview")
            copies = [(frame, f"sim_{condition}.png")]
            if condition == "clear":
                copies += [(bev, "sim_bev.png"), (overlay, "sim_camera_gt.png")]
            for src, name in copies:
                shutil.copyfile(src, out / name)
                written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fusionrt.sim.preview", description=__doc__)
    parser.add_argument("drive", type=Path, nargs="?", help="a directory written by fusionrt sim")
    parser.add_argument("--time", type=float, default=5.0, help="seconds into the drive")
    parser.add_argument("--out", type=Path, default=Path("preview"), help="output directory")
    parser.add_argument(
        "--docs", action="store_true", help="write the documentation images (sim_*.png) to --out"
    )
    args = parser.parse_args(argv)
    if args.docs:
        paths = doc_images(args.out, t_s=args.time)
    elif args.drive is None:
        parser.error("give a drive directory, or --docs")
    else:
        paths = preview(args.drive, args.time, args.out)
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
