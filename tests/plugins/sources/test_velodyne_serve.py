"""``fusionrt serve`` with a lidar on its own ``velodyne`` source: a real process receiving
synthetic VLP-16 packets over UDP on 127.0.0.1 at the lidar's rate forms a frame per revolution,
counts the bad packets in its report, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from velodyne_helpers import Sender, free_udp_port, vlp16_stream

pytest.importorskip("velodyne_decoder")

REPO = Path(__file__).resolve().parents[3]
RIG = REPO / "examples" / "drives" / "sample" / "rig.yaml"


def _pipeline(tmp_path: Path, port: int) -> Path:
    source = {"address": "127.0.0.1", "port": port, "model": "VLP-16"}
    data = {
        "rig": str(RIG),
        "sensors": {
            "lidar_top": {
                "plugin": "lidar",
                "topic": "velodyne",
                "source": {"name": "velodyne", "options": source},
            }
        },
        "sync": {
            "policy": "collector",
            "reference": "lidar_top",
            "tolerance_ms": 50,
            "timeout_ms": 150,
            "expected_periods_ms": {"lidar_top": 100},
        },
        "model": {"name": "reference"},
        "backend": {"name": "onnxruntime"},
        "sinks": [{"name": "jsonl", "options": {"path": str(tmp_path / "out" / "d.jsonl")}}],
        "runtime": {"workers": 1, "infer_workers": 1},
    }
    path = tmp_path / "velodyne.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_serve_forms_a_frame_per_revolution_and_counts_bad_packets(tmp_path):
    port = free_udp_port()
    out = tmp_path / "out"
    pipeline = _pipeline(tmp_path, port)
    command = [sys.executable, "-m", "fusionrt.runtime.cli", "serve", str(pipeline)]
    command += ["--out", str(out), "--report", str(out / "r.json")]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    started = threading.Event()
    stderr: list[str] = []

    def read_stderr() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            stderr.append(line)
            if line.startswith("fusionrt serve: receiving"):
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    sender = Sender(port)
    try:
        assert started.wait(120), "".join(stderr)
        assert "1 topic(s) over velodyne" in "".join(stderr)
        start_ns = time.time_ns() + 500_000_000
        packets = vlp16_stream(2 * 754, start_ns, with_points=False)  # 2 s at 600 rpm
        sender.send_paced(packets[:700])
        for size in (100, 1300, 1205):
            sender.send(b"\xff" * size)
        sender.send_paced(packets[700:])
        time.sleep(2.0)  # inference on a loaded machine may take a while
    finally:
        sender.close()
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
        reader.join(10)
    assert server.returncode == 0, "".join(stderr)
    report = json.loads((out / "r.json").read_text())
    assert report["interrupted"] is True
    assert report["faults"]["lidar_top"]["bad_size"] == 3
    lines = [json.loads(x) for x in (out / "d.jsonl").read_text().splitlines()]
    # every complete revolution was a record and formed a frame: written, or dropped by the
    # pipeline when inference fell behind (this machine is shared), or in flight at SIGTERM
    assert report["records"] == 19
    assert 18 <= report["frames"] + report["dropped"] <= 19
    assert len(lines) == report["frames"] >= 1
    # each frame is a revolution stamped by the lidar's clock: the µs of its last packet
    fired_us = {p.fired_ns // 1000 * 1000 for p in packets}
    assert all(line["stamp_ns"] in fired_us for line in lines)
    assert not any(line["missing"] for line in lines)
