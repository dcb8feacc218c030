"""The error hierarchy: every error fusionrt raises on purpose is a :class:`FusionError`.

Each error carries the context a user needs to find the problem (sensor, topic, file, offset,
key, ...) as keyword fields; ``str(error)`` renders the message followed by that context, so a
one-line CLI report is enough to locate the fault.
"""

from __future__ import annotations

import reprlib
from typing import Any

#: ``repr`` that shortens long strings and containers and nests only a few levels: a user value
#: quoted in an error message stays one short line whatever the file held.
_BRIEF = reprlib.Repr()
_BRIEF.maxlevel = 3
_BRIEF.maxstring = 60
_BRIEF.maxother = 60


def brief(value: Any, limit: int = 80) -> str:
    """A ``repr`` of ``value`` of at most ``limit`` characters, for error messages.

    Long strings, lists and mappings are elided (``...``) by :mod:`reprlib` before being
    rendered, so quoting a huge or deeply nested user value costs no more than quoting a short
    one; the result is cut to ``limit`` characters as a last bound.
    """
    text = _BRIEF.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FusionError(Exception):
    """Base class of all fusionrt errors.

    ``context`` keywords whose value is not ``None`` are kept in :attr:`context` (insertion
    order) and appended to the message as ``key=value`` pairs.
    """

    def __init__(self, message: str, **context: Any) -> None:
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}
        super().__init__(message)

    def __str__(self) -> str:
        if not self.context:
            return self.message
        where = ", ".join(f"{key}={value!r}" for key, value in self.context.items())
        return f"{self.message} [{where}]"


class ConfigError(FusionError):
    """A configuration file or option is invalid (names the file and the key)."""


class CalibrationError(FusionError):
    """A rig or calibration is invalid or missing (names the sensor and the field)."""


class PluginError(FusionError):
    """A plugin failed to load, register or honour its contract.

    Names the distribution, the entry point and the component concerned.
    """


class DecodeError(FusionError):
    """Recorded bytes could not be turned into a message (names sensor, topic, file, offset)."""


class EngineError(FusionError):
    """An inference engine could not be built, loaded or run."""


class SourceError(FusionError):
    """A drive or live input cannot give the run what it needs (names the path or topic)."""


class SinkError(FusionError):
    """A sink could not write its output (names the sink and the file)."""


class StampError(DecodeError):
    """A message's own stamp is impossible (nanoseconds >= 10**9, before the epoch...): the
    message is dropped as ``implausible_stamp`` (names sensor, topic, file, offset)."""


__all__ = [
    "CalibrationError",
    "ConfigError",
    "DecodeError",
    "EngineError",
    "FusionError",
    "PluginError",
    "SinkError",
    "SourceError",
    "StampError",
    "brief",
]
