"""A live run whose CAN sensor names its own source: ``source: {name: socketcan, options: ...}``
on python-can's virtual bus, beside the other sensors played live from the drive's bag
(``bag_live``). A node on the bus replays the drive's candump log with its stamps, as a car's
bus would send them, and the frames take their CAN input from it."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from candump_replay import replay_candump
from pipeline_support import pipeline_dict, write_pipeline

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sensors.can import read_candump
from fusionrt.plugins.sources.rosbag import RosbagSource
from fusionrt.runtime.config import load_pipeline
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.pipeline import Pipeline, RunOptions
from fusionrt.runtime.registry import Registry

ROOT = Path(__file__).resolve().parents[3]
CAN_TOPIC = "/vehicle/can0"


def _pipeline(tmp_path: Path, drive: Path, can_options: dict) -> Path:
    data = pipeline_dict()
    data["plugins"] = ["toy_model", "bag_live"]
    data["rig"] = str(drive / "rig.yaml")
    data["live"] = {"transport": "bag_live", "bag": str(drive / "bag")}
    data["sensors"]["can"] = {
        "plugin": "can",
        "topic": CAN_TOPIC,
        "queue_size": 64,
        "source": {"name": "socketcan", "options": can_options},
        "options": {
            "dbc_paths": [str(ROOT / "fusionrt" / "sim" / "data" / "fusionrt_car.dbc")],
            "signals": {"VEHICLE_SPEED.VehicleSpeed": "speed_mps"},
        },
    }
    data["sync"]["latest"] = {"can": {"max_age_ms": 200}}
    data.pop("ground_truth")
    return write_pipeline(tmp_path / "live.yaml", data)


def _replay_bus(channel: str, drive: Path, stop: threading.Event) -> None:
    """The drive's CAN frames onto the bus at their recorded pace, with their recorded stamps,
    from the moment bag_live starts playing the other topics (the bag's first stamp)."""
    bag_topics = ["/sensors/lidar_top/points", "/sensors/camera_front/image/compressed"]
    bag_topics.append("/sensors/radar_front/points")
    with RosbagSource(drive / "bag", topics=bag_topics) as bag:
        first_ns = bag.first_stamp_ns or 0
    replay_candump(channel, read_candump(drive / "can0.log"), t0_ns=first_ns, stop=stop)


def test_a_sensor_reading_its_own_can_bus_joins_the_live_frames(tmp_path, drive):
    channel = f"car-{uuid.uuid4().hex[:8]}"
    config = load_pipeline(_pipeline(tmp_path, drive, {"interface": "virtual", "channel": channel}))
    out = tmp_path / "out"
    pipeline = Pipeline(
        config, None, Registry.create(entry_points=False), RunOptions(out_dir=out, duration_s=3.0)
    )
    stop = threading.Event()
    car = threading.Thread(target=_replay_bus, args=(channel, drive, stop), daemon=True)
    car.start()
    try:
        result = pipeline.run()
    finally:
        stop.set()
        car.join(timeout=5)
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    offset_ns = Rig.load(drive / "rig.yaml").sensors["can"].time_offset_ns
    logged = {frame.t_ns + offset_ns for frame in read_candump(drive / "can0.log")}
    with_can = [line for line in lines if "can" in line["inputs_ns"]]
    assert result.frames == len(lines) >= 15
    # every frame after the first few has the CAN bus's latest frame, a frame of the log
    assert len(with_can) >= len(lines) - 3
    assert {line["inputs_ns"]["can"] for line in with_can} <= logged
    can_faults = {reason for sensor, reason in result.faults if sensor == "can"}
    assert not can_faults & {"decode_error", "bus_down", "bus_error", "error_frame"}


def test_a_mistake_in_the_sensor_source_options_names_its_key(tmp_path, drive):
    config = load_pipeline(_pipeline(tmp_path, drive, {"interface": "virtual", "chanel": "x"}))
    with pytest.raises(ConfigError) as info:
        Pipeline(config, None, Registry.create(entry_points=False))
    assert info.value.context["key"] == "sensors.can.source.options.chanel"
    assert "did you mean 'channel'" in info.value.message
