"""``fusionrt train ship --sample-drive``: the sample frame the export is verified on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.drives import iter_drive_frames
from fusionrt.plugins.models.reference.model import ReferenceModel
from fusionrt.plugins.models.reference.train.ship import write_sample_frame
from fusionrt.runtime.errors import ConfigError

SAMPLE_DRIVE = Path(__file__).resolve().parents[3] / "examples" / "drives" / "sample"


def test_a_frame_of_a_drive_becomes_the_sample_frame(tmp_path: Path) -> None:
    path = write_sample_frame(SAMPLE_DRIVE, 3, tmp_path / "frame.npz")
    with np.load(path) as stored:
        tensors = {name: stored[name] for name in stored.files}
    specs = layout.input_specs()[:-1]  # every input but the modality mask
    assert sorted(tensors) == sorted(s.name for s in specs)
    assert all(spec.matches(tensors[spec.name]) for spec in specs)
    frame = next(
        item
        for i, item in enumerate(iter_drive_frames(SAMPLE_DRIVE, lambda t, p: dict(t)))
        if i == 3
    )
    for name, value in tensors.items():
        np.testing.assert_array_equal(value, frame.assembled.feed[name])
    feed = ReferenceModel().make_feed(tensors, dict.fromkeys(layout.MODALITIES, True))
    assert feed[layout.LIDAR_BEV].any() and feed[layout.MODALITY_MASK].all()


def test_a_frame_past_the_drive_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"has \d+ frames, no frame 100000") as info:
        write_sample_frame(SAMPLE_DRIVE, 100_000, tmp_path / "frame.npz")
    assert info.value.context["file"] == str(SAMPLE_DRIVE)
    assert not (tmp_path / "frame.npz").exists()
