"""The evaluation summary: shipped model, single-sensor baselines and comparisons → one JSON
and the markdown tables of ``docs/model.md``.

Run: ``python -m fusionrt.plugins.models.reference.eval.report --runs RUNS --out
benchmarks/results/model_eval.json`` where RUNS holds the ``fusionrt eval`` outputs
``eval_fused.json`` (shipped model, full ablation), ``eval_only-{camera,lidar,radar}.json``
(single-sensor baselines) and ``eval_short-{concat,gated,wide}.json`` (short-schedule
comparisons), with each run's training log ``NAME.log.json`` and cost ``NAME.cost.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

CONDITIONS = ("clear", "fog", "night", "rain", "sensor_failure")
SENSORS = ("camera", "lidar", "radar")


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _by_condition(result: dict[str, Any]) -> dict[str, float | None]:
    row = {c: result["conditions"].get(c, {}).get("map", {}).get("overall") for c in CONDITIONS}
    return {"overall": result["map"]["overall"], **row}


def combine(runs: Path) -> dict[str, Any]:
    """The summary JSON of the runs in ``runs`` (see the module docstring)."""
    fused = _load(runs / "eval_fused.json")
    if fused is None:
        raise FileNotFoundError(runs / "eval_fused.json")
    summary: dict[str, Any] = {
        "drives": fused["drives"],
        "frames": fused["frames"],
        "shipped": {
            k: fused[k]
            for k in (
                "map",
                "ap",
                "operating_point",
                "conditions",
                "ablation",
                "ablation_by_condition",
            )
            if k in fused
        },
        "map": fused["map"],
        "ablation": fused["ablation"],
        "baselines": {},
        "comparisons": {},
    }
    for sensor in SENSORS:
        result = _load(runs / f"eval_only-{sensor}.json")
        if result is not None:
            summary["baselines"][sensor] = {
                **_by_condition(result),
                "train": _load(runs / f"only-{sensor}.log.json") or {},
            }
    for variant in ("short-concat", "short-gated", "short-wide"):
        result = _load(runs / f"eval_{variant}.json")
        if result is not None:
            log = _load(runs / f"{variant}.log.json") or {}
            summary["comparisons"][variant] = {
                **_by_condition(result),
                "cost": _load(runs / f"{variant}.cost.json") or {},
                "train_steps": log.get("steps"),
                "train_wall_s": log.get("wall_s"),
            }
    return summary


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _header(first: str, extra: tuple[str, ...] = ()) -> list[str]:
    columns = (first, "overall", *CONDITIONS, *extra)
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _cells(row: dict[str, Any]) -> list[str]:
    return [_fmt(row.get("overall"))] + [_fmt(row.get(c)) for c in CONDITIONS]


def markdown(summary: dict[str, Any]) -> str:
    """The ablation, baseline and comparison tables as markdown (mAP)."""
    lines = _header("modalities kept (shipped model)")
    for name, row in summary["shipped"]["ablation_by_condition"].items():
        lines.append(f"| {name} | " + " | ".join(_cells(row)) + " |")
    if summary["baselines"]:
        lines += ["", *_header("single-sensor model (trained alone)")]
        for sensor, row in summary["baselines"].items():
            lines.append(f"| {sensor} only | " + " | ".join(_cells(row)) + " |")
    if summary["comparisons"]:
        lines += ["", *_header("short schedule, all modalities", ("params", "GFLOPs"))]
        for name, row in summary["comparisons"].items():
            cost = row.get("cost", {})
            flops = cost.get("flops")
            cells = [*_cells(row), str(cost.get("params", "–"))]
            cells.append("–" if flops is None else f"{flops / 1e9:.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary = combine(args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
