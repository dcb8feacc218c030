"""The sample drive shipped in examples/drives/sample, and the preview tool."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml
from rosbags.rosbag2 import Reader

from fusionrt.calibration import Rig
from fusionrt.sim.preview import preview
from fusionrt.sim.recorder import BAG_DIR, MANIFEST, RIG_FILE, TOPICS

from .conftest import Drive

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drives" / "sample"


def test_sample_drive_reads_back_as_its_manifest_says() -> None:
    manifest = yaml.safe_load((SAMPLE / MANIFEST).read_text())
    assert 18.0 <= manifest["config"]["duration_s"] <= 22.0
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 12e6, f"the sample drive has grown to {size / 1e6:.1f} MB"
    with Reader(SAMPLE / BAG_DIR) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert {c.topic: c.msgtype for c in reader.connections} == {
            t: v[0] for t, v in TOPICS.items()
        }
        span_s = (reader.end_time - reader.start_time) / 1e9
    assert counts == {t: v["count"] for t, v in manifest["topics"].items()}
    assert 19.0 <= span_s <= 21.0
    rig = Rig.load(SAMPLE / RIG_FILE)
    assert set(rig.sensors) == {"camera_front", "lidar_top", "radar_front", "can", "log"}
    assert rig.road_level  # declared: the sim's ego is on the road, as the model requires
    assert rig.camera("camera_front").width == manifest["config"]["camera_width"]


def test_preview_draws_the_sweep_and_the_frame(clear_drive: Drive, tmp_path: Path) -> None:
    bev, overlay, frame = preview(clear_drive.out, 1.0, tmp_path)
    for path in (bev, overlay, frame):
        image = cv2.imread(str(path))
        assert image is not None and image.std() > 5.0
    # The overlay differs from the frame exactly where boxes were drawn.
    diff = np.abs(cv2.imread(str(overlay)).astype(int) - cv2.imread(str(frame)).astype(int))
    assert 0.001 < np.mean(diff.sum(axis=2) > 0) < 0.3
