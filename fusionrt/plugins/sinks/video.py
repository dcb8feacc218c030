"""``video`` sink: the camera view with projected 3D boxes beside a bird's-eye view, as MP4 + PNG.

Left: the first camera's image with the detections (green) and the ground truth (red) projected
through the rig. Right: the bird's-eye view of the model's BEV range (x forward = up, y left =
left) with the lidar points (grey), radar points (yellow), detections (green) and ground truth
(red); the ego box is white. Both views share one height. Options: ``fps`` (default 10),
``png`` (write ``OUT/frames/NNNNNN.png`` too, default True), ``png_every`` (default 1),
``px_per_m`` (BEV scale, default 6), ``height`` (output height in pixels, default 360),
``path`` (default ``OUT/video.mp4``).

The MP4 is a fragmented one written by :class:`~fusionrt.plugins.sinks.mp4_file.Mp4File`
(PyAV): a killed run leaves it playable up to its last frame, and a write that fails (the MP4's
or a PNG's) raises :class:`~fusionrt.runtime.errors.SinkError` naming the file; the MP4 is then
readable up to the failure and no partial PNG is left.

Conventions: boxes are N×7 (x, y, z centre, length, width, height, yaw) in the ego frame;
the drawing helpers below are shared with the MCAP sink.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fusionrt.plugins.sinks.files import write_whole_file
from fusionrt.plugins.sinks.mp4_file import Mp4File
from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import SinkError
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.sensor import Modality

__all__ = [
    "DETECTION_BGR",
    "TRUTH_BGR",
    "BevCanvas",
    "VideoSink",
    "box_corners",
    "draw_boxes_on_image",
    "first_sensor",
    "image_bgr",
    "points_in_ego",
]

DETECTION_BGR = (60, 220, 60)
TRUTH_BGR = (60, 60, 255)
_EDGES = (
    (0, 1), (1, 3), (3, 2), (2, 0),  # bottom face
    (4, 5), (5, 7), (7, 6), (6, 4),  # top face
    (0, 4), (1, 5), (2, 6), (3, 7),  # verticals
)  # fmt: skip


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """``(N, 8, 3)`` corners of N×7 boxes: index bits (x sign, y sign, z sign), z bit lowest."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    signs = np.array([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (-1, 1)], float)
    local = signs[None] * (0.5 * boxes[:, 3:6])[:, None, :]
    c, s = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return np.stack([x, y, local[..., 2]], axis=-1) + boxes[:, None, :3]


def first_sensor(sensors: Mapping[str, Any], modality: Modality, rig: Any = None) -> str | None:
    """Name of the first sensor of ``modality`` (for cameras: one the rig can project into)."""
    for name, sensor in sensors.items():
        if sensor.modality is not modality:
            continue
        if modality is Modality.CAMERA and (rig is None or name not in rig.sensors):
            continue
        return str(name)
    return None


def draw_boxes_on_image(
    image_bgr: np.ndarray, boxes: np.ndarray, rig: Any, camera: str, colour: tuple[int, int, int]
) -> None:
    """Project N×7 ego-frame boxes into ``camera`` and draw their edges on the image in place.

    The image may be smaller than the calibrated size (decoded at a JPEG reduction): pixels
    are scaled by the width ratio. Edges with a corner behind the camera (or projecting to no
    finite pixel) are skipped.
    """
    if len(boxes) == 0:
        return
    model = rig.camera(camera)
    scale = image_bgr.shape[1] / float(model.size[0])
    corners = box_corners(boxes).reshape(-1, 3)
    camera_points = rig.transform(rig.frame, camera).apply(corners)
    uv, depth, _ = model.project(camera_points)
    uv = (uv * scale).reshape(-1, 8, 2)
    # a corner is drawn from when it is in front of the camera and projects to a finite pixel
    drawable = ((depth.reshape(-1, 8) > 0.1) & np.isfinite(uv).all(axis=2)).tolist()
    limit = 4 * max(image_bgr.shape)
    # one clip and one conversion per image, not per edge: the per-edge numpy calls were most
    # of the MCAP and video sinks' cost per frame
    pixels = np.clip(np.nan_to_num(uv), -limit, limit).astype(np.int64).tolist()
    for box_px, box_drawable in zip(pixels, drawable, strict=True):
        for a, b in _EDGES:
            if box_drawable[a] and box_drawable[b]:
                cv2.line(image_bgr, box_px[a], box_px[b], colour, 1, cv2.LINE_AA)


