"""INT8 calibration frames from the bundled sample drive (a real MCAP bag) through sample.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrt.plugins.models.reference.model import ReferenceModel
from fusionrt.runtime.engines.calibration_feeds import feeds_from_drive
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.registry import Registry

ROOT = Path(__file__).resolve().parents[3]
DRIVE = ROOT / "examples" / "drives" / "sample"
PIPELINE = ROOT / "examples" / "pipelines" / "sample.yaml"
#: Model input → the modality that fills it (the lift table comes from the rig, always set).
MODALITY_INPUTS = {
    "camera_images": "camera",
    "lidar_bev": "lidar",
    "radar_bev": "radar",
    "text_tokens": "text",
    "can_ego": "can",
}


@pytest.fixture(scope="module")
def first_frames() -> list[dict[str, np.ndarray]]:
    """The first 30 frames of the sample drive, every one."""
    return feeds_from_drive(PIPELINE, DRIVE, Registry.create(), max_frames=30, stride=1)


def test_feeds_match_the_model_inputs_and_carry_every_modality(first_frames):
    specs = ReferenceModel().input_specs()
    assert len(first_frames) == 30
    for feed in first_frames:
        assert list(feed) == [s.name for s in specs]
        for spec in specs:
            assert feed[spec.name].shape == spec.shape, spec.name
            assert feed[spec.name].dtype == np.dtype(spec.dtype), spec.name
    for name in MODALITY_INPUTS:
        assert any(np.abs(feed[name]).max() > 0 for feed in first_frames), name
    assert any(feed["modality_mask"].all() for feed in first_frames)  # every sensor present
    assert not np.array_equal(first_frames[0]["lidar_bev"], first_frames[-1]["lidar_bev"])


def test_stride_takes_every_kth_frame_and_max_frames_stops(first_frames):
    strided = feeds_from_drive(PIPELINE, DRIVE, Registry.create(), max_frames=4, stride=7)
    assert len(strided) == 4
    for got, want in zip(strided, first_frames[0:28:7], strict=True):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_drive_shorter_than_max_frames_gives_all_its_strided_frames(first_frames):
    """199 lidar sweeps → frames 0, 25, ..., 175 (the end of input flushes the synchroniser)."""
    feeds = feeds_from_drive(PIPELINE, DRIVE, Registry.create(), max_frames=10_000, stride=25)
    assert len(feeds) == 8
    np.testing.assert_array_equal(feeds[0]["lidar_bev"], first_frames[0]["lidar_bev"])
    assert not np.array_equal(feeds[-1]["lidar_bev"], feeds[-2]["lidar_bev"])


def test_errors_name_the_drive_or_the_file(tmp_path):
    registry = Registry.create()
    with pytest.raises(ConfigError, match="no drive") as missing:
        feeds_from_drive(PIPELINE, tmp_path / "nowhere", registry)
    assert missing.value.context["path"] == str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="pipeline file: cannot read") as no_file:
        feeds_from_drive(tmp_path / "none.yaml", DRIVE, registry)
    assert no_file.value.context["file"] == str(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match="stride"):
        feeds_from_drive(PIPELINE, DRIVE, registry, stride=0)
    elsewhere = tmp_path / "other_topics.yaml"
    text = PIPELINE.read_text().replace("/sensors/lidar_top/points", "/sensors/roof/points")
    elsewhere.write_text(text.replace("../../fusionrt/", f"{ROOT}/fusionrt/"))
    with pytest.raises(ConfigError, match="did you mean '/sensors/lidar_top/points'") as typo:
        feeds_from_drive(elsewhere, DRIVE, registry)
    assert typo.value.context == {"file": str(elsewhere), "key": "sensors.lidar_top.topic"}
    undecodable = tmp_path / "undecodable.yaml"  # the reference sensor's clouds are no images
    text = PIPELINE.read_text().replace("plugin: lidar", "plugin: camera", 1)
    undecodable.write_text(text.replace("../../fusionrt/", f"{ROOT}/fusionrt/"))
    with pytest.raises(ConfigError, match="no synchronised frame") as none:
        feeds_from_drive(undecodable, DRIVE, registry)
    assert none.value.context == {"drive": str(DRIVE), "file": str(undecodable)}
