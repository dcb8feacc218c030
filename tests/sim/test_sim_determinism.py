"""The same seed gives the same bytes; another seed gives another drive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrt.sim import SimConfig, World, record_drive
from fusionrt.sim.recorder import BAG_DIR, CAN_LOG, MANIFEST, RIG_FILE

FILES = (f"{BAG_DIR}/{BAG_DIR}.mcap", f"{BAG_DIR}/metadata.yaml", RIG_FILE, CAN_LOG, MANIFEST)


def _files(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in FILES}


def test_same_seed_twice_gives_identical_files(tmp_path: Path) -> None:
    """Every output file is byte-identical, metadata included: the recorder puts no wall-clock
    time, host or path into any of them; and the number of worker processes does not matter."""
    config = SimConfig(duration_s=1.0, seed=3, condition="rain")
    record_drive(config, tmp_path / "a", workers=1)
    record_drive(config, tmp_path / "b", workers=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    for name in FILES:
        assert a[name] == b[name], name


def test_another_seed_gives_another_drive(tmp_path: Path) -> None:
    record_drive(SimConfig(duration_s=0.5, seed=1), tmp_path / "a", workers=1)
    record_drive(SimConfig(duration_s=0.5, seed=2), tmp_path / "b", workers=1)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a[f"{BAG_DIR}/{BAG_DIR}.mcap"] != b[f"{BAG_DIR}/{BAG_DIR}.mcap"]
    assert a[RIG_FILE] != b[RIG_FILE]  # the clock offsets are drawn per drive


def test_world_is_a_function_of_the_seed() -> None:
    a, b, c = World.generate(5, 10.0), World.generate(5, 10.0), World.generate(6, 10.0)
    for t in (0.0, 4.2, 9.9):
        ba, bb, bc = a.boxes_at(t), b.boxes_at(t), c.boxes_at(t)
        np.testing.assert_array_equal(ba.center, bb.center)
        np.testing.assert_array_equal(ba.size, bb.size)
        assert ba.center.shape != bc.center.shape or not np.array_equal(ba.center, bc.center)


def test_existing_output_is_not_overwritten_without_asking(tmp_path: Path) -> None:
    from fusionrt import ConfigError

    config = SimConfig(duration_s=0.3, seed=1)
    record_drive(config, tmp_path / "d", workers=1)
    with pytest.raises(ConfigError, match="--overwrite"):
        record_drive(config, tmp_path / "d", workers=1)
    record_drive(config, tmp_path / "d", overwrite=True, workers=1)
