"""Start-up time of the ``fusionrt`` command: ``--version``, ``--help`` and ``plugins``.

Each command runs as the ``fusionrt`` console script does (``from fusionrt.runtime.cli import
main``) in a fresh interpreter, ``--repeat`` times, round-robin with two baselines (the bare
interpreter and ``import fusionrt``) so that machine load hits all alike; figures are the
median and minimum wall time of the whole process. ``--repeat`` more runs of each under
``python -X importtime`` count the modules it imports and name the top-level imports that
cost the most (the least of the runs): what is left to trim.

    python benchmarks/startup_bench.py [--repeat 5] [--out benchmarks/results/startup_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = "import sys; from fusionrt.runtime.cli import main; sys.exit(main())"
COMMANDS: dict[str, list[str]] = {
    "python": ["-c", "pass"],
    "import fusionrt": ["-c", "import fusionrt"],
    "fusionrt --version": ["-c", CONSOLE_SCRIPT, "--version"],
    "fusionrt --help": ["-c", CONSOLE_SCRIPT, "--help"],
    "fusionrt plugins": ["-c", CONSOLE_SCRIPT, "plugins"],
}
TARGETS_S = {"fusionrt --version": 0.15, "fusionrt plugins": 0.35}
TOP_IMPORTS = 8


def _wall_s(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def import_profile(args: list[str], runs: int) -> dict[str, object]:
    """Modules imported by a run, and the top-level imports with the largest cumulative time,
    the least of ``runs`` runs each (``-X importtime`` lines:
    ``import time: self | cumulative | name``)."""
    best: dict[str, int] = {}
    count = 0
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", *args],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
        count = len(lines) - 1  # less the header line
        for line in lines[1:]:
            _, cumulative, name = line[len("import time:") :].split("|")
            if not name.startswith("  "):  # one space of padding: a top-level import
                best[name.strip()] = min(best.get(name.strip(), 1 << 62), int(cumulative))
    top = sorted(best.items(), key=lambda item: -item[1])[:TOP_IMPORTS]
    return {"modules": count, "top_level_ms": {name: round(us / 1000, 1) for name, us in top}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/startup_bench.json")
    args = parser.parse_args(argv)

    for command in COMMANDS.values():  # warm the file cache
        _wall_s(command)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            samples[name].append(_wall_s(command))
    results: dict[str, dict[str, object]] = {}
    for name, command in COMMANDS.items():
        median = statistics.median(samples[name])
        figures: dict[str, object] = {
            "median_s": round(median, 3),
            "min_s": round(min(samples[name]), 3),
            **import_profile(command, args.repeat),
        }
        if name in TARGETS_S:
            figures["target_s"] = TARGETS_S[name]
            figures["meets_target"] = median <= TARGETS_S[name]
        results[name] = figures
    report = {
        "benchmark": "wall time of fusionrt commands in a fresh interpreter (median of runs)",
        "command": "python benchmarks/startup_bench.py"
        + (f" --repeat {args.repeat}" if args.repeat != 5 else ""),
        "repeat": args.repeat,
        "results": results,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in results.items():
        target = f"  (target {figures['target_s']} s)" if "target_s" in figures else ""
        print(
            f"{name:>20}: {figures['median_s']:.3f} s median, {figures['min_s']:.3f} s min, "
            f"{figures['modules']} modules{target}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
