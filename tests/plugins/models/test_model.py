"""The model plugin: registration, specs agreeing with the sensor plugins, the modality mask."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fusionrt import ConfigError
from fusionrt.plugins.models.reference import layout
from fusionrt.plugins.models.reference.model import ReferenceModel, parse_modalities
from fusionrt.plugins.sensors.camera import CameraSensor
from fusionrt.plugins.sensors.can import CanSensor
from fusionrt.plugins.sensors.lidar import LidarSensor
from fusionrt.plugins.sensors.radar import RadarSensor
from fusionrt.plugins.sensors.text import TextLogSensor
from fusionrt.runtime.components import Model
from fusionrt.runtime.registry import BUILTIN_PLUGINS, Registry
from fusionrt.runtime.sensor import PreprocessContext

MODULE = "fusionrt.plugins.models.reference.model"


def test_the_plugin_registers_a_model_named_reference():
    assert MODULE in BUILTIN_PLUGINS
    registry = Registry.create(entry_points=False)
    info = registry.component("model", "reference")
    assert info.cls is ReferenceModel and issubclass(info.cls, Model)


def test_input_specs_are_what_the_sensor_plugins_produce_for_its_geometry():
    context = PreprocessContext(geometry=ReferenceModel().geometry)
    produced = {}
    for sensor in (
        CameraSensor("cam"),
        LidarSensor("lidar"),
        RadarSensor("radar"),
        TextLogSensor("log"),
        CanSensor("can"),
    ):
        for spec in sensor.tensor_specs(context):
            produced[spec.name] = (spec.shape, spec.dtype)
    for spec in ReferenceModel().input_specs():
        if spec.name != layout.MODALITY_MASK:
            assert produced[spec.name] == (spec.shape, spec.dtype), spec.name


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {s.name: (rng.random(s.shape) + 0.5).astype(s.dtype) for s in layout.input_specs()[:-1]}


def test_make_feed_masks_absent_and_switched_off_modalities():
    tensors = _tensors()
    present = {"camera": True, "lidar": True, "radar": False, "text": True, "can": True}
    feed = ReferenceModel().make_feed(tensors, present)
    assert feed[layout.MODALITY_MASK].tolist() == [1, 1, 0, 1, 1]
    assert not feed[layout.RADAR_BEV].any() and feed[layout.LIDAR_BEV].all()
    only_lidar = ReferenceModel("lidar").make_feed(tensors, present)
    assert only_lidar[layout.MODALITY_MASK].tolist() == [0, 1, 0, 0, 1]
    assert not only_lidar["camera_images"].any() and not only_lidar["text_tokens"].any()
    for spec in ReferenceModel().input_specs():
        assert spec.matches(only_lidar[spec.name]), spec.name


def test_a_lidar_raster_with_too_few_occupied_cells_counts_as_missing():
    tensors = _tensors()
    present = dict.fromkeys(layout.MODALITIES, True)
    for occupied, lidar_on in ((0, 0), (49, 0), (50, 1)):
        lidar = np.zeros_like(tensors[layout.LIDAR_BEV])
        lidar[:, 0, :occupied] = 0.2  # density and the other channels of `occupied` cells
        feed = ReferenceModel().make_feed({**tensors, layout.LIDAR_BEV: lidar}, present)
        assert feed[layout.MODALITY_MASK].tolist() == [1, lidar_on, 1, 1, 1], occupied
        assert feed[layout.LIDAR_BEV].any() == bool(lidar_on)
    sparse = np.zeros_like(tensors[layout.LIDAR_BEV])
    sparse[:, 5, 5] = 1.0
    feed = ReferenceModel(min_lidar_cells=0).make_feed({**tensors, "lidar_bev": sparse}, present)
    assert feed[layout.MODALITY_MASK][1] == 1


def test_parse_modalities_keeps_can_and_rejects_unknown_names():
    assert parse_modalities("lidar,camera") == ("camera", "lidar", "can")
    assert parse_modalities(None) == layout.MODALITIES
    with pytest.raises(ConfigError, match="unknown modalities"):
        parse_modalities("sonar")


def test_postprocess_returns_ego_frame_detections():
    outputs = {s.name: s.zeros() for s in ReferenceModel().output_specs()}
    outputs[layout.HEATMAP][1, 20, 32] = 0.9  # a pedestrian at row 20, column 32
    detections = ReferenceModel().postprocess(outputs, 123)
    assert len(detections) == 1 and detections.labels.tolist() == [1]
    x, y = detections.boxes[0, :2]
    assert x == pytest.approx(-12.0 + 20 * layout.OUT_RESOLUTION) and y == pytest.approx(0.0)


def test_the_run_path_and_the_commands_never_import_torch():
    code = (
        "import sys, argparse\n"
        "from fusionrt.plugins.models.reference.model import ReferenceModel\n"
        "from fusionrt.plugins.models.reference.eval import cli as eval_cli\n"
        "from fusionrt.plugins.models.reference.train import cli as train_cli\n"
        "p = argparse.ArgumentParser().add_subparsers()\n"
        "eval_cli.add_commands(p); train_cli.add_commands(p)\n"
        "m = ReferenceModel(); m.network_source()\n"
        "m.postprocess({s.name: s.zeros() for s in m.output_specs()}, 0)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_options_are_checked_at_their_key():
    model = ReferenceModel(modalities="camera,lidar", top_k=10, score_threshold=1)
    assert model.modalities == ("camera", "lidar", "can")
    assert (model.top_k, model.score_threshold) == (10, 1.0)
    assert ReferenceModel(["radar"]).modalities == ("radar", "can")
    bad = [
        ({"score_threshold": "high"}, "score_threshold"),
        ({"score_threshold": float("nan")}, "score_threshold"),
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"top_k": 0}, "top_k"),
        ({"min_lidar_cells": -1}, "min_lidar_cells"),
        ({"top_k": 2.5}, "top_k"),
        ({"topk": 5}, "topk"),
        ({"modalities": 3}, "modalities"),
        ({"modalities": ["sonar"]}, "modalities"),
    ]
    for options, key in bad:
        with pytest.raises(ConfigError) as info:
            ReferenceModel(**options)
        assert info.value.context["key"] == key, options
