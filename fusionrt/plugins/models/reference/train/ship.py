"""Ship a trained checkpoint: weights (.npz), verified ONNX, sample frame and model card.

Writes into the package directory of :mod:`fusionrt.plugins.models.reference` (the files
of :func:`~fusionrt.plugins.models.reference.model.artefacts`): for the ``fused`` variant
``reference.npz`` (weights + network config), ``reference.onnx`` (exported with
:func:`~fusionrt.runtime.engines.export.export_onnx`, verified against PyTorch under ONNX
Runtime on real frames, and checked for TensorRT readiness) and ``model_card.json`` (training
config and wall time, code version, evaluation numbers, parameters, FLOPs, latency); for a
single-sensor variant (``lidar``, ``camera``, ``radar``) the same three files in
``variants/``, verified on the sample frames masked to its sensor.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import fusionrt
from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.drives import iter_drive_frames
from fusionrt.plugins.models.reference.model import (
    MASKABLE,
    SAMPLE_FRAME_PATH,
    ReferenceModel,
    artefacts,
)
from fusionrt.plugins.models.reference.network import (
    ReferenceExportNetwork,
    count_parameters,
)
from fusionrt.plugins.models.reference.train.trainer import load_checkpoint
from fusionrt.plugins.models.reference.weights import save_weights
from fusionrt.runtime.engines.export import export_onnx
from fusionrt.runtime.engines.trt_support import check_onnx
from fusionrt.runtime.errors import ConfigError


def write_sample_frame(drive: Path, index: int = 100, path: Path = SAMPLE_FRAME_PATH) -> Path:
    """Store the sensor tensors of frame ``index`` of ``drive`` as the sample frame at ``path``
    (the frames :meth:`ReferenceModel.sample_feeds` gives, on which the export is verified)."""
    frames = 0
    for item in iter_drive_frames(drive, lambda tensors, present: dict(tensors)):
        if frames == index:
            names = [s.name for s in layout.input_specs()[:-1]]
            tensors = {n: item.assembled.feed[n] for n in names}
            np.savez_compressed(path, **tensors)  # type: ignore[arg-type]
            return path
        frames += 1
    raise ConfigError(
        f"the drive has {frames} frames, no frame {index}", file=str(drive), key="--sample-index"
    )


def network_flops(module: torch.nn.Module, feed: dict[str, np.ndarray]) -> int:
    """FLOPs (2 × multiply-adds) of one frame, counted by torch's FlopCounterMode (convolutions
    and matrix products; the element-wise ops and grid_sample add well under 1 %)."""
    inputs = [torch.as_tensor(feed[s.name]) for s in layout.input_specs()]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git_commit() -> dict[str, Any]:
    """HEAD, and whether the model's Python code differs from it (the artefacts being
    written do not count)."""
    root = Path(__file__).resolve().parents[5]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fusionrt/plugins/models/*.py"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "models_code_modified": None}
    return {"commit": commit, "models_code_modified": bool(dirty)}


def export_checkpoint(checkpoint: Path, onnx_path: Path) -> dict[str, Any]:
    """Export a checkpoint's network to ``onnx_path`` (verified); its parameters and FLOPs.

    The export is verified on the sample frames masked to the modalities the network was
    trained with: a single-sensor baseline never saw the others, and its untrained branches
    can amplify them to values where FP32 summation order alone exceeds the tolerance.
    """
    network, state = load_checkpoint(checkpoint)
    trained = [m for m in state["train_config"]["modalities"] if m in MASKABLE]
    model = ReferenceModel(trained)
    module = ReferenceExportNetwork(network).eval()
    samples = model.sample_feeds()
    outputs = layout.output_specs(fusion_weights=network.has_fusion_weights)
    export_onnx(module, model.input_specs(), outputs, onnx_path, samples=samples)
    return {"params": count_parameters(network), "flops": network_flops(module, samples[0])}


def ship(
    checkpoint: Path,
    eval_json: Path | None = None,
    bench_json: Path | None = None,
    *,
    variant: str = "fused",
    sample_drive: Path | None = None,
    sample_index: int = 100,
) -> dict[str, Any]:
    """Write the artefacts of ``variant`` from ``checkpoint``; returns the model card.

    ``sample_drive``: first store its frame ``sample_index`` as the sample frame (default:
    keep the shipped one).
    """
    network, state = load_checkpoint(checkpoint)
    files = artefacts(variant)
    trained = [m for m in state["train_config"]["modalities"] if m in MASKABLE]
    expected = list(MASKABLE) if variant == "fused" else [variant]
    if trained != expected:
        raise ConfigError(
            f"the {variant} variant needs a network trained on {expected}, this one saw {trained}",
            file=str(checkpoint),
        )
    if network.has_fusion_weights:
        raise ConfigError(
            "shipped variants have concat fusion (two outputs); export gated/attention "
            "networks with `fusionrt train export` and run them with the onnx option",
            file=str(checkpoint),
        )
    if sample_drive is not None:
        write_sample_frame(sample_drive, sample_index)
    files.onnx.parent.mkdir(parents=True, exist_ok=True)
    save_weights(network, files.weights)
    model = ReferenceModel(variant=variant)
    samples = model.sample_feeds()
    module = ReferenceExportNetwork(network).eval()
    report = export_onnx(
        module, model.input_specs(), model.output_specs(), files.onnx, samples=samples
    )
    trt = check_onnx(files.onnx)
    card: dict[str, Any] = {
        "name": "reference",
        "variant": variant,
        "fusionrt_version": fusionrt.__version__,
        "code": _git_commit(),
        "architecture": "Simple-BEV camera lift + lidar/radar BEV CNNs, FiLM (text+CAN), "
        f"{network.config.fusion} fusion, CenterPoint head",
        "network_config": state["network_config"],
        "train_config": state["train_config"],
        "train_steps": state["step"],
        "train_wall_s": state["wall_s"],
        "train_drives": state["train_drives"],
        "params": count_parameters(network),
        "flops": network_flops(module, samples[0]),
        "onnx_bytes": files.onnx.stat().st_size,
        "onnx_sha256": _sha256(files.onnx),
        "weights_sha256": _sha256(files.weights),
        "export_verification": report.verification.summary() if report.verification else None,
        "tensorrt_ready": trt.ok,
        "geometry": {
            "bev_x_range": layout.GEOMETRY.bev.x_range,
            "bev_y_range": layout.GEOMETRY.bev.y_range,
            "bev_resolution_m": layout.GEOMETRY.bev.resolution,
            "image_size": layout.GEOMETRY.image_size,
            "lift_heights_m": layout.GEOMETRY.lift_heights,
            "output_resolution_m": layout.OUT_RESOLUTION,
        },
    }
    if eval_json is not None:
        card["eval"] = json.loads(Path(eval_json).read_text())
    if bench_json is not None:
        card["latency"] = json.loads(Path(bench_json).read_text())
    files.card.write_text(json.dumps(card, indent=1) + "\n")
    return card
