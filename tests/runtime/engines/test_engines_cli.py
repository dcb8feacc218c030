"""The engine commands through `fusionrt`'s own entry point and error policy."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fusionrt.runtime import cli
from fusionrt.runtime.engines.cli import parse_input_spec
from fusionrt.runtime.errors import ConfigError


def test_export_writes_a_verified_model(tmp_path, capsys):
    out = tmp_path / "bev.onnx"
    code = cli.main(
        ["export", "fusionrt.runtime.engines.sample_net:build_sample_net", "-o", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.is_file() and "onnx.checker passed" in printed
    assert "camera_image: 1x3x160x288 float32" in printed
    assert "verified against PyTorch: 3 sample(s)" in printed and "MISMATCH" not in printed


def test_export_with_explicit_inputs(tmp_path, capsys):
    out = tmp_path / "explicit.onnx"
    code = cli.main(
        [
            "export",
            "fusionrt.runtime.engines.sample_net:build_sample_net",
            "-o",
            str(out),
            "--input", "camera_image=1x3x160x288",
            "--input", "lidar_bev=1x8x128x128:float32",
            "--input", "radar_bev=1x4x128x128",
            "--input", "sensor_mask=1x3",
            "--outputs", "heat,box,vel",
        ]
    )  # fmt: skip
    assert code == 0
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["heat", "box", "vel"]


def test_export_errors_are_one_line(tmp_path, capsys):
    code = cli.main(["export", "no_such_module:factory", "-o", str(tmp_path / "x.onnx")])
    assert code == 1
    assert "ConfigError: cannot load no_such_module:factory" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["x", "x=1xAx3", "x=1x0", "=1x2", "x=1x2:notadtype"])
def test_bad_input_specs_name_the_value(text):
    with pytest.raises(ConfigError) as info:
        parse_input_spec(text)
    assert repr(text) in str(info.value)


def test_trt_check_passes_on_the_export_and_fails_on_nonzero(sample_onnx, tmp_path, capsys):
    assert cli.main(["trt-check", str(sample_onnx)]) == 0
    printed = capsys.readouterr().out
    assert "Conv     16     ok" in printed and printed.strip().endswith("(trt10.3)")
    node = helper.make_node("NonZero", ["x"], ["i"], name="find_hits")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("i", TensorProto.INT64, [1, 4])],
    )
    bad = tmp_path / "nonzero.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(bad))
    assert cli.main(["trt-check", str(bad)]) == 1
    printed = capsys.readouterr().out
    assert "FAILED: 1 error(s); offending nodes: find_hits" in printed
    assert cli.main(["trt-check", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["offending_nodes"] == ["find_hits"] and report["ok"] is False


def test_quantize_writes_a_trt_ready_model(sample_onnx, feeds, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    for index, feed in enumerate(feeds):
        np.savez(frames / f"{index:04d}.npz", **feed)
    out = tmp_path / "q.onnx"
    code = cli.main(
        ["quantize", str(sample_onnx), "-o", str(out), "--calibration", str(frames),
         "--keep-float", "/head_"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "4 calibration frames" in printed and "trt-check: PASSED" in printed


def test_build_engine_without_tensorrt_is_a_clear_error(sample_onnx, capsys, monkeypatch):
    from fusionrt.runtime.engines import tensorrt

    monkeypatch.setattr(tensorrt, "tensorrt_availability", lambda: (False, "no tensorrt package"))
    assert cli.main(["build-engine", str(sample_onnx), "--fp16"]) == 1
    err = capsys.readouterr().err
    assert "EngineError: cannot build a TensorRT engine here: no tensorrt package" in err


def test_backends_lists_every_backend_and_the_auto_choice(capsys):
    assert cli.main(["backends", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in report["backends"]}
    assert {"onnxruntime", "torch", "tensorrt", "torch (cuda)"} <= names
    assert report["auto"]["backend"] in names
    assert cli.main(["backends"]) == 0
    assert "--backend auto →" in capsys.readouterr().out


def _hostile_onnx(tmp_path, sample_onnx) -> dict[str, object]:
    """Files a user may hand ``quantize`` / ``trt-check`` instead of an ONNX model."""
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an ONNX model\x00\xff" * 8)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(sample_onnx.read_bytes()[:3000])
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    return {"garbage": garbage, "truncated": truncated, "a folder": folder}


@pytest.mark.parametrize("kind", ["garbage", "truncated", "a folder"])
def test_an_unreadable_onnx_is_one_line_naming_it(sample_onnx, tmp_path, capsys, kind):
    path = _hostile_onnx(tmp_path, sample_onnx)[kind]
    frame = tmp_path / "frame.npz"
    np.savez(frame, camera_image=np.zeros((1, 3, 160, 288), np.float32))
    commands = (
        ["trt-check", str(path)],
        ["quantize", str(path), "-o", str(tmp_path / "q.onnx"), "--calibration", str(frame)],
    )
    for argv in commands:
        assert cli.main(argv) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("fusionrt: error: EngineError: not a readable ONNX file: ")
        assert line.endswith(f"[file={str(path)!r}]")


def test_unreadable_calibration_frames_are_one_line_naming_them(sample_onnx, tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros(3, np.float32))
    bare = tmp_path / "bare.npy"
    np.save(bare, np.zeros(3, np.float32))
    files = {
        "empty.npz": b"",
        "truncated.npz": good.read_bytes()[:100],
        "not_a_zip.npz": b"PK\x03\x04 and then nothing a zip reader wants",
        "pickled.npz": b"\x80\x04K\x01.",
    }
    paths = [bare]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    for path in paths:
        argv = ["quantize", str(sample_onnx), "-o", str(tmp_path / "q.onnx")]
        assert cli.main([*argv, "--calibration", str(path)]) == 1
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("fusionrt: error: ConfigError: cannot read calibration frame: ")
        assert line.endswith(f"[file={str(path)!r}]")
