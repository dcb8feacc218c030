"""The options of one synthetic drive (what ``fusionrt sim`` takes on its command line)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fusionrt.sim.conditions import CONDITIONS, Failure

__all__ = ["DiagnosticsConfig", "SimConfig"]


@dataclass(frozen=True)
class DiagnosticsConfig:
    """How the self-diagnostics announce degraded sensors (:mod:`fusionrt.sim.diagnostics`):
    delay after the fault's start, probability of a miss, false alarms per hour and sensor
    and their length, delay of the clearing after the fault's end, status-line period."""

    delay_s: tuple[float, float] = (1.0, 3.0)
    miss_probability: float = 0.1
    false_alarms_per_hour: float = 20.0
    false_alarm_s: tuple[float, float] = (2.0, 6.0)
    clear_delay_s: tuple[float, float] = (0.5, 1.5)
    status_period_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("delay_s", "false_alarm_s", "clear_delay_s"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi:
                raise ValueError(f"diagnostics {name} must satisfy 0 <= low <= high, got {lo}-{hi}")
        if not 0.0 <= self.miss_probability <= 1.0:
            raise ValueError(f"miss probability must be in [0, 1], got {self.miss_probability}")
        if self.false_alarms_per_hour < 0.0:
            raise ValueError(
                f"false alarms per hour must be >= 0, got {self.false_alarms_per_hour}"
            )
        if self.status_period_s <= 0.0:
            raise ValueError(f"status period must be > 0 s, got {self.status_period_s}")


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines the bytes of a drive: the same config gives the same bag."""

    duration_s: float = 30.0
    seed: int = 7
    condition: str = "clear"
    failures: tuple[Failure, ...] = field(default_factory=tuple)
    #: The car's sensor self-diagnostics (DTCs on the log and CAN, see
    #: :mod:`fusionrt.sim.diagnostics`); ``None``: a car without them (drives recorded before
    #: the ``degraded`` failure mode stay byte-identical).
    diagnostics: DiagnosticsConfig | None = None
    # front camera
    camera_width: int = 960
    camera_height: int = 540
    camera_rate_hz: float = 15.0
    jpeg_quality: int = 85
    # top lidar
    lidar_beams: int = 32
    lidar_columns: int = 1024
    # front radar
    radar_rate_hz: float = 16.0
    #: zstd-compress the MCAP chunks (deterministic: fixed level, no wall clock)
    compress: bool = True

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(
                f"unknown condition {self.condition!r}; expected one of {', '.join(CONDITIONS)}"
            )
        if not 0.0 < self.duration_s <= 3600.0:
            raise ValueError(f"duration must be in (0, 3600] seconds, got {self.duration_s}")
        if not 12.0 <= self.camera_rate_hz <= 30.0:
            raise ValueError(f"camera rate must be 12-30 Hz, got {self.camera_rate_hz}")
        if not 13.0 <= self.radar_rate_hz <= 20.0:
            raise ValueError(f"radar rate must be 13-20 Hz, got {self.radar_rate_hz}")
        if self.lidar_beams not in (16, 32, 64):
            raise ValueError(f"lidar beams must be 16, 32 or 64, got {self.lidar_beams}")
        if not 64 <= self.lidar_columns <= 4096:
            raise ValueError(f"lidar columns must be 64-4096, got {self.lidar_columns}")
        if not (64 <= self.camera_width <= 4096 and 64 <= self.camera_height <= 4096):
            raise ValueError(
                f"camera size must be 64-4096 pixels a side, got "
                f"{self.camera_width}x{self.camera_height}"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be 1-100, got {self.jpeg_quality}")

    def failed(self, sensor: str, t_s: float) -> Failure | None:
        """The failure affecting ``sensor`` at ``t_s``, if any."""
        for f in self.failures:
            if f.covers(sensor, t_s):
                return f
        return None
