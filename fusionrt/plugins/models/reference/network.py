"""The reference fused BEV detector in PyTorch (imported only by torch paths).

Data flow (shapes for one frame; the network works on batches, :class:`ReferenceExportNetwork`
wraps it for the runtime's unbatched tensors)::

    camera_images N×3×128×224 ─ ImageEncoder (stride 4) ─ lift (grid_sample at the lift table,
        3 heights, averaged over valid views) 128×128 ─ avg-pool ─┐
    lidar_bev 7×128×128 ─ BevEncoder (stride 2) ───────────────────┼─ × modality mask ─ FiLM ─
    radar_bev 4×128×128 ─ BevEncoder (stride 2, dilated) ──────────┘   (text + CAN + mask)
        ─ fusion (concat+conv | gated | attention) 64×64 ─ small U-Net ─ CenterPoint head:
        heatmap 3×64×64 (sigmoid), regression 10×64×64 and, for gated and attention fusion,
        the fusion weights 3×64×64 (camera, lidar, radar per cell: the explanation output)

Every op is static-shape and in TensorRT's ONNX parser (Conv, BatchNorm folded, Relu,
GridSample, AveragePool, Resize nearest, MatMul, Softmax, Sigmoid): checked by
``fusionrt trt-check`` on the exported file. Missing modalities are zeros in the inputs *and*
zeroed features (mask × features), so garbage from a failed sensor cannot leak through.

The lift averages over heights and views weighted by the table's validity (the "Simple-BEV"
lift, Harley et al. 2022): no depth prediction, which keeps it small and exportable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from fusionrt.plugins.models.reference.layout import (
    CAN_SLOTS,
    GEOMETRY,
    LIDAR_CHANNELS,
    MODALITIES,
    NUM_CLASSES,
    RADAR_CHANNELS,
    REGRESSION_CHANNELS,
)

CAMERA, LIDAR, RADAR, TEXT, CAN = (
    MODALITIES.index(m) for m in ("camera", "lidar", "radar", "text", "can")
)
#: Fixed input scales: lidar (density, max height, mean intensity 0..255, occupancy slices),
#: radar (occupancy, RCS dBsm, vx, vy m/s), CAN (speed m/s, yaw rate rad/s, steering rad).
LIDAR_SCALE = (1.0, 1.0, 1 / 255, 1.0, 1.0, 1.0, 1.0)
RADAR_SCALE = (1.0, 1 / 20, 1 / 10, 1 / 10)
CAN_SCALE = (1 / 20, 2.0, 1.0)
FUSION_METHODS = ("concat", "gated", "attention")
#: Fusion methods whose per-cell modality weights are a network output (``fusion_weights``).
WEIGHTED_FUSIONS = ("gated", "attention")


@dataclass(frozen=True)
class NetworkConfig:
    """Widths of the network; ``width`` scales every one of them (2.0: the 2× larger model)."""

    camera_channels: int = 24
    lidar_channels: int = 24
    radar_channels: int = 16
    fused_channels: int = 48
    head_channels: int = 32
    text_dim: int = 32
    fusion: str = "concat"
    width: float = 1.0
    #: Key/query width of the attention fusion (per cell, per modality token).
    attention_dim: int = 16

    def scaled(self, channels: int) -> int:
        """``channels`` × ``width``, rounded to a multiple of 8."""
        return max(8, round(channels * self.width / 8) * 8)

    def to_dict(self) -> dict[str, object]:
        """Plain dict (for the model card and checkpoints)."""
        return asdict(self)


def conv_bn(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3×3 conv, batch norm, ReLU (folded into one Conv + Relu on export)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ImageEncoder(nn.Module):
    """Image CNN: 3×H×W → C×H/4×W/4."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn(3, 16, 2), conv_bn(16, 32, 2), conv_bn(32, 32), conv_bn(32, channels)
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.layers(images)


class CameraLift(nn.Module):
    """Image features → BEV: bilinear samples at the lift table, mean over valid heights/views."""

    def forward(self, features: Tensor, lift_uv: Tensor, lift_valid: Tensor) -> Tensor:
        # features (B·N)×C×h×w; lift_uv B×N×Z×R×C'×2; lift_valid B×N×Z×R×C'
        b, n, z, rows, cols, _ = lift_uv.shape
        grid = lift_uv.reshape(b * n, z * rows, cols, 2)
        sampled = functional.grid_sample(
            features, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )  # (B·N)×C×(Z·R)×C'
        channels = sampled.shape[1]
        sampled = sampled.reshape(b, n, channels, z, rows, cols)
        valid = lift_valid.reshape(b, n, 1, z, rows, cols)
        total = (sampled * valid).sum(dim=(1, 3))
        count = valid.sum(dim=(1, 3)).clamp(min=1.0)
        return total / count


