"""Latency of every backend and precision available here, in one run, as ratios to PyTorch eager.

    python benchmarks/engine_bench.py [--iterations 300] [--out results/engine_bench.json]

The network is ``fusionrt.runtime.engines.sample_net.SampleBevNet`` (camera 3×160×288, lidar
8×128×128, radar 4×128×128 → 64×64 BEV heatmap/boxes/velocity), exported by
``fusionrt.runtime.engines.export`` and quantised by ``fusionrt.runtime.engines.int8``
(calibrated on 32 structured frames, the three output convolutions kept in float).
Each configuration is warmed up, then timed frame by frame (``time.perf_counter`` around
``engine.infer``, feed checks included) over the same rotating set of frames, in 10
interleaved rounds over all configurations (so that load from other processes drifts over
all alike; each block starts with one untimed call), each with every CPU this process may
use. The INT8 accuracy figures compare the INT8 outputs with FP32 ONNX Runtime on held-out
frames (the sample network is untrained: there is no mAP to measure).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name, package_version

from fusionrt.runtime.engines import sample_net
from fusionrt.runtime.engines.base import Engine, NetworkSource
from fusionrt.runtime.engines.export import compare_outputs, export_onnx
from fusionrt.runtime.engines.int8 import quantize_int8
from fusionrt.runtime.engines.onnxruntime import OnnxRuntimeEngine, default_thread_count
from fusionrt.runtime.engines.selection import torch_cuda_availability
from fusionrt.runtime.engines.tensorrt import TensorRTEngine
from fusionrt.runtime.engines.torch import TorchEngine

RESULTS = Path(__file__).parent / "results" / "engine_bench.json"
#: The prediction layers (the 1×1 output convolutions) stay in float; the shared head conv is int8.
HEAD_OUTPUT_CONVS = ["/head_heatmap/", "/head_box/", "/head_velocity/"]


def warm_up(engine: Engine, feeds: list[dict[str, np.ndarray]]) -> None:
    for feed in feeds * 2:
        engine.infer(feed)


def summarise(samples_ms: list[float]) -> dict:
    samples = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "iterations": len(samples),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    threads = default_thread_count()
    workdir = Path(tempfile.mkdtemp(prefix="fusionrt-bench-"))
    feeds = sample_net.sample_feeds(8, seed=100)
    module = sample_net.SampleBevNet()
    onnx_path = workdir / "sample_bev.onnx"
    export = export_onnx(module, sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, onnx_path)
    int8_path = workdir / "sample_bev.int8.onnx"
    quantize_int8(
        onnx_path, int8_path, sample_net.sample_feeds(32, seed=7), keep_float=HEAD_OUTPUT_CONVS
    )
    source = NetworkSource(
        sample_net.INPUT_SPECS, sample_net.OUTPUT_SPECS, onnx_path=onnx_path,
        torch_module=lambda: module,
    )  # fmt: skip
    int8_source = NetworkSource(source.input_specs, source.output_specs, onnx_path=int8_path)

    configs: list[tuple[str, str, str, object]] = [
        ("torch eager", "cpu", "fp32", lambda: TorchEngine.from_source(source, threads=threads)),
        (
            "torch compile",
            "cpu",
            "fp32",
            lambda: TorchEngine.from_source(source, threads=threads, compile=True),
        ),
        (
            "onnxruntime",
            "cpu",
            "fp32",
            lambda: OnnxRuntimeEngine.from_source(source, intra_op_threads=threads),
        ),
        (
            "onnxruntime io-binding",
            "cpu",
            "fp32",
            lambda: OnnxRuntimeEngine.from_source(
                source, intra_op_threads=threads, io_binding=True
            ),
        ),
        (
            "onnxruntime",
            "cpu",
            "int8",
            lambda: OnnxRuntimeEngine.from_source(int8_source, intra_op_threads=threads),
        ),
    ]
    if torch_cuda_availability()[0]:
        configs.append(
            ("torch eager", "cuda", "fp32", lambda: TorchEngine.from_source(source, device="cuda"))
        )
    if TensorRTEngine.availability()[0]:
        cache = workdir / "engines"
        for precision, src in (("fp32", source), ("fp16", source), ("int8", int8_source)):
            for graph in (False, True):
                configs.append(
                    (
                        "tensorrt" + (" cuda-graph" if graph else ""),
                        "cuda",
                        precision,
                        lambda s=src, p=precision, g=graph: TensorRTEngine.from_source(
                            s, precision=p, cache_dir=cache, cuda_graph=g
                        ),
                    )
                )

    # Every engine is created first, then timed in interleaved rounds, so that load from other
    # processes on this machine drifts over all configurations alike.
    results: list[dict] = []
    engines: list[tuple[dict, Engine]] = []
    for backend, device, precision, make in configs:
        print(f"setting up {backend} {device} {precision} ...", file=sys.stderr, flush=True)
        row: dict = {"backend": backend, "device": device, "precision": precision}
        results.append(row)
        started = time.perf_counter()
        try:
            engine = make()  # type: ignore[operator]
            warm_up(engine, feeds)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            continue
        row["setup_s"] = round(time.perf_counter() - started, 2)
        engines.append((row, engine))
    samples: dict[int, list[float]] = {id(row): [] for row, _ in engines}
    rounds = 10
    per_round = max(1, args.iterations // rounds)
    for round_index in range(rounds):
        for row, engine in engines:
            time.sleep(0.05)  # let the previous engine's spinning worker threads go idle
            engine.infer(feeds[0])  # untimed: the first call after a switch wakes thread pools
            for index in range(per_round):
                feed = feeds[(round_index * per_round + index) % len(feeds)]
                started = time.perf_counter()
                engine.infer(feed)
                samples[id(row)].append((time.perf_counter() - started) * 1e3)
    for row, engine in engines:
        row.update(summarise(samples[id(row)]))
        engine.close()

    base = next(r for r in results if r["backend"] == "torch eager" and r["device"] == "cpu")
    for row in results:
        if "p50_ms" in row:
            row["p50_vs_torch_eager"] = round(row["p50_ms"] / base["p50_ms"], 3)
            row["p99_vs_torch_eager"] = round(row["p99_ms"] / base["p99_ms"], 3)

    def p50(backend: str, precision: str) -> float:
        return next(
            r["p50_ms"] for r in results
            if r["backend"] == backend and r["precision"] == precision and r["device"] == "cpu"
        )  # fmt: skip

    held_out = sample_net.sample_feeds(8, seed=999)
    with OnnxRuntimeEngine(onnx_path) as fp32, OnnxRuntimeEngine(int8_path) as int8:
        accuracy = compare_outputs(
            [int8.infer(f) for f in held_out], [fp32.infer(f) for f in held_out], atol=0, rtol=0
        )
    ort_ratio = p50("onnxruntime", "fp32") / base["p50_ms"]
    int8_ratio = p50("onnxruntime", "int8") / p50("onnxruntime", "fp32")
    report = {
        "command": "python benchmarks/engine_bench.py " + " ".join(argv or sys.argv[1:]),
        "network": "SampleBevNet (fusionrt.runtime.engines.sample_net), opset 17, onnxslim",
        "onnx_nodes": export.nodes_simplified,
        "machine": {
            "cpu": cpu_name(),
            "threads": threads,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": package_version("onnxruntime"),
            "torch": package_version("torch"),
            "tensorrt": package_version("tensorrt"),
        },
        "results": results,
        "int8_float_nodes": HEAD_OUTPUT_CONVS,
        "int8_vs_fp32_onnxruntime": {
            o.name: {"max_abs": round(o.max_abs, 5)} for o in accuracy.outputs
        },
        "aims": {
            "onnxruntime_fp32_p50_vs_torch_eager": round(ort_ratio, 3),
            "onnxruntime_fp32_le_0.6x_torch_eager": ort_ratio <= 0.6,
            "int8_p50_vs_fp32_onnxruntime": round(int8_ratio, 3),
            "int8_le_0.6x_fp32_onnxruntime": int8_ratio <= 0.6,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(f"{r['backend']} {r['device']} {r['precision']}") for r in results)
    for row in results:
        label = f"{row['backend']} {row['device']} {row['precision']}".ljust(width)
        if "error" in row:
            print(f"{label}  error: {row['error']}")
        else:
            print(
                f"{label}  p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
                f"×{row['p50_vs_torch_eager']:.2f} eager (p99 ×{row['p99_vs_torch_eager']:.2f})"
            )
    print(json.dumps(report["aims"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
