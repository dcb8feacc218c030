"""Lidar preprocess (BEV rasterisation) for 30k / 120k / 300k points, against a memory copy.

The clouds are built from the real KITTI scan 000001 (120 268 points, tests/data/real): the
first 30 000 of its points, the whole scan, and the scan repeated 2.5 times with its copies
shifted by whole metres (300 670 points). Each is a ``sensor_msgs/msg/PointCloud2`` in KITTI's
layout (x, y, z, intensity float32, 16 bytes per point). In one run, round-robin so that machine
load hits all alike, per size:

* ``copy``: ``np.copy`` of the message's point buffer (N × 16 bytes) — the memory-bandwidth
  floor that any pass over the points pays;
* ``preprocess``: ``LidarSensor.preprocess`` on the decoded message with the default BEV grid
  (160 × 160 cells, 7 channels) and a rig (lidar 1.73 m above the ego origin, a vehicle box):
  transform, ego-box removal, NaN drop, rasterisation. ``ratio_to_copy`` = its median / the
  median of ``copy`` (``ratio_to_copy_of_minima``: the same for the fastest runs, which a busy
  machine disturbs least);
* ``decode``: ``LidarSensor.decode`` of the CDR bytes (a zero-copy view);
* ``preprocess_compensated`` (in a second round, so that its larger memory traffic does not
  disturb the figures above; ``preprocess`` is timed again beside it): the same cloud with a
  per-point ``time`` field (one 100 ms sweep, by azimuth; the points in KITTI's ring-by-ring
  order) and ego poses, so that every point is motion-compensated by
  ``fusionrt.runtime.sync.compensate_points`` (times rounded to 1 ms) before rasterisation;
  ``compensated_ratio_to_preprocess`` = its median / the median of that round's
  ``preprocess`` (``..._of_minima``: the same for the fastest runs).

Each figure is the median (and p90, min) of ``--repeat`` timed iterations after warm-up. On a
shared machine, ``OPENBLAS_NUM_THREADS=1`` keeps BLAS threads from waiting on busy cores (a
pipeline's preprocess workers are one thread each anyway); the JSON records it and the load.

    python benchmarks/lidar_bench.py [--repeat 100] [--out benchmarks/results/lidar_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from timing import time_interleaved

from fusionrt import RawRecord
from fusionrt.calibration import Rig, SensorCalibration, Transform
from fusionrt.plugins.sensors.lidar import MSGTYPE_POINTCLOUD2, LidarSensor, read_points
from fusionrt.plugins.sensors.pointcloud2 import encode_pointcloud2
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.sensor import PreprocessContext

ROOT = Path(__file__).resolve().parents[1]
KITTI_SCAN = ROOT / "tests/data/real/kitti/training/velodyne/000001.bin"
SIZES = {"30k": 30_000, "120k": 120_268, "300k": 300_670}
STAMP_NS = 1_000_000_000


def _cloud(scan: np.ndarray, count: int) -> np.ndarray:
    """``count`` points: the scan's first points, or whole copies shifted by 1 m steps."""
    copies = -(-count // len(scan))
    tiles = []
    for k in range(copies):
        tile = scan.copy()
        tile["x"] += k
        tile["y"] -= k
        tiles.append(tile)
    return np.concatenate(tiles)[:count]


def _timed_cloud(points: np.ndarray) -> np.ndarray:
    """The same points with a float32 ``time`` field: one 100 ms sweep by azimuth."""
    timed = np.zeros(len(points), [(*f, "<f4") for f in (("x",), ("y",), ("z",))]
                     + [("intensity", "<f4"), ("time", "<f4")])  # fmt: skip
    for name in ("x", "y", "z", "intensity"):
        timed[name] = points[name]
    azimuth = np.arctan2(points["y"], points["x"]) + np.pi
    timed["time"] = azimuth / (2 * np.pi) * 0.1
    return timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/lidar_bench.json")
    args = parser.parse_args(argv)

    scan = read_points(KITTI_SCAN)
    rig = Rig(
        "ego",
        [SensorCalibration("lidar", "lidar", Transform(translation=(0.0, 0.0, 1.73)))],
        vehicle_box=((-1.0, -0.9, 0.0), (3.7, 0.9, 1.6)),
    )
    pose_stamps = STAMP_NS + np.array([-100_000_000, 0, 100_000_000, 200_000_000])
    poses = np.repeat(np.eye(4)[None], 4, axis=0)
    poses[:, 0, 3] = (pose_stamps - STAMP_NS) * 1e-9 * 10.0  # 10 m/s straight ahead
    context = PreprocessContext(geometry=ModelGeometry(), rig=rig, sensor_names=("lidar",))
    compensating = PreprocessContext(
        geometry=ModelGeometry(),
        rig=rig,
        sensor_names=("lidar",),
        ego_poses=(pose_stamps, poses),
        reference_stamp_ns=STAMP_NS + 50_000_000,
    )
    sensor = LidarSensor()
    funcs: dict[str, Callable[[], object]] = {}
    compensated: dict[str, Callable[[], object]] = {}
    for size, count in SIZES.items():
        points = _cloud(scan, count)
        record = RawRecord("/velodyne", 0, encode_pointcloud2(points, "lidar", STAMP_NS),
                           MSGTYPE_POINTCLOUD2)  # fmt: skip
        message = sensor.decode(record)
        point_bytes = np.frombuffer(message.payload, np.uint8)
        timed_record = RawRecord("/velodyne", 0, encode_pointcloud2(
            _timed_cloud(points), "lidar", STAMP_NS), MSGTYPE_POINTCLOUD2)  # fmt: skip
        timed_message = sensor.decode(timed_record)
        raster = sensor.preprocess(message, context)["lidar_bev"]
        assert raster.shape == (7, 160, 160) and np.isfinite(raster).all()
        funcs[f"{size}.copy"] = lambda b=point_bytes: np.copy(b)
        funcs[f"{size}.preprocess"] = lambda m=message: sensor.preprocess(m, context)
        funcs[f"{size}.decode"] = lambda r=record: sensor.decode(r)
        compensated[f"{size}.preprocess_beside"] = funcs[f"{size}.preprocess"]
        compensated[f"{size}.preprocess_compensated"] = lambda m=timed_message: sensor.preprocess(
            m, compensating
        )
    timed = time_interleaved(funcs, args.repeat)
    timed.update(time_interleaved(compensated, max(10, args.repeat // 2)))

    results: dict[str, dict[str, object]] = {}
    for size, count in SIZES.items():
        floor = timed[f"{size}.copy"]["median_ms"]
        results[size] = {
            "points": count,
            "point_bytes": count * 16,
            "copy": timed[f"{size}.copy"],
            "preprocess": timed[f"{size}.preprocess"],
            "ratio_to_copy": round(timed[f"{size}.preprocess"]["median_ms"] / floor, 2),
            "ratio_to_copy_of_minima": round(
                timed[f"{size}.preprocess"]["min_ms"] / timed[f"{size}.copy"]["min_ms"], 2
            ),
            "decode": timed[f"{size}.decode"],
            "preprocess_compensated": timed[f"{size}.preprocess_compensated"],
            "compensated_ratio_to_copy": round(
                timed[f"{size}.preprocess_compensated"]["median_ms"] / floor, 2
            ),
            "preprocess_beside_compensated": timed[f"{size}.preprocess_beside"],
            "compensated_ratio_to_preprocess": round(
                timed[f"{size}.preprocess_compensated"]["median_ms"]
                / timed[f"{size}.preprocess_beside"]["median_ms"],
                2,
            ),
            "compensated_ratio_to_preprocess_of_minima": round(
                timed[f"{size}.preprocess_compensated"]["min_ms"]
                / timed[f"{size}.preprocess_beside"]["min_ms"],
                2,
            ),
        }
    report = {
        "benchmark": "lidar preprocess (PointCloud2 -> 7x160x160 BEV) vs np.copy of the points",
        "command": (
            f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} "
            if "OPENBLAS_NUM_THREADS" in os.environ
            else ""
        )
        + "python benchmarks/lidar_bench.py"
        + (f" --repeat {args.repeat}" if args.repeat != 100 else ""),
        "input": f"{KITTI_SCAN.relative_to(ROOT)} (first 30k / whole / 2.5 shifted copies)",
        "grid": "x -20..60, y -40..40, z -2..4 m, 0.5 m, 4 height slices",
        "target": "ratio_to_copy <= 20 and compensated_ratio_to_preprocess <= 2 at 120k points",
        "repeat": args.repeat,
        "results": results,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
            "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "load_average": [round(v, 2) for v in os.getloadavg()],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for size, figures in results.items():
        print(
            f"{size:>5}: preprocess {figures['preprocess']['median_ms']:7.3f} ms  "  # type: ignore[index]
            f"copy {figures['copy']['median_ms']:6.3f} ms  ×{figures['ratio_to_copy']}  "  # type: ignore[index]
            f"decode {figures['decode']['median_ms']:6.3f} ms  "  # type: ignore[index]
            f"compensated {figures['preprocess_compensated']['median_ms']:7.3f} ms "  # type: ignore[index]
            f"×{figures['compensated_ratio_to_preprocess']} of preprocess"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
