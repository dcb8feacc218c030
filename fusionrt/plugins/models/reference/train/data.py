"""Training and evaluation drives: simulate them with ``fusionrt sim`` and cache their frames.

Each drive is simulated once (``record_drive``) and run once through the runtime's frame
assembly (:func:`~fusionrt.plugins.models.reference.drives.iter_drive_frames`); the model
inputs and ground truth of every frame are cached as one compressed ``.npz`` per drive under
``CACHE/frames``. Images are stored as the uint8 pixels the camera plugin normalised (its
ImageNet mean/std inverted exactly), rasters as float16, and the lift table once per drive
(it depends only on the rig and the geometry). Numpy only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionrt.plugins.models.reference.drives import iter_drive_frames
from fusionrt.plugins.models.reference.layout import (
    LIDAR_BEV,
    MODALITIES,
    RADAR_BEV,
    input_specs,
)
from fusionrt.plugins.sensors.camera import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    IMAGES,
    LIFT_UV,
    LIFT_VALID,
)
from fusionrt.plugins.sensors.can import CAN_EGO
from fusionrt.plugins.sensors.text import TEXT_MASK, TEXT_NUMBERS, TEXT_TOKENS

DEFAULT_CACHE = Path(os.environ.get("FUSIONRT_CACHE", Path.home() / ".cache" / "fusionrt"))
#: Per-frame arrays of a cached drive (the lift table and ground truth are stored apart).
FRAME_COLUMNS = (
    "images",
    "lidar",
    "radar",
    "tokens",
    "text_mask",
    "numbers",
    "can",
    "present",
    "stamp_ns",
)
_MEAN = np.asarray(IMAGENET_MEAN_RGB, np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGENET_STD_RGB, np.float32).reshape(3, 1, 1)


@dataclass(frozen=True, slots=True)
class DrivePlan:
    """One simulated drive: seed, condition and failures (``fusionrt sim`` options); a
    ``degraded`` drive has the car's self-diagnostics on (their default rates)."""

    seed: int
    condition: str
    duration_s: float = 20.0
    failures: tuple[str, ...] = ()
    failure_mode: str = "silent"

    @property
    def name(self) -> str:
        """Directory / cache name, e.g. ``s1003-fog``, ``s2010-clear-radar@5s-15s`` or
        ``s1040-clear-lidar@3s-12s-degraded``."""
        tail = "".join(f"-{f}" for f in self.failures)
        mode = "" if self.failure_mode == "silent" else f"-{self.failure_mode}"
        return f"s{self.seed}-{self.condition}{tail}{mode}"


TRAIN_CONDITIONS = ("clear", "fog", "rain", "night")


def training_plans(count: int, first_seed: int = 1000) -> list[DrivePlan]:
    """``count`` training drives, conditions in rotation, seeds from ``first_seed``."""
    return [
        DrivePlan(first_seed + i, TRAIN_CONDITIONS[i % len(TRAIN_CONDITIONS)]) for i in range(count)
    ]


def evaluation_plans(first_seed: int = 2000) -> list[DrivePlan]:
    """Held-out drives (seeds never trained on): two per condition, and sensor failures."""
    plans = []
    seed = first_seed
    for condition in ("clear", "fog", "night", "rain"):
        for _ in range(2):
            plans.append(DrivePlan(seed, condition))
            seed += 1
    for sensor in ("camera", "lidar", "radar"):
        plans.append(DrivePlan(seed, "clear", failures=(f"{sensor}@4s-16s",)))
        seed += 1
    return plans


