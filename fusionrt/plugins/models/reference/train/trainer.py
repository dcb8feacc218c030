"""The training loop: AdamW, warm-up + cosine learning rate, modality dropout, three losses.

Deterministic for a given config on one machine: numpy and torch are seeded, batches and
dropout draws come from one ``numpy.random.Generator``, and torch runs single-process. The
number of steps is fixed in the config (never "until the time is up"), so a run's result does
not depend on how busy the machine was; its wall time is recorded beside it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fusionrt.plugins.models.reference.layout import MODALITIES, OUTPUT_STRIDE, SENSORS
from fusionrt.plugins.models.reference.network import NetworkConfig, ReferenceNetwork
from fusionrt.plugins.models.reference.train.dataset import INPUT_ORDER, FrameBank, apply_keep
from fusionrt.plugins.models.reference.train.losses import (
    cross_modal_contrastive_loss,
    focal_heatmap_loss,
    regression_l1_loss,
)
from fusionrt.runtime.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved in the checkpoint and the model card)."""

    steps: int = 3000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 150
    seed: int = 0
    threads: int = 1
    #: Modalities the model may see (single-modality baselines: one sensor, plus ``can``).
    modalities: tuple[str, ...] = MODALITIES
    #: Probability of dropping each sensor (camera, lidar, radar) of a sample; one is always kept.
    sensor_dropout: float = 0.25
    text_dropout: float = 0.3
    can_dropout: float = 0.1
    contrastive_weight: float = 0.1
    contrastive_cells: int = 256
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def to_dict(self) -> dict[str, object]:
        """Plain dict (JSON)."""
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        return d


class ContrastiveProjections(nn.Module):
    """Training-only 1×1 projections of camera and lidar BEV features into one 32-d space."""

    def __init__(self, camera_channels: int, lidar_channels: int, dim: int = 32) -> None:
        super().__init__()
        self.camera = nn.Conv2d(camera_channels, dim, 1)
        self.lidar = nn.Conv2d(lidar_channels, dim, 1)


def modality_dropout(
    batch: dict[str, np.ndarray], config: TrainConfig, rng: np.random.Generator
) -> None:
    """Drop modalities per sample in place: zero inputs, 0 in the mask (never every sensor)."""
    mask = batch["mask"]
    probabilities = {m: config.sensor_dropout for m in SENSORS}
    probabilities |= {"text": config.text_dropout, "can": config.can_dropout}
    allowed = [m for m in SENSORS if m in config.modalities]
    for i in range(mask.shape[0]):
        drop = {m for m, p in probabilities.items() if m in config.modalities and rng.random() < p}
        if allowed and all(m in drop for m in allowed):
            drop.discard(allowed[int(rng.integers(len(allowed)))])
        keep = [m for m in MODALITIES if m not in drop]
        single = {k: v[i : i + 1] for k, v in batch.items() if k in INPUT_ORDER}
        apply_keep(single, keep)
        for k, v in single.items():
            batch[k][i : i + 1] = v


