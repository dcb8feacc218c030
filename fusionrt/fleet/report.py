"""``fusionrt fleet report``: what a fleet run found, and how it compares with a baseline run.

Figures (from the Parquet tables of :mod:`fusionrt.fleet.results`):

* **mAP per class and condition**: the mean over the complete drives of each drive's mAP
  (``map_<class>`` of its summary; drives where a class has no ground truth are left out of
  that class's mean). Every drive weighs the same, so a long drive does not hide a bad short
  one; per condition, the same mean over the drives of that condition.
* **Latency percentiles** per stage over *all frames* of all complete drives (the latencies
  table pooled; numpy's linear interpolation, as the run report).
* **Baseline diff**: per drive present in both runs, the change of its overall mAP and of its
  median end-to-end latency; a drive is *better* / *worse* when its mAP moved by more than
  ``MAP_TOLERANCE`` (or it was fixed / broke: failed on one side, ok on the other).

The report is a JSON-ready dict (:func:`fleet_report`), a text table (:func:`format_fleet_report`)
and a PNG (:func:`plot_fleet_report`, matplotlib's Agg backend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.fleet.results import STATUS_OK, read_results
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.report import MAP_KEYS, PERCENTILE_KEYS
from fusionrt.runtime.text_table import format_table

#: A drive's overall mAP must move by more than this to count as better or worse.
MAP_TOLERANCE = 1e-4
_PERCENTILES = (50, 90, 99)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _map_means(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    return {key: _mean([row[f"map_{key}"] for row in rows]) for key in MAP_KEYS}


def _latency(stages: Sequence[str], values_ms: np.ndarray) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    stage_array = np.asarray(stages)
    for stage in dict.fromkeys(stages):
        values = values_ms[stage_array == stage]
        row = dict(
            zip(PERCENTILE_KEYS, [*np.percentile(values, _PERCENTILES), values.max()], strict=True)
        )
        out[stage] = {**{k: float(v) for k, v in row.items()}, "frames": float(len(values))}
    return out


def fleet_report(results_dir: Path, baseline_dir: Path | None = None) -> dict[str, Any]:
    """The report of the run in ``results_dir`` (see the module docstring)."""
    results_dir = Path(results_dir)
    if not (results_dir / "summary").is_dir():
        raise ConfigError("not a fleet results folder (no summary/)", path=str(results_dir))
    tables = read_results(results_dir)
    summary = tables.summary.to_pylist()
    ok = [row for row in summary if row["status"] == STATUS_OK]
    conditions = sorted({row["condition"] for row in ok})
    latencies = tables.latencies
    report: dict[str, Any] = {
        "results": str(results_dir),
        "drives": {"total": len(summary), "ok": len(ok), "failed": len(summary) - len(ok)},
        "failed": {row["drive"]: row["error"] for row in summary if row["status"] != STATUS_OK},
        "frames": int(sum(row["frames"] or 0 for row in ok)),
        "dropped": int(sum(row["dropped"] or 0 for row in ok)),
        "map": _map_means(ok),
        "map_by_condition": {
            c: _map_means([r for r in ok if r["condition"] == c]) for c in conditions
        },
        "latency": _latency(
            latencies.column("stage").to_pylist(), latencies.column("ms").to_numpy()
        ),
        "per_drive": {
            row["drive"]: {
                "status": row["status"],
                "condition": row["condition"],
                "frames": row["frames"],
                "map_overall": row["map_overall"],
                "end_to_end_p50_ms": _stage_p50(row, "end_to_end"),
            }
            for row in summary
        },
        "skipped_files": [str(p) for p in tables.skipped_files],
    }
    if baseline_dir is not None:
        report["baseline"] = baseline_diff(report, fleet_report(baseline_dir))
    return report


def _stage_p50(row: Mapping[str, Any], stage: str) -> float | None:
    return next((s["p50_ms"] for s in row["stages"] or [] if s["stage"] == stage), None)


def baseline_diff(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """Per-drive and fleet changes from ``baseline`` to ``current`` (two :func:`fleet_report` s)."""
    here, there = current["per_drive"], baseline["per_drive"]
    drives: dict[str, dict[str, Any]] = {}
    better, worse, unchanged = [], [], []
    for drive in sorted(set(here) & set(there)):
        now, before = here[drive], there[drive]
        delta = None
        if now["map_overall"] is not None and before["map_overall"] is not None:
            delta = now["map_overall"] - before["map_overall"]
        latency_delta = None
        if now["end_to_end_p50_ms"] is not None and before["end_to_end_p50_ms"] is not None:
            latency_delta = now["end_to_end_p50_ms"] - before["end_to_end_p50_ms"]
        fixed = before["status"] != STATUS_OK and now["status"] == STATUS_OK
        broke = before["status"] == STATUS_OK and now["status"] != STATUS_OK
        if fixed or (delta is not None and delta > MAP_TOLERANCE):
            better.append(drive)
        elif broke or (delta is not None and delta < -MAP_TOLERANCE):
            worse.append(drive)
        else:
            unchanged.append(drive)
        drives[drive] = {
            "map_overall": [before["map_overall"], now["map_overall"]],
            "map_delta": delta,
            "end_to_end_p50_ms_delta": latency_delta,
            "status": [before["status"], now["status"]],
        }
    map_delta = {
        key: (
            None
            if current["map"][key] is None or baseline["map"][key] is None
            else current["map"][key] - baseline["map"][key]
        )
        for key in MAP_KEYS
    }
    return {
        "results": baseline["results"],
        "map_delta": map_delta,
        "better": better,
        "worse": worse,
        "unchanged": unchanged,
        "only_here": sorted(set(here) - set(there)),
        "only_baseline": sorted(set(there) - set(here)),
        "drives": drives,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_fleet_report(report: Mapping[str, Any]) -> str:
    """The report as text: drives, mAP per condition, latency per stage, baseline changes."""
    drives = report["drives"]
    lines = [
        f"drives {drives['total']}: {drives['ok']} ok, {drives['failed']} failed; "
        f"frames {report['frames']}, dropped {report['dropped']}"
    ]
    for drive, error in report["failed"].items():
        lines.append(f"  failed {drive}: {error}")
    groups = {"all": report["map"], **report["map_by_condition"]}
    lines += ["", "mean per-drive mAP"]
    lines += format_table(
        ["condition", *MAP_KEYS],
        [[name, *(_fmt(values[k]) for k in MAP_KEYS)] for name, values in groups.items()],
        numbers_right=True,
    ).splitlines()
    lines += ["", "latency over all frames"]
    lines += format_table(
        ["stage", "frames", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        [
            [stage, str(int(row["frames"])), *(_fmt(row[k], 2) for k in PERCENTILE_KEYS)]
            for stage, row in report["latency"].items()
        ],
        numbers_right=True,
    ).splitlines()
    diff = report.get("baseline")
    if diff is not None:
        lines += [
            "",
            f"against {diff['results']}: mAP change "
            + ", ".join(f"{k} {_fmt(v, 4)}" for k, v in diff["map_delta"].items()),
        ]
        for title in ("better", "worse"):
            lines.append(f"  {title} ({len(diff[title])}): {', '.join(diff[title]) or '-'}")
        lines.append(f"  unchanged: {len(diff['unchanged'])}")
        if diff["only_here"] or diff["only_baseline"]:
            lines.append(
                f"  only in this run: {', '.join(diff['only_here']) or '-'}; only in the "
                f"baseline: {', '.join(diff['only_baseline']) or '-'}"
            )
    return "\n".join(lines)


def plot_fleet_report(report: Mapping[str, Any], path: Path) -> Path:
    """A PNG: mAP per class (and the baseline's), latency per stage, per-drive mAP change."""
    import matplotlib  # noqa: PLC0415  (only this command draws)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    diff = report.get("baseline")
    panels = 3 if diff is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    ax = axes[0]
    keys = list(MAP_KEYS)
    x = np.arange(len(keys))
    current = [report["map"][k] or 0.0 for k in keys]
    if diff is not None:
        before = [(report["map"][k] or 0.0) - (diff["map_delta"][k] or 0.0) for k in keys]
        ax.bar(x - 0.2, before, 0.4, label="baseline", color="0.6")
        ax.bar(x + 0.2, current, 0.4, label="this run", color="tab:blue")
        ax.legend()
    else:
        ax.bar(x, current, 0.6, color="tab:blue")
    ax.set_xticks(x, keys)
    ax.set_ylabel("mean per-drive mAP")
    ax.set_title(f"mAP ({report['drives']['ok']} drives)")
    ax = axes[1]
    stages = list(report["latency"])
    y = np.arange(len(stages))
    ax.barh(y - 0.2, [report["latency"][s]["p50_ms"] for s in stages], 0.4, label="p50")
    ax.barh(y + 0.2, [report["latency"][s]["p99_ms"] for s in stages], 0.4, label="p99")
    ax.set_yticks(y, stages)
    ax.set_xlabel("ms per frame")
    ax.set_title(f"latency over {report['frames']} frames")
    ax.legend()
    if diff is not None:
        ax = axes[2]
        names = [d for d, v in diff["drives"].items() if v["map_delta"] is not None]
        deltas = [diff["drives"][d]["map_delta"] for d in names]
        colors = ["tab:green" if v > 0 else "tab:red" if v < 0 else "0.6" for v in deltas]
        ax.barh(np.arange(len(names)), deltas, color=colors)
        ax.set_yticks(np.arange(len(names)), names)
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_xlabel("overall mAP change vs baseline")
        ax.set_title(f"{len(diff['better'])} better, {len(diff['worse'])} worse")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
