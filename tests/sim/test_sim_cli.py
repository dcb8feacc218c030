"""``fusionrt sim`` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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
        (["--fail", "can@0.1-0.2", "--fail-mode", "degraded"], "have a degraded mode"),
        (["--diagnostics", "--announce-delay", "soon"], "--announce-delay must look like 1-3"),
        (["--diagnostics", "--announce-delay", "3-1"], "0 <= low <= high"),
        (["--diagnostics", "--announce-miss", "1.5"], "miss probability must be in [0, 1]"),
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


def test_degraded_mode_turns_the_diagnostics_on(tmp_path: Path) -> None:
    out = tmp_path / "drive"
    argv = ["sim", "--out", str(out), "--duration", "0.5", "--seed", "3", "--workers", "1",
            "--fail", "lidar@0.1s-0.4s", "--fail-mode", "degraded", "--announce-delay", "0.1-0.2",
            "--announce-miss", "0", "--false-alarms", "5", "--camera-size", "320x180"]  # fmt: skip
    assert cli.main(argv) == 0
    manifest = yaml.safe_load((out / MANIFEST).read_text())
    assert manifest["config"]["failures"][0]["mode"] == "degraded"
    assert manifest["config"]["diagnostics"]["delay_s"] == [0.1, 0.2]
    assert manifest["config"]["diagnostics"]["false_alarms_per_hour"] == 5.0
    assert "3F0#" in (out / CAN_LOG).read_text()  # DIAG_STATUS on the bus
