"""The fusion comparison: single sensors, decision level, feature level, and the text experiment
→ one JSON and the markdown tables of ``docs/model.md`` and the README.

Run: ``python -m fusionrt.plugins.models.reference.eval.comparison --runs RUNS --bench
benchmarks/results/fusion_bench.json --out benchmarks/results/fusion_comparison.json``.

RUNS holds the ``fusionrt eval`` outputs, each over the eleven standard held-out drives
(``eval_standard*.json``) and over the six held-out degraded-sensor drives
(``eval_degraded*.json``):

* ``eval_{standard,degraded}.json`` — the shipped fused model (concat, seed 0) with its
  ablation, the decision level over the shipped single-sensor models (seed 0), and
  ``--compare`` networks named ``attention-s0``, ``gated-s0``...;
* ``eval_{standard,degraded}_decision-sN.json`` — the decision level over the three
  single-sensor models of seed N (``--decision-onnx``, with their own ``--calibration``);
* ``eval_{standard,degraded}_*.json`` — any pass's ``--compare`` networks (``concat-s1``...)
  join the table; a name's ``-sN`` suffix is its seed, so ``concat-s1`` and ``concat-s2``
  are two runs of one row, ``feature concat``, beside the shipped model's;
* ``eval_{standard,degraded}_text.json`` — the text experiment's model (trained with
  degraded drives in the mix) with its ablation (``all`` vs ``all-but-text``).

Rows with several seeds give mean ± sample standard deviation. Costs come from
``fusion_bench.json`` (median ms per frame, ONNX Runtime, one thread).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path
from typing import Any

CONDITIONS = ("clear", "fog", "night", "rain", "sensor_failure")
DEGRADED = ("lidar", "radar", "camera")
COLUMNS = ("overall", *CONDITIONS, "degraded", *(f"degraded-{s}" for s in DEGRADED))
#: Each row's cost in ``fusion_bench.json`` (its ``per_frame_ms``, else a timing's median).
COST_KEYS = {
    "lidar": "decision.lidar_model",
    "camera": "decision.camera_model",
    "radar": "decision.radar_model",
    "decision wbf": "decision_level_total.wbf",
    "decision probabilistic": "decision_level_total.probabilistic",
    "feature concat": "feature.concat",
    "feature gated": "feature.gated-s0",
    "feature attention": "feature.attention-s0",
}


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _row(standard: dict[str, Any] | None, degraded: dict[str, Any] | None) -> dict[str, Any]:
    """One run's mAP per column from its by-condition dicts (standard and degraded drives)."""
    row: dict[str, Any] = {}
    if standard is not None:
        row["overall"] = standard.get("overall")
        row |= {c: standard.get(c) for c in CONDITIONS}
    if degraded is not None:
        row["degraded"] = degraded.get("overall")
        row |= {f"degraded-{s}": degraded.get(f"degraded-{s}") for s in DEGRADED}
    return row


