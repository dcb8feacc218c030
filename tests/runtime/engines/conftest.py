"""Fixtures of the engine tests: the sample BEV network, its ONNX export, real-data feeds.

The feeds are built from the real KITTI sample (camera image 000008 and its velodyne scan,
rasterised into a BEV grid) plus seeded structured feeds, so that verification and INT8
calibration see realistic value ranges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[2] / "data" / "real"


def kitti_feed(frame: str = "000008") -> dict[str, np.ndarray]:
    """A feed of the sample network from a real KITTI frame (image + lidar BEV)."""
    import cv2

    pytest.importorskip("torch", reason="sample_net imports torch")

    from fusionrt.runtime.engines import sample_net

    image = cv2.imread(str(REAL / "kitti" / "training" / "image_2" / f"{frame}.png"))
    _, _, height, width = sample_net.CAMERA_SHAPE
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    camera = ((image[:, :, ::-1].astype(np.float32) / 255.0) - 0.45) / 0.25
    scans = sorted((REAL / "kitti" / "training").glob(f"velodyne*/{frame}.bin"))
    points = np.fromfile(scans[0], dtype=np.float32).reshape(-1, 4)
    size = 2 * sample_net.BEV_SIZE
    col = ((points[:, 0] - 0.0) / 51.2 * size).astype(int)
    row = ((points[:, 1] + 25.6) / 51.2 * size).astype(int)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    lidar = np.zeros((1, sample_net.LIDAR_CHANNELS, size, size), np.float32)
    slices = np.clip(((points[:, 2] + 3.0) / 4.0 * 7).astype(int), 0, 7)
    np.add.at(lidar[0], (slices[inside], row[inside], col[inside]), 1.0)
    lidar = np.log1p(lidar)
    return {
        "camera_image": np.ascontiguousarray(camera.transpose(2, 0, 1)[None]),
        "lidar_bev": lidar,
        "radar_bev": np.zeros((1, sample_net.RADAR_CHANNELS, size, size), np.float32),
        "sensor_mask": np.array([[1.0, 1.0, 0.0]], np.float32),
    }


@pytest.fixture(scope="session")
def feeds() -> list[dict[str, np.ndarray]]:
    """Two real KITTI feeds and two structured feeds."""
    pytest.importorskip("torch", reason="sample_net imports torch")
    from fusionrt.runtime.engines.sample_net import sample_feeds

    return [kitti_feed("000008"), kitti_feed("000001"), *sample_feeds(2, seed=3)]


@pytest.fixture(scope="session")
def sample_module():
    pytest.importorskip("torch", reason="the sample network is a PyTorch module")
    pytest.importorskip("onnx")
    from fusionrt.runtime.engines.sample_net import SampleBevNet

    return SampleBevNet()


@pytest.fixture(scope="session")
def sample_onnx(tmp_path_factory, sample_module, feeds) -> Path:
    """The sample network exported (opset 17, onnxslim, verified on the feeds)."""
    from fusionrt.runtime.engines import sample_net
    from fusionrt.runtime.engines.export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "sample_bev.onnx"
    export_onnx(sample_module, sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, path, samples=feeds)
    return path


@pytest.fixture(scope="session")
def int8_onnx(tmp_path_factory, sample_onnx) -> Path:
    """The sample network quantised (calibrated on real + structured feeds), head in float."""
    from fusionrt.runtime.engines.int8 import quantize_int8
    from fusionrt.runtime.engines.sample_net import sample_feeds

    path = tmp_path_factory.mktemp("int8") / "sample_bev.int8.onnx"
    calibration = [kitti_feed("000008"), kitti_feed("000001"), *sample_feeds(8, seed=11)]
    quantize_int8(sample_onnx, path, calibration, keep_float=["/head_"])
    return path
