"""``fusionrt sim`` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrt.runtime import cli
from fusionrt.sim.recorder import BAG_DIR, CAN_LOG, MANIFEST, RIG_FILE


def test_sim_writes_a_drive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "drive"
    argv = ["sim", "--out", str(out), "--duration", "0.6", "--seed", "3", "--condition", "night",
            "--fail", "radar@0.1s-0.3s", "--fail-mode", "garbage", "--camera-size", "320x180",
            "--lidar-beams", "16", "--lidar-columns", "256", "--workers", "1"]  # fmt: skip
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "/sensors/lidar_top/points" in text and "MB" in text
    for name in (
        f"{BAG_DIR}/{BAG_DIR}.mcap",
        f"{BAG_DIR}/metadata.yaml",
        RIG_FILE,
        CAN_LOG,
        MANIFEST,
    ):
        assert (out / name).is_file(), name
    assert "width: 320" in (out / RIG_FILE).read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fail", "radar@5-1"], "start < end"),
        (["--fail", "sonar@1-2"], "unknown sensor 'sonar'"),
        (["--camera-size", "big"], "960x540"),
        (["--camera-rate", "60"], "12-30 Hz"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    argv = ["sim", "--out", str(tmp_path / "d"), "--duration", "0.2", "--workers", "1", *extra]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("fusionrt: error: ConfigError") and message in err
