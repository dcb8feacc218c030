"""Component options declared once: name, default, type and bounds, checked in one place.

A component class declares the options it takes as a class attribute::

    class LidarSensor(Sensor):
        option_specs = {
            "tensor_name": Option("lidar_bev", str),
            "intensity_scale": Option(None, float, nullable=True, exclusive_minimum=0),
            "time_resolution_ns": Option(1_000_000, int, minimum=1),
        }

and its base (:class:`~fusionrt.runtime.sensor.Sensor`, :class:`~fusionrt.runtime.components.Model`)
calls :func:`resolve_options` on the keywords it is given: an unknown name, a value of the wrong
type (``score_threshold: "high"``), a non-finite number or one out of bounds is a
:class:`ConfigError` whose ``key`` context is the option's name (``err.context["key"]``), so
whoever built the component can name ``sensors.NAME.options.KEY``. The plugin keeps only its
domain checks (a DBC signal that exists, a camera in the rig).

Types are a closed vocabulary — ``bool``, ``int``, ``float``, ``str``, ``Path``, ``list`` (of
``item``), ``dict`` — because options come from YAML, which has no other. The check is written
here rather than taken from a validation library: none of the core dependencies has one, and
what is needed (strict bools, finite numbers, errors that are ``FusionError`` s at the key with
a "did you mean") is smaller than the adapter to one would be.
"""

from __future__ import annotations

import builtins
import difflib
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.runtime.errors import ConfigError, brief

__all__ = ["Option", "check_options", "resolve_options"]

_KINDS: tuple[type, ...] = (bool, int, float, str, Path, list, dict)
_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a finite number",
    str: "a non-empty string",
    Path: "a path",
    list: "a list",
    dict: "a mapping",
}


_PLURALS = {
    bool: "booleans",
    int: "integers",
    float: "finite numbers",
    str: "non-empty strings",
    Path: "paths",
    list: "lists",
    dict: "mappings",
}