def degraded_training_plans(count: int, first_seed: int = 1040) -> list[DrivePlan]:
    """``count`` training drives with one degraded sensor each (camera, lidar, radar and the
    conditions in rotation; the interval drawn from the seed: start 2–8 s, 6–12 s long)."""
    plans = []
    for i in range(count):
        seed = first_seed + i
        rng = np.random.default_rng(seed)
        start = int(rng.integers(2, 9))
        end = min(start + int(rng.integers(6, 13)), 19)
        sensor = ("lidar", "radar", "camera")[i % 3]
        condition = TRAIN_CONDITIONS[(i // 3) % len(TRAIN_CONDITIONS)]
        failure = f"{sensor}@{start}s-{end}s"
        plans.append(DrivePlan(seed, condition, failures=(failure,), failure_mode="degraded"))
    return plans


def degraded_evaluation_plans(first_seed: int = 2011) -> list[DrivePlan]:
    """Held-out degraded drives: two per sensor, clear, degraded from 4 s to 16 s."""
    sensors = ("lidar", "radar", "camera") * 2
    return [
        DrivePlan(first_seed + i, "clear", failures=(f"{s}@4s-16s",), failure_mode="degraded")
        for i, s in enumerate(sensors)
    ]


def simulate(plan: DrivePlan, drives_dir: Path, workers: int = 1) -> Path:
    """Write ``plan``'s drive under ``drives_dir`` (skipped when already there)."""
    from fusionrt.sim.conditions import parse_failure  # noqa: PLC0415
    from fusionrt.sim.config import DiagnosticsConfig, SimConfig  # noqa: PLC0415
    from fusionrt.sim.recorder import record_drive  # noqa: PLC0415
    from fusionrt.sim.rig import SENSOR_ALIASES  # noqa: PLC0415

    out = drives_dir / plan.name
    if (out / "drive.yaml").is_file():
        return out
    config = SimConfig(
        duration_s=plan.duration_s,
        seed=plan.seed,
        condition=plan.condition,
        failures=tuple(
            parse_failure(f, plan.failure_mode, dict(SENSOR_ALIASES)) for f in plan.failures
        ),
        diagnostics=DiagnosticsConfig() if plan.failure_mode == "degraded" else None,
    )
    record_drive(config, out, overwrite=True, workers=workers)
    return out


def _raw_feed(
    tensors: Mapping[str, np.ndarray], present: Mapping[str, bool]
) -> dict[str, np.ndarray]:
    feed = {s.name: tensors.get(s.name, s.zeros()) for s in input_specs()[:-1]}
    feed["_present"] = np.array([present.get(m, False) for m in MODALITIES], bool)
    return feed


def cache_drive(drive: Path, cache_file: Path) -> Path:
    """Run ``drive`` through the frame assembly and store its frames in ``cache_file``."""
    if cache_file.is_file():
        return cache_file
    columns: dict[str, list[np.ndarray]] = {k: [] for k in FRAME_COLUMNS}
    gt: dict[str, list[np.ndarray]] = {
        k: [] for k in ("frame", "boxes", "labels", "velocities", "visibility")
    }
    lift_uv = lift_valid = None
    for index, item in enumerate(iter_drive_frames(drive, _raw_feed)):
        feed = item.assembled.feed
        present = feed["_present"]
        if present[0] and lift_uv is None:
            lift_uv, lift_valid = feed[LIFT_UV], feed[LIFT_VALID]
        pixels = np.clip(np.rint(feed[IMAGES][0] * _STD + _MEAN), 0, 255).astype(np.uint8)
        columns["images"].append(pixels)
        columns["lidar"].append(feed[LIDAR_BEV].astype(np.float16))
        columns["radar"].append(feed[RADAR_BEV].astype(np.float16))
        columns["tokens"].append(feed[TEXT_TOKENS].astype(np.int16))
        columns["text_mask"].append(feed[TEXT_MASK])
        columns["numbers"].append(feed[TEXT_NUMBERS])
        columns["can"].append(feed[CAN_EGO])
        columns["present"].append(present)
        columns["stamp_ns"].append(np.array(item.assembled.frame.stamp_ns, np.int64))
        truth = item.truth
        gt["frame"].append(np.full(len(truth.labels), index, np.int32))
        gt["boxes"].append(truth.boxes)
        gt["labels"].append(truth.labels.astype(np.int8))
        gt["velocities"].append(truth.velocities)
        gt["visibility"].append(truth.visibility)
    if lift_uv is None or lift_valid is None:
        raise ValueError(f"{drive}: no frame with a camera image; cannot cache its lift table")
    arrays = {k: np.stack(v) for k, v in columns.items()}
    arrays |= {f"gt_{k}": np.concatenate(v) for k, v in gt.items()}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(".partial.npz")
    arrays |= {"lift_uv": lift_uv, "lift_valid": lift_valid}
    np.savez_compressed(partial, **arrays)  # type: ignore[arg-type]
    partial.replace(cache_file)
    return cache_file


@dataclass(frozen=True, slots=True)
class CachedFrame:
    """One cached frame: the sensor tensors (the runtime's names), which modalities were
    present, and the ground truth that counts as a target (boxes N×7, labels N)."""

    stamp_ns: int
    tensors: dict[str, np.ndarray]
    present: dict[str, bool]
    boxes: np.ndarray
    labels: np.ndarray


def read_cached_frames(cache_file: Path) -> list[CachedFrame]:
    """The frames of a drive cached by :func:`cache_drive`, as model feeds are built from
    them (images normalised as the camera plugin does): evaluation without re-assembling."""
    from fusionrt.plugins.models.reference.drives import detectable  # noqa: PLC0415

    with np.load(cache_file) as z:
        data = {k: z[k] for k in z.files}
    keep = detectable(data["gt_boxes"], data["gt_visibility"])
    frames = []
    for i in range(len(data["stamp_ns"])):
        mine = keep & (data["gt_frame"] == i)
        tensors = {
            IMAGES: ((data["images"][i].astype(np.float32) - _MEAN) / _STD)[None],
            LIFT_UV: data["lift_uv"],
            LIFT_VALID: data["lift_valid"],
            LIDAR_BEV: data["lidar"][i].astype(np.float32),
            RADAR_BEV: data["radar"][i].astype(np.float32),
            TEXT_TOKENS: data["tokens"][i].astype(np.int64),
            TEXT_MASK: data["text_mask"][i],
            TEXT_NUMBERS: data["numbers"][i],
            CAN_EGO: data["can"][i],
        }
        present = {m: bool(p) for m, p in zip(MODALITIES, data["present"][i], strict=True)}
        frames.append(
            CachedFrame(
                int(data["stamp_ns"][i]),
                tensors,
                present,
                data["gt_boxes"][mine],
                data["gt_labels"][mine].astype(np.int64),
            )
        )
    return frames


def prepare(
    plans: Sequence[DrivePlan], cache: Path = DEFAULT_CACHE, workers: int = 1
) -> list[Path]:
    """Simulate and cache every plan; the cache files, in plan order."""
    files = []
    for plan in plans:
        target = cache / "frames" / f"{plan.name}.npz"
        if not target.is_file():
            drive = simulate(plan, cache / "drives", workers)
            cache_drive(drive, target)
        files.append(target)
        print(f"cached {target}", flush=True)
    return files
