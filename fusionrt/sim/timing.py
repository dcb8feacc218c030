"""When each sensor captures, and when its message reaches the logger.

Every sensor runs at its own rate with a random phase, jitter on each capture and occasional
dropped messages. A message's **stamp** is its capture time on the *sensor's own clock*; its
**arrival** (the bag's log time) is on the common clock, a sensor-specific latency later
(exposure and JPEG encoding for the camera, the whole 100 ms sweep for the lidar, ...). Because
latencies differ per sensor, the bag's log order differs from stamp order.

Clock offsets: the rig's ``time_offset_ns`` of a sensor is what the synchroniser **adds** to the
sensor's stamps to put them on the common clock::

    common_ns = sensor_stamp_ns + time_offset_ns      (so sensor_stamp_ns = common_ns - offset)

The lidar is the time master (offset 0): its stamps, and the ground truth, are on the common
clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_TIMINGS", "Schedule", "SensorTiming", "schedule", "sensor_stamp_ns"]


@dataclass(frozen=True)
class SensorTiming:
    """Rate, jitter, latency and loss of one sensor's messages (seconds unless named)."""

    rate_hz: float
    jitter_s: float = 0.0  # standard deviation of each capture time around its nominal slot
    latency_s: float = 0.0  # mean delay from the capture (stamp) to the logger
    latency_jitter_s: float = 0.0
    drop_probability: float = 0.0


#: Defaults per sensor role (rates from the issue: camera 12–30 Hz, lidar 10 Hz, radar 13–20
#: Hz, CAN 100 Hz). The lidar's latency includes its 100 ms sweep: it is stamped at the start.
DEFAULT_TIMINGS: dict[str, SensorTiming] = {
    "camera": SensorTiming(
        15.0, jitter_s=0.0015, latency_s=0.045, latency_jitter_s=0.008, drop_probability=0.01
    ),
    "lidar": SensorTiming(
        10.0, jitter_s=0.0002, latency_s=0.112, latency_jitter_s=0.003, drop_probability=0.005
    ),
    "radar": SensorTiming(
        16.0, jitter_s=0.002, latency_s=0.025, latency_jitter_s=0.006, drop_probability=0.01
    ),
    "can": SensorTiming(
        100.0, jitter_s=0.0003, latency_s=0.001, latency_jitter_s=0.0003, drop_probability=0.002
    ),
    "ego": SensorTiming(50.0),
}


@dataclass(frozen=True)
class Schedule:
    """The messages of one sensor: true capture time, arrival time, frame counter."""

    capture_s: np.ndarray  # simulation seconds (true time of the capture)
    arrival_s: np.ndarray  # simulation seconds on the common clock (the bag's log time)
    dropped: np.ndarray  # bool: the message was lost on the way to the logger

    def __len__(self) -> int:
        return int(self.capture_s.size)


def schedule(timing: SensorTiming, duration_s: float, rng: np.random.Generator) -> Schedule:
    """Every capture slot of a sensor during ``[0, duration_s)`` (dropped ones marked);
    arrivals strictly increase."""
    period = 1.0 / timing.rate_hz
    phase = rng.uniform(0.0, period)
    nominal = phase + period * np.arange(int(np.ceil((duration_s - phase) / period)) + 1)
    nominal = nominal[nominal < duration_s]
    n = nominal.size
    jitter = np.clip(rng.normal(0.0, timing.jitter_s, n), -0.3 * period, 0.3 * period)
    capture = np.maximum(nominal + jitter, 0.0)
    latency = np.maximum(
        timing.latency_s + rng.normal(0.0, timing.latency_jitter_s, n), 0.2 * timing.latency_s
    )
    arrival = capture + latency
    # A logger receives one sensor's messages in order (one socket): no overtaking.
    arrival = np.maximum.accumulate(arrival + 1e-6 * np.arange(n))
    dropped = rng.random(n) < timing.drop_probability
    return Schedule(capture, arrival, dropped)


def sensor_stamp_ns(common_ns: np.ndarray | int, time_offset_ns: int) -> np.ndarray:
    """A common-clock time as the sensor's clock reads it (``common - time_offset_ns``)."""
    return np.asarray(common_ns, dtype=np.int64) - np.int64(time_offset_ns)