class _Mismatch(Exception):
    """Internal: the value does not fit; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Option:
    """One option: its default, its type (or types) and the bounds of its value.

    ``type`` is one of ``bool, int, float, str, Path, list, dict`` or a tuple of them (the
    first that fits wins); ``int`` values are accepted where ``float`` is declared. ``item`` is
    the type of a ``list``'s items, ``length`` its exact length. ``minimum``, ``maximum``
    (inclusive) and ``exclusive_minimum`` bound numbers (a list's numeric items too);
    ``choices`` lists the accepted values; ``nullable`` accepts ``None`` (``null``). Checked
    values are normalised: numbers to ``int``/``float``, paths to ``str``, lists to tuples.
    """

    default: Any
    type: type | tuple[type, ...]
    item: builtins.type | None = None
    length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        kinds = self.kinds
        if not kinds or any(kind not in _KINDS for kind in kinds):
            raise TypeError(f"option types are {', '.join(k.__name__ for k in _KINDS)}")
        if self.item is not None and self.item not in _KINDS:
            raise TypeError(f"list items are {', '.join(k.__name__ for k in _KINDS)}")
        try:  # a declaration whose own default does not pass is a bug of the plugin
            self.check(self.default)
        except _Mismatch as exc:
            raise TypeError(f"the default {self.default!r} does not fit: {exc}") from None

    @property
    def kinds(self) -> tuple[builtins.type, ...]:
        """The accepted types, in order."""
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def describe(self) -> str:
        """What a value must be, in words (``an integer >= 1``)."""
        if self.choices is not None:
            words = "one of " + ", ".join(map(repr, self.choices))
        else:
            words = " or ".join(self._describe_kind(kind) for kind in self.kinds)
        return f"{words} or null" if self.nullable else words

    def check(self, value: Any) -> Any:
        """``value`` normalised if it fits, else ``_Mismatch`` saying what was expected."""
        if value is None and self.nullable:
            return None
        for kind in self.kinds:
            converted = _convert(kind, value)
            if converted is _NO:
                continue
            if kind is list:
                converted = self._check_list(converted)
            elif kind in (int, float):
                self._check_bounds(converted)
            if self.choices is not None and converted not in self.choices:
                break
            return converted
        raise _Mismatch(f"must be {self.describe()}")

    def _describe_kind(self, kind: builtins.type) -> str:
        numeric = kind in (int, float)
        words = _NAMES[kind]
        if kind is list and (self.length is not None or self.item is not None):
            count = "" if self.length is None else f"{self.length} "
            words = f"a list of {count}{_PLURALS[self.item] if self.item else 'items'}"
            numeric = self.item in (int, float)
        return words + self._describe_bounds() if numeric else words

    def _describe_bounds(self) -> str:
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.exclusive_minimum is not None:
            bounds.append(f"> {self.exclusive_minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        return (" " + " and ".join(bounds)) if bounds else ""

    def _check_bounds(self, number: float) -> None:
        low, high, above = self.minimum, self.maximum, self.exclusive_minimum
        if (
            (low is not None and number < low)
            or (high is not None and number > high)
            or (above is not None and number <= above)
        ):
            raise _Mismatch(f"must be {self.describe()}")

    def _check_list(self, items: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.length is not None and len(items) != self.length:
            raise _Mismatch(f"must be {self.describe()}")
        if self.item is None:
            return items
        out = []
        for value in items:
            converted = _convert(self.item, value)
            if converted is _NO:
                raise _Mismatch(f"must be {self.describe()}")
            if self.item in (int, float):
                self._check_bounds(converted)
            out.append(converted)
        return tuple(out)


_NO = object()  # the value is not of the kind asked


def _convert(kind: type, value: Any) -> Any:
    """``value`` as ``kind`` (normalised), or ``_NO``. Strict: no bool is a number, no number a
    bool, no string a number; NaN and infinities are no numbers."""
    is_bool = isinstance(value, bool | np.bool_)
    if kind is bool:
        return bool(value) if is_bool else _NO
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) and not is_bool else _NO
    if kind is float:
        if isinstance(value, numbers.Real) and not is_bool and math.isfinite(value):
            return float(value)
        return _NO
    if kind is str:
        return value if isinstance(value, str) and value else _NO
    if kind is Path:
        if isinstance(value, os.PathLike) or (isinstance(value, str) and value):
            return os.fspath(value)
        return _NO
    if kind is list:
        if isinstance(value, np.ndarray) and value.ndim == 1:
            return tuple(value.tolist())
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            return tuple(value)
        return _NO
    return dict(value) if isinstance(value, Mapping) else _NO  # dict


def check_options(
    specs: Mapping[str, Option], given: Mapping[str, Any], *, owner: str, **where: Any
) -> dict[str, Any]:
    """The ``given`` options checked against ``specs`` and normalised (no defaults added).

    ``owner`` names the component in messages (``lidar sensor 'lidar_top'``); ``where`` is
    extra error context (``sensor=...``). Raises :class:`ConfigError` with ``key`` = the
    option's name.
    """
    out: dict[str, Any] = {}
    for name, value in given.items():
        spec = specs.get(name)
        if spec is None:
            known = sorted(specs)
            hint = difflib.get_close_matches(str(name), known, n=1)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            takes = f"known: {', '.join(known)}" if known else "it takes no options"
            raise ConfigError(
                f"unknown option {brief(name)} of the {owner}{maybe}; {takes}", key=name, **where
            )
        try:
            out[name] = spec.check(value)
        except _Mismatch as exc:
            got = f"{type(value).__name__} {brief(value)}"
            raise ConfigError(
                f"option {name!r} of the {owner} {exc}, got {got}", key=name, **where
            ) from None
    return out


def resolve_options(
    specs: Mapping[str, Option], given: Mapping[str, Any], *, owner: str, **where: Any
) -> dict[str, Any]:
    """Every declared option: the default overlaid by the checked ``given`` value."""
    checked = check_options(specs, given, owner=owner, **where)
    return {  # defaults pass through check() too: each instance gets its own lists and dicts
        name: checked[name] if name in checked else spec.check(spec.default)
        for name, spec in specs.items()
    }
