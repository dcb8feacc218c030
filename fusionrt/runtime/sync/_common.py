"""Small helpers shared by the time-alignment modules."""

from __future__ import annotations

import operator
from typing import Any

from fusionrt.runtime.errors import ConfigError

__all__ = ["SyncConfigError", "as_stamp"]


class SyncConfigError(ConfigError, ValueError):
    """An invalid option of a synchronisation policy (also a ``ValueError``)."""


def as_stamp(value: Any, what: str = "stamp_ns") -> int:
    """``value`` as an ``int`` of nanoseconds; integers only (a float stamp is a bug)."""
    if type(value) is int:
        return value
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{what} must be an int of nanoseconds, got {type(value).__name__} {value!r}"
        ) from None
