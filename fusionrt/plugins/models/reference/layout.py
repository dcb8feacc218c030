"""The reference model's fixed layout: geometry, tensor names and shapes, head channels.

Numpy-only, shared by the model plugin (run path), the network (torch) and training, so that
every part agrees on one definition.

Conventions: ego frame x forward, y left, z up (metres, radians). The input BEV grid is
128 × 128 cells of 0.5 m over x ∈ [-12, 52), y ∈ [-32, 32); the head predicts on a 64 × 64
grid of 1 m cells over the same area (``OUTPUT_STRIDE`` = 2). Modality-mask order is
:data:`MODALITIES`.
"""

from __future__ import annotations

from fusionrt.plugins.sensors.bev import RADAR_BEV_CHANNELS, lidar_bev_channels
from fusionrt.plugins.sensors.camera import IMAGES, LIFT_UV, LIFT_VALID
from fusionrt.plugins.sensors.can import CAN_EGO, DEFAULT_EGO_SLOTS
from fusionrt.plugins.sensors.text import TEXT_MASK, TEXT_NUMBERS, TEXT_TOKENS
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.messages import CLASS_NAMES, TensorSpec

GEOMETRY = ModelGeometry(
    bev=BevGrid(
        x_range=(-12.0, 52.0),
        y_range=(-32.0, 32.0),
        z_range=(-0.5, 3.5),
        resolution=0.5,
        height_slices=4,
    ),
    image_size=(128, 224),
    num_cameras=1,
    lift_heights=(0.3, 0.9, 1.5),
    token_length=32,
    vocab_size=4096,
)

#: Modalities in the order of the ``modality_mask`` input (1 = present).
MODALITIES: tuple[str, ...] = ("camera", "lidar", "radar", "text", "can")
#: The sensor modalities, in the order of the ``fusion_weights`` output's channels.
SENSORS: tuple[str, ...] = ("camera", "lidar", "radar")
MODALITY_MASK = "modality_mask"
LIDAR_BEV = "lidar_bev"
RADAR_BEV = "radar_bev"

OUTPUT_STRIDE = 2
HEATMAP = "heatmap"
REGRESSION = "regression"
FUSION_WEIGHTS = "fusion_weights"
#: Regression channels, in order: sub-cell offset (x, y in output cells), z (m), log length,
#: log width, log height (log m), sin/cos yaw, velocity vx, vy (m/s, ego frame).
REGRESSION_CHANNELS: tuple[str, ...] = (
    "dx", "dy", "z", "log_l", "log_w", "log_h", "sin_yaw", "cos_yaw", "vx", "vy",
)  # fmt: skip

NUM_CLASSES = len(CLASS_NAMES)
BEV_ROWS, BEV_COLS = GEOMETRY.bev.shape
OUT_ROWS, OUT_COLS = BEV_ROWS // OUTPUT_STRIDE, BEV_COLS // OUTPUT_STRIDE
OUT_RESOLUTION = GEOMETRY.bev.resolution * OUTPUT_STRIDE
LIDAR_CHANNELS = len(lidar_bev_channels(GEOMETRY.bev))
RADAR_CHANNELS = len(RADAR_BEV_CHANNELS)
CAN_SLOTS = len(DEFAULT_EGO_SLOTS)


def input_specs() -> list[TensorSpec]:
    """The network's inputs, in the order its ``forward`` takes them."""
    g = GEOMETRY
    n, (h, w), z = g.num_cameras, g.image_size, len(g.lift_heights)
    length = g.token_length
    return [
        TensorSpec(IMAGES, (n, 3, h, w), "float32", "camera"),
        TensorSpec(LIFT_UV, (n, z, BEV_ROWS, BEV_COLS, 2), "float32", "camera"),
        TensorSpec(LIFT_VALID, (n, z, BEV_ROWS, BEV_COLS), "float32", "camera"),
        TensorSpec(LIDAR_BEV, (LIDAR_CHANNELS, BEV_ROWS, BEV_COLS), "float32", "lidar"),
        TensorSpec(RADAR_BEV, (RADAR_CHANNELS, BEV_ROWS, BEV_COLS), "float32", "radar"),
        TensorSpec(TEXT_TOKENS, (length,), "int64", "text"),
        TensorSpec(TEXT_MASK, (length,), "float32", "text"),
        TensorSpec(TEXT_NUMBERS, (length,), "float32", "text"),
        TensorSpec(CAN_EGO, (CAN_SLOTS,), "float32", "can"),
        TensorSpec(MODALITY_MASK, (len(MODALITIES),), "float32"),
    ]


def output_specs(fusion_weights: bool = False) -> list[TensorSpec]:
    """The network's outputs: class heatmaps (sigmoid scores) and box regression; with
    ``fusion_weights`` (gated and attention fusion) also the per-cell weight of each sensor
    modality (:data:`SENSORS` order)."""
    specs = [
        TensorSpec(HEATMAP, (NUM_CLASSES, OUT_ROWS, OUT_COLS), "float32"),
        TensorSpec(REGRESSION, (len(REGRESSION_CHANNELS), OUT_ROWS, OUT_COLS), "float32"),
    ]
    if fusion_weights:
        specs.append(TensorSpec(FUSION_WEIGHTS, (len(SENSORS), OUT_ROWS, OUT_COLS), "float32"))
    return specs