def _main_by_condition(result: dict[str, Any]) -> dict[str, Any]:
    by = {g: r["map"]["overall"] for g, r in result["conditions"].items()}
    return {"overall": result["map"]["overall"], **by}


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation per column over runs (seeds)."""
    out: dict[str, Any] = {"seeds": len(rows), "mean": {}, "std": {}}
    for column in COLUMNS:
        values = [r[column] for r in rows if r.get(column) is not None]
        if values:
            out["mean"][column] = round(statistics.fmean(values), 4)
            out["std"][column] = round(statistics.stdev(values), 4) if len(values) > 1 else None
    return out


def combine(runs: Path, bench: Path | None = None) -> dict[str, Any]:
    """The comparison JSON of the runs in ``runs`` (see the module docstring)."""
    std, deg = _load(runs / "eval_standard.json"), _load(runs / "eval_degraded.json")
    if std is None or deg is None:
        raise FileNotFoundError(runs / "eval_standard.json / eval_degraded.json")
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(name: str, standard: Any, degraded: Any) -> None:
        rows.setdefault(name, []).append(_row(standard, degraded))

    passes = {"": (std, deg)}
    for path in sorted(runs.glob("eval_standard_*.json")):
        other = _load(runs / path.name.replace("_standard_", "_degraded_"))
        if other is not None:
            passes[path.stem.removeprefix("eval_standard_")] = (_load(path) or {}, other)
    for name, (s, d) in passes.items():
        if name != "" and not re.fullmatch(r"decision-s\d+", name):
            continue
        for sensor in ("lidar", "camera", "radar"):
            add(
                sensor,
                s["single_sensor_by_condition"][sensor],
                d["single_sensor_by_condition"][sensor],
            )
        for fuser in ("wbf", "probabilistic"):
            add(
                f"decision {fuser}",
                s["decision_level_by_condition"][fuser],
                d["decision_level_by_condition"][fuser],
            )
    add("feature concat", _main_by_condition(std), _main_by_condition(deg))
    compared_std: dict[str, Any] = {}
    compared_deg: dict[str, Any] = {}
    for s, d in passes.values():
        compared_std |= s.get("compare_by_condition", {})
        compared_deg |= d.get("compare_by_condition", {})
    for name in sorted(compared_std):
        kind = re.sub(r"-s\d+$", "", name)
        add(f"feature {kind}", compared_std[name], compared_deg.get(name))
    measured = (_load(bench) or {}) if bench is not None else {}
    cost = {k: t["median_ms"] for k, t in measured.get("timings", {}).items()}
    cost |= measured.get("per_frame_ms", {})
    costs = {row: cost.get(key) for row, key in COST_KEYS.items()}
    summary: dict[str, Any] = {
        "standard_drives": std["drives"],
        "degraded_drives": deg["drives"],
        "frames": {"standard": std["frames"], "degraded": deg["frames"]},
        "rows": {
            name: {**_stats(r), "runs": r, "ms_per_frame": costs.get(name)}
            for name, r in rows.items()
        },
        "shipped_ablation": {
            "standard": std["ablation_by_condition"],
            "degraded": deg["ablation_by_condition"],
        },
    }
    text_std, text_deg = (
        _load(runs / "eval_standard_text.json"),
        _load(runs / "eval_degraded_text.json"),
    )
    if text_std is not None and text_deg is not None:
        summary["text"] = {
            variant: _row(
                text_std["ablation_by_condition"][variant],
                text_deg["ablation_by_condition"][variant],
            )
            for variant in ("all", "all-but-text")
        }
        summary["text"]["shipped_all"] = _row(
            std["ablation_by_condition"]["all"], deg["ablation_by_condition"]["all"]
        )
        summary["text"]["shipped_all-but-text"] = _row(
            std["ablation_by_condition"]["all-but-text"],
            deg["ablation_by_condition"]["all-but-text"],
        )
    return summary


def _fmt(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def markdown(summary: dict[str, Any]) -> str:
    """The comparison table and the text experiment table (mAP)."""
    head = ("run", "seeds", *COLUMNS, "ms/frame")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in summary["rows"].items():
        cells = [_fmt(row["mean"].get(c), row["std"].get(c)) for c in COLUMNS]
        ms = row.get("ms_per_frame")
        lines.append(
            f"| {name} | {row['seeds']} | "
            + " | ".join(cells)
            + f" | {'–' if ms is None else f'{ms:.1f}'} |"
        )
    if "text" in summary:
        head = ("model, modalities", *COLUMNS)
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        names = {
            "all": "text model, all",
            "all-but-text": "text model, text masked",
            "shipped_all": "shipped model, all",
            "shipped_all-but-text": "shipped model, text masked",
        }
        for key, label in names.items():
            row = summary["text"][key]
            lines.append(f"| {label} | " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--bench", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary = combine(args.runs, args.bench)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
