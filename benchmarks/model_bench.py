"""Reference model inference cost: ONNX Runtime FP32 on one core vs PyTorch eager on one core.

Run: ``python benchmarks/model_bench.py [--onnx NAME=PATH ...]`` → ``results/model_bench.json``.

Times the shipped ``reference.onnx`` (and any extra ONNX files given, e.g. the 2× larger or the
gated-fusion variant) on the shipped real sample frame with ``intra_op_num_threads=1``, the
PyTorch eager network with ``torch.set_num_threads(1)``, and the numpy postprocess, round-robin
(see ``timing.py``). Latency targets are judged on the median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import onnxruntime as ort
from timing import ort_session, time_interleaved

from fusionrt.plugins.models.reference.model import ONNX_PATH, ReferenceModel

RESULTS = Path(__file__).parent / "results" / "model_bench.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--onnx", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args()
    model = ReferenceModel()
    feed = model.sample_feeds()[0]
    sessions = {"reference": ort_session(ONNX_PATH)}
    for item in args.onnx:
        name, path = item.split("=", 1)
        sessions[name] = ort_session(Path(path))
    funcs = {
        f"ort_fp32_1thread.{name}": (lambda s=s: s.run(None, feed)) for name, s in sessions.items()
    }
    outputs = dict(
        zip(["heatmap", "regression"], sessions["reference"].run(None, feed), strict=True)
    )
    funcs["postprocess"] = lambda: model.postprocess(outputs, 0)
    try:
        import torch

        torch.set_num_threads(1)
        module = model.torch_module()
        inputs = [torch.as_tensor(feed[s.name]) for s in model.input_specs()]

        def torch_eager() -> None:
            with torch.no_grad():
                module(*inputs)

        funcs["torch_eager_1thread.reference"] = torch_eager
    except ImportError:
        pass
    timings = time_interleaved(funcs, repeat=args.repeat)
    reference = timings["ort_fp32_1thread.reference"]["median_ms"]
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "onnxruntime": ort.__version__,
        "repeat": args.repeat,
        "timings": timings,
        "ratios_to_ort_reference": {
            name: round(t["median_ms"] / reference, 3) for name, t in timings.items()
        },
        "target_ms": 30.0,
        "meets_target": bool(reference <= 30.0),
        "checksum_heatmap_sum": float(np.sum(outputs["heatmap"])),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(timings, indent=1))


if __name__ == "__main__":
    main()
