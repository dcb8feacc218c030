"""Camera decode + preprocess of a real 1600×900 JPEG to the model's 256×448 input.

Measures, in one run on the same bytes (the nuScenes CAM_FRONT JPEG of tests/data/real):

* ``imdecode``: ``cv2.imdecode(bytes, IMREAD_COLOR)`` alone — the floor every JPEG pipeline pays;
* ``camera``: ``CameraSensor.decode`` + ``preprocess`` (decode to RGB, one remap doing
  undistortion + crop + resize, normalisation to float CHW), for the default full-size decode
  and for ``jpeg_reduction=2`` (libjpeg DCT-domain downscaling), on a pinhole rig (nuScenes
  images are already undistorted) and on a rig with lens distortion (the undistortion path);
* the one-time cost of building the lift table and remap maps (cached per context).

Each figure is the median (and p90) of ``--repeat`` timed iterations after warm-up, with
``ratio_to_imdecode`` = median / median of ``imdecode`` measured in the same run.

    python benchmarks/camera_bench.py [--repeat 200] [--out benchmarks/results/camera_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from timing import time_interleaved

from fusionrt import RawRecord
from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sensors.camera import CameraSensor
from fusionrt.plugins.sensors.image_codec import IMAGE_FILE_MSGTYPE
from fusionrt.runtime.geometry import ModelGeometry
from fusionrt.runtime.sensor import PreprocessContext

ROOT = Path(__file__).resolve().parents[1]
JPEG = (
    ROOT
    / "tests/data/real/nuscenes/samples/CAM_FRONT"
    / "n015-2018-07-24-11-22-45+0800__CAM_FRONT__1532402927612460.jpg"
)
# nuScenes CAM_FRONT calibration of this sample (tests/data/real/nuscenes/README.md)
K_CAM_FRONT = [
    [1266.417203046554, 0.0, 816.2670197447984],
    [0.0, 1266.417203046554, 491.50706579294757],
    [0.0, 0.0, 1.0],
]
CAM_FRONT_EXTRINSICS = {
    "translation": [1.70079118954, 0.0159456324149, 1.51095763913],
    "rotation": {
        "quaternion_wxyz": [
            0.4998015430569128,
            -0.5030316162024876,
            0.4997798114386805,
            -0.49737083824542755,
        ]
    },
}


def _rig(distortion: list[float]) -> Rig:
    camera = {
        "kind": "camera",
        "model": "plumb_bob" if distortion else "pinhole",
        "width": 1600,
        "height": 900,
        "K": K_CAM_FRONT,
        "distortion": distortion,
        "extrinsics": CAM_FRONT_EXTRINSICS,
    }
    return Rig.from_dict({"frame": "ego", "sensors": {"cam_front": camera}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/camera_bench.json")
    args = parser.parse_args(argv)

    data = JPEG.read_bytes()
    buffer = np.frombuffer(data, np.uint8)
    record = RawRecord("/CAM_FRONT", 0, data, IMAGE_FILE_MSGTYPE, path=str(JPEG))
    geometry = ModelGeometry(image_size=(256, 448), num_cameras=1)
    variants = {
        "camera_pinhole": ({}, []),
        "camera_pinhole_jpeg_reduction_2": ({"jpeg_reduction": 2}, []),
        "camera_distorted": ({}, [-0.05, 0.01, 0.0, 0.0, 0.0]),
        "camera_distorted_jpeg_reduction_2": ({"jpeg_reduction": 2}, [-0.05, 0.01, 0.0, 0.0, 0.0]),
    }
    funcs: dict[str, Callable[[], object]] = {
        "imdecode": lambda: cv2.imdecode(buffer, cv2.IMREAD_COLOR),
    }
    setup: dict[str, float] = {}
    for name, (options, distortion) in variants.items():
        sensor = CameraSensor("cam_front", **options)
        context = PreprocessContext(
            geometry=geometry, rig=_rig(distortion), sensor_names=("cam_front",)
        )
        start = time.perf_counter()
        out = sensor.preprocess(sensor.decode(record), context)  # builds lift table + maps
        setup[name] = round((time.perf_counter() - start) * 1e3, 2)
        assert out["camera_images"].shape == (1, 3, 256, 448)

        def run(sensor: CameraSensor = sensor, context: PreprocessContext = context) -> object:
            return sensor.preprocess(sensor.decode(record), context)

        funcs[name] = run
        funcs[f"{name}.decode_only"] = lambda sensor=sensor: sensor.decode(record)
    timed = time_interleaved(funcs, args.repeat)
    floor = timed["imdecode"]["median_ms"]
    results: dict[str, dict[str, float]] = {"imdecode": timed["imdecode"]}
    for name in variants:
        results[name] = {
            **timed[name],
            "ratio_to_imdecode": round(timed[name]["median_ms"] / floor, 3),
            "decode_only_median_ms": timed[f"{name}.decode_only"]["median_ms"],
        }

    report = {
        "benchmark": "camera decode + preprocess, 1600x900 JPEG -> 256x448",
        "command": "python benchmarks/camera_bench.py"
        + (f" --repeat {args.repeat}" if args.repeat != 200 else ""),
        "input": str(JPEG.relative_to(ROOT)),
        "input_bytes": len(data),
        "output": "camera_images (1, 3, 256, 448) float32 + lift table (1, 3, 160, 160)",
        "repeat": args.repeat,
        "results": results,
        "first_call_setup_ms": setup,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "opencv": cv2.__version__,
            "opencv_threads": cv2.getNumThreads(),
            "numpy": np.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(k) for k in results)
    for name, figures in results.items():
        ratio = figures.get("ratio_to_imdecode")
        extra = f"  ×{ratio} imdecode" if ratio is not None else ""
        print(
            f"{name:<{width}}  median {figures['median_ms']:7.3f} ms  "
            f"p90 {figures['p90_ms']:7.3f} ms{extra}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
