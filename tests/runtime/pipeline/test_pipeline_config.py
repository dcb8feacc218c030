"""Pipeline YAML validation: every error names the file and the key path."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_support import pipeline_dict, write_pipeline

from fusionrt.runtime.config import load_pipeline, pipeline_from_dict
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.pipeline import Pipeline, build_front_end


def _set(data: dict, dotted: str, value: object) -> dict:
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("dotted", "value", "key"),
    [
        ("sensors.camera_front.topic", 5, "sensors.camera_front.topic"),
        ("sensors.camera_front.plugin", None, "sensors.camera_front.plugin"),
        ("sensors.lidar_top.colour", "red", "sensors.lidar_top.colour"),
        ("sync.policy", "fastest", "sync.policy"),
        ("sync.reference", "lidar_rear", "sync.reference"),
        ("sync.tolerance_ms", -3, "sync.tolerance_ms"),
        ("sync.latest", {"ghost": {}}, "sync.latest.ghost"),
        ("sync.min_period_ms", {"ghost": 50}, "sync.min_period_ms.ghost"),
        ("sync.min_period_ms", {"camera_front": -1}, "sync.min_period_ms.camera_front"),
        ("runtime.workers", 0, "runtime.workers"),
        ("runtime.infer_workers", 1.5, "runtime.infer_workers"),
        ("backend", {"name": "auto", "per_backend": [1]}, "backend.per_backend"),
        (
            "backend",
            {"name": "auto", "per_backend": {"tensorrt": 3}},
            "backend.per_backend.tensorrt",
        ),
        ("backend", {"per_backend": {}}, "backend.name"),
        ("runtime.deadline_ms", "soon", "runtime.deadline_ms"),
        ("model", {"options": {}}, "model.name"),
        ("sinks", {"name": "jsonl"}, "sinks"),
        ("rig", "missing/rig.yaml", "rig"),
        ("extra", 1, "extra"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, dotted, value, key):
    path = write_pipeline(tmp_path / "bad.yaml", _set(pipeline_dict(), dotted, value))
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.context["file"] == str(path)
    assert info.value.context["key"] == key


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("dotted", "value", "key"),
    [
        ("sync.tolerance_ms", INF, "sync.tolerance_ms"),
        ("sync.timeout_ms", NAN, "sync.timeout_ms"),
        ("sync.period_ms", 1e300, "sync.period_ms"),
        ("sync.emit_empty", "yes", "sync.emit_empty"),
        ("sync.emit_empty", 1, "sync.emit_empty"),
        ("sync.expected_periods_ms", {"lidar_top": NAN}, "sync.expected_periods_ms.lidar_top"),
        ("sync.latest", {"radar_front": {"max_age_ms": INF}}, "sync.latest.radar_front.max_age_ms"),
        (
            "sync.latest",
            {"radar_front": {"interpolation": "cubic"}},
            "sync.latest.radar_front.interpolation",
        ),
        ("sync.latest", {"radar_front": {"history": 1}}, "sync.latest.radar_front.history"),
        ("runtime.deadline_ms", INF, "runtime.deadline_ms"),
        ("runtime.deadline_ms", NAN, "runtime.deadline_ms"),
        ("runtime.plugin_timeout_ms", INF, "runtime.plugin_timeout_ms"),
    ],
)
def test_numbers_must_be_finite_and_flags_booleans(tmp_path, dotted, value, key):
    path = write_pipeline(tmp_path / "bad.yaml", _set(pipeline_dict(), dotted, value))
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.context == {"file": str(path), "key": key}


YAML_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
FIELDS = [
    "sync.tolerance_ms",
    "sync.timeout_ms",
    "sync.period_ms",
    "sync.phase_ms",
    "sync.queue_size",
    "sync.emit_empty",
    "sync.expected_periods_ms",
    "sync.min_period_ms",
    "sync.latest",
    "runtime.workers",
    "runtime.infer_workers",
    "runtime.queue_size",
    "runtime.deadline_ms",
    "runtime.plugin_timeout_ms",
    "runtime.quarantine_after",
]


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=YAML_VALUES)
def test_any_value_of_a_field_is_read_or_a_config_error_at_it(field, value):
    try:
        config = pipeline_from_dict(_set(pipeline_dict(), field, value), "p.yaml")
    except ConfigError as exc:
        assert exc.context["key"].startswith(field) and exc.context["file"] == "p.yaml"
        return
    numbers = [*config.sync.parameters.values(), *config.sync.expected_periods_ns.values()]
    for spec in config.sync.latest.values():
        numbers += list(spec.values())
    for number in numbers:  # what the Synchronizer gets: whole nanoseconds that fit an int64
        if isinstance(number, int | float) and not isinstance(number, bool):
            assert isinstance(number, int) or math.isfinite(number)
            assert abs(number) < 2**63


def test_approximate_time_age_penalty_is_a_finite_number(tmp_path):
    data = pipeline_dict()
    data["sync"] = {"policy": "approximate_time", "age_penalty": NAN}
    with pytest.raises(ConfigError, match="finite number") as info:
        load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    assert info.value.context["key"] == "sync.age_penalty"


def test_alias_bomb_in_options_is_refused_naming_the_file(tmp_path, alias_bomb):
    data = _set(pipeline_dict(), "model.options.huge", "BOMB")
    path = write_pipeline(tmp_path / "p.yaml", data)
    path.write_text(path.read_text().replace("BOMB", alias_bomb()))
    with pytest.raises(ConfigError, match="expand to more than") as info:
        load_pipeline(path)
    assert info.value.context["file"] == str(path)


def test_errors_quote_a_huge_value_briefly(tmp_path):
    path = write_pipeline(
        tmp_path / "p.yaml", _set(pipeline_dict(), "runtime.deadline_ms", list(range(100_000)))
    )
    with pytest.raises(ConfigError, match="deadline_ms must be") as info:
        load_pipeline(path)
    assert len(str(info.value)) < 300


def test_a_topic_read_twice_is_rejected(tmp_path):
    data = pipeline_dict()
    data["sensors"]["radar_front"]["topic"] = data["sensors"]["lidar_top"]["topic"]
    with pytest.raises(ConfigError, match="already read by") as info:
        load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    assert info.value.context["key"] == "sensors.radar_front.topic"


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("sensors:\n  a: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.context["file"] == str(path) and info.value.context["line"] >= 2


@pytest.mark.parametrize(
    ("dotted", "value", "key"),
    [
        ("sensors.lidar_top.plugin", "sonar", "sensors.lidar_top.plugin"),
        (
            "sensors.camera_front.options",
            {"jpeg_reduction": 3},
            "sensors.camera_front.options.jpeg_reduction",
        ),
        ("model.name", "nonexistent", "model.name"),
        ("sinks", [{"name": "printer"}], "sinks[0].name"),
        (
            "backend",
            {"name": "auto", "per_backend": {"onnxrutime": {}}},
            "backend.per_backend.onnxrutime",
        ),
    ],
)
def test_unknown_components_name_the_key(tmp_path, drive, registry, dotted, value, key):  # noqa: PLR0917
    config = load_pipeline(
        write_pipeline(tmp_path / "p.yaml", _set(pipeline_dict(), dotted, value))
    )
    with pytest.raises(ConfigError) as info:
        Pipeline(config, drive, registry)
    assert info.value.context["key"] == key and info.value.context["file"] == str(config.path)


@pytest.mark.parametrize(
    ("dotted", "value", "key", "option"),
    [
        (
            "sensors.lidar_top.options",
            {"tensor_nam": "x"},
            "sensors.lidar_top.options",
            "tensor_nam",
        ),
        (
            "sensors.radar_front.options",
            {"radius_m": "wide"},
            "sensors.radar_front.options",
            "radius_m",
        ),
        (
            "model",
            {"name": "reference", "options": {"score_threshold": "high"}},
            "model.options",
            "score_threshold",
        ),
    ],
)
def test_option_errors_name_the_option(tmp_path, registry, dotted, value, key, option):  # noqa: PLR0917
    config = load_pipeline(
        write_pipeline(tmp_path / "p.yaml", _set(pipeline_dict(), dotted, value))
    )
    with pytest.raises(ConfigError) as info:
        build_front_end(config, tmp_path, registry)  # fails before it opens the drive
    assert info.value.context["key"] == f"{key}.{option}" and repr(option) in str(info.value)


def test_an_option_the_backend_does_not_take_is_named(tmp_path, drive, registry):
    data = _set(pipeline_dict(), "backend", {"name": "onnxruntime", "options": {"bogus": 1}})
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    with pytest.raises(ConfigError, match="unknown option 'bogus' of the onnxruntime") as info:
        Pipeline(config, drive, registry)
    assert info.value.context["key"] == "backend.options.bogus"
    assert info.value.context["file"] == str(tmp_path / "p.yaml")


def test_the_valid_file_loads_with_units_converted(tmp_path):
    config = load_pipeline(write_pipeline(tmp_path / "p.yaml", pipeline_dict()))
    assert config.sensor_names() == ("lidar_top", "camera_front", "radar_front")
    assert config.sync.parameters["tolerance_ns"] == 60_000_000
    assert config.model.name == "toy" and config.runtime.queue_size == 3


def test_relative_option_paths_are_anchored_at_the_pipeline_file(tmp_path):
    data = pipeline_dict()
    data["sensors"]["lidar_top"]["options"] = {
        "files": ["./a.dbc", "../b.dbc", "plain/c.dbc"],
        "nested": {"path": "./d"},
    }
    config = load_pipeline(write_pipeline(tmp_path / "conf" / "p.yaml", data))
    options = next(s for s in config.sensors if s.name == "lidar_top").options
    assert options["files"] == [
        str(tmp_path / "conf" / "a.dbc"),
        str(tmp_path / "b.dbc"),
        "plain/c.dbc",  # not marked relative: left as written
    ]
    assert options["nested"] == {"path": str(tmp_path / "conf" / "d")}
