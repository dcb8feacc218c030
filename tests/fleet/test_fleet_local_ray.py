"""The local Ray of ``fusionrt fleet run`` (no ``--address``), run as a real subprocess: every
listener on loopback, nothing left after a normal run, and nothing left after the driver is
SIGKILLed mid-run (Ray's agents outlived it before)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_support import pipeline_dict, write_pipeline
from process_tree import TreeWatch, is_loopback, listening_now

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from fusionrt.fleet.results import drive_is_complete

HERE = Path(__file__).parent
PLUGIN_PATHS = [str(HERE), str(HERE.parent / "runtime" / "pipeline")]
#: Seconds the local cluster has to disappear once its driver is gone.
GONE_TIMEOUT_S = 30.0


def _fleet_run(
    pipeline: Path, drives: str, out: Path, tmp_path: Path, stdout: object
) -> subprocess.Popen:
    """``fusionrt fleet run`` without --address, in a session of its own."""
    command = [sys.executable, "-m", "fusionrt.runtime.cli", "fleet", "run", str(pipeline)]
    command += ["--drives", drives, "--out", str(out), "--num-cpus", "1"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*PLUGIN_PATHS, os.environ.get("PYTHONPATH", "")]),
        "FUSIONRT_ENGINE_CACHE": str(tmp_path / "engine_cache"),
    }
    return subprocess.Popen(
        command, env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
    )


def _ray_listeners_on_loopback(watch: TreeWatch) -> None:
    assert watch.listeners, "the run's Ray listened on no TCP port"
    outward = {(str(a), p) for a, p in watch.listeners if not is_loopback(a)}
    assert not outward, f"Ray listened beyond loopback: {outward}"


@pytest.mark.slow
def test_a_run_stops_its_local_ray_and_keeps_it_on_loopback(drives_dir, pipeline_path, tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    with log.open("wb") as stdout:
        driver = _fleet_run(pipeline_path, str(drives_dir / "drive_a"), out, tmp_path, stdout)
        with TreeWatch(driver.pid) as watch:
            driver.wait(timeout=180)
    try:
        text = log.read_text(errors="replace")
        assert driver.returncode == 0, text[-3000:]
        assert "1 drive(s) done, 0 failed" in text
        assert drive_is_complete(out, "drive_a")
        assert any("gcs_server" in name for name in watch.names)  # a Ray of its own
        _ray_listeners_on_loopback(watch)
        left = watch.wait_until_gone(GONE_TIMEOUT_S)
        assert not left, [p.name[:80] for p in left]
        assert not listening_now(port for _, port in watch.listeners)
    finally:
        watch.kill_survivors()


@pytest.mark.slow
def test_sigkill_of_the_driver_takes_its_local_ray_down(drives_dir, tmp_path):
    pipeline = write_pipeline(tmp_path / "slow.yaml", pipeline_dict("toy_slow", delay_s=0.3))
    log = tmp_path / "run.log"
    with log.open("wb") as stdout:
        drives = str(drives_dir / "drive_*")
        driver = _fleet_run(pipeline, drives, tmp_path / "out", tmp_path, stdout)
        with TreeWatch(driver.pid) as watch:
            deadline = time.monotonic() + 180
            while not any(name.startswith("ray::_replay_task") for name in watch.names):
                assert driver.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "no drive task started"
                time.sleep(0.1)
            watch.sample()  # the tree as it is at the kill
            os.kill(driver.pid, signal.SIGKILL)
            driver.wait()
    try:
        names = watch.names
        for process in ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"):
            assert any(process in name for name in names), (process, names)
        _ray_listeners_on_loopback(watch)
        left = watch.wait_until_gone(GONE_TIMEOUT_S)
        assert not left, [p.name[:80] for p in left]
        assert not listening_now(port for _, port in watch.listeners)
    finally:
        watch.kill_survivors()


def test_a_local_ray_that_cannot_start_is_an_error_naming_why(tmp_path):
    script = (
        "from fusionrt.fleet.local_ray import local_ray_head\n"
        "with local_ray_head(num_cpus=-1):\n"
        "    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fusionrt.runtime.errors.EngineError: the local Ray did not start: ")
    assert "must be nonnegative" in last, done.stderr[-2000:]  # ray start's own words


def test_a_program_that_imported_ray_is_told_to_connect_first():
    from fusionrt.fleet.local_ray import local_ray_head
    from fusionrt.runtime.errors import ConfigError

    assert "ray" in sys.modules  # imported by this module's importorskip
    with pytest.raises(ConfigError, match=r"connect with ray.init\(\) first"), local_ray_head():
        pass
