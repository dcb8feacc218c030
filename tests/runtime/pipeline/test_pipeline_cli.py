"""``fusionrt run`` as a user runs it: in a subprocess, without torch, and interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcap.reader import make_reader
from pipeline_support import HERE, pipeline_dict, write_pipeline

MAIN = HERE / "fusionrt_main.py"
SINKS = [{"name": "jsonl"}, {"name": "mcap"}, {"name": "video", "options": {"png_every": 10}}]


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(HERE)])
    return env


def _check_outputs(out: Path, frames: int | None = None) -> None:
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert lines and all("stamp_ns" in line and "latency_ms" in line for line in lines)
    if frames is not None:
        assert len(lines) == frames
    with (out / "run.mcap").open("rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None
        schemas = {
            channel.topic: summary.schemas[channel.schema_id].name
            for channel in summary.channels.values()
        }
        counts = {
            summary.channels[cid].topic: n
            for cid, n in summary.statistics.channel_message_counts.items()
        }
        messages = sum(1 for _ in reader.iter_messages())
    assert schemas == {
        "/fusionrt/detections": "foxglove.SceneUpdate",
        "/fusionrt/ground_truth": "foxglove.SceneUpdate",
        "/fusionrt/lidar": "foxglove.PointCloud",
        "/fusionrt/camera": "foxglove.CompressedImage",
    }
    assert counts["/fusionrt/detections"] == len(lines) and messages == sum(counts.values())
    assert all(
        summary.schemas[c.schema_id].encoding == "protobuf" for c in summary.channels.values()
    )


def test_run_without_torch_on_onnx_runtime_writes_every_output(tmp_path, drive):
    pipeline = write_pipeline(tmp_path / "p.yaml", pipeline_dict(sinks=SINKS))
    out = tmp_path / "out"
    command = [sys.executable, str(MAIN), "run", str(pipeline), "--source", str(drive)]
    command += ["--out", str(out), "--report", str(out / "report.json")]
    env = _env(HERE / "no_torch") | {"FUSIONRT_ASSERT_NO_TORCH": "1"}
    done = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "end_to_end" in done.stdout and "detections:" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "onnxruntime" and report["frames"] >= 15
    _check_outputs(out, report["frames"])
    assert (out / "video.mp4").stat().st_size > 0 and (out / "frames" / "000000.png").is_file()


def test_ctrl_c_stops_cleanly_and_flushes_the_sinks(tmp_path, drive):
    pipeline = write_pipeline(tmp_path / "p.yaml", pipeline_dict(sinks=SINKS[:2]))
    out = tmp_path / "out"
    command = [sys.executable, str(MAIN), "run", str(pipeline), "--source", str(drive)]
    command += ["--out", str(out), "--realtime", "--rate", "0.25", "--report", str(out / "r.json")]
    process = subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    jsonl = out / "detections.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        jsonl.exists() and jsonl.read_text().count("\n") >= 2
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    report = json.loads((out / "r.json").read_text())
    assert report["interrupted"] is True and report["frames"] < 15  # stopped early
    _check_outputs(out, report["frames"])
