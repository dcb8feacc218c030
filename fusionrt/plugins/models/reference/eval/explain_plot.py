"""Modality contributions over a drive (``fusionrt eval --explain-plot DIR``).

For every frame of a drive, :func:`contributions_over_drive` computes the main model's
drop-one-modality attribution and, for a gated or attention network, its mean fusion weights
(:mod:`fusionrt.plugins.models.reference.explain`). :func:`plot_contributions` draws them
against drive time with what happened on the drive marked: the weather (fog, rain, night
shade the whole drive), each sensor failure's interval, and the moments the car's log
announced a fault (its self-test lines). Matplotlib is imported only to draw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.models.reference.drives import drive_bag, iter_drive_frames
from fusionrt.plugins.models.reference.explain import (
    drop_one_attribution,
    fusion_weight_contributions,
)
from fusionrt.plugins.models.reference.model import ReferenceModel
from fusionrt.plugins.sources.rosbag import RosbagSource
from fusionrt.runtime.safe_yaml import read_yaml

__all__ = ["DriveEvents", "contributions_over_drive", "drive_events", "plot_contributions"]

LOG_TOPIC = "/vehicle/log"
COLOURS = {"camera": "tab:blue", "lidar": "tab:red", "radar": "tab:green", "text": "tab:purple"}


@dataclass
class DriveEvents:
    """What happened on a drive: condition, failures ``(sensor, start_s, end_s, mode)`` and
    the log's fault announcements ``(source, t_s)`` (drive seconds)."""

    condition: str
    failures: list[tuple[str, float, float, str]] = field(default_factory=list)
    announcements: list[tuple[str, float]] = field(default_factory=list)


def drive_events(drive: Path) -> DriveEvents:
    """Read a sim drive's condition and failures (``drive.yaml``) and announcements (log)."""
    manifest = read_yaml(Path(drive) / "drive.yaml") or {}
    config = manifest.get("config", {})
    epoch = int(manifest.get("epoch_ns", 0))
    events = DriveEvents(str(config.get("condition", "unknown")))
    for f in config.get("failures") or []:
        events.failures.append((f["sensor"], float(f["start_s"]), float(f["end_s"]), f["mode"]))
    from fusionrt.plugins.sensors.text import TextLogSensor  # noqa: PLC0415

    sensor = TextLogSensor("log")
    offset = Rig.load(Path(drive) / "rig.yaml").sensor("log").time_offset_ns  # log clock → common
    source = RosbagSource(drive_bag(drive), topics=[LOG_TOPIC])
    try:
        for record in source.records():
            message = sensor.decode(record)
            if "self-test:" in str(message.payload):  # "warn lidar_top: self-test: ..."
                name = str(message.payload).split(":")[0].split(" ")[-1]
                events.announcements.append((name, (message.stamp_ns + offset - epoch) / 1e9))
    finally:
        source.close()
    return events


def contributions_over_drive(
    drive: Path, model: ReferenceModel, infer: Callable[[Mapping[str, np.ndarray]], Any]
) -> dict[str, Any]:
    """Per frame: drive time (s), drop-one attribution and fusion weights of each modality."""
    epoch = int((read_yaml(Path(drive) / "drive.yaml") or {}).get("epoch_ns", 0))
    series: dict[str, Any] = {"t_s": [], "drop_one": {}, "fusion_weights": {}}
    for item in iter_drive_frames(Path(drive), lambda tensors, present: dict(tensors)):
        tensors, present = item.assembled.feed, item.assembled.present
        outputs = infer(model.make_feed(tensors, present))
        series["t_s"].append((item.assembled.frame.stamp_ns - epoch) / 1e9)
        drop = drop_one_attribution(infer, model, tensors, present, outputs=outputs)
        for name, value in drop.items():
            series["drop_one"].setdefault(name, []).append(value)
        for name, value in fusion_weight_contributions(outputs).items():
            series["fusion_weights"].setdefault(name, []).append(value)
    return series


def plot_contributions(
    series: Mapping[str, Any], events: DriveEvents, out: Path, title: str = ""
) -> Path:
    """Draw ``series`` (:func:`contributions_over_drive`) with ``events`` marked → ``out``."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [k for k in ("drop_one", "fusion_weights") if series.get(k)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), sharex=True)
    axes = np.atleast_1d(axes)
    t = np.asarray(series["t_s"])
    labels = {
        "drop_one": "score drop without it",
        "fusion_weights": "mean fusion weight (occupied cells)",
    }
    for ax, key in zip(axes, panels, strict=True):
        if events.condition in ("fog", "rain", "night"):
            ax.axvspan(t.min(), t.max(), color="0.85", label=events.condition, zorder=0)
        for sensor, start, end, mode in events.failures:
            short = sensor.split("_")[0]
            ax.axvspan(
                start,
                end,
                color=COLOURS.get(short, "0.5"),
                alpha=0.15,
                label=f"{short} {mode} {start:g}-{end:g} s",
            )
        for source, when in events.announcements:
            ax.axvline(
                when,
                color=COLOURS.get(source.split("_")[0], "k"),
                linestyle="--",
                label=f"log: {source} fault",
            )
        for name, values in series[key].items():
            ax.plot(t, values, color=COLOURS.get(name), label=name)
        ax.set_ylabel(labels[key])
        ax.legend(loc="upper right", fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("drive time (s)")
    axes[0].set_title(title or "modality contributions")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
