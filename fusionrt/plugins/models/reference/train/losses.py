"""Training losses of the reference model, each chosen from the detection / fusion literature.

* :func:`focal_heatmap_loss` — CenterNet's penalty-reduced focal loss (Zhou et al. 2019, used
  unchanged by CenterPoint, Yin et al. 2021). A BEV heatmap is >99 % background: plain
  cross-entropy would be dominated by easy negatives; the focal factor ``(1 − p)^α`` focuses on
  hard cells and ``(1 − target)^β`` forgives near-misses next to a centre, which a Gaussian
  target marks as "almost positive".
* :func:`regression_l1_loss` — L1 on the box parameters at the ground-truth centre cells
  (CenterPoint): robust to the occasional large error of an occluded box, unlike MSE, and
  measured only where an object is, so the background does not dilute it.
* :func:`cross_modal_contrastive_loss` — InfoNCE (van den Oord et al. 2018) between the
  camera-lifted and the lidar BEV features of the same cell, the positive pair, against the
  other sampled cells (BEV-level cross-modal alignment as in BEVDistill / SimDistill-style
  camera–lidar feature alignment). Pulling the camera features of a cell towards what the lidar
  sees there teaches the camera branch geometry it cannot get from its 2D features alone, which
  is what is left when the lidar fails.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional

#: Per-channel weights of the regression loss (offset, z, log size, sin/cos yaw, velocity):
#: velocity is noisier (one frame cannot see motion; only radar Doppler measures it).
REGRESSION_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)


def focal_heatmap_loss(
    pred: Tensor, target: Tensor, alpha: float = 2.0, beta: float = 4.0
) -> Tensor:
    """Penalty-reduced focal loss; ``pred`` are sigmoid scores, ``target`` Gaussian heatmaps."""
    pred = pred.clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1.0).float()
    negative_weight = torch.pow(1.0 - target, beta)
    pos_loss = torch.log(pred) * torch.pow(1.0 - pred, alpha) * positive
    neg_loss = torch.log(1.0 - pred) * torch.pow(pred, alpha) * negative_weight * (1.0 - positive)
    num_pos = positive.sum().clamp(min=1.0)
    return -(pos_loss.sum() + neg_loss.sum()) / num_pos


def regression_l1_loss(pred: Tensor, indices: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """L1 between ``pred`` (B×C×H×W) gathered at ``indices`` (B×K) and ``target`` (B×K×C)."""
    b, c = pred.shape[:2]
    flat = pred.reshape(b, c, -1)
    gathered = torch.gather(flat, 2, indices.unsqueeze(1).expand(b, c, indices.shape[1]))
    gathered = gathered.permute(0, 2, 1)  # B×K×C
    weights = torch.tensor(REGRESSION_WEIGHTS, device=pred.device).view(1, 1, c)
    error = torch.abs(gathered - target) * weights * valid.unsqueeze(-1)
    return error.sum() / valid.sum().clamp(min=1.0)


def cross_modal_contrastive_loss(
    camera: Tensor, lidar: Tensor, cells: Tensor, temperature: float = 0.1
) -> Tensor:
    """Symmetric InfoNCE between camera and lidar embeddings of the same BEV cells.

    ``camera`` and ``lidar`` are B×D×H×W projected embeddings; ``cells`` is M×2 of
    (batch index, flat cell index) where both modalities see something.
    """
    if cells.shape[0] < 2:
        return camera.sum() * 0.0
    b, d = camera.shape[:2]
    cam = camera.reshape(b, d, -1)[cells[:, 0], :, cells[:, 1]]  # M×D
    lid = lidar.reshape(b, d, -1)[cells[:, 0], :, cells[:, 1]]
    cam = functional.normalize(cam, dim=1)
    lid = functional.normalize(lid, dim=1)
    logits = cam @ lid.t() / temperature
    labels = torch.arange(cells.shape[0], device=camera.device)
    return 0.5 * (
        functional.cross_entropy(logits, labels) + functional.cross_entropy(logits.t(), labels)
    )
