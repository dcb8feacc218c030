"""fusionrt: a plugin-based sensor fusion runtime for autonomous perception.

The names below are imported from their modules when first used (PEP 562, through
``lazy_loader``), so that ``import fusionrt`` — and ``fusionrt --version`` — does not import
numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

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

__getattr__, _lazy_dir, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "runtime.errors": [
            "CalibrationError",
            "ConfigError",
            "DecodeError",
            "EngineError",
            "FusionError",
            "PluginError",
        ],
        "runtime.hookspecs": ["hookimpl"],
        "runtime.messages": ["Detections", "Frame", "RawRecord", "SensorMessage", "TensorSpec"],
    },
)

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


def __dir__() -> list[str]:
    return sorted({*globals(), *_lazy_dir()})