def contrastive_cells(
    batch: dict[str, np.ndarray], count: int, rng: np.random.Generator
) -> np.ndarray:
    """(sample, flat output cell) pairs where both camera and lidar see something."""
    s = OUTPUT_STRIDE
    density = batch["lidar"][:, 0]
    b, rows, cols = density.shape
    lidar_seen = density.reshape(b, rows // s, s, cols // s, s).max(axis=(2, 4)) > 0
    valid = (
        batch["lift_valid"].max(axis=(1, 2)).reshape(b, rows // s, s, cols // s, s).max(axis=(2, 4))
        > 0
    )
    both = (
        lidar_seen
        & valid
        & (batch["mask"][:, 0] > 0)[:, None, None]
        & (batch["mask"][:, 1] > 0)[:, None, None]
    )
    samples, flat = np.nonzero(both.reshape(b, -1))
    if len(samples) > count:
        pick = rng.choice(len(samples), count, replace=False)
        samples, flat = samples[pick], flat[pick]
    return np.stack([samples, flat], axis=1).astype(np.int64)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2 % of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    bank: FrameBank, config: TrainConfig, out: Path, log_every: int = 50
) -> dict[str, object]:
    """Train a network on ``bank``; write ``out`` (checkpoint .pt) and ``out``.log.json."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    network = ReferenceNetwork(config.network)
    cam_width, lidar_width, _ = network.widths
    projections = ContrastiveProjections(cam_width, lidar_width)
    parameters = list(network.parameters()) + list(projections.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    running: dict[str, float] = {}
    network.train()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        indices = rng.integers(0, len(bank), config.batch_size)
        batch = bank.batch(indices, keep=config.modalities)
        modality_dropout(batch, config, rng)
        cells = torch.as_tensor(contrastive_cells(batch, config.contrastive_cells, rng))
        inputs = [torch.as_tensor(batch[k]) for k in INPUT_ORDER]
        heatmap, regression, features = network(*inputs)
        losses = {
            "heatmap": focal_heatmap_loss(heatmap, torch.as_tensor(batch["heatmap"])),
            "regression": regression_l1_loss(
                regression,
                torch.as_tensor(batch["indices"]),
                torch.as_tensor(batch["regression"]),
                torch.as_tensor(batch["valid"]),
            ),
        }
        if (
            config.contrastive_weight > 0
            and "camera" in config.modalities
            and "lidar" in config.modalities
        ):
            losses["contrastive"] = config.contrastive_weight * cross_modal_contrastive_loss(
                projections.camera(features["camera"]), projections.lidar(features["lidar"]), cells
            )
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[union-attr]
        nn.utils.clip_grad_norm_(parameters, 5.0)
        optimizer.step()
        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            entry = {"step": step + 1, "wall_s": round(time.perf_counter() - start, 1)}
            entry |= {k: round(v / log_every, 4) for k, v in running.items()}
            history.append(entry)
            running = {}
            print(json.dumps(entry), flush=True)
        if (step + 1) % 500 == 0 or step + 1 == config.steps:
            elapsed = time.perf_counter() - start
            save_checkpoint(
                out, network, config, step=step + 1, wall_s=elapsed, drives=bank.drive_names
            )
    wall_s = time.perf_counter() - start
    summary = {"steps": config.steps, "wall_s": round(wall_s, 1), "history": history}
    out.with_suffix(".log.json").write_text(json.dumps(summary, indent=1))
    return summary


def save_checkpoint(
    path: Path,
    network: ReferenceNetwork,
    config: TrainConfig,
    *,
    step: int,
    wall_s: float,
    drives: Sequence[str],
) -> None:
    """Write the network weights with the config, step, wall time and training drives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(
        {
            "network": network.state_dict(),
            "network_config": config.network.to_dict(),
            "train_config": config.to_dict(),
            "step": step,
            "wall_s": round(wall_s, 1),
            "train_drives": list(drives),
        },
        partial,
    )
    partial.replace(path)


#: What :func:`save_checkpoint` writes, and so what :func:`load_checkpoint` requires.
CHECKPOINT_KEYS = ("network", "network_config", "train_config", "step", "wall_s", "train_drives")


def load_checkpoint(path: Path) -> tuple[ReferenceNetwork, dict[str, Any]]:
    """The network of a checkpoint written by :func:`save_checkpoint` (eval mode) and the rest
    of the checkpoint. A missing, damaged or foreign file is one :class:`ConfigError` naming
    it: torch reports a damaged file as ``RuntimeError``, ``UnpicklingError``, ``EOFError``...
    """
    where = str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError("checkpoint not found", file=where) from None
    except Exception as exc:  # whatever torch and pickle raise for bytes that are no checkpoint
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ConfigError(f"not a readable checkpoint: {reason}", file=where) from None
    missing = [k for k in CHECKPOINT_KEYS if k not in state] if isinstance(state, dict) else []
    if not isinstance(state, dict) or missing:
        raise ConfigError(
            "not a fusionrt reference checkpoint (written by `fusionrt train fit`): "
            + (f"no {', '.join(missing)}" if missing else f"a {type(state).__name__}"),
            file=where,
        )
    try:
        network = ReferenceNetwork(NetworkConfig(**state["network_config"]))
        network.load_state_dict(state.pop("network"))
    except (TypeError, ValueError, RuntimeError) as exc:  # config or weights that do not fit
        reason = (str(exc).splitlines() or [""])[0][:160]
        raise ConfigError(
            f"checkpoint weights do not fit its network config ({type(exc).__name__}: {reason})",
            file=where,
        ) from None
    return network.eval(), state
