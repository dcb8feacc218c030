"""Fleet benchmark: drives/hour on a local Ray with 1 vs 2 workers, and Ray's cost per task.

    python benchmarks/fleet_bench.py [PIPELINE.yaml] [--drives 4] [--drive-s 5]

Simulates ``--drives`` drives (``fusionrt.sim``, ``--drive-s`` seconds each, distinct seeds),
then, in one process and with the same pipeline (the file's sinks removed, as the fleet runs
without them):

* ``fusionrt run`` equivalent: :func:`fusionrt.runtime.run_cli.run_pipeline` on each drive in
  this process (after one warm-up run): seconds per drive;
* the fleet on one local Ray started once (2 CPUs): a warm-up run (starts two workers), then
  every drive with 1 worker (a task takes both CPUs) and with 2 workers (one CPU each),
  alternating ``--repeats`` times, the best of each timed as a whole ``run_fleet`` call
  (engine preparation, tasks, Parquet writes);
* the overhead per task: the 1-worker fleet's seconds per drive minus the in-process seconds
  per drive; and the fixed cost of a ``run_fleet`` call on a connected Ray (one drive).

Writes ``benchmarks/results/fleet_bench.json``. The machine has 2 cores shared with other
work, so the scaling ratio is at most 2 and noisy; the figures are ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported

import ray

from fusionrt.fleet.drives import drive_ids
from fusionrt.fleet.runner import FleetOptions, run_fleet
from fusionrt.fleet.task import PipelineSpec
from fusionrt.runtime.pipeline import RunOptions
from fusionrt.runtime.registry import Registry
from fusionrt.runtime.run_cli import run_pipeline
from fusionrt.sim.config import SimConfig
from fusionrt.sim.recorder import record_drive

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CPUS = 2


def make_drives(root: Path, count: int, drive_s: float) -> list[Path]:
    paths = []
    for index in range(count):
        config = SimConfig(
            duration_s=drive_s, seed=100 + index, camera_width=480, camera_height=270
        )
        record_drive(config, root / f"drive_{index}", overwrite=True, workers=1)
        paths.append(root / f"drive_{index}")
    return paths


def fleet_wall_s(
    spec: PipelineSpec, drives: list[Path], out: Path, cpus_per_task: float
) -> tuple[float, int]:
    options = FleetOptions(out_dir=out, cpus_per_task=cpus_per_task, force=True, progress=False)
    started = time.perf_counter()
    outcome = run_fleet(spec, drive_ids(drives), options)
    wall = time.perf_counter() - started
    if outcome.failed:
        raise SystemExit(f"fleet run failed: {outcome.failed}")
    return wall, outcome.frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "pipeline", type=Path, nargs="?", default=ROOT / "examples/pipelines/sample.yaml"
    )
    parser.add_argument("--drives", type=int, default=4)
    parser.add_argument("--drive-s", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting (best)")
    parser.add_argument("--json", type=Path, default=RESULTS / "fleet_bench.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fleet_bench_"))
    data = yaml.safe_load(args.pipeline.read_text())
    data["sinks"] = []
    pipeline = work / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(data, sort_keys=False))
    spec = PipelineSpec.load(pipeline)
    started = time.perf_counter()
    drives = make_drives(work / "drives", args.drives, args.drive_s)
    sim_s = time.perf_counter() - started

    def run_alone(drive: Path) -> float:
        t0 = time.perf_counter()
        run_pipeline(pipeline, drive, RunOptions(out_dir=work / "alone"), Registry.create())
        return time.perf_counter() - t0

    run_alone(drives[0])  # warm-up: imports, model, engine
    alone = [run_alone(d) for d in drives]
    alone_per_drive = statistics.mean(alone)

    ray.init(num_cpus=CPUS, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        fleet_wall_s(spec, drives[:2], work / "warmup", 1)  # starts and warms two workers
        one_drive_wall, _ = fleet_wall_s(spec, drives[:1], work / "single", CPUS)
        walls: dict[float, list[float]] = {CPUS: [], 1: []}
        for _ in range(args.repeats):  # alternate, so drift in the machine's load hits both
            for cpus_per_task, runs in walls.items():
                wall, frames = fleet_wall_s(spec, drives, work / "fleet", cpus_per_task)
                runs.append(wall)
        one_worker_wall, two_worker_wall = min(walls[CPUS]), min(walls[1])
    finally:
        ray.shutdown()

    def per_hour(wall: float) -> float:
        return round(len(drives) * 3600.0 / wall, 1)

    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "ray": ray.__version__,
        },
        "pipeline": str(
            args.pipeline.relative_to(ROOT) if args.pipeline.is_relative_to(ROOT) else args.pipeline
        ),
        "drives": len(drives),
        "drive_s": args.drive_s,
        "frames": frames,
        "simulation_s": round(sim_s, 2),
        "fusionrt_run_in_process_s_per_drive": round(alone_per_drive, 3),
        "fleet_1_worker": {
            "wall_s": round(one_worker_wall, 3),
            "runs_wall_s": [round(w, 3) for w in walls[CPUS]],
            "drives_per_hour": per_hour(one_worker_wall),
        },
        "fleet_2_workers": {
            "wall_s": round(two_worker_wall, 3),
            "runs_wall_s": [round(w, 3) for w in walls[1]],
            "drives_per_hour": per_hour(two_worker_wall),
        },
        "scaling_ratio_2_vs_1": round(one_worker_wall / two_worker_wall, 3),
        "ray_overhead_per_task_s": round(one_worker_wall / len(drives) - alone_per_drive, 3),
        "ray_overhead_per_task_ratio": round(one_worker_wall / len(drives) / alone_per_drive, 3),
        "fleet_call_one_drive_s": round(one_drive_wall, 3),
        "fleet_call_fixed_cost_s": round(one_drive_wall - alone[0], 3),
        "notes": (
            "local Ray, 2 CPUs shared with other work; 1 worker = cpus_per_task 2, 2 workers = "
            "cpus_per_task 1; fleet timings are whole run_fleet calls on a started, warm Ray "
            "(engine preparation per node, tasks, Parquet writes); the in-process run uses the "
            "same pipeline without sinks"
        ),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
