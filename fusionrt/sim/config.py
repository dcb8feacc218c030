"""The options of one synthetic drive (what ``fusionrt sim`` takes on its command line)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fusionrt.sim.conditions import CONDITIONS, Failure

__all__ = ["SimConfig"]


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines the bytes of a drive: the same config gives the same bag."""

    duration_s: float = 30.0
    seed: int = 7
    condition: str = "clear"
    failures: tuple[Failure, ...] = field(default_factory=tuple)
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
