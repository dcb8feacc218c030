"""Test-only radar plugins that misbehave the ways third-party plugins do.

Each is the built-in radar sensor with one fault from its fourth call on (the first three
succeed, so the run is under way): a ``decode`` or a ``preprocess`` that never returns, a
``preprocess`` that returns a tensor of the wrong shape, or one full of NaN. Registered with
``plugins: [faulty_sensors]`` in a pipeline file.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np

from fusionrt.plugins.sensors.radar import RadarSensor
from fusionrt.runtime.hookspecs import hookimpl

#: Set by nothing: a call that waits on it never returns (like a plugin stuck on a socket).
NEVER = threading.Event()
HEALTHY_CALLS = 3


class _Faulty(RadarSensor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._calls = itertools.count()

    def _faulty_now(self) -> bool:
        return next(self._calls) >= HEALTHY_CALLS


class StuckDecodeRadar(_Faulty):
    name = "stuck_decode_radar"

    def decode(self, raw):
        if self._faulty_now():
            NEVER.wait()
        return super().decode(raw)


class StuckPreprocessRadar(_Faulty):
    name = "stuck_preprocess_radar"

    def preprocess(self, message, context):
        if message is not None and self._faulty_now():
            NEVER.wait()
        return super().preprocess(message, context)


class BadShapeRadar(_Faulty):
    name = "bad_shape_radar"

    def preprocess(self, message, context):
        tensors = super().preprocess(message, context)
        if message is not None and self._faulty_now():
            return {name: array[..., :-1] for name, array in tensors.items()}
        return tensors


class NanRadar(_Faulty):
    name = "nan_radar"

    def preprocess(self, message, context):
        tensors = super().preprocess(message, context)
        if message is not None and self._faulty_now():
            return {name: np.full_like(array, np.nan) for name, array in tensors.items()}
        return tensors


@hookimpl
def fusionrt_sensors() -> list[type]:
    return [StuckDecodeRadar, StuckPreprocessRadar, BadShapeRadar, NanRadar]
