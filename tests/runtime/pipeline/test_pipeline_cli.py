"""``fusionrt run`` as a user runs it: in a subprocess, without torch, and interrupted."""

from __future__ import annotations

import json
import os
import resource
import shutil
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
    inherited = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]  # the tree tested
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(HERE), *inherited])
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
        "/fusionrt/transforms": "foxglove.FrameTransforms",
        "/fusionrt/detections": "foxglove.SceneUpdate",
        "/fusionrt/ground_truth": "foxglove.SceneUpdate",
        "/fusionrt/lidar/lidar_top": "foxglove.PointCloud",
        "/fusionrt/radar/radar_front": "foxglove.PointCloud",
        "/fusionrt/camera/camera_front/image": "foxglove.CompressedImage",
        "/fusionrt/camera/camera_front/annotations": "foxglove.ImageAnnotations",
        "/fusionrt/camera/camera_front/calibration": "foxglove.CameraCalibration",
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


def _start(pipeline: Path, drive: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    command = [sys.executable, str(MAIN), "run", str(pipeline), "--source", str(drive)]
    command += ["--out", str(out), "--report", str(out / "r.json"), *extra]
    return subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def _wait_for_lines(path: Path, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} lines")


def _mp4_boxes(path: Path) -> list[bytes]:
    """The top-level ISO BMFF box types of an MP4 file (a finished one has a ``moov``)."""
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8])
        if size < 8:
            break
        offset += size
    return boxes


def test_sigterm_finishes_every_file_and_the_report(tmp_path, drive):
    pipeline = write_pipeline(tmp_path / "p.yaml", pipeline_dict(sinks=SINKS))
    out = tmp_path / "out"
    process = _start(pipeline, drive, out, "--realtime", "--rate", "0.25")
    _wait_for_lines(out / "detections.jsonl", 2)
    process.send_signal(signal.SIGTERM)  # what systemd, Docker and Ray send
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    report = json.loads((out / "r.json").read_text())
    assert report["interrupted"] is True and report["signal"] == "SIGTERM"
    assert report["error"] is None and report["frames"] < 15
    _check_outputs(out, report["frames"])  # the MCAP has its summary and index
    assert b"moov" in _mp4_boxes(out / "video.mp4")


def test_the_first_ctrl_c_stops_a_run_whose_plugin_hangs(tmp_path, drive):
    data = pipeline_dict(plugin_timeout_ms=120_000)  # the deadline alone would take minutes
    data["plugins"] = ["toy_model", "faulty_sensors"]
    data["sensors"]["radar_front"]["plugin"] = "stuck_preprocess_radar"
    out = tmp_path / "out"
    process = _start(write_pipeline(tmp_path / "p.yaml", data), drive, out)
    _wait_for_lines(out / "detections.jsonl", 1)
    time.sleep(0.5)  # the fourth radar preprocess is now stuck for good
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)  # one signal is enough
    assert process.returncode == 130, stderr
    report = json.loads((out / "r.json").read_text())
    assert report["interrupted"] is True and report["dropped_by_reason"].get("stopped", 0) >= 1


def test_a_write_failure_is_one_line_a_report_and_a_non_zero_exit(tmp_path, drive):
    pipeline = write_pipeline(tmp_path / "p.yaml", pipeline_dict(sinks=[{"name": "jsonl"}]))
    out = tmp_path / "out"
    limit = 40_000  # bytes per file: the JSONL outgrows it after a few frames

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = _start(pipeline, drive, out, preexec_fn=small_files)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("fusionrt: error:")]
    assert "SinkError" in line and "File too large" in line
    assert "sink='jsonl'" in line and "detections.jsonl" in line
    report = json.loads((out / "r.json").read_text())
    assert report["error"].startswith("SinkError") and 0 < report["frames"] < 20


