"""Shared fixtures: paths of the real sample data, and fake installed distributions."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).parent / "data" / "real"

#: Address space a ``fusionrt`` subprocess of :func:`fusionrt_limited` may use (it needs ~0.4).
LIMITED_MEMORY_BYTES = 1 << 30


def alias_bomb_list(levels: int = 9, fan_out: int = 9) -> str:
    """A YAML flow list (under 500 bytes) whose items are "billion laughs" levels: item ``k`` lists
    item ``k - 1`` ``fan_out`` times through an alias, so the last one holds ``fan_out**levels``
    strings once expanded. Usable as the value of any key."""
    items = [f"&l0 [{', '.join(['lol'] * fan_out)}]"]
    items += [f"&l{k} [{', '.join([f'*l{k - 1}'] * fan_out)}]" for k in range(1, levels)]
    return f"[{', '.join(items)}]"


@pytest.fixture
def alias_bomb() -> Callable[..., str]:
    """:func:`alias_bomb_list`."""
    return alias_bomb_list


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMITED_MEMORY_BYTES, LIMITED_MEMORY_BYTES))


@pytest.fixture
def fusionrt_limited() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``fusionrt ARGS`` as a user does, in a subprocess held to 1 GiB of address space and
    60 s: a hostile file that makes fusionrt expand it fails the test instead of the machine."""

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fusionrt.runtime.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
            env=dict(os.environ),
            preexec_fn=_limit_memory,
            check=False,
        )

    return run


@pytest.fixture
def real_data() -> Path:
    """Root of the real KITTI / nuScenes / comma2k19 samples."""
    return REAL_DATA


@pytest.fixture
def make_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, dict[str, str], dict[str, str]], Path]:
    """Install a fake distribution on ``sys.path``: real modules plus a real ``.dist-info``.

    ``make_distribution(name, entry_points={"ep": "module"}, modules={"module": "source"})``
    makes ``importlib.metadata`` see the distribution and its ``fusionrt`` entry points exactly
    as it sees a pip-installed package.
    """
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(site))

    def make(name: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            sys.modules.pop(module, None)
        dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
        )
        lines = "\n".join(f"{ep} = {target}" for ep, target in entry_points.items())
        (dist_info / "entry_points.txt").write_text(f"[fusionrt]\n{lines}\n", encoding="utf-8")
        return site

    return make
