"""INT8 vs FP32 on the shipped reference model, in one run: accuracy, latency, where time goes.

    python benchmarks/int8_bench.py [--explore] [--frames 64] [--stride 3] [--repeat 300]
                                    [--out benchmarks/results/int8_bench.json]

1. **Drives** (simulated by ``fusionrt sim`` when missing, under ``$FUSIONRT_CACHE/drives``,
   default ``~/.cache/fusionrt/drives``, never in the repository): the eleven held-out
   evaluation drives of the model card (seeds 2000–2010, ``fusionrt train data --evaluation``)
   and one calibration drive, seed 3000, clear, 20 s. Seed 3000 is neither a training seed
   (1000–1039) nor an evaluation seed, and the drive has the sensors the model was trained on
   (32-beam lidar, 960×540 camera); the bundled ``examples/drives/sample`` has a 16-beam,
   200-column lidar and a 480×270 camera, off the training distribution (``--explore``
   measures what calibrating on it costs).
2. **Calibration** frames: the calibration drive through ``examples/pipelines/sample.yaml``
   (:func:`~fusionrt.runtime.engines.calibration_feeds.feeds_from_drive`, exactly what
   ``fusionrt quantize --drive`` does), every ``--stride``-th frame, ``--frames`` of them.
3. **Quantise** (:func:`~fusionrt.runtime.engines.int8.quantize_int8`): percentile
   calibration, per-channel weights, the two 1×1 output convolutions (heatmap, regression) in
   float; ``trt_support.check_onnx`` on the result.
4. **mAP** FP32 vs INT8 with ``fusionrt eval``'s own code (``evaluate(..., onnx_path=...)``,
   all modalities) on the held-out drives.
5. **Latency** under ONNX Runtime (``OnnxRuntimeEngine``, the runtime's session options)
   FP32 vs INT8 with 1 thread and with the default thread count, and PyTorch eager with 1
   thread; each set timed round-robin by ``timing.time_interleaved`` on 8 rotating calibration
   frames; p50 / p90 / p99 per configuration.
6. **Profile** (ONNX Runtime's per-node profiler, 1 thread): milliseconds per operator type,
   the camera lift (GridSample, masking, mean over heights, pooling), and the INT8 floor: the
   float lift plus the int8 convolutions, i.e. the ratio INT8 could not beat even with every
   Q/DQ and pointwise op free.
7. ``--explore`` (≈ 10 more minutes): variants of the quantisation (calibration method,
   per-tensor weights, which layers stay float, more operator types with Q/DQ, ONNX Runtime
   quantiser options, calibration on the bundled drive), each with mAP and the 1-thread ratio.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_name, package_version
from timing import summarise, time_interleaved

from fusionrt.plugins.models.reference.eval.cli import evaluate
from fusionrt.plugins.models.reference.model import ONNX_PATH, ReferenceModel
from fusionrt.plugins.models.reference.train.data import (
    DEFAULT_CACHE,
    DrivePlan,
    evaluation_plans,
    simulate,
)
from fusionrt.runtime.engines.base import Engine
from fusionrt.runtime.engines.calibration_feeds import feeds_from_drive
from fusionrt.runtime.engines.int8 import QUANTIZED_OPS, quantize_int8
from fusionrt.runtime.engines.onnxruntime import (
    OnnxRuntimeEngine,
    default_thread_count,
    session_options,
)
from fusionrt.runtime.engines.trt_support import check_onnx
from fusionrt.runtime.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "int8_bench.json"
PIPELINE = ROOT / "examples" / "pipelines" / "sample.yaml"
SAMPLE_DRIVE = ROOT / "examples" / "drives" / "sample"
CALIBRATION_PLAN = DrivePlan(3000, "clear")
ALL_MODALITIES = "camera,lidar,radar,text"
#: The 1×1 output convolutions: quantising them costs more than a point of mAP (``--explore``).
OUTPUT_LAYERS = ("/network/heatmap", "/network/regression")
#: The camera → BEV lift: GridSample at the lift table, validity mask, mean over the heights,
#: and the pooling to the 64² grid. ONNX Runtime has no int8 kernel for GridSample or ReduceSum.
LIFT_NODES = ("/network/lift/", "/network/camera_bev/camera_bev.0/")
AIM_LATENCY_RATIO = 0.6
AIM_MAP_DROP_POINTS = 1.0


@dataclass(frozen=True)
class Variant:
    """One way to quantise the model (``quantize_int8`` keyword arguments)."""

    name: str
    note: str
    keep_float: tuple[str, ...] = OUTPUT_LAYERS
    method: str = "percentile"
    per_channel: bool = True
    op_types: tuple[str, ...] = QUANTIZED_OPS
    route_float_consumers: bool = True
    extra_options: Mapping[str, Any] = field(default_factory=dict)
    calibration: str = "simulated"

    def quantise(self, feeds: Sequence[Mapping[str, np.ndarray]], out: Path) -> dict:
        report = quantize_int8(
            ONNX_PATH,
            out,
            feeds,
            keep_float=self.keep_float,
            method=self.method,  # type: ignore[arg-type]  # one of CALIBRATION_METHODS
            per_channel=self.per_channel,
            op_types=self.op_types,
            route_float_consumers=self.route_float_consumers,
            extra_options=self.extra_options,
        )
        return {
            "method": report.method,
            "per_channel": self.per_channel,
            "op_types": list(self.op_types),
            "keep_float": list(self.keep_float),
            "float_nodes": list(report.float_nodes),
            "int8_compute_nodes": report.quantized_nodes,
            "qdq_pairs": report.qdq_pairs,
            "rerouted_inputs": report.rerouted_inputs,
            "extra_options": dict(self.extra_options),
            "trt_check_ok": check_onnx(out).ok,
        }


CHOSEN = Variant("chosen", "percentile, per-channel, output convs float, float consumers routed")
EXPLORE = (
    Variant("minmax", "min/max calibration", method="minmax"),
    Variant("entropy", "entropy (KL) calibration", method="entropy"),
    Variant("per-tensor", "per-tensor weights", per_channel=False),
    Variant("output-convs-int8", "heatmap/regression convs int8 too", keep_float=()),
    Variant(
        "head-float", "whole head float (head.0 too)", keep_float=(*OUTPUT_LAYERS, "/network/head")
    ),
    Variant(
        "+resize-pool",
        "Q/DQ on Resize and AveragePool too",
        op_types=(*QUANTIZED_OPS, "Resize", "AveragePool"),
    ),
    Variant(
        "+add-mul-concat",
        "Q/DQ on Add, Mul and Concat too (the lift's Mul included)",
        op_types=(*QUANTIZED_OPS, "Add", "Mul", "Concat"),
    ),
    Variant(
        "shared-qdq", "no routing: a float Add shares the Conv's DQ", route_float_consumers=False
    ),
    Variant(
        "dedicated-qdq",
        "no routing, ORT's DedicatedQDQPair instead",
        route_float_consumers=False,
        extra_options={"DedicatedQDQPair": True},
    ),
    Variant(
        "inputs-only",
        "Q/DQ on conv inputs only (NVIDIA's usual placement)",
        extra_options={"OpTypesToExcludeOutputQuantization": list(QUANTIZED_OPS)},
    ),
    Variant("sample-drive", "calibrated on the bundled 16-beam sample drive", calibration="sample"),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_drives(cache: Path) -> tuple[list[Path], Path]:
    """The held-out evaluation drives and the calibration drive (simulated when missing)."""
    drives_dir = cache / "drives"
    paths = []
    for plan in [*evaluation_plans(), CALIBRATION_PLAN]:
        if not (drives_dir / plan.name / "drive.yaml").is_file():
            log(f"simulating {plan.name} ...")
        paths.append(simulate(plan, drives_dir, workers=default_thread_count()))
    return paths[:-1], paths[-1]


def mean_average_precision(onnx_path: Path, drives: list[Path]) -> dict:
    """``fusionrt eval --onnx PATH --modalities camera,lidar,radar,text`` on ``drives``."""
    result = evaluate(drives, ALL_MODALITIES, "onnxruntime", onnx_path, quiet=True)
    conditions: dict[str, Any] = result["conditions"]  # type: ignore[assignment]
    return {
        "map": result["map"],
        "frames": result["frames"],
        "conditions": {name: c["map"]["overall"] for name, c in conditions.items()},
    }


class TimedCalls:
    """``engine.infer`` on rotating frames, keeping every call's duration (for the p99)."""

    def __init__(self, engine: Engine, feeds: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.engine, self.feeds = engine, feeds
        self.samples_ms: list[float] = []

    def __call__(self) -> None:
        feed = self.feeds[len(self.samples_ms) % len(self.feeds)]
        start = time.perf_counter()
        self.engine.infer(feed)
        self.samples_ms.append((time.perf_counter() - start) * 1e3)


def time_engines(
    engines: Mapping[str, Engine], feeds: Sequence[Mapping[str, np.ndarray]], repeat: int
) -> dict[str, dict[str, float]]:
    """p50 / p90 / min (``timing.summarise``) and p99 of each engine, timed round-robin."""
    warmup = 5
    calls = {name: TimedCalls(engine, feeds) for name, engine in engines.items()}
    time_interleaved(dict(calls), repeat=repeat, warmup=warmup)
    rows = {}
    for name, timed in calls.items():
        samples = sorted(timed.samples_ms[warmup:])
        row = summarise(samples)
        row["p99_ms"] = round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 4)
        row["samples"] = len(samples)
        rows[name] = row
    return rows


