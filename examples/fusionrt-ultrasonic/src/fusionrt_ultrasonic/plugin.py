"""The entry-point module: registers the ultrasonic sensor with fusionrt."""

from __future__ import annotations

from fusionrt import hookimpl
from fusionrt_ultrasonic.sensor import UltrasonicSensor


@hookimpl
def fusionrt_sensors() -> list[type]:
    """Contribute the `ultrasonic` sensor."""
    return [UltrasonicSensor]