class TextEncoder(nn.Module):
    """Token ids (+ their number values) → one vector by attention pooling over the tokens."""

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.number = nn.Linear(1, dim)
        self.mix = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True))
        self.score = nn.Linear(dim, 1)

    def forward(self, tokens: Tensor, mask: Tensor, numbers: Tensor) -> Tensor:
        # Numbers span 0..1e9 (times, distances): a signed log keeps them in a few units.
        squashed = torch.sign(numbers) * torch.log1p(torch.abs(numbers)) / 10.0
        h = self.embedding(tokens) + self.number(squashed.unsqueeze(-1))
        h = self.mix(h)
        scores = self.score(h).squeeze(-1) + (mask - 1.0) * 1e4  # padded tokens get ~0 weight
        weights = torch.softmax(scores, dim=-1) * mask
        return (weights.unsqueeze(-1) * h).sum(dim=1)


class GatedFusion(nn.Module):
    """Per-cell, per-modality sigmoid gates (from all features) weight projected features.

    The gates are multiplied by the modality mask, so a missing sensor's weight is exactly 0
    (its projection would otherwise add the 1×1 conv's bias); they are returned as the
    fusion weights (B×M×H×W, not normalised: each gate is in [0, 1] on its own).
    """

    def __init__(self, widths: tuple[int, ...], out: int) -> None:
        super().__init__()
        self.widths = widths
        self.projections = nn.ModuleList(nn.Conv2d(w, out, 1) for w in widths)
        self.gates = nn.Conv2d(sum(widths), len(widths), 3, padding=1)
        self.out = conv_bn(out, out)

    def forward(self, stacked: Tensor, sensor_mask: Tensor) -> tuple[Tensor, Tensor]:
        gates = torch.sigmoid(self.gates(stacked)) * sensor_mask
        parts = torch.split(stacked, list(self.widths), dim=1)
        fused = sum(
            gates[:, i : i + 1] * proj(part)
            for i, (proj, part) in enumerate(zip(self.projections, parts, strict=True))
        )
        return self.out(fused), gates


class AttentionFusion(nn.Module):
    """Cross-modal attention per BEV cell: each sensor's cell feature is a token, one query
    per cell (from all tokens of that cell: what the cell as a whole looks like) attends over
    the present modalities, and the value-weighted sum is the fused feature.

    Per cell: ``q = W_q [f_cam, f_lid, f_rad]``, ``k_m = W_k,m f_m``, ``v_m = W_v,m f_m``,
    ``a = softmax_m(q·k_m / √d + log mask_m)``, ``fused = Σ_m a_m v_m``. All projections are
    1×1 convolutions and the softmax runs over the channel axis of a B×M×H×W tensor, so the
    export is Conv, Mul, ReduceSum, Softmax and Concat: static shapes, in TensorRT's parser.
    A masked modality gets a score of −10⁴ (weight exactly 0 after the softmax in FP32). The
    FiLM conditioning (text, CAN, mask) acts on the tokens before, so the log can shift which
    modality a cell attends to. Returns the fused map and the weights ``a`` (B×M×H×W, summing
    to 1 over the present modalities).
    """

    def __init__(self, widths: tuple[int, ...], out: int, key_dim: int) -> None:
        super().__init__()
        self.widths = widths
        self.key_dim = key_dim
        self.query = nn.Conv2d(sum(widths), key_dim, 1)
        self.keys = nn.ModuleList(nn.Conv2d(w, key_dim, 1) for w in widths)
        self.values = nn.ModuleList(nn.Conv2d(w, out, 1) for w in widths)
        self.out = conv_bn(out, out)

    def forward(self, stacked: Tensor, sensor_mask: Tensor) -> tuple[Tensor, Tensor]:
        parts = torch.split(stacked, list(self.widths), dim=1)
        query = self.query(stacked)
        scores = torch.cat(
            [
                (query * key(part)).sum(dim=1, keepdim=True)
                for key, part in zip(self.keys, parts, strict=True)
            ],
            dim=1,
        ) * (self.key_dim**-0.5)
        scores = scores + (sensor_mask - 1.0) * 1e4
        weights = torch.softmax(scores, dim=1)
        fused = sum(
            weights[:, i : i + 1] * value(part)
            for i, (value, part) in enumerate(zip(self.values, parts, strict=True))
        )
        return self.out(fused), weights


