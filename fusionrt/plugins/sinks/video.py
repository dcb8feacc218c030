"""``video`` sink: the camera view with projected 3D boxes beside a bird's-eye view, as MP4 + PNG.

Left: the first camera's image with the detections (green) and the ground truth (red) projected
through the rig, drawn at the output's size. Right: the bird's-eye view of the model's BEV
range (x forward = up, y left = left) with the lidar points (grey), radar points (yellow),
detections (green) and ground truth (red); the ego box is white. Both views share one height;
the title (stamp, detection count) is white on a dark band, legible on any image. Options:
``fps`` (default 10), ``png`` (write ``OUT/frames/NNNNNN.png`` too, default True),
``png_every`` (default 1), ``px_per_m`` (the BEV's drawing scale, then resized to the output
height; default: drawn at the output height's scale, no resize), ``height`` (output height in
pixels, default 360), ``codec`` (``h264``, the default, ``vp9`` or ``mpeg4``), ``path``
(default ``OUT/video.mp4``).

The MP4 is a fragmented one written by :class:`~fusionrt.plugins.sinks.mp4_file.Mp4File`
(PyAV; H.264, which browsers play, unless this FFmpeg lacks the encoder: then VP9, then
MPEG-4 Part 2, with a logged reason): a killed run leaves it playable up to its last frame, and
a write that fails (the MP4's or a PNG's) raises :class:`~fusionrt.runtime.errors.SinkError`
naming the file; the MP4 is then readable up to the failure and no partial PNG is left.

Cost: the BEV background (range rings) is drawn once and copied per frame; the camera image
is resized once, then drawn on.

Conventions: boxes are N×7 (x, y, z centre, length, width, height, yaw) in the ego frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fusionrt.plugins.sinks.files import write_whole_file
from fusionrt.plugins.sinks.projection import box_corners, box_edges_in_image
from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import ConfigError, SinkError
from fusionrt.runtime.messages import Detections, Frame
from fusionrt.runtime.sensor import Modality

__all__ = [
    "DETECTION_BGR",
    "TRUTH_BGR",
    "BevCanvas",
    "VideoSink",
    "draw_boxes_on_image",
    "draw_title",
    "first_sensor",
    "points_in_ego",
]

DETECTION_BGR = (60, 220, 60)
TRUTH_BGR = (60, 60, 255)
#: the title's band: its height in pixels per 360 of output height, and how much of the image
#: under it is kept (the rest is black)
_TITLE_BAND_PX = 26
_TITLE_BAND_KEEP = 0.35


#: The video codecs the sink writes (the encoder each falls back to: ``mp4_file.FALLBACKS``).
CODECS = ("h264", "vp9", "mpeg4")


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
    image_bgr: np.ndarray,
    groups: Sequence[tuple[np.ndarray, tuple[int, int, int]]],
    rig: Any,
    camera: str,
) -> None:
    """Project groups of N×7 ego-frame boxes (boxes, colour) into ``camera`` and draw their
    visible edges in place, later groups over earlier ones.

    The image may have another size than the calibrated one (resized for the video): pixels
    are scaled by the width ratio.
    """
    boxes = [np.asarray(b, np.float64).reshape(-1, 7) for b, _ in groups]
    segments, box_index = box_edges_in_image(
        np.concatenate([np.zeros((0, 7)), *boxes]), rig, camera
    )
    if len(segments) == 0:
        return
    scale = image_bgr.shape[1] / float(rig.camera(camera).width)
    # pixel centres: u' + 0.5 = (u + 0.5) * scale; cv2 draws with 4 fractional bits
    fixed = np.round(((segments + 0.5) * scale - 0.5) * 16).astype(np.int32)
    starts = np.cumsum([0, *(len(b) for b in boxes)])
    for (_, colour), first, end in zip(groups, starts[:-1], starts[1:], strict=True):
        mine = fixed[(box_index >= first) & (box_index < end)]
        if len(mine):
            cv2.polylines(image_bgr, list(mine), False, colour, 1, cv2.LINE_AA, shift=4)


def draw_title(image_bgr: np.ndarray, text: str) -> None:
    """Write ``text`` top left in white on a dark band across the image (in place)."""
    scale = image_bgr.shape[0] / 360.0
    band = max(12, round(_TITLE_BAND_PX * scale))
    top = image_bgr[:band]
    np.multiply(top, _TITLE_BAND_KEEP, out=top, casting="unsafe")
    cv2.putText(
        image_bgr,
        text,
        (round(8 * scale), round(band * 0.72)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * scale,
        (255, 255, 255),
        max(1, round(scale)),
        cv2.LINE_AA,
    )


def points_in_ego(message: Any, rig: Any) -> np.ndarray:
    """N×3 float64 points of a point-cloud message in the rig (ego) frame; finite ones only."""
    points = message.payload
    xyz = np.stack([np.asarray(points[a], np.float64) for a in ("x", "y", "z")], axis=1)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    if rig is not None and message.sensor in rig.sensors:
        xyz = rig.transform(message.sensor, rig.frame).apply(xyz)
    return xyz


class BevCanvas:
    """Maps ego-frame metres to pixels of a bird's-eye image (x forward up, y left left)."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], px_per_m: float):
        self.x_range, self.y_range, self.px_per_m = x_range, y_range, px_per_m
        self.height = round((x_range[1] - x_range[0]) * px_per_m)
        self.width = round((y_range[1] - y_range[0]) * px_per_m)
        self._background: np.ndarray | None = None

    def pixels(self, xy: np.ndarray) -> np.ndarray:
        """N×2 int pixel (column, row) of N×2 ego (x, y)."""
        cols = (self.y_range[1] - xy[:, 1]) * self.px_per_m
        rows = (self.x_range[1] - xy[:, 0]) * self.px_per_m
        return np.stack([cols, rows], axis=1).round().astype(np.int32)

    def image(self) -> np.ndarray:
        """A dark canvas with 10 m range rings around the ego: a copy of one drawn once."""
        if self._background is None:
            background = np.full((self.height, self.width, 3), 24, np.uint8)
            centre = self.pixels(np.zeros((1, 2)))[0]
            for radius_m in range(10, 200, 10):
                cv2.circle(
                    background,
                    (int(centre[0]), int(centre[1])),
                    int(radius_m * self.px_per_m),
                    (55, 55, 55),
                    1,
                )
            background.setflags(write=False)
            self._background = background
        return self._background.copy()

    def points(self, canvas: np.ndarray, xy: np.ndarray, colour: tuple[int, int, int]) -> None:
        """Plot points (one pixel each) that fall inside the canvas."""
        px = self.pixels(xy)
        keep = (
            (px[:, 0] >= 0) & (px[:, 0] < self.width) & (px[:, 1] >= 0) & (px[:, 1] < self.height)
        )
        canvas[px[keep, 1], px[keep, 0]] = colour

    def boxes(
        self, canvas: np.ndarray, groups: Sequence[tuple[np.ndarray, tuple[int, int, int]]]
    ) -> None:
        """Draw groups of boxes (boxes, colour) as footprints with a heading tick, later groups
        over earlier ones (the geometry of all in one go, one polyline call per group)."""
        arrays = [np.asarray(b, np.float64).reshape(-1, 7) for b, _ in groups]
        boxes = np.concatenate([np.zeros((0, 7)), *arrays])
        if len(boxes) == 0:
            return
        footprints = box_corners(boxes)[:, [0, 2, 6, 4], :2]  # (+,+),(+,-)... z low
        tips = boxes[:, :2] + 0.5 * boxes[:, 3:4] * np.stack(
            [np.cos(boxes[:, 6]), np.sin(boxes[:, 6])], axis=1
        )
        outlines = self.pixels(footprints.reshape(-1, 2)).reshape(-1, 4, 2)
        headings = self.pixels(np.stack([boxes[:, :2], tips], axis=1).reshape(-1, 2))
        headings = headings.reshape(-1, 2, 2)
        starts = np.cumsum([0, *(len(a) for a in arrays)])
        for (_, colour), first, end in zip(groups, starts[:-1], starts[1:], strict=True):
            if end > first:
                cv2.polylines(canvas, list(outlines[first:end]), True, colour, 1, cv2.LINE_AA)
                cv2.polylines(canvas, list(headings[first:end]), False, colour, 1, cv2.LINE_AA)


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
        px_per_m: float | None = None,
        height: int = 360,
        codec: str = "h264",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.path = Path(path) if path is not None else self.out_dir / "video.mp4"
        self.fps, self.png, self.png_every = float(fps), bool(png), max(1, int(png_every))
        self.height = int(height)
        if self.height < 16 or self.height % 2:
            raise ConfigError(
                f"video height {height!r} is not an even number of pixels of 16 or more "
                "(4:2:0 video needs even sizes)",
                key="height",
            )
        self.px_per_m = float(px_per_m) if px_per_m is not None else None
        if str(codec) not in CODECS:
            raise ConfigError(
                f"video codec {codec!r} is not one of {', '.join(CODECS)}", key="codec"
            )
        self.codec = str(codec)
        self._mp4: Any = None  # an Mp4File once the first frame gives the size
        self._size: tuple[int, int] | None = None
        self._closed = False
        self._info: Any = None
        self._count = 0

    def start(self, info: Any) -> None:
        """Keep the rig, sensors and ground truth; choose the camera, lidar and radar shown."""
        self._info = info
        bev = info.model.geometry.bev
        scale = self.px_per_m or self.height / (bev.x_range[1] - bev.x_range[0])
        self._canvas = BevCanvas(bev.x_range, bev.y_range, scale)
        self._camera = first_sensor(info.sensors, Modality.CAMERA, info.rig)
        self._lidar = first_sensor(info.sensors, Modality.LIDAR)
        self._radar = first_sensor(info.sensors, Modality.RADAR)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.png:
            (self.out_dir / "frames").mkdir(parents=True, exist_ok=True)

    def render(self, frame: Frame, detections: Detections) -> np.ndarray:
        """The side-by-side BGR image of one frame (an even width: 4:2:0 video needs one)."""
        truth = self._info.ground_truth(frame.stamp_ns)
        truth_boxes = truth.boxes if truth is not None else np.zeros((0, 7), np.float32)
        views = [self._bev_view(frame, truth_boxes, detections)]
        message = frame.messages.get(self._camera) if self._camera is not None else None
        if message is not None:
            views.insert(0, self._camera_view(message, truth_boxes, detections))
        elif self._camera is not None:
            views.insert(0, np.zeros((self.height, self.height * 16 // 9, 3), np.uint8))
        if sum(v.shape[1] for v in views) % 2:
            views.append(np.zeros((self.height, 1, 3), np.uint8))
        out = np.hstack(views)
        draw_title(out, f"{frame.stamp_ns / 1e9:.3f} s  {len(detections)} detections")
        return out

    def _fit(self, image: np.ndarray) -> np.ndarray:
        """``image`` resized to the output height."""
        if image.shape[0] == self.height:
            return image
        width = max(1, round(image.shape[1] * self.height / image.shape[0]))
        shrink = image.shape[0] > self.height
        return cv2.resize(
            image,
            (width, self.height),
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
        )

    def _bev_view(
        self, frame: Frame, truth_boxes: np.ndarray, detections: Detections
    ) -> np.ndarray:
        rig = self._info.rig
        canvas = self._canvas.image()
        for name, colour in ((self._lidar, (170, 170, 170)), (self._radar, (0, 220, 255))):
            message = frame.messages.get(name) if name is not None else None
            if message is not None:
                self._canvas.points(canvas, points_in_ego(message, rig)[:, :2], colour)
        groups = [(truth_boxes, TRUTH_BGR), (detections.boxes, DETECTION_BGR)]
        vehicle_box = getattr(rig, "vehicle_box", None)
        if vehicle_box is not None:
            lo, hi = np.asarray(vehicle_box[0]), np.asarray(vehicle_box[1])
            ego = np.array(
                [[(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0, hi[0] - lo[0], hi[1] - lo[1], 1, 0]]
            )
            groups.append((ego, (255, 255, 255)))
        self._canvas.boxes(canvas, groups)
        return self._fit(canvas)

    def _camera_view(
        self, message: Any, truth_boxes: np.ndarray, detections: Detections
    ) -> np.ndarray:
        """The camera's RGB payload at the output height, in BGR, with the boxes drawn on it
        (after the resize: sharp one-pixel edges, and one resize of the image only)."""
        image = cv2.cvtColor(self._fit(np.ascontiguousarray(message.payload)), cv2.COLOR_RGB2BGR)
        rig, camera = self._info.rig, str(self._camera)
        groups = [(truth_boxes, TRUTH_BGR), (detections.boxes, DETECTION_BGR)]
        draw_boxes_on_image(image, groups, rig, camera)
        return image

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Render the frame, append it to the MP4 and (every ``png_every``) save a PNG.

        A failed write raises :class:`~fusionrt.runtime.errors.SinkError` naming the file.
        """
        if self._closed:
            raise SinkError("write after close", sink=self.name, file=str(self.path))
        image = self.render(frame, detections)
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
            # PyAV (FFmpeg) costs 60 ms to import: only a run that writes video pays it
            from fusionrt.plugins.sinks.mp4_file import Mp4File  # noqa: PLC0415

            self._mp4 = Mp4File(self.path, self.fps, self._size, self.name, self.codec)
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
