"""Figures of the README: detections vs ground truth in BEV and on the camera image.

Run: ``python -m fusionrt.plugins.models.reference.eval.figures --drive DRIVE --frame 120
--out docs/images`` → ``model_bev.png`` (lidar raster, ground truth in green, detections of the
fused model and of the camera-only mask in red / orange) and ``model_image.png`` (the same
detections projected into the camera image). Needs matplotlib (dev extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.models.reference.drives import DriveFrame, detectable, iter_drive_frames
from fusionrt.plugins.models.reference.layout import GEOMETRY, LIDAR_BEV
from fusionrt.plugins.models.reference.model import ReferenceModel
from fusionrt.runtime.engines.selection import open_engine
from fusionrt.runtime.messages import Detections

CLASS_COLOURS = {0: "tab:blue", 1: "tab:purple", 2: "tab:olive"}


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """N×4×2 BEV corners (x, y) of N×7 boxes."""
    x, y, length, width, yaw = boxes[:, 0], boxes[:, 1], boxes[:, 3], boxes[:, 4], boxes[:, 6]
    local = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]])
    dx = local[None, :, 0] * length[:, None]
    dy = local[None, :, 1] * width[:, None]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack([x[:, None] + c * dx - s * dy, y[:, None] + s * dx + c * dy], axis=-1)


def box_corners_3d(boxes: np.ndarray) -> np.ndarray:
    """N×8×3 corners (bottom four, then top four) of N×7 boxes centred at their z."""
    bev = box_corners(boxes)
    z0 = (boxes[:, 2] - boxes[:, 5] / 2)[:, None, None]
    z1 = (boxes[:, 2] + boxes[:, 5] / 2)[:, None, None]
    bottom = np.concatenate([bev, np.broadcast_to(z0, (*bev.shape[:2], 1))], axis=-1)
    top = np.concatenate([bev, np.broadcast_to(z1, (*bev.shape[:2], 1))], axis=-1)
    return np.concatenate([bottom, top], axis=1)


def _frame(drive: Path, index: int) -> DriveFrame:
    for i, item in enumerate(iter_drive_frames(drive, lambda tensors, present: dict(tensors))):
        if i == index:
            return item
    raise ValueError(f"{drive} has fewer than {index + 1} frames")


def _draw_image(
    item: DriveFrame, rig: Rig, detections: Detections, truth: np.ndarray
) -> np.ndarray:
    message = item.assembled.frame.messages.get("camera_front")
    if message is None or not isinstance(message.payload, np.ndarray):
        raise ValueError("the chosen frame has no camera image")
    image = cv2.cvtColor(np.ascontiguousarray(message.payload), cv2.COLOR_RGB2BGR)
    full_w, full_h = rig.camera("camera_front").size
    scale = np.array([image.shape[1] / full_w, image.shape[0] / full_h])
    edges = [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 0),
        (4, 5),
        (5, 6),
        (6, 7),
        (7, 4),
        (0, 4),
        (1, 5),
        (2, 6),
        (3, 7),
    ]
    for boxes, colour in ((truth, (60, 200, 60)), (detections.boxes, (40, 40, 230))):
        for corners in box_corners_3d(boxes):
            uv, _, valid = rig.project(corners, rig.frame, "camera_front")
            if valid.sum() < 8:
                continue
            px = np.round(uv * scale).astype(int)
            for a, b in edges:
                cv2.line(image, tuple(px[a]), tuple(px[b]), colour, 1, cv2.LINE_AA)
    return image


def draw_figures(drive: Path, index: int, out: Path, score_threshold: float = 0.3) -> list[Path]:
    """Write ``model_bev.png`` and ``model_image.png`` for frame ``index`` of ``drive``."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    item = _frame(drive, index)
    rig = Rig.load(drive / "rig.yaml")
    truth = item.truth.boxes[detectable(item.truth.boxes, item.truth.visibility)]
    fused, camera_only = ReferenceModel(), ReferenceModel("camera")
    results = {}
    with open_engine(fused.network_source(), "onnxruntime") as engine:
        for name, model in (("fused", fused), ("camera only", camera_only)):
            feed = model.make_feed(item.assembled.feed, item.assembled.present)
            found = model.postprocess(engine.infer(feed), item.assembled.frame.stamp_ns)
            results[name] = Detections(
                found.stamp_ns,
                found.boxes[found.scores >= score_threshold],
                found.scores[found.scores >= score_threshold],
                found.labels[found.scores >= score_threshold],
            )
    out.mkdir(parents=True, exist_ok=True)
    (x0, x1), (y0, y1) = GEOMETRY.bev.x_range, GEOMETRY.bev.y_range
    # lidar cells with returns above 0.5 m (occupancy slices 1-3): objects and walls, no ground
    raised = item.assembled.feed[LIDAR_BEV][4:].max(axis=0) > 0
    figure, axes = plt.subplots(1, 2, figsize=(12, 6.4))
    for axis, (name, detections) in zip(axes, results.items(), strict=True):
        axis.imshow(raised.T, origin="lower", extent=(x0, x1, y0, y1), cmap="Greys", alpha=0.35)
        for corners in box_corners(truth):
            axis.fill(
                corners[:, 0], corners[:, 1], fill=False, edgecolor="tab:green", linewidth=1.4
            )
        for corners, label in zip(box_corners(detections.boxes), detections.labels, strict=True):
            axis.fill(corners[:, 0], corners[:, 1], fill=False, edgecolor="tab:red", linewidth=1.0)
            axis.plot(*corners.mean(axis=0), ".", color=CLASS_COLOURS[int(label)])
        count = f"{len(detections)} detections (score ≥ {score_threshold})"
        axis.set_title(f"{name}: {count}, {len(truth)} ground truth")
        axis.set_xlabel("x forward (m)")
        axis.set_ylabel("y left (m)")
        axis.set_xlim(x0, x1)
        axis.set_ylim(y0, y1)
        axis.set_aspect("equal")
    figure.suptitle(
        f"{drive.name}, frame {index}: ground truth green, detections red, "
        "lidar returns above 0.5 m grey"
    )
    figure.tight_layout()
    bev_path = out / "model_bev.png"
    figure.savefig(bev_path, dpi=90)
    plt.close(figure)
    image_path = out / "model_image.png"
    cv2.imwrite(str(image_path), _draw_image(item, rig, results["fused"], truth))
    return [bev_path, image_path]


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drive", type=Path, required=True)
    parser.add_argument("--frame", type=int, default=120)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    for path in draw_figures(args.drive, args.frame, args.out):
        print(path)


if __name__ == "__main__":
    main()
