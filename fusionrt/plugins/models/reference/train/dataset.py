"""Cached drive frames in memory, as batches of network inputs and CenterPoint targets.

:class:`FrameBank` loads the ``.npz`` files written by :func:`.data.cache_drive` (compact:
uint8 images, float16 rasters, one lift table per drive), computes every frame's targets once,
and builds batches on demand. Numpy only; the trainer converts batches to tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrt.plugins.models.reference.drives import detectable
from fusionrt.plugins.models.reference.layout import MODALITIES
from fusionrt.plugins.models.reference.train.data import _MEAN, _STD, FRAME_COLUMNS
from fusionrt.plugins.models.reference.train.targets import make_targets

#: Network inputs in ``layout.input_specs`` order (the names :meth:`FrameBank.batch` uses).
INPUT_ORDER = (
    "images", "lift_uv", "lift_valid", "lidar", "radar", "tokens", "text_mask", "numbers", "can",
    "mask",
)  # fmt: skip


@dataclass
class FrameBank:
    """All frames of some cached drives, with their targets."""

    drive_names: list[str]
    drive_index: np.ndarray  # per frame: which drive
    arrays: dict[str, np.ndarray]  # per frame
    lift_uv: np.ndarray  # per drive
    lift_valid: np.ndarray
    targets: dict[str, np.ndarray]  # per frame
    truth: list[dict[str, np.ndarray]]  # per frame: detectable boxes, labels, velocities

    @classmethod
    def load(cls, files: Sequence[Path]) -> FrameBank:
        """Load ``files`` (cache ``.npz``), in order."""
        names, drive_index, lift_uv, lift_valid = [], [], [], []
        columns: dict[str, list[np.ndarray]] = {}
        target_columns: dict[str, list[np.ndarray]] = {
            k: [] for k in ("heatmap", "indices", "regression", "valid")
        }
        truth: list[dict[str, np.ndarray]] = []
        for d, file in enumerate(files):
            with np.load(file) as z:
                data = {k: z[k] for k in z.files}
            frames = len(data["stamp_ns"])
            names.append(Path(file).stem)
            drive_index.append(np.full(frames, d, np.int32))
            lift_uv.append(data["lift_uv"])
            lift_valid.append(data["lift_valid"])
            for key in FRAME_COLUMNS:
                columns.setdefault(key, []).append(data[key])
            keep = detectable(data["gt_boxes"], data["gt_visibility"])
            for i in range(frames):
                mine = keep & (data["gt_frame"] == i)
                item = {
                    "boxes": data["gt_boxes"][mine],
                    "labels": data["gt_labels"][mine].astype(np.int64),
                    "velocities": data["gt_velocities"][mine],
                }
                truth.append(item)
                for key, value in zip(target_columns, make_targets(**item), strict=True):
                    target_columns[key].append(
                        value.astype(np.float16) if key == "heatmap" else value
                    )
        return cls(
            names,
            np.concatenate(drive_index),
            {k: np.concatenate(v) for k, v in columns.items()},
            np.stack(lift_uv),
            np.stack(lift_valid),
            {k: np.stack(v) for k, v in target_columns.items()},
            truth,
        )

    def __len__(self) -> int:
        return len(self.drive_index)

    def batch(
        self, indices: np.ndarray, keep: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Network inputs (float32 / int64) and targets of the frames ``indices``.

        ``mask`` is the recorded presence of each modality; with ``keep`` (modality names) the
        others are masked and their inputs zeroed, as the runtime feeds a missing sensor.
        """
        a = self.arrays
        drives = self.drive_index[indices]
        images = (a["images"][indices].astype(np.float32) - _MEAN) / _STD
        mask = a["present"][indices].astype(np.float32)
        out = {
            "images": images[:, None],
            "lift_uv": self.lift_uv[drives],
            "lift_valid": self.lift_valid[drives],
            "lidar": a["lidar"][indices].astype(np.float32),
            "radar": a["radar"][indices].astype(np.float32),
            "tokens": a["tokens"][indices].astype(np.int64),
            "text_mask": a["text_mask"][indices],
            "numbers": a["numbers"][indices],
            "can": a["can"][indices],
            "mask": mask,
        }
        if keep is not None:
            apply_keep(out, keep)
        for key, value in self.targets.items():
            out[key] = value[indices].astype(np.float32) if key == "heatmap" else value[indices]
        return out


#: Inputs of each modality (zeroed when it is masked).
MODALITY_INPUTS: dict[str, tuple[str, ...]] = {
    "camera": ("images", "lift_uv", "lift_valid"),
    "lidar": ("lidar",),
    "radar": ("radar",),
    "text": ("tokens", "text_mask", "numbers"),
    "can": ("can",),
}


def apply_keep(batch: dict[str, np.ndarray], keep: Sequence[str]) -> None:
    """Mask (in place) every modality not in ``keep``: zero inputs, 0 in the mask."""
    for m, name in enumerate(MODALITIES):
        if name not in keep:
            batch["mask"][:, m] = 0.0
            for key in MODALITY_INPUTS[name]:
                batch[key] = np.zeros_like(batch[key])