class ReferenceNetwork(nn.Module):
    """The batched network: ``forward(*inputs)`` in :func:`layout.input_specs` order, each with a
    leading batch axis; returns ``(heatmap, regression, features)`` where ``features`` holds the
    per-modality BEV maps used by the contrastive loss and, for gated and attention fusion,
    ``fusion_weights`` (B×3×64×64: camera, lidar, radar)."""

    lidar_scale: Tensor
    radar_scale: Tensor
    can_scale: Tensor

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or NetworkConfig()
        cam, lid, rad = (
            config.scaled(config.camera_channels),
            config.scaled(config.lidar_channels),
            config.scaled(config.radar_channels),
        )
        fused, head = config.scaled(config.fused_channels), config.scaled(config.head_channels)
        self.widths = (cam, lid, rad)
        self.image_encoder = ImageEncoder(cam)
        self.lift = CameraLift()
        self.camera_bev = nn.Sequential(nn.AvgPool2d(2), conv_bn(cam, cam))
        self.lidar_encoder = nn.Sequential(conv_bn(LIDAR_CHANNELS, lid, 2), conv_bn(lid, lid))
        self.radar_encoder = nn.Sequential(
            conv_bn(RADAR_CHANNELS, rad, 2), conv_bn(rad, rad, dilation=2)
        )
        self.text_encoder = TextEncoder(GEOMETRY.vocab_size, config.text_dim)
        condition_dim = config.text_dim + 16 + len(MODALITIES)
        self.can_encoder = nn.Sequential(nn.Linear(CAN_SLOTS, 16), nn.ReLU(inplace=True))
        stacked = cam + lid + rad
        film_out = nn.Linear(64, 2 * stacked)
        nn.init.zeros_(film_out.weight)  # starts as the identity: scale 1, shift 0
        nn.init.zeros_(film_out.bias)
        self.film = nn.Sequential(nn.Linear(condition_dim, 64), nn.ReLU(inplace=True), film_out)
        if config.fusion == "concat":
            self.fusion: nn.Module = conv_bn(stacked, fused)
        elif config.fusion == "gated":
            self.fusion = GatedFusion(self.widths, fused)
        elif config.fusion == "attention":
            self.fusion = AttentionFusion(self.widths, fused, config.attention_dim)
        else:
            raise ValueError(f"fusion must be one of {FUSION_METHODS}, got {config.fusion!r}")
        wide = config.scaled(64)
        self.down = nn.Sequential(conv_bn(fused, wide, 2), conv_bn(wide, wide))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(wide, fused, 1)
        )
        self.refine = conv_bn(fused, fused)
        self.head = conv_bn(fused, head)
        self.heatmap = nn.Conv2d(head, NUM_CLASSES, 1)
        self.regression = nn.Conv2d(head, len(REGRESSION_CHANNELS), 1)
        nn.init.constant_(self.heatmap.bias, -2.19)  # type: ignore[arg-type]  # prior 0.1 (CenterNet / focal-loss init)
        self.register_buffer("lidar_scale", torch.tensor(LIDAR_SCALE).view(1, -1, 1, 1))
        self.register_buffer("radar_scale", torch.tensor(RADAR_SCALE).view(1, -1, 1, 1))
        self.register_buffer("can_scale", torch.tensor(CAN_SCALE).view(1, -1))

    def forward(  # noqa: PLR0917 (the engines call it with the inputs positionally)
        self,
        images: Tensor,
        lift_uv: Tensor,
        lift_valid: Tensor,
        lidar: Tensor,
        radar: Tensor,
        tokens: Tensor,
        text_mask: Tensor,
        numbers: Tensor,
        can: Tensor,
        mask: Tensor,
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        b, n = images.shape[:2]
        image_features = self.image_encoder(images.reshape(b * n, *images.shape[2:]))
        camera = self.camera_bev(self.lift(image_features, lift_uv, lift_valid))
        lidar_features = self.lidar_encoder(lidar * self.lidar_scale)
        radar_features = self.radar_encoder(radar * self.radar_scale)

        def gate(x: Tensor, index: int) -> Tensor:
            return x * mask[:, index].view(b, 1, 1, 1)

        camera, lidar_features = gate(camera, CAMERA), gate(lidar_features, LIDAR)
        radar_features = gate(radar_features, RADAR)
        text = self.text_encoder(tokens, text_mask, numbers) * mask[:, TEXT : TEXT + 1]
        ego = self.can_encoder(can * self.can_scale) * mask[:, CAN : CAN + 1]
        scale, shift = torch.chunk(self.film(torch.cat([text, ego, mask], dim=1)), 2, dim=1)
        stacked = torch.cat([camera, lidar_features, radar_features], dim=1)
        stacked = stacked * (1.0 + scale.view(b, -1, 1, 1)) + shift.view(b, -1, 1, 1)
        extras = {"camera": camera, "lidar": lidar_features}
        if self.has_fusion_weights:
            fused, extras["fusion_weights"] = self.fusion(
                stacked, mask[:, CAMERA : RADAR + 1, None, None]
            )
        else:
            fused = self.fusion(stacked)
        fused = self.refine(fused + self.up(self.down(fused)))
        features = self.head(fused)
        heatmap = torch.sigmoid(self.heatmap(features))
        regression = self.regression(features)
        return heatmap, regression, extras

    @property
    def has_fusion_weights(self) -> bool:
        """Whether the fusion layer has per-cell modality weights (gated, attention)."""
        return self.config.fusion in WEIGHTED_FUSIONS


class ReferenceExportNetwork(nn.Module):
    """The runtime's view: unbatched inputs in ``input_specs`` order → (heatmap, regression),
    and the fusion weights (3×64×64) for gated and attention fusion."""

    def __init__(self, network: ReferenceNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        heatmap, regression, extras = self.network(*(x.unsqueeze(0) for x in inputs))
        if self.network.has_fusion_weights:
            return heatmap[0], regression[0], extras["fusion_weights"][0]
        return heatmap[0], regression[0]


def count_parameters(module: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())