def profile_by_op(
    onnx_path: Path, feeds: Sequence[Mapping[str, np.ndarray]], workdir: Path
) -> dict:
    """Median per-node kernel time over 40 runs (1 thread), summed per operator type."""
    import onnxruntime as ort

    options = session_options(1)
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / f"profile-{onnx_path.stem}")
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    runs = 40
    for index in range(runs + 5):
        session.run(None, dict(feeds[index % len(feeds)]))
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[float]] = collections.defaultdict(list)
    op_type: dict[str, str] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"].removesuffix("_kernel_time")
            per_node[node].append(event["dur"] / 1e3)
            op_type[node] = event["args"].get("op_name", "?")
    node_ms = {node: statistics.median(times[-runs:]) for node, times in per_node.items()}
    by_op: dict[str, float] = collections.defaultdict(float)
    for node, ms in node_ms.items():
        by_op[op_type[node]] += ms
    lift = sum(ms for node, ms in node_ms.items() if node.startswith(LIFT_NODES))
    top = sorted(node_ms.items(), key=lambda item: -item[1])[:12]
    return {
        "total_ms": round(sum(node_ms.values()), 3),
        "lift_ms": round(lift, 3),
        "by_op_type_ms": {
            op: round(ms, 3) for op, ms in sorted(by_op.items(), key=lambda item: -item[1])
        },
        "top_nodes_ms": [
            {"node": node, "op": op_type[node], "ms": round(ms, 3)} for node, ms in top
        ],
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3)


