"""Driving conditions and sensor failures: what each does to which sensor.

* ``clear`` — daylight, dry.
* ``fog`` — camera contrast falls with distance (visibility ~45 m), lidar range shortens to
  ~35 m with strong attenuation and spurious returns from droplets within a few metres; radar is
  unaffected. Announced in the text log.
* ``rain`` — milder: camera contrast falls (visibility ~150 m) and rain streaks cross the image;
  lidar range ~65 m with spurious near returns; radar unaffected. Announced in the text log.
* ``night`` — the camera is dark: low ambient light, the ego's headlights light the road ahead,
  other cars show their lights, and the sensor noise rises; lidar and radar are unaffected.

A :class:`Failure` makes one sensor misbehave for an interval of the drive: ``silent`` (no
messages), ``garbage`` (messages keep coming, well-formed ROS messages whose payload is random
bytes: an undecodable JPEG, random point bytes, random CAN data), ``corrupt`` (the recorded
bytes themselves are random, so the message does not deserialize), or ``degraded`` (camera,
lidar, radar: plausible, well-formed data that is wrong — see :mod:`fusionrt.sim.degradation`
— which only the car's self-diagnostics announce, late: :mod:`fusionrt.sim.diagnostics`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CONDITIONS", "FAILURE_MODES", "Condition", "Failure", "parse_failure"]


@dataclass(frozen=True)
class Condition:
    """The parameters of one driving condition."""

    name: str
    #: Camera: meteorological visibility (m; ``inf`` = none), fog colour (BGR), global light
    #: level (1 = day), noise standard deviation (8-bit DN), rain streak count per frame.
    visibility_m: float = float("inf")
    fog_colour_bgr: tuple[int, int, int] = (200, 200, 200)
    light: float = 1.0
    camera_noise_dn: float = 2.0
    rain_streaks: int = 0
    headlights: bool = False
    #: Lidar: maximum range (m), two-way attenuation (1/m) of intensity, probability that a
    #: firing returns a spurious droplet echo instead, and the range of those echoes (m).
    lidar_max_range_m: float = 100.0
    lidar_attenuation_per_m: float = 0.0
    lidar_spurious_probability: float = 0.0
    lidar_spurious_range_m: tuple[float, float] = (1.0, 5.0)
    #: What the text log says about the weather.
    advisory: str = "weather: dry, visibility over 10 km"
    advisory_level: str = "INFO"


CONDITIONS: dict[str, Condition] = {
    "clear": Condition("clear"),
    "fog": Condition(
        "fog",
        visibility_m=45.0,
        fog_colour_bgr=(196, 194, 190),
        light=0.85,
        camera_noise_dn=2.5,
        lidar_max_range_m=35.0,
        lidar_attenuation_per_m=0.03,
        lidar_spurious_probability=0.05,
        lidar_spurious_range_m=(0.8, 6.0),
        advisory="weather: dense fog advisory, visibility below 50 m",
        advisory_level="WARN",
    ),
    "rain": Condition(
        "rain",
        visibility_m=150.0,
        fog_colour_bgr=(150, 148, 145),
        light=0.7,
        camera_noise_dn=3.0,
        rain_streaks=220,
        lidar_max_range_m=65.0,
        lidar_attenuation_per_m=0.01,
        lidar_spurious_probability=0.015,
        lidar_spurious_range_m=(0.8, 15.0),
        advisory="weather: heavy rain warning, wet road, visibility about 150 m",
        advisory_level="WARN",
    ),
    "night": Condition(
        "night",
        light=0.06,
        camera_noise_dn=5.0,
        headlights=True,
        advisory="weather: dry; night, street lighting off on this section",
    ),
}

FAILURE_MODES: tuple[str, ...] = ("silent", "garbage", "corrupt", "degraded")

_FAILURE = re.compile(
    r"^(?P<sensor>[A-Za-z_][\w-]*)@(?P<start>\d+(?:\.\d*)?)s?-(?P<end>\d+(?:\.\d*)?)s?$"
)


@dataclass(frozen=True)
class Failure:
    """Sensor ``sensor`` fails from ``start_s`` to ``end_s`` (seconds since the drive start)."""

    sensor: str
    start_s: float
    end_s: float
    mode: str = "silent"

    def __post_init__(self) -> None:
        if self.mode not in FAILURE_MODES:
            raise ValueError(
                f"unknown failure mode {self.mode!r}; expected one of {', '.join(FAILURE_MODES)}"
            )
        if not self.end_s > self.start_s >= 0.0:
            raise ValueError(
                f"failure interval of {self.sensor!r} must satisfy 0 <= start < end, "
                f"got {self.start_s}s-{self.end_s}s"
            )

    def covers(self, sensor: str, t_s: float) -> bool:
        """Whether ``sensor`` is failed at ``t_s``."""
        return sensor == self.sensor and self.start_s <= t_s < self.end_s


def parse_failure(
    spec: str, mode: str = "silent", aliases: dict[str, str] | None = None
) -> Failure:
    """Parse ``SENSOR@STARTs-ENDs`` (e.g. ``radar@10s-15s``; the ``s`` are optional).

    ``aliases`` maps short names (``radar``) to rig sensor names (``radar_front``).
    """
    m = _FAILURE.match(spec.strip())
    if m is None:
        raise ValueError(
            f"cannot parse failure {spec!r}; expected SENSOR@STARTs-ENDs, e.g. radar@10s-15s"
        )
    sensor = m["sensor"]
    if aliases:
        sensor = aliases.get(sensor, sensor)
    return Failure(sensor, float(m["start"]), float(m["end"]), mode)
