"""Fixtures of the fleet tests: four tiny simulated drives, pipeline files over the pipeline
tests' toy model, and one real two-node Ray cluster on loopback for the whole session.

Ray binds to 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes ``Cluster`` put both
nodes there; the head gets ``node_ip_address``); no dashboard. The workers import the test
plugin modules through ``PYTHONPATH``, set before the cluster starts. Everything Ray started
is stopped when the session ends.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# Ray reads this when it is imported: with it, a local Cluster binds every node to 127.0.0.1
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

HERE = Path(__file__).parent
PIPELINE_TESTS = HERE.parent / "runtime" / "pipeline"
for folder in (HERE, PIPELINE_TESTS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from fusionrt.sim.config import SimConfig  # noqa: E402
from fusionrt.sim.recorder import record_drive  # noqa: E402

#: seed and condition of each sample drive
DRIVES = {
    "drive_a": (1, "clear"),
    "drive_b": (2, "fog"),
    "drive_c": (3, "clear"),
    "drive_d": (4, "night"),
}
TOPICS = {
    "lidar_top": ("lidar", "/sensors/lidar_top/points"),
    "camera_front": ("camera", "/sensors/camera_front/image/compressed"),
    "radar_front": ("radar", "/sensors/radar_front/points"),
}


def make_drive(out: Path, seed: int, condition: str) -> Path:
    """A 2 s simulated drive (small camera and lidar) in ``out``."""
    config = SimConfig(
        duration_s=2.0,
        seed=seed,
        condition=condition,
        camera_width=320,
        camera_height=180,
        lidar_columns=512,
    )
    record_drive(config, out, overwrite=True, workers=1)
    return out


def pipeline_dict(model: str = "toy", **model_options: object) -> dict:
    """The pipeline tests' lidar + camera + radar pipeline with a toy model, no sinks."""
    sensors = {name: {"plugin": plugin, "topic": topic} for name, (plugin, topic) in TOPICS.items()}
    sensors["camera_front"]["options"] = {"jpeg_reduction": 2}
    return {
        "plugins": ["toy_model", "fleet_models"],
        "sensors": sensors,
        "sync": {
            "policy": "collector",
            "reference": "lidar_top",
            "tolerance_ms": 60,
            "timeout_ms": 120,
        },
        "model": {"name": model, "options": {"threshold": 0.5, **model_options}},
        "backend": "onnxruntime",
        "sinks": [],
        "ground_truth": {"topic": "/ground_truth/actors"},
        "runtime": {"workers": 1, "queue_size": 3},
    }


def write_pipeline(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def drives_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet_drives")
    for name, (seed, condition) in DRIVES.items():
        make_drive(root / name, seed, condition)
    return root


@pytest.fixture(scope="session")
def pipeline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pipeline(
        tmp_path_factory.mktemp("fleet_pipeline") / "pipeline.yaml", pipeline_dict()
    )


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Two Ray nodes (one CPU each) on 127.0.0.1, the test process connected as the driver."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "FUSIONRT_ENGINE_CACHE")}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), str(PIPELINE_TESTS), *filter(None, [saved["PYTHONPATH"]])]
    )
    os.environ["FUSIONRT_ENGINE_CACHE"] = str(tmp_path_factory.mktemp("engine_cache"))
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"},
    )
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, include_dashboard=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_fleet_on(pipeline: Path, drives: str, out: Path, **options: object) -> object:
    """``run_fleet`` of the pipeline file over the drives matching ``drives``."""
    from fusionrt.fleet.drives import resolve_drives
    from fusionrt.fleet.runner import FleetOptions, run_fleet
    from fusionrt.fleet.task import PipelineSpec

    spec = PipelineSpec.load(pipeline)
    return run_fleet(spec, resolve_drives(drives), FleetOptions(out_dir=out, **options))


@pytest.fixture(scope="session")
def fleet_out(ray_cluster, drives_dir, pipeline_path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fleet_out")
    outcome = run_fleet_on(pipeline_path, str(drives_dir / "drive_*"), out)
    assert outcome.exit_code == 0 and sorted(outcome.completed) == [
        "drive_a",
        "drive_b",
        "drive_c",
        "drive_d",
    ]
    assert len({engine.node for engine in outcome.engines}) == 2  # prepared once per node
    return out