def test_output_paths_are_checked_before_the_run(tmp_path, drive):
    pipeline = write_pipeline(tmp_path / "p.yaml", pipeline_dict())
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = {
        "--out names a file": ["--out", str(a_file)],
        "cannot create the output folder": ["--out", str(a_file / "sub")],
        "--report names a folder": ["--out", str(tmp_path / "o"), "--report", str(tmp_path)],
    }
    for message, extra in cases.items():
        command = [sys.executable, str(MAIN), "run", str(pipeline), "--source", str(drive)]
        started = time.monotonic()
        done = subprocess.run(
            [*command, *extra], check=False, env=_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 30  # refused up front, not after the run


def test_a_drive_without_messages_for_the_pipeline_fails(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    bag = tmp_path / "empty_bag"
    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(bag, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, msgtype in {
            "/sensors/lidar_top/points": "sensor_msgs/msg/PointCloud2",
            "/sensors/camera_front/image/compressed": "sensor_msgs/msg/CompressedImage",
            "/sensors/radar_front/points": "sensor_msgs/msg/PointCloud2",
        }.items():  # every topic of the pipeline, none with a message
            writer.add_connection(topic, msgtype, typestore=store)
    data = pipeline_dict() | {"sensors_in_ego_frame": True}  # the bag has no rig.yaml
    del data["ground_truth"]  # nor a ground-truth topic
    pipeline = write_pipeline(tmp_path / "p.yaml", data)
    command = [sys.executable, str(MAIN), "run", str(pipeline), "--source", str(bag)]
    command += ["--out", str(tmp_path / "out")]
    done = subprocess.run(
        command, check=False, env=_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stdout
    assert "SourceError: the drive holds no messages for the pipeline's topics" in done.stderr


def test_an_alias_bomb_in_the_options_is_one_line_not_an_exhausted_machine(
    tmp_path, fusionrt_limited, alias_bomb
):
    data = pipeline_dict()
    data["sensors"]["lidar_top"]["options"] = {"tensor_name": "BOMB"}
    pipeline = write_pipeline(tmp_path / "p.yaml", data)
    pipeline.write_text(pipeline.read_text().replace("BOMB", alias_bomb()))
    done = fusionrt_limited("run", str(pipeline), "--source", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "fusionrt: error: ConfigError: pipeline file: refused YAML: its aliases expand to more "
        f"than 200000 nodes [file={str(pipeline)!r}]"
    ]


def test_a_damaged_recording_replays_the_rest_and_exits_3(tmp_path, drive):
    cut = tmp_path / "cut"
    shutil.copytree(drive, cut)
    mcap = cut / "bag" / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])  # a recorder killed mid-write
    out = tmp_path / "out"
    process = _start(write_pipeline(tmp_path / "p.yaml", pipeline_dict()), cut, out)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, stderr
    assert "the recording is damaged" in stderr
    report = json.loads((out / "r.json").read_text())
    assert report["source_damage"] == 1 and 0 < report["frames"] < 20
    assert report["faults"]["source"]["truncated"] == 1 and report["error"] is None


def test_a_realtime_run_over_an_hour_gap_skips_it_and_says_so(tmp_path, drive):
    """A recording with an hour of silence in the middle: --realtime does not sleep through
    it (the default --max-gap is 5 s), the report counts the gap, and one Ctrl-C would stop
    it (tested on the replay itself)."""
    from rosbags.rosbag2 import Reader, Writer

    gapped = tmp_path / "gapped"
    with Reader(drive / "bag") as reader, Writer(gapped, version=8) as writer:
        connections = {
            c.id: writer.add_connection(
                c.topic,
                c.msgtype,
                msgdef=c.msgdef.data,
                rihs01=c.digest,
                serialization_format="cdr",
            )
            for c in reader.connections
        }
        first = reader.start_time
        for connection, stamp, data in reader.messages():
            late = stamp - first > 1_000_000_000
            # the log times jump an hour after the first second; header stamps are the sensors'
            writer.write(connections[connection.id], stamp + (3600 * 10**9 if late else 0), data)
    shutil.copy(drive / "rig.yaml", gapped / "rig.yaml")
    out = tmp_path / "out"
    process = _start(
        write_pipeline(tmp_path / "p.yaml", pipeline_dict()), gapped, out, "--realtime"
    )
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "replay skipped" in stderr and "gap in the recording" in stderr
    report = json.loads((out / "r.json").read_text())
    assert report["replay_gaps"] == 1 and report["replay_skipped_s"] > 3000
    assert report["frames"] >= 15