def vs(rows: Mapping[str, Mapping[str, float]], a: str, b: str, key: str = "median_ms") -> float:
    """Latency of ``a`` over latency of ``b`` (p50 unless ``key`` says otherwise)."""
    return ratio(rows[a][key], rows[b][key])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="drives live here")
    parser.add_argument("--frames", type=int, default=64, help="calibration frames (64)")
    parser.add_argument("--stride", type=int, default=3, help="every K-th frame of the drive")
    parser.add_argument("--repeat", type=int, default=300, help="timed calls per config")
    parser.add_argument("--explore", action="store_true", help="also measure the variants")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="fusionrt-int8-bench-"))

    drives, calibration_drive = prepare_drives(args.cache)
    log(f"calibration frames from {calibration_drive} ...")
    registry = Registry.create()
    feeds = feeds_from_drive(PIPELINE, calibration_drive, registry, args.frames, args.stride)
    int8_path = workdir / "reference.int8.onnx"
    quantisation = CHOSEN.quantise(feeds, int8_path)
    timing_feeds = feeds[:8]

    log("latency ...")
    threads = default_thread_count()
    model = ReferenceModel()
    from fusionrt.runtime.engines.torch import TorchEngine

    one = {
        "onnxruntime fp32": OnnxRuntimeEngine(ONNX_PATH, intra_op_threads=1),
        "onnxruntime int8": OnnxRuntimeEngine(int8_path, intra_op_threads=1),
        "torch eager fp32": TorchEngine.from_source(model.network_source(), threads=1),
    }
    default = {
        "onnxruntime fp32": OnnxRuntimeEngine(ONNX_PATH, intra_op_threads=threads),
        "onnxruntime int8": OnnxRuntimeEngine(int8_path, intra_op_threads=threads),
    }
    latency_1 = time_engines(one, timing_feeds, args.repeat)
    latency_n = time_engines(default, timing_feeds, args.repeat)
    for engine in (*one.values(), *default.values()):
        engine.close()

    log("profile ...")
    profile: dict[str, Any] = {
        "fp32": profile_by_op(ONNX_PATH, timing_feeds, workdir),
        "int8": profile_by_op(int8_path, timing_feeds, workdir),
    }
    int8_convs = profile["int8"]["by_op_type_ms"].get("QLinearConv", 0.0)
    profile["int8_floor_ratio"] = ratio(
        profile["int8"]["lift_ms"] + int8_convs, profile["fp32"]["total_ms"]
    )
    profile["lift_share_of_fp32"] = ratio(profile["fp32"]["lift_ms"], profile["fp32"]["total_ms"])

    log(f"mAP on {len(drives)} held-out drives: FP32 ...")
    map_fp32 = mean_average_precision(ONNX_PATH, drives)
    log("mAP: INT8 ...")
    map_int8 = mean_average_precision(int8_path, drives)
    drop = round(100 * (map_fp32["map"]["overall"] - map_int8["map"]["overall"]), 2)

    explore = []
    if args.explore:
        sample_feeds = feeds_from_drive(PIPELINE, SAMPLE_DRIVE, registry, args.frames, args.stride)
        fp32_1 = OnnxRuntimeEngine(ONNX_PATH, intra_op_threads=1)
        for variant in EXPLORE:
            log(f"explore: {variant.name} ...")
            path = workdir / f"{variant.name}.onnx"
            chosen = sample_feeds if variant.calibration == "sample" else feeds
            details = variant.quantise(chosen, path)
            with OnnxRuntimeEngine(path, intra_op_threads=1) as engine:
                times = time_engines({"fp32": fp32_1, "int8": engine}, timing_feeds, 100)
            overall = mean_average_precision(path, drives)["map"]["overall"]
            explore.append(
                {
                    "variant": variant.name,
                    "what": variant.note,
                    "map": overall,
                    "map_drop_points": round(100 * (map_fp32["map"]["overall"] - overall), 2),
                    "p50_vs_fp32_1thread": vs(times, "int8", "fp32"),
                    **details,
                }
            )
        fp32_1.close()

    ort32, ort8, eager = "onnxruntime fp32", "onnxruntime int8", "torch eager fp32"
    ratios = {
        "int8_vs_fp32_p50_1thread": vs(latency_1, ort8, ort32),
        "int8_vs_fp32_p99_1thread": vs(latency_1, ort8, ort32, "p99_ms"),
        f"int8_vs_fp32_p50_{threads}threads": vs(latency_n, ort8, ort32),
        f"int8_vs_fp32_p99_{threads}threads": vs(latency_n, ort8, ort32, "p99_ms"),
        "ort_fp32_vs_torch_eager_p50_1thread": vs(latency_1, ort32, eager),
        "ort_int8_vs_torch_eager_p50_1thread": vs(latency_1, ort8, eager),
    }
    worst_ratio = max(
        ratios["int8_vs_fp32_p50_1thread"], ratios[f"int8_vs_fp32_p50_{threads}threads"]
    )
    report = {
        "command": " ".join(["python", "benchmarks/int8_bench.py", *(argv or sys.argv[1:])]),
        "model": str(ONNX_PATH.relative_to(ROOT)),
        "machine": {
            "cpu": cpu_name(),
            "cpus_usable": threads,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": package_version("onnxruntime"),
            "torch": package_version("torch"),
        },
        "calibration": {
            "drive": str(calibration_drive),
            "simulated": {
                "seed": CALIBRATION_PLAN.seed,
                "condition": CALIBRATION_PLAN.condition,
                "duration_s": CALIBRATION_PLAN.duration_s,
            },
            "why": "a seed outside training (1000-1039) and evaluation (2000-2010), with the "
            "training sensors; the bundled sample drive's 16-beam lidar is off-distribution",
            "pipeline": str(PIPELINE.relative_to(ROOT)),
            "frames": len(feeds),
            "stride": args.stride,
        },
        "quantization": quantisation,
        "map": {
            "drives": [d.name for d in drives],
            "frames": map_fp32["frames"],
            "fp32": map_fp32["map"],
            "int8": map_int8["map"],
            "drop_points": drop,
            "by_condition": {
                name: {"fp32": value, "int8": map_int8["conditions"].get(name)}
                for name, value in map_fp32["conditions"].items()
            },
        },
        "latency_ms": {"1thread": latency_1, f"{threads}threads": latency_n},
        "ratios": ratios,
        "profile_1thread": profile,
        "aims": {
            "int8_p50_vs_fp32_le": AIM_LATENCY_RATIO,
            "map_drop_points_le": AIM_MAP_DROP_POINTS,
            "latency_met": worst_ratio <= AIM_LATENCY_RATIO,
            "accuracy_met": drop <= AIM_MAP_DROP_POINTS,
        },
        "explore": explore,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")

    print(f"calibration: {len(feeds)} frames of {calibration_drive.name}; "
          f"trt-check {'PASSED' if quantisation['trt_check_ok'] else 'FAILED'}")  # fmt: skip
    print(f"mAP FP32 {map_fp32['map']['overall']:.4f}  INT8 {map_int8['map']['overall']:.4f}  "
          f"drop {drop:.2f} points ({map_fp32['frames']} frames)")  # fmt: skip
    for label, rows in (("1 thread", latency_1), (f"{threads} threads", latency_n)):
        for name, row in rows.items():
            p50, p99 = row["median_ms"], row["p99_ms"]
            print(f"{label:>10}  {name:18s} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    print(json.dumps(ratios))
    print(f"profile (1 thread): FP32 {profile['fp32']['total_ms']} ms, lift "
          f"{profile['fp32']['lift_ms']} ms ({profile['lift_share_of_fp32']:.0%}); INT8 "
          f"{profile['int8']['total_ms']} ms; floor (float lift + int8 convs) "
          f"{profile['int8_floor_ratio']}x FP32")  # fmt: skip
    for row in explore:
        trt = "ok" if row["trt_check_ok"] else "FAIL"
        print(f"  {row['variant']:18s} mAP {row['map']:.4f} ({-row['map_drop_points']:+.2f})  "
              f"x{row['p50_vs_fp32_1thread']:.3f}  trt {trt}")  # fmt: skip
    print(json.dumps(report["aims"]))
    print(f"wrote {args.out} in {report['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
