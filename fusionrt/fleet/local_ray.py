"""The local Ray a fleet run starts when no ``--address`` is given: one head node on 127.0.0.1
whose processes never outlive the driver.

``ray.init()`` starting a local Ray leaves the raylet's ``DashboardAgent`` and
``RuntimeEnvAgent`` running (one still listening on loopback) when the driver is SIGKILLed:
Ray's fate sharing reaches only the processes the driver starts itself. So the head is started
as ``ray start --head --block`` under a :mod:`~fusionrt.fleet.session_guard` in a session of
its own: when the driver ends, by any means, the guard stops the node and kills whatever is
left of the session. The driver then connects to it like to any cluster.

Every listener stays on loopback: ``--node-ip-address 127.0.0.1`` (GCS, raylet, object
manager, workers), no dashboard, and a private ``--temp-dir`` (removed at the end), so the
cluster writes no ``/tmp/ray/ray_current_cluster`` that would make another user's
``ray.init(address="auto")`` find it. Loopback is open to every user of the machine, so the
cluster requires a token made for this run (Ray's token authentication, ``RAY_AUTH_TOKEN``);
Ray's default would be the token in ``~/.ray/auth_token``, written there if missing.

Ray reads its settings from the environment when it is *imported*, so :func:`local_ray_head`
sets them in this process's environment for the block and Ray must be imported inside it.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fusionrt.fleet.session_guard import kill_session, start_guard
from fusionrt.runtime.errors import ConfigError, EngineError

__all__ = ["STARTUP_TIMEOUT_S", "local_ray_head", "ray_settings", "ray_start_command"]

logger = logging.getLogger("fusionrt.fleet")

#: Seconds the head has to come up (a cold start on a busy machine takes ~10 s).
STARTUP_TIMEOUT_S = 120.0
#: Seconds the guard has to stop the node once the driver lets go.
_STOP_TIMEOUT_S = 30.0
#: ``ray start`` writes the GCS address here (under ``--temp-dir``) once the node is up.
_ADDRESS_FILE = "ray_current_cluster"
_LOG_TAIL_LINES = 40


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the GCS binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ray_start_command(port: int, temp_dir: Path, num_cpus: int | None) -> list[str]:
    """``ray start`` of a blocking head node on loopback (see the module docstring)."""
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block"]
    command += [f"--port={port}", "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}"]
    command += ["--include-dashboard=false", "--disable-usage-stats"]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    return command


def _startup_error(reason: str, log: IO[bytes]) -> EngineError:
    """The error of a head that did not come up: its output is logged, its last line named."""
    log.seek(0)
    lines = log.read().decode("utf-8", "replace").strip().splitlines() or ["(no output)"]
    logger.error("ray start said:\n%s", "\n".join(lines[-_LOG_TAIL_LINES:]))
    return EngineError(f"the local Ray did not start{reason}: {lines[-1].strip()}")


def _wait_until_up(guard: subprocess.Popen[bytes], address_file: Path, log: IO[bytes]) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not address_file.is_file() or not address_file.read_text().strip():
        if guard.poll() is not None:
            raise _startup_error("", log)
        if time.monotonic() > deadline:
            raise _startup_error(f" within {STARTUP_TIMEOUT_S:.0f} s", log)
        time.sleep(0.1)
    return address_file.read_text().strip()


def _stop(guard: subprocess.Popen[bytes], temp_dir: Path) -> None:
    """Let go of the guard (it stops the node) and wait for it; kill its session if it hangs."""
    if guard.stdin is not None:
        guard.stdin.close()
    try:
        guard.wait(_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        logger.error("the local Ray did not stop within %.0f s; killing it", _STOP_TIMEOUT_S)
        kill_session(guard.pid)  # the guard leads the session: its pid is the session id
        guard.kill()
        guard.wait()
    shutil.rmtree(temp_dir, ignore_errors=True)


@contextmanager
def _environment(settings: dict[str, str]) -> Iterator[None]:
    """``settings`` in ``os.environ`` for the block, the previous values restored after."""
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ray_settings() -> dict[str, str]:
    """The environment of a local head and of its driver: loopback as the node's address
    (otherwise Ray resolves 127.0.0.1 to the machine's outward address) and a fresh token."""
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }


@contextmanager
def local_ray_head(num_cpus: int | None = None) -> Iterator[str]:
    """A Ray head on 127.0.0.1 for the block, its address yielded; stopped after, and killed
    with this process if it dies. Import Ray inside the block (see the module docstring)."""
    if not sys.platform.startswith("linux"):
        raise ConfigError(
            "a local Ray that dies with the run needs Linux: start Ray and give its address",
            key="--address",
        )
    if "ray" in sys.modules:
        raise ConfigError(
            "Ray was imported before fusionrt could set up its local Ray (Ray reads its "
            "settings when imported): connect with ray.init() first, or give an address",
            key="--address",
        )
    temp_dir = Path(tempfile.mkdtemp(prefix="fusionrt-ray-"))
    command = ray_start_command(_free_port(), temp_dir, num_cpus)
    with _environment(ray_settings()), tempfile.TemporaryFile() as log:
        guard = start_guard(command, remove=temp_dir, log=log, env=dict(os.environ))
        try:
            address = _wait_until_up(guard, temp_dir / _ADDRESS_FILE, log)
            logger.info("started a local Ray at %s (stopped with this run)", address)
            yield address
        finally:
            _stop(guard, temp_dir)
