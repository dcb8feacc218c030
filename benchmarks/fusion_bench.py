"""Cost per frame of each fusion level on ONNX Runtime (FP32, one thread), and of explanations.

Run: ``python benchmarks/fusion_bench.py [--onnx NAME=PATH ...]`` → ``results/fusion_bench.json``.

On the shipped real sample frame, round-robin (``timing.py``), with
``intra_op_num_threads=1``:

* **feature level** — one network per frame: the shipped fused model (concat) and any
  ``--onnx`` network of the family (gated, attention), each network + postprocess;
* **decision level** — the three shipped single-sensor models (each network + postprocess)
  and each fuser on their detections of this frame; a decision-level pipeline costs the sum
  (``decision_level_total``), as it runs the three in turn on one core;
* **explanations** — drop-one-modality attribution of the fused model (4 extra inferences),
  and the fusion-weight summary of a network that outputs weights.

The single-sensor networks are the fused architecture trained on one sensor: they run every
branch (zeros in the others), so they cost what the fused network costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import onnxruntime as ort
from timing import ort_session, time_interleaved

from fusionrt.plugins.fusers.boxes import probabilistic_fusion, weighted_box_fusion
from fusionrt.plugins.models.reference.eval.decision import CALIBRATION_PATH, DecisionCalibration
from fusionrt.plugins.models.reference.explain import (
    drop_one_attribution,
    fusion_weight_contributions,
)
from fusionrt.plugins.models.reference.layout import MODALITIES, SENSORS
from fusionrt.plugins.models.reference.model import ReferenceModel

RESULTS = Path(__file__).parent / "results" / "fusion_bench.json"


def runner(model: ReferenceModel, feed: dict) -> tuple:
    """``(infer, run)``: the model's inference, and inference + postprocess of ``feed``."""
    session = ort_session(model.artefacts.onnx)
    names = [o.name for o in session.get_outputs()]

    def infer(f: dict) -> dict:
        return dict(zip(names, session.run(None, dict(f)), strict=True))

    return infer, lambda: model.postprocess(infer(feed), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--onnx", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    fused = ReferenceModel()
    tensors = dict(fused.sample_feeds()[0])
    present = dict.fromkeys(MODALITIES, True)
    funcs = {}
    fused_infer, funcs["feature.concat"] = runner(fused, fused.make_feed(tensors, present))
    weighted = {}
    for item in args.onnx:
        name, path = item.split("=", 1)
        model = ReferenceModel(onnx=path)
        infer, funcs[f"feature.{name}"] = runner(model, model.make_feed(tensors, present))
        weighted[name] = infer(model.make_feed(tensors, present))
    members = {s: ReferenceModel(variant=s) for s in SENSORS}
    detections = {}
    for sensor, model in members.items():
        feed = model.make_feed(tensors, present)
        _, funcs[f"decision.{sensor}_model"] = runner(model, feed)
        detections[sensor] = funcs[f"decision.{sensor}_model"]()
    calibration = DecisionCalibration.load(CALIBRATION_PATH)
    per_model = [detections[s] for s in SENSORS]
    weights = [calibration.weights[s] for s in SENSORS]
    cals = [calibration.calibration[s] for s in SENSORS]
    funcs["fuser.wbf"] = lambda: weighted_box_fusion(per_model, weights)
    funcs["fuser.probabilistic"] = lambda: probabilistic_fusion(per_model, cals)
    full = fused_infer(fused.make_feed(tensors, present))
    funcs["explain.drop_one"] = lambda: drop_one_attribution(
        fused_infer, fused, tensors, present, outputs=full
    )
    for name, outputs in weighted.items():
        if "fusion_weights" in outputs:
            funcs[f"explain.fusion_weights.{name}"] = lambda o=outputs: fusion_weight_contributions(
                o
            )
    timings = time_interleaved(funcs, repeat=args.repeat)
    median = {name: t["median_ms"] for name, t in timings.items()}
    members_ms = sum(median[f"decision.{s}_model"] for s in SENSORS)
    totals = {
        f"decision_level_total.{fuser}": round(members_ms + median[f"fuser.{fuser}"], 3)
        for fuser in ("wbf", "probabilistic")
    }
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "onnxruntime": ort.__version__,
        "repeat": args.repeat,
        "timings": timings,
        "per_frame_ms": {
            **{k: v for k, v in median.items() if k.startswith("feature.")},
            **totals,
        },
        "detections_per_model": {s: len(d) for s, d in detections.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["per_frame_ms"], indent=1))


if __name__ == "__main__":
    main()
