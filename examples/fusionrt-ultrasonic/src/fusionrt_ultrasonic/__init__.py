"""fusionrt-ultrasonic: an ultrasonic parking-sensor plugin for fusionrt."""

from fusionrt_ultrasonic.sensor import UltrasonicSensor

__all__ = ["UltrasonicSensor"]
