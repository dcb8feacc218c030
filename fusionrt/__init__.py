"""fusionrt: a plugin-based sensor fusion runtime for autonomous perception.

The names below are imported from their modules when first used (PEP 562 ``__getattr__``), so
that ``import fusionrt`` — and ``fusionrt --version`` — does not import numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fusionrt.runtime.errors import (
        CalibrationError,
        ConfigError,
        DecodeError,
        EngineError,
        FusionError,
        PluginError,
    )
    from fusionrt.runtime.hookspecs import hookimpl
    from fusionrt.runtime.messages import (
        Detections,
        Frame,
        RawRecord,
        SensorMessage,
        TensorSpec,
    )

__version__ = "0.1.0"

#: Where each public name lives.
_MODULES: dict[str, str] = {
    **dict.fromkeys(
        (
            "CalibrationError",
            "ConfigError",
            "DecodeError",
            "EngineError",
            "FusionError",
            "PluginError",
        ),
        "fusionrt.runtime.errors",
    ),
    "hookimpl": "fusionrt.runtime.hookspecs",
    **dict.fromkeys(
        ("Detections", "Frame", "RawRecord", "SensorMessage", "TensorSpec"),
        "fusionrt.runtime.messages",
    ),
}

__all__ = [
    "CalibrationError",
    "ConfigError",
    "DecodeError",
    "Detections",
    "EngineError",
    "Frame",
    "FusionError",
    "PluginError",
    "RawRecord",
    "SensorMessage",
    "TensorSpec",
    "__version__",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'fusionrt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
