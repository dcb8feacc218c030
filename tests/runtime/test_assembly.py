"""Frame assembly with real sensors: PointCloud2 and CompressedImage bytes → frames → feed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pytest

from fusionrt import ConfigError, RawRecord, TensorSpec
from fusionrt.calibration import Rig
from fusionrt.plugins.sensors.camera import (
    CameraSensor,
    camera_sample_rig_dict,
    synthetic_road_image,
)
from fusionrt.plugins.sensors.image_codec import encode_compressed_image_msg, encode_image_file
from fusionrt.plugins.sensors.lidar import VELODYNE_LAYOUT, LidarSensor, synthetic_scan
from fusionrt.plugins.sensors.pointcloud2 import encode_pointcloud2
from fusionrt.runtime.assembly import FrameAssembler, SensorBinding, preprocess_groups
from fusionrt.runtime.components import Model
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.messages import Detections
from fusionrt.runtime.sensor import PreprocessContext
from fusionrt.runtime.sync import Synchronizer

MS = 1_000_000
GEOMETRY = ModelGeometry(
    bev=BevGrid(x_range=(0.0, 40.0), y_range=(-20.0, 20.0), resolution=1.0),
    image_size=(48, 80),
    num_cameras=2,
    lift_heights=(0.0, 1.0),
)


class MaskedModel(Model):
    """A model declaring two cameras, a lidar raster and a modality mask."""

    name: ClassVar[str] = "masked"

    @property
    def geometry(self) -> ModelGeometry:
        return GEOMETRY

    def input_specs(self) -> list[TensorSpec]:
        rows, cols = GEOMETRY.bev.shape
        return [
            TensorSpec("camera_images", (2, 3, 48, 80), "float32", "camera"),
            TensorSpec("lidar_bev", (7, rows, cols), "float32", "lidar"),
            TensorSpec("modality_mask", (2,), "float32"),
        ]

    def output_specs(self) -> list[TensorSpec]:
        return []

    def postprocess(self, outputs: Mapping[str, np.ndarray], stamp_ns: int) -> Detections:
        return Detections.empty(stamp_ns)

    def make_feed(self, tensors, present):
        feed = super().make_feed(tensors, present)
        feed["modality_mask"] = np.array(
            [present.get("camera", False), present.get("lidar", False)], np.float32
        )
        return feed


def _rig() -> Rig:
    d = camera_sample_rig_dict("cam_a")
    d["sensors"]["cam_b"] = {**d["sensors"]["cam_a"]}
    d["sensors"]["lidar"] = {
        "kind": "lidar",
        "extrinsics": {"translation": [0, 0, 1.8], "rotation": {"rpy_deg": [0, 0, 0]}},
    }
    return Rig.from_dict(d)


def _lidar_record(stamp_ns: int) -> RawRecord:
    scan = synthetic_scan()
    points = np.zeros(len(scan["x"]), VELODYNE_LAYOUT)
    for name in ("x", "y", "z", "ring", "intensity", "time"):
        points[name] = scan[name]
    data = encode_pointcloud2(points, "lidar", stamp_ns)
    return RawRecord("/lidar", stamp_ns, data, "sensor_msgs/msg/PointCloud2")


def _image_record(topic: str, stamp_ns: int) -> RawRecord:
    jpeg = encode_image_file(synthetic_road_image(), "jpeg")
    data = encode_compressed_image_msg(jpeg, "jpeg", stamp_ns=stamp_ns)
    return RawRecord(topic, stamp_ns, data, "sensor_msgs/msg/CompressedImage")


def _assembler(faults: list[tuple[str, int | None, str, str]]) -> FrameAssembler:
    bindings = [
        SensorBinding(CameraSensor("cam_a"), ("/cam_a",)),
        SensorBinding(CameraSensor("cam_b"), ("/cam_b",)),
        SensorBinding(LidarSensor("lidar"), ("/lidar",)),
    ]
    sync = Synchronizer.collector(
        ["lidar", "cam_a", "cam_b"], reference="lidar", tolerance_ns=30 * MS, timeout_ns=80 * MS
    )
    context = PreprocessContext(geometry=GEOMETRY, rig=_rig())
    model = MaskedModel()
    return FrameAssembler(
        bindings, sync, model.make_feed, context, on_fault=lambda *a: faults.append(a)
    )


def _drive(dead_camera_after_ns: int | None = None, garbage_at: int | None = None):
    records = []
    for i in range(5):
        t = 1_000 * MS + i * 100 * MS
        records.append(_lidar_record(t))
        records.append(_image_record("/cam_a", t + 10 * MS))
        if dead_camera_after_ns is None or t < dead_camera_after_ns:
            records.append(_image_record("/cam_b", t - 5 * MS))
    if garbage_at is not None:
        bad = records[garbage_at]
        records[garbage_at] = RawRecord(bad.topic, bad.stamp_ns, b"\x00\x01garbage", bad.msgtype)
    return sorted(records, key=lambda r: r.stamp_ns)


def test_cameras_batch_into_one_tensor_and_the_feed_matches_the_model():
    faults: list = []
    assembler = _assembler(faults)
    assert [len(g.bindings) for g in preprocess_groups(assembler.bindings)] == [2, 1]
    frames = [f for r in _drive() for f in assembler.push(r)] + assembler.flush()
    assert len(frames) == 5
    for assembled in frames:
        feed = assembled.feed
        for spec in MaskedModel().input_specs():
            assert spec.matches(feed[spec.name]), spec.name
        assert np.abs(feed["camera_images"]).sum(axis=(1, 2, 3)).min() > 0  # both slots filled
        assert feed["modality_mask"].tolist() == [1.0, 1.0]
    assert faults == []


def test_a_dead_camera_is_masked_and_reported_never_stalls():
    faults: list = []
    assembler = _assembler(faults)
    frames = [f for r in _drive(dead_camera_after_ns=1_200 * MS) for f in assembler.push(r)]
    frames += assembler.flush()
    assert len(frames) == 5
    late = [a for a in frames if a.frame.stamp_ns >= 1_200 * MS]
    assert late and all(a.frame.messages["cam_b"] is None for a in late)
    for assembled in late:
        images = assembled.feed["camera_images"]
        assert np.all(images[1] == 0) and np.any(images[0] != 0)
        assert assembled.feed["modality_mask"].tolist() == [1.0, 1.0]  # cam_a still there


def test_garbage_bytes_are_counted_and_the_run_goes_on():
    faults: list = []
    assembler = _assembler(faults)
    frames = [f for r in _drive(garbage_at=4) for f in assembler.push(r)] + assembler.flush()
    assert len(frames) == 5
    assert [(f[0], f[2]) for f in faults] == [("cam_a", "decode_error")]
    assert assembler.faults[("cam_a", "decode_error")] == 1


def test_a_raising_plugin_is_isolated_to_its_message():
    faults: list = []
    assembler = _assembler(faults)
    lidar = assembler.bindings[2].sensor
    calls = {"n": 0}
    original = lidar.preprocess

    def flaky(message, context):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return original(message, context)

    lidar.preprocess = flaky  # type: ignore[method-assign]
    frames = [f for r in _drive() for f in assembler.push(r)] + assembler.flush()
    assert len(frames) == 5
    broken = frames[1]
    assert broken.frame.missing["lidar"] == "plugin_raised"
    assert np.all(broken.feed["lidar_bev"] == 0) and broken.feed["modality_mask"][1] == 0
    assert ("lidar", "plugin_raised") in {(f[0], f[2]) for f in faults}
    assert np.any(frames[2].feed["lidar_bev"] != 0)


def test_unrouted_topics_are_counted_and_duplicate_topics_rejected():
    faults: list = []
    assembler = _assembler(faults)
    assert assembler.push(RawRecord("/unknown", 5, b"")) == []
    assert assembler.unrouted_topics["/unknown"] == 1
    with pytest.raises(ConfigError, match="bound to both"):
        FrameAssembler(
            [SensorBinding(LidarSensor("a"), ("/x",)), SensorBinding(LidarSensor("b"), ("/x",))],
            Synchronizer.collector(["a", "b"], reference="a"),
            MaskedModel().make_feed,
            PreprocessContext(geometry=GEOMETRY),
        )


def test_assembly_is_deterministic():
    runs = []
    for _ in range(2):
        assembler = _assembler([])
        frames = [f for r in _drive() for f in assembler.push(r)] + assembler.flush()
        runs.append(
            [(a.frame.stamp_ns, {k: v.tobytes() for k, v in a.feed.items()}) for a in frames]
        )
    assert runs[0] == runs[1]
