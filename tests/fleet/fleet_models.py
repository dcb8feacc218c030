"""Test-only model plugins for the fleet's fault tests (subclasses of the pipeline tests' toy).

``toy_crash_once`` kills its worker process (``os._exit``) the first time any task reaches a
frame, leaving ``marker`` behind so the retried task goes on; ``toy_raise`` raises on every
frame; ``toy_slow`` sleeps ``delay_s`` per frame (a run that is surely mid-way when killed).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from toy_model import ToyModel

from fusionrt.runtime.hookspecs import hookimpl


class CrashOnceModel(ToyModel):
    name = "toy_crash_once"

    def __init__(self, marker: str, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        self.marker = Path(marker)

    def postprocess(self, outputs, stamp_ns):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().postprocess(outputs, stamp_ns)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(17)


class RaisingModel(ToyModel):
    name = "toy_raise"

    def postprocess(self, outputs, stamp_ns):
        raise RuntimeError(f"toy_raise refuses frame {stamp_ns}")


class SlowModel(ToyModel):
    name = "toy_slow"

    def __init__(self, delay_s: float, threshold: float = 0.5) -> None:
        super().__init__(threshold)
        self.delay_s = delay_s

    def postprocess(self, outputs, stamp_ns):
        time.sleep(self.delay_s)
        return super().postprocess(outputs, stamp_ns)


@hookimpl
def fusionrt_models():
    return [CrashOnceModel, RaisingModel, SlowModel]
