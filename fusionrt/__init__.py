"""fusionrt: a plugin-based sensor fusion runtime for autonomous perception."""

from fusionrt.runtime.errors import (
    CalibrationError,
    ConfigError,
    DecodeError,
    EngineError,
    FusionError,
    PluginError,
)
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import Detections, Frame, RawRecord, SensorMessage, TensorSpec

__version__ = "0.1.0"

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
