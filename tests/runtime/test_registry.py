"""The plugin registry: discovery through entry points and every PluginError case."""

from __future__ import annotations

import pytest

from fusionrt import PluginError
from fusionrt.runtime.registry import BUILTIN_PLUGINS, Registry

GOOD_SENSOR = """
from typing import ClassVar
import numpy as np
from fusionrt import hookimpl, SensorMessage, TensorSpec
from fusionrt.runtime.sensor import Modality, Sensor

class {cls}(Sensor):
    name: ClassVar[str] = "{name}"
    modality = Modality.OTHER
    def decode(self, raw):
        return SensorMessage(self.instance, raw.stamp_ns, np.frombuffer(raw.data, np.uint8))
    def tensor_specs(self, context):
        return [TensorSpec("x", (1,))]
    def preprocess(self, message, context):
        return {{"x": np.zeros(1, np.float32)}}

@hookimpl
def fusionrt_sensors():
    return [{cls}]
"""


def test_entry_point_plugin_is_discovered_with_its_distribution(make_distribution):
    make_distribution(
        "acme-sensors",
        {"acme": "acme_plugin"},
        {"acme_plugin": GOOD_SENSOR.format(cls="AcmeSensor", name="acme")},
    )
    registry = Registry.create(builtins=())
    info = registry.component("sensor", "acme")
    assert info.cls.__name__ == "AcmeSensor"
    assert info.plugin.distribution == "acme-sensors"
    assert info.plugin.entry_point == "acme = acme_plugin"
    assert info.plugin.version == "1.0"


def test_entry_point_that_fails_to_import_names_distribution_and_entry_point(make_distribution):
    make_distribution(
        "broken-dist",
        {"broken": "broken_plugin"},
        {"broken_plugin": "import not_a_module_anywhere\n"},
    )
    with pytest.raises(PluginError) as info:
        Registry.create(builtins=())
    message = str(info.value)
    assert "failed to import" in message and "ModuleNotFoundError" in message
    assert "broken-dist" in message and "broken = broken_plugin" in message


def test_hook_with_wrong_signature_is_a_plugin_error(make_distribution):
    source = """
    from fusionrt import hookimpl
    @hookimpl
    def fusionrt_sensor_stale(sensor, last_stamp_ns, now_ns, severity):
        pass
    """
    make_distribution("wrongsig-dist", {"wrongsig": "wrongsig_plugin"}, {"wrongsig_plugin": source})
    with pytest.raises(PluginError) as info:
        Registry.create(builtins=())
    message = str(info.value)
    assert "invalid hook implementation" in message and "severity" in message
    assert "wrongsig-dist" in message and "wrongsig = wrongsig_plugin" in message


def test_unknown_hook_is_a_plugin_error(make_distribution):
    source = """
    def fusionrt_sensor():  # typo of fusionrt_sensors, unmarked: still checked
        return []
    """
    make_distribution("typo-dist", {"typo": "typo_plugin"}, {"typo_plugin": source})
    with pytest.raises(PluginError, match=r"unknown hook 'fusionrt_sensor'.*typo-dist"):
        Registry.create(builtins=())


def test_two_components_with_the_same_name_are_an_error_naming_both(make_distribution):
    make_distribution(
        "first-dist",
        {"first": "first_plugin"},
        {"first_plugin": GOOD_SENSOR.format(cls="A", name="thermal")},
    )
    make_distribution(
        "second-dist",
        {"second": "second_plugin"},
        {"second_plugin": GOOD_SENSOR.format(cls="B", name="thermal")},
    )
    with pytest.raises(PluginError) as info:
        Registry.create(builtins=())
    message = str(info.value)
    assert "sensor name 'thermal' is already provided by plugin 'first'" in message
    assert "first-dist" in message and "second-dist" in message
    assert info.value.context["component"] == "thermal"


def test_disabled_plugin_is_not_loaded(make_distribution):
    make_distribution(
        "broken-dist",
        {"broken": "broken_plugin"},
        {"broken_plugin": "raise RuntimeError('never import me')\n"},
    )
    registry = Registry.create(disabled=["broken"], builtins=())
    assert "broken" not in [p.name for p in registry.plugins()]


def test_component_that_is_not_a_sensor_subclass_is_rejected(make_distribution):
    source = """
    class NotASensor:
        name = "fake"
    def fusionrt_sensors():
        return [NotASensor]
    """
    make_distribution("fake-dist", {"fake": "fake_plugin"}, {"fake_plugin": source})
    with pytest.raises(PluginError, match=r"must be a subclass of fusionrt.runtime.sensor.Sensor"):
        Registry.create(builtins=())


def test_abstract_component_is_rejected(make_distribution):
    source = """
    from fusionrt.runtime.sensor import Sensor, Modality
    class Half(Sensor):
        name = "half"
        modality = Modality.OTHER
    def fusionrt_sensors():
        return [Half]
    """
    make_distribution("half-dist", {"half": "half_plugin"}, {"half_plugin": source})
    with pytest.raises(PluginError, match=r"abstract methods unimplemented: decode"):
        Registry.create(builtins=())


def test_registration_hook_that_raises_names_the_plugin(make_distribution):
    source = """
    def fusionrt_sinks():
        raise ValueError("config missing")
    """
    make_distribution("raising-dist", {"raising": "raising_plugin"}, {"raising_plugin": source})
    with pytest.raises(PluginError, match=r"fusionrt_sinks\(\) raised ValueError: config missing"):
        Registry.create(builtins=())


def test_unknown_component_lists_what_is_installed(make_distribution):
    make_distribution(
        "acme-sensors",
        {"acme": "acme_plugin"},
        {"acme_plugin": GOOD_SENSOR.format(cls="AcmeSensor", name="acme")},
    )
    registry = Registry.create(builtins=())
    with pytest.raises(PluginError, match=r"no sensor named 'sonar'.*acme"):
        registry.component("sensor", "sonar")


def test_failed_registration_leaves_no_partial_state(make_distribution):
    make_distribution(
        "acme-sensors",
        {"acme": "acme_plugin"},
        {"acme_plugin": GOOD_SENSOR.format(cls="AcmeSensor", name="acme")},
    )
    registry = Registry.create(builtins=())
    import acme_plugin

    from fusionrt.runtime.registry import PluginInfo

    with pytest.raises(PluginError):
        registry.register(acme_plugin, PluginInfo("again", "acme-sensors", "1.0"))
    assert [c.plugin.name for c in registry.components("sensor") if c.name == "acme"] == ["acme"]
    assert "again" not in [p.name for p in registry.plugins()]


def test_observer_hooks_reach_plugins(make_distribution):
    source = """
    seen = []
    def fusionrt_sensor_fault(sensor, stamp_ns, reason, detail):
        seen.append((sensor, stamp_ns, reason))
    """
    make_distribution("watch-dist", {"watch": "watch_plugin"}, {"watch_plugin": source})
    registry = Registry.create(builtins=())
    registry.hook.fusionrt_sensor_fault(
        sensor="lidar", stamp_ns=5, reason="decode_error", detail=""
    )
    import watch_plugin

    assert watch_plugin.seen == [("lidar", 5, "decode_error")]


@pytest.mark.parametrize("module", BUILTIN_PLUGINS)
def test_builtin_plugins_register_through_the_same_path(module):
    registry = Registry.create(builtins=(module,), entry_points=False)
    (plugin,) = registry.plugins()
    assert plugin.distribution == "fusionrt" and plugin.entry_point is None
    assert registry.components(), f"{module} contributes no component"
