"""SampleBevNet: a small but real camera + lidar + radar BEV detection CNN, and feeds for it.

The engines are written for any model; this network is what their tests, benchmark and the
``fusionrt export`` example run until the reference model exists. It has the shape of a fused
BEV detector: a camera branch (strided convolutions, then a bilinear resize onto the BEV grid),
lidar and radar BEV branches, a per-sensor presence mask multiplied into each branch, a fused
trunk (conv + batch norm + ReLU) and a CenterPoint-style head with three named outputs. Shapes
are static. Weights are deterministic (seeded), not trained. Importing this module imports
torch: only tests, benchmarks and the export command do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from fusionrt.runtime.messages import TensorSpec

BEV_SIZE = 64
CAMERA_SHAPE = (1, 3, 160, 288)
LIDAR_CHANNELS = 8
RADAR_CHANNELS = 4
NUM_CLASSES = 3

INPUT_SPECS: tuple[TensorSpec, ...] = (
    TensorSpec("camera_image", CAMERA_SHAPE, "float32", sensor="camera"),
    TensorSpec("lidar_bev", (1, LIDAR_CHANNELS, 2 * BEV_SIZE, 2 * BEV_SIZE), "float32", "lidar"),
    TensorSpec("radar_bev", (1, RADAR_CHANNELS, 2 * BEV_SIZE, 2 * BEV_SIZE), "float32", "radar"),
    TensorSpec("sensor_mask", (1, 3), "float32"),
)
OUTPUT_SPECS: tuple[TensorSpec, ...] = (
    TensorSpec("heatmap", (1, NUM_CLASSES, BEV_SIZE, BEV_SIZE), "float32"),
    TensorSpec("box_regression", (1, 8, BEV_SIZE, BEV_SIZE), "float32"),
    TensorSpec("velocity", (1, 2, BEV_SIZE, BEV_SIZE), "float32"),
)


def _tensor(value: torch.Tensor | None) -> torch.Tensor:
    assert value is not None
    return value


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SampleBevNet(nn.Module):
    """Camera + lidar + radar → BEV heatmap, box regression and velocity (see module doc)."""

    def __init__(self, width: int = 32, seed: int = 0) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.camera = nn.Sequential(
                _block(3, width, 2), _block(width, width), _block(width, 2 * width, 2),
                _block(2 * width, 2 * width), _block(2 * width, 2 * width, 2),
            )  # fmt: skip
            self.lidar = nn.Sequential(
                _block(LIDAR_CHANNELS, width), _block(width, 2 * width, 2),
                _block(2 * width, 2 * width),
            )  # fmt: skip
            self.radar = nn.Sequential(_block(RADAR_CHANNELS, width // 2, 2))
            fused = 2 * width + 2 * width + width // 2
            self.trunk = nn.Sequential(
                _block(fused, 2 * width), _block(2 * width, 2 * width), _block(2 * width, 2 * width)
            )
            self.head_shared = _block(2 * width, width)
            self.head_heatmap = nn.Conv2d(width, NUM_CLASSES, 1)
            self.head_box = nn.Conv2d(width, 8, 1)
            self.head_velocity = nn.Conv2d(width, 2, 1)
            with torch.no_grad():
                _tensor(self.head_heatmap.bias).fill_(-2.19)  # CenterPoint prior: sigmoid ≈ 0.1
                for module in self.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        _tensor(module.running_mean).uniform_(-0.1, 0.1)
                        _tensor(module.running_var).uniform_(0.8, 1.2)
                        module.weight.uniform_(0.8, 1.2)
                        module.bias.uniform_(-0.1, 0.1)
        finally:
            torch.random.set_rng_state(generator_state)
        self.eval()

    def forward(
        self,
        camera_image: torch.Tensor,
        lidar_bev: torch.Tensor,
        radar_bev: torch.Tensor,
        sensor_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = sensor_mask.reshape(1, 3, 1, 1)
        camera = self.camera(camera_image)
        camera = functional.interpolate(
            camera, size=(BEV_SIZE, BEV_SIZE), mode="bilinear", align_corners=False
        )
        lidar = self.lidar(lidar_bev)
        radar = self.radar(radar_bev)
        fused = torch.cat(
            [camera * mask[:, 0:1], lidar * mask[:, 1:2], radar * mask[:, 2:3]], dim=1
        )
        features = self.head_shared(self.trunk(fused))
        heatmap = torch.sigmoid(self.head_heatmap(features))
        return heatmap, self.head_box(features), self.head_velocity(features)


def build_sample_net() -> SampleBevNet:
    """The default SampleBevNet (``fusionrt export fusionrt.runtime.engines.sample_net:...``)."""
    return SampleBevNet()


def sample_feeds(count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``count`` deterministic, structured feeds (smooth images, sparse BEV occupancy)."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        _, _, h, w = CAMERA_SHAPE
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        image = np.stack(
            [
                np.sin(xx / rng.uniform(8, 40) + rng.uniform(0, 6))
                * np.cos(yy / rng.uniform(8, 40))
                for _ in range(3)
            ]
        )
        image += rng.normal(0, 0.1, image.shape).astype(np.float32)
        lidar = np.zeros(INPUT_SPECS[1].shape, np.float32)
        occupied = rng.random(lidar.shape[2:]) < 0.05
        lidar[0, :, occupied] = rng.random((int(occupied.sum()), LIDAR_CHANNELS)).astype(np.float32)
        radar = np.zeros(INPUT_SPECS[2].shape, np.float32)
        hits = rng.random(radar.shape[2:]) < 0.01
        radar[0, :, hits] = rng.normal(0, 1, (int(hits.sum()), RADAR_CHANNELS)).astype(np.float32)
        feeds.append(
            {
                "camera_image": image[None].astype(np.float32),
                "lidar_bev": lidar,
                "radar_bev": radar,
                "sensor_mask": np.ones((1, 3), np.float32),
            }
        )
    return feeds


def specs() -> dict[str, Any]:
    """Input and output specs, as keyword arguments for ``NetworkSource``."""
    return {"input_specs": INPUT_SPECS, "output_specs": OUTPUT_SPECS}
