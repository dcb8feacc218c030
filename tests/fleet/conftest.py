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

# Ray reads this when it is imported: with it, a local Cluster binds every node to 127.0.0.1
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

HERE = Path(__file__).parent
PIPELINE_TESTS = HERE.parent / "runtime" / "pipeline"
for folder in (HERE, PIPELINE_TESTS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


from fleet_support import DRIVES, make_drive, pipeline_dict, write_pipeline  # noqa: E402


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
