"""INT8 calibration frames from a recorded drive: the model's feeds, as the pipeline makes them.

``fusionrt quantize --drive DRIVE --pipeline PIPELINE.yaml`` calibrates on exactly what the
engine will see at run time: the drive goes through the pipeline's own front end
(:func:`~fusionrt.runtime.front_end.build_front_end`: decode → synchronise → preprocess →
``model.make_feed``), and every ``stride``-th assembled frame's feed is kept, up to
``max_frames``. Frames with a missing sensor are kept too (zeros and a 0 in the modality mask
are inputs the engine sees). Nothing here imports an inference runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusionrt.runtime.assembly import AssembledFrame
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.registry import Registry


def feeds_from_drive(
    pipeline_path: str | Path,
    drive: str | Path,
    registry: Registry,
    max_frames: int = 64,
    stride: int = 1,
) -> list[dict[str, np.ndarray]]:
    """Every ``stride``-th model feed of ``drive`` through ``pipeline_path``'s front end, at
    most ``max_frames`` (arrays copied: sensors may reuse their buffers between frames)."""
    if max_frames < 1 or stride < 1:
        raise ConfigError(
            "calibration needs max_frames >= 1 and stride >= 1",
            max_frames=max_frames,
            stride=stride,
        )
    from fusionrt.runtime.front_end import build_front_end  # noqa: PLC0415  (heavy import)

    config = load_pipeline(pipeline_path)
    front = build_front_end(config, Path(drive), registry, ground_truth=False)
    feeds: list[dict[str, np.ndarray]] = []
    seen = 0

    def keep(assembled: list[AssembledFrame]) -> None:
        nonlocal seen
        for frame in assembled:
            if seen % stride == 0 and len(feeds) < max_frames:
                feeds.append({name: np.array(value) for name, value in frame.feed.items()})
            seen += 1

    try:
        for record in front.source.records():
            keep(front.assembler.push(record))
            if len(feeds) >= max_frames:
                break
        else:
            keep(front.assembler.flush())
    finally:
        front.source.close()
    if not feeds:
        raise ConfigError(
            "the drive gave no synchronised frame to calibrate on (are the pipeline's topics "
            "in this drive?)",
            drive=str(drive),
            file=str(pipeline_path),
        )
    return feeds
