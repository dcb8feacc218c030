"""Options declared once (``option_specs``) and checked by the component bases."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.options import Option, check_options, resolve_options
from fusionrt.runtime.sensor import Modality, Sensor

SPECS = {
    "count": Option(8, int, minimum=1),
    "scale": Option(1.0, float, exclusive_minimum=0, maximum=10),
    "flag": Option(False, bool),
    "mode": Option("crop", str, choices=("crop", "stretch")),
    "rgb": Option((0.0, 0.0, 0.0), list, item=float, length=3),
    "files": Option(("a.dbc",), list, item=Path),
    "names": Option(None, (str, list), item=str, nullable=True),
    "table": Option({}, dict),
}

#: The type a checked value of each declared type has.
NORMALISED = {list: tuple, Path: str}

#: What a YAML file can hold: scalars (with .inf/.nan), lists and mappings of them.
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)


def _resolve(**given: Any) -> dict[str, Any]:
    return resolve_options(SPECS, given, owner="test thing 't'", sensor="t")


def test_defaults_fill_what_is_not_given_and_values_are_normalised() -> None:
    out = _resolve(scale=2, rgb=np.array([1, 2, 3]), files=[Path("/x/b.dbc")], names="a")
    assert out == {
        "count": 8,
        "scale": 2.0,
        "flag": False,
        "mode": "crop",
        "rgb": (1.0, 2.0, 3.0),
        "files": ("/x/b.dbc",),
        "names": "a",
        "table": {},
    }
    assert type(out["scale"]) is float and type(out["count"]) is int
    assert _resolve(count=np.int64(3))["count"] == 3


def test_each_instance_gets_its_own_mutable_defaults() -> None:
    first, second = _resolve(), _resolve()
    first["table"]["x"] = 1
    assert second["table"] == {} and SPECS["table"].default == {}


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("count", 0, "an integer >= 1"),
        ("count", 2.0, "an integer >= 1"),
        ("count", True, "an integer >= 1"),
        ("count", "8", "an integer >= 1"),
        ("scale", 0, "a finite number > 0 and <= 10"),
        ("scale", math.inf, "a finite number > 0 and <= 10"),
        ("scale", math.nan, "a finite number > 0 and <= 10"),
        ("scale", "high", "a finite number > 0 and <= 10"),
        ("flag", "yes", "true or false"),
        ("flag", 1, "true or false"),
        ("mode", "zoom", "one of 'crop', 'stretch'"),
        ("rgb", [1, 2], "a list of 3 finite numbers"),
        ("rgb", [1, 2, math.nan], "a list of 3 finite numbers"),
        ("rgb", "abc", "a list of 3 finite numbers"),
        ("files", [""], "a list of paths"),
        ("names", 5, "a non-empty string or a list of non-empty strings or null"),
        ("table", [1], "a mapping"),
    ],
)
def test_a_value_that_does_not_fit_is_a_config_error_at_its_key(name, value, words) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(**{name: value})
    assert info.value.context == {"key": name, "sensor": "t"}
    assert info.value.message.startswith(f"option {name!r} of the test thing 't' must be {words}")


def test_an_unknown_name_is_refused_with_the_known_ones_and_a_guess() -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(cont=3)
    assert info.value.context["key"] == "cont"
    assert "(did you mean 'count'?)" in info.value.message
    assert "known: count, files, flag, mode, names, rgb, scale, table" in info.value.message
    with pytest.raises(ConfigError, match="it takes no options"):
        resolve_options({}, {"anything": 1}, owner="bare thing")


def test_errors_quote_huge_values_briefly() -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(count=list(range(100_000)))
    assert len(str(info.value)) < 300


def test_check_options_adds_no_defaults() -> None:
    assert check_options(SPECS, {"flag": True}, owner="x") == {"flag": True}


@given(value=YAML_VALUES)
def test_any_yaml_value_is_accepted_normalised_or_a_config_error(value: Any) -> None:
    for name, spec in SPECS.items():
        try:
            out = _resolve(**{name: value})[name]
        except ConfigError as exc:
            assert exc.context["key"] == name
            continue
        kinds = tuple(NORMALISED.get(kind, kind) for kind in spec.kinds)
        assert out is None or isinstance(out, kinds)
        if isinstance(out, float):
            assert math.isfinite(out)


def test_a_declaration_whose_default_does_not_fit_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="the default 0 does not fit"):
        Option(0, int, minimum=1)
    with pytest.raises(TypeError, match="option types are"):
        Option(1j, complex)


class _Bare(Sensor):
    name: ClassVar[str] = "bare"
    modality: ClassVar[Modality] = Modality.OTHER

    def decode(self, raw):  # pragma: no cover - not called
        raise NotImplementedError

    def tensor_specs(self, context):  # pragma: no cover - not called
        return []

    def preprocess(self, message, context):  # pragma: no cover - not called
        return {}


def test_a_sensor_that_declares_no_options_takes_none() -> None:
    assert _Bare("b").options == {}
    with pytest.raises(ConfigError, match="unknown option 'gain' of the bare sensor 'b'") as info:
        _Bare("b", gain=2)
    assert info.value.context == {"key": "gain", "sensor": "b"}