def points_in_ego(message: Any, rig: Any) -> np.ndarray:
    """N×3 float64 points of a point-cloud message in the rig (ego) frame; finite ones only."""
    points = message.payload
    xyz = np.stack([np.asarray(points[a], np.float64) for a in ("x", "y", "z")], axis=1)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    if rig is not None and message.sensor in rig.sensors:
        xyz = rig.transform(message.sensor, rig.frame).apply(xyz)
    return xyz


def image_bgr(message: Any) -> np.ndarray:
    """The camera message's RGB payload as a contiguous BGR copy to draw on."""
    return cv2.cvtColor(np.ascontiguousarray(message.payload), cv2.COLOR_RGB2BGR)


class BevCanvas:
    """Maps ego-frame metres to pixels of a bird's-eye image (x forward up, y left left)."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], px_per_m: float):
        self.x_range, self.y_range, self.px_per_m = x_range, y_range, px_per_m
        self.height = round((x_range[1] - x_range[0]) * px_per_m)
        self.width = round((y_range[1] - y_range[0]) * px_per_m)

    def pixels(self, xy: np.ndarray) -> np.ndarray:
        """N×2 int pixel (column, row) of N×2 ego (x, y)."""
        cols = (self.y_range[1] - xy[:, 1]) * self.px_per_m
        rows = (self.x_range[1] - xy[:, 0]) * self.px_per_m
        return np.stack([cols, rows], axis=1).round().astype(np.int32)

    def image(self) -> np.ndarray:
        """A dark canvas with 10 m range rings around the ego."""
        canvas = np.full((self.height, self.width, 3), 24, np.uint8)
        centre = self.pixels(np.zeros((1, 2)))[0]
        for radius_m in range(10, 200, 10):
            cv2.circle(
                canvas,
                (int(centre[0]), int(centre[1])),
                int(radius_m * self.px_per_m),
                (55, 55, 55),
                1,
            )
        return canvas

    def points(self, canvas: np.ndarray, xy: np.ndarray, colour: tuple[int, int, int]) -> None:
        """Plot points (one pixel each) that fall inside the canvas."""
        px = self.pixels(xy)
        keep = (
            (px[:, 0] >= 0) & (px[:, 0] < self.width) & (px[:, 1] >= 0) & (px[:, 1] < self.height)
        )
        canvas[px[keep, 1], px[keep, 0]] = colour

    def boxes(self, canvas: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int]) -> None:
        """Draw box footprints with a heading tick."""
        if len(boxes) == 0:
            return
        corners = box_corners(boxes)[:, [0, 2, 6, 4], :2]  # (+,+),(+,-)... footprint, z low
        for box, footprint in zip(np.asarray(boxes), corners, strict=True):
            px = self.pixels(footprint)
            cv2.polylines(canvas, [px.reshape(-1, 1, 2)], True, colour, 1, cv2.LINE_AA)
            tip = box[:2] + 0.5 * box[3] * np.array([np.cos(box[6]), np.sin(box[6])])
            a, b = self.pixels(np.stack([box[:2], tip]))
            cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, 1, cv2.LINE_AA)


class VideoSink(Sink):
    """Writes ``video.mp4`` (and PNGs) of the camera and bird's-eye views; see module doc."""

    name = "video"

    def __init__(
        self,
        out_dir: Path = Path("out"),
        *,
        path: str | None = None,
        fps: float = 10.0,
        png: bool = True,
        png_every: int = 1,
        px_per_m: float = 6.0,
        height: int = 360,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.path = Path(path) if path is not None else self.out_dir / "video.mp4"
        self.fps, self.png, self.png_every = float(fps), bool(png), max(1, int(png_every))
        self.px_per_m, self.height = float(px_per_m), int(height)
        self._mp4: Mp4File | None = None
        self._size: tuple[int, int] | None = None
        self._closed = False
        self._info: Any = None
        self._count = 0

    def start(self, info: Any) -> None:
        """Keep the rig, sensors and ground truth; choose the camera, lidar and radar shown."""
        self._info = info
        bev = info.model.geometry.bev
        self._canvas = BevCanvas(bev.x_range, bev.y_range, self.px_per_m)
        self._camera = first_sensor(info.sensors, Modality.CAMERA, info.rig)
        self._lidar = first_sensor(info.sensors, Modality.LIDAR)
        self._radar = first_sensor(info.sensors, Modality.RADAR)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.png:
            (self.out_dir / "frames").mkdir(parents=True, exist_ok=True)

    def render(self, frame: Frame, detections: Detections) -> np.ndarray:
        """The side-by-side BGR image of one frame."""
        info = self._info
        truth = info.ground_truth(frame.stamp_ns)
        truth_boxes = truth.boxes if truth is not None else np.zeros((0, 7), np.float32)
        canvas = self._canvas.image()
        for name, colour in ((self._lidar, (170, 170, 170)), (self._radar, (0, 220, 255))):
            message = frame.messages.get(name) if name is not None else None
            if message is not None:
                self._canvas.points(canvas, points_in_ego(message, info.rig)[:, :2], colour)
        self._canvas.boxes(canvas, truth_boxes, TRUTH_BGR)
        self._canvas.boxes(canvas, detections.boxes, DETECTION_BGR)
        vehicle_box = getattr(info.rig, "vehicle_box", None)
        if vehicle_box is not None:
            lo, hi = np.asarray(vehicle_box[0]), np.asarray(vehicle_box[1])
            ego = np.array(
                [[(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0, hi[0] - lo[0], hi[1] - lo[1], 1, 0]]
            )
            self._canvas.boxes(canvas, ego, (255, 255, 255))
        views = [canvas]
        message = frame.messages.get(self._camera) if self._camera is not None else None
        if message is not None:
            image = image_bgr(message)
            draw_boxes_on_image(image, truth_boxes, info.rig, str(self._camera), TRUTH_BGR)
            draw_boxes_on_image(image, detections.boxes, info.rig, str(self._camera), DETECTION_BGR)
            views.insert(0, image)
        elif self._camera is not None:
            views.insert(0, np.zeros((self.height, self.height * 16 // 9, 3), np.uint8))
        resized = [
            cv2.resize(
                v,
                (max(1, round(v.shape[1] * self.height / v.shape[0])), self.height),
                interpolation=cv2.INTER_AREA,
            )
            for v in views
        ]
        out = np.hstack(resized)
        cv2.putText(
            out,
            f"{frame.stamp_ns / 1e9:.3f} s  {len(detections)} detections",
            (8, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        return out

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Render the frame, append it to the MP4 and (every ``png_every``) save a PNG.

        A failed write raises :class:`~fusionrt.runtime.errors.SinkError` naming the file.
        """
        if self._closed:
            raise SinkError("write after close", sink=self.name, file=str(self.path))
        image = self.render(frame, detections)
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
            self._mp4 = Mp4File(self.path, self.fps, self._size, self.name)
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size)
        assert self._mp4 is not None
        self._mp4.write(image)
        if self.png and self._count % self.png_every == 0:
            png = self.out_dir / "frames" / f"{self._count:06d}.png"
            ok, data = cv2.imencode(".png", image)
            if not ok:
                raise SinkError("cannot encode the PNG", sink=self.name, file=str(png))
            write_whole_file(png, data.tobytes(), self.name)
        self._count += 1

    def close(self) -> None:
        """Finish the MP4 (after a failed write: readable up to it); idempotent. A write that
        fails here raises SinkError."""
        self._closed = True
        mp4, self._mp4 = self._mp4, None
        if mp4 is not None:
            mp4.close()
