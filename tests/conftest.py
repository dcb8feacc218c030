"""Shared fixtures: paths of the real sample data, and fake installed distributions."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).parent / "data" / "real"


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
