"""A small test-only model plugin: a real ONNX graph over the lidar, radar and camera tensors.

Its heatmap is the lidar occupancy plus the radar occupancy plus a hundredth of the mean camera
value, each multiplied by its entry of the modality mask; its postprocess turns 3×3 local
maxima above a threshold into car boxes. It exists so that the pipeline's tests run a real
engine on real sensor tensors; it is not a detector (the reference model is).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusionrt.runtime.components import Fuser, Model
from fusionrt.runtime.engines.base import NetworkSource
from fusionrt.runtime.geometry import BevGrid, ModelGeometry
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import Detections, TensorSpec

GEOMETRY = ModelGeometry(
    bev=BevGrid(x_range=(0.0, 40.0), y_range=(-20.0, 20.0), resolution=1.0),
    image_size=(64, 112),
    num_cameras=1,
    lift_heights=(0.0, 1.0),
)
ROWS, COLS = GEOMETRY.bev.shape
INPUTS = (
    TensorSpec("camera_images", (1, 3, 64, 112), "float32", "camera"),
    TensorSpec("lidar_bev", (7, ROWS, COLS), "float32", "lidar"),
    TensorSpec("radar_bev", (4, ROWS, COLS), "float32", "radar"),
    TensorSpec("modality_mask", (3,), "float32"),
)
OUTPUTS = (TensorSpec("heatmap", (1, ROWS, COLS), "float32"),)


def _graph() -> onnx.ModelProto:
    def value(spec: TensorSpec) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(spec.name, TensorProto.FLOAT, list(spec.shape))

    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array(1, np.int64), "i1"),
        numpy_helper.from_array(np.array(2, np.int64), "i2"),
        numpy_helper.from_array(np.array(0.01, np.float32), "hundredth"),
    ]
    nodes = [
        helper.make_node("Gather", ["modality_mask", "i0"], ["m_cam"]),
        helper.make_node("Gather", ["modality_mask", "i1"], ["m_lidar"]),
        helper.make_node("Gather", ["modality_mask", "i2"], ["m_radar"]),
        helper.make_node("Slice", ["lidar_bev", "zero", "one", "zero"], ["lidar0"]),
        helper.make_node("Slice", ["radar_bev", "zero", "one", "zero"], ["radar0"]),
        helper.make_node("ReduceMean", ["camera_images"], ["cam_mean"], keepdims=0),
        helper.make_node("Mul", ["lidar0", "m_lidar"], ["lidar_term"]),
        helper.make_node("Mul", ["radar0", "m_radar"], ["radar_term"]),
        helper.make_node("Mul", ["cam_mean", "m_cam"], ["cam_masked"]),
        helper.make_node("Mul", ["cam_masked", "hundredth"], ["cam_term"]),
        helper.make_node("Add", ["lidar_term", "radar_term"], ["bev_sum"]),
        helper.make_node("Add", ["bev_sum", "cam_term"], ["heatmap"]),
    ]
    graph = helper.make_graph(
        nodes, "toy", [value(s) for s in INPUTS], [value(s) for s in OUTPUTS], inits
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="fusionrt-tests",
        ir_version=8,
    )


class ToyModel(Model):
    """See the module docstring. Option ``threshold`` (default 0.5)."""

    name: ClassVar[str] = "toy"
    class_names = ("car", "pedestrian", "cyclist")

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)

    @property
    def geometry(self) -> ModelGeometry:
        return GEOMETRY

    def input_specs(self) -> list[TensorSpec]:
        return list(INPUTS)

    def output_specs(self) -> list[TensorSpec]:
        return list(OUTPUTS)

    def network_source(self) -> NetworkSource:
        path = Path(tempfile.gettempdir()) / "fusionrt-toy-model.onnx"
        return _network(path, _graph(), INPUTS)

    def make_feed(self, tensors, present):
        feed = super().make_feed(tensors, present)
        feed["modality_mask"] = np.array(
            [
                present.get("camera", False),
                present.get("lidar", False),
                present.get("radar", False),
            ],
            np.float32,
        )
        return feed

    def postprocess(self, outputs: Mapping[str, np.ndarray], stamp_ns: int) -> Detections:
        heat = outputs["heatmap"][0]
        padded = np.pad(heat, 1, constant_values=-np.inf)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
        peaks = (heat >= windows.max(axis=(2, 3))) & (heat > self.threshold)
        rows, cols = np.nonzero(peaks)
        xs, ys = GEOMETRY.bev.cell_centres()
        count = len(rows)
        boxes = np.zeros((count, 7), np.float32)
        boxes[:, 0], boxes[:, 1], boxes[:, 2] = xs[rows], ys[cols], 0.8
        boxes[:, 3:6] = (4.0, 1.8, 1.5)
        scores = np.minimum(heat[rows, cols] / 4.0, 1.0).astype(np.float32)
        return Detections(stamp_ns, boxes, scores, np.zeros(count, np.int64))


def _network(path: Path, graph: onnx.ModelProto, inputs: tuple[TensorSpec, ...]) -> NetworkSource:
    data = graph.SerializeToString()
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return NetworkSource(inputs, OUTPUTS, onnx_path=path)


RADAR_INPUTS = (INPUTS[2], INPUTS[3])


def _radar_graph() -> onnx.ModelProto:
    """The heatmap is the radar occupancy times its mask entry: a model of the radar alone."""
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.array(2, np.int64), "i2"),
    ]
    nodes = [
        helper.make_node("Gather", ["modality_mask", "i2"], ["m_radar"]),
        helper.make_node("Slice", ["radar_bev", "zero", "one", "zero"], ["radar0"]),
        helper.make_node("Mul", ["radar0", "m_radar"], ["heatmap"]),
    ]
    value = lambda s: helper.make_tensor_value_info(s.name, TensorProto.FLOAT, list(s.shape))  # noqa: E731
    graph = helper.make_graph(
        nodes, "toy_radar", [value(s) for s in RADAR_INPUTS], [value(s) for s in OUTPUTS], inits
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="fusionrt-tests",
        ir_version=8,
    )


class ToyRadarModel(ToyModel):
    """The toy model of the radar alone (decision-level fusion tests)."""

    name: ClassVar[str] = "toy_radar"

    def input_specs(self) -> list[TensorSpec]:
        return list(RADAR_INPUTS)

    def network_source(self) -> NetworkSource:
        return _network(
            Path(tempfile.gettempdir()) / "fusionrt-toy-radar.onnx", _radar_graph(), RADAR_INPUTS
        )


class UnionFuser(Fuser):
    """Test fuser: every model's detections, one after the other (``None``s skipped)."""

    name: ClassVar[str] = "union"

    def __init__(self, models: list[str]) -> None:
        self.models = models

    def fuse(self, detections, stamp_ns):
        parts = [detections[m] for m in self.models if detections[m] is not None]
        if not parts:
            return Detections.empty(stamp_ns)
        return Detections(
            stamp_ns,
            np.concatenate([d.boxes for d in parts]),
            np.concatenate([d.scores for d in parts]),
            np.concatenate([d.labels for d in parts]),
        )


@hookimpl
def fusionrt_models() -> list[type[Model]]:
    return [ToyModel, ToyRadarModel]


@hookimpl
def fusionrt_fusers() -> list[type[Fuser]]:
    return [UnionFuser]
