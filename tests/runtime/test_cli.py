"""The `fusionrt` command: plugin listing, checks, scaffolding, error policy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fusionrt
from fusionrt.runtime.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusionrt.runtime.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fusionrt {fusionrt.__version__}"


def test_example_plugin_is_found_through_its_entry_point():
    """`make test` pip-installs examples/fusionrt-ultrasonic; nothing registers it by hand."""
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    (sensor,) = [c for c in listing["components"] if c["name"] == "ultrasonic"]
    assert sensor["kind"] == "sensor"
    assert sensor["distribution"] == "fusionrt-ultrasonic"
    assert sensor["entry_point"] == "ultrasonic = fusionrt_ultrasonic.plugin"


def test_disable_plugin_removes_it_from_the_listing():
    result = run_cli("--disable-plugin", "ultrasonic", "plugins", "--json")
    names = [c["name"] for c in json.loads(result.stdout)["components"]]
    assert "ultrasonic" not in names


def test_plugins_check_prints_a_passing_table():
    result = run_cli("plugins", "check", "ultrasonic")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check_truncated_bytes_raise_decode_error" in result.stdout
    assert result.stdout.strip().endswith("PASSED")


def test_plugins_check_fails_on_a_broken_sensor(make_distribution, capsys):
    source = """
    import numpy as np
    from fusionrt import SensorMessage, TensorSpec, RawRecord
    from fusionrt.runtime.sensor import Modality, Sensor
    class Broken(Sensor):
        name = "broken"
        modality = Modality.OTHER
        def decode(self, raw):
            return SensorMessage(self.instance, 0, np.frombuffer(raw.data, "<f4"))
        def tensor_specs(self, context):
            return [TensorSpec("x", (2,))]
        def preprocess(self, message, context):
            return {"x": np.zeros(3, np.float32)}
        def sample_records(self):
            return [RawRecord("/b", 0, b"\\0" * 8)]
    def fusionrt_sensors():
        return [Broken]
    """
    make_distribution(
        "broken-sensor", {"brokensensor": "broken_sensor_plugin"}, {"broken_sensor_plugin": source}
    )
    assert main(["plugins", "check", "broken", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert not report["passed"]
    assert statuses["check_specs_match_preprocess"] == "failed"


def test_errors_print_one_line_and_exit_non_zero():
    result = run_cli("plugins", "check", "no_such_sensor")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "PluginError: no sensor named 'no_such_sensor'" in result.stderr


def test_debug_shows_the_traceback():
    result = run_cli("--debug", "plugins", "check", "no_such_sensor")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_plugins_new_writes_a_package_that_installs_and_passes_the_kit(tmp_path):
    assert main(["plugins", "new", "thermal", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "fusionrt-thermal"
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(root),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    listing = json.loads(run_cli("plugins", "--json", env=env).stdout)
    (thermal,) = [c for c in listing["components"] if c["name"] == "thermal"]
    assert thermal["distribution"] == "fusionrt-thermal"
    assert thermal["entry_point"] == "thermal = fusionrt_thermal.plugin"
    check = run_cli("plugins", "check", "thermal", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=root,
    )
    assert tests.returncode == 0, tests.stdout


def test_plugins_new_refuses_bad_names_and_existing_directories(tmp_path, capsys):
    assert main(["plugins", "new", "Bad-Name", "--dir", str(tmp_path)]) == 1
    assert main(["plugins", "new", "ok", "--dir", str(tmp_path)]) == 0
    assert main(["plugins", "new", "ok", "--dir", str(tmp_path)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_command_families_are_wired_into_the_main_command(capsys):
    assert main(["calib", "show", str(REPO / "examples/rigs/kitti_2011_09_26.yaml")]) == 0
    out = capsys.readouterr().out
    assert "cam2" in out and "lidar" in out


def test_help_lists_every_command_with_its_help_line():
    wide = {**os.environ, "COLUMNS": "400"}  # one line per command: no wrapping
    result = run_cli("--help", env=wide)
    assert result.returncode == 0, result.stderr
    rows = (re.fullmatch(r"    (\S+)\s\s+(\S.*)", line) for line in result.stdout.splitlines())
    listed = {row[1]: row[2] for row in rows if row}
    assert listed == {command.name: command.help for command in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_each_family_defines_its_commands_with_the_listed_help_line(command, monkeypatch):
    # with its family imported, the listing shows the family's own help lines: the table
    # COMMANDS (what --help shows without importing it) must say the same
    monkeypatch.setenv("COLUMNS", "400")
    text = build_parser([command.name]).format_help()
    assert f"    {command.name} " in text
    assert any(
        line.split(maxsplit=1) == [command.name, command.help] for line in text.splitlines()
    ), text


def test_version_help_and_plugins_do_not_import_the_command_families():
    # each family is imported when one of its commands runs, not to build the parser
    families = sorted({c.module for c in COMMANDS} - {"fusionrt.runtime.cli"})
    heavy = ["numpy", "cv2", "fusionrt.sim", "mcap", "rosbags", "fusionrt.runtime.run_cli"]
    code = (
        "import sys\n"
        "from fusionrt.runtime.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(*sorted(m for m in {[*families, *heavy]!r} if m in sys.modules), file=sys.stderr)\n"
    )
    for argv, allowed in (
        (["--version"], set()),
        (["--help"], set()),
        (["plugins", "--help"], set()),
        (["plugins"], {"numpy", "cv2", "mcap", "rosbags"}),  # the built-in plugins' imports
    ):
        result = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
        )
        imported = set(result.stderr.split())
        assert imported <= allowed, (argv, imported - allowed)


def test_a_command_is_parsed_by_its_own_family(capsys):
    args = build_parser(["sim", "--out", "d", "--duration", "2"]).parse_args(
        ["sim", "--out", "d", "--duration", "2"]
    )
    assert args.command == "sim" and args.duration == 2.0
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    assert "--source" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_import_fusionrt_imports_its_public_names_on_first_use():
    code = (
        "import sys, fusionrt\n"
        "assert 'numpy' not in sys.modules, 'numpy imported by import fusionrt'\n"
        "from fusionrt import RawRecord, ConfigError, hookimpl\n"
        "from fusionrt.runtime.messages import RawRecord as Home\n"
        "assert RawRecord is Home and 'RawRecord' in dir(fusionrt)\n"
        "assert set(fusionrt.__all__) <= set(dir(fusionrt))\n"
        "try:\n"
        "    fusionrt.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "fusionrt" in result.stdout and "no_such_name" in result.stdout
