"""What a sensor in ``degraded`` failure mode does wrong: plausible, well-formed, wrong data.

A ``degraded`` failure keeps the sensor sending messages that decode and look like a scene;
only their content is wrong, the way real sensors degrade:

* **lidar** — contamination on the window over one azimuth sector (a splash of mud, a film of
  salt): inside the sector most returns are lost, and the dirt itself echoes back as spurious
  near returns (1–4 m, weak). Outside the sector the sweep is untouched.
* **radar** — a blocked or misaligned radome: most real detections are lost, and ghost
  targets appear (multipath, or reflections off the blockage), with the cross-section and
  Doppler of a moving car.
* **camera** — either a **frozen** image (the image pipeline keeps re-sending its last frame,
  stamps advancing: a classic failure of camera drivers that the data alone hides), or a
  **smeared** lens (water or dirt: the image is blurred, with a brownish smear over part of it).

The parameters of each failure are drawn once from ``rng_for(seed, "degraded", sensor,
index)`` (``index`` = the failure's position in the drive's failure list), so the same drive
has the same sector, and the announcements of :mod:`fusionrt.sim.diagnostics` can name it.
Per-message draws use their own streams, so a degraded drive is identical to the undegraded
drive of the same seed outside the failure intervals (and, for the lidar, outside the sector).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fusionrt.sim.conditions import Failure
from fusionrt.sim.rig import CAMERA, LIDAR, RADAR
from fusionrt.sim.world import rng_for

__all__ = [
    "DEGRADABLE",
    "CameraFault",
    "LidarBlockage",
    "RadarBlockage",
    "camera_fault",
    "lidar_blockage",
    "radar_blockage",
    "smear",
]

#: The rig sensors that have a ``degraded`` mode.
DEGRADABLE = (CAMERA, LIDAR, RADAR)


@dataclass(frozen=True)
class LidarBlockage:
    """Window contamination over the azimuth sector ``centre_rad ± width_rad / 2`` (sensor
    frame, x forward, counter-clockwise positive)."""

    centre_rad: float
    width_rad: float
    #: Probability that a return inside the sector is lost.
    loss_probability: float = 0.9
    #: Probability that a firing inside the sector echoes off the dirt, and that echo's range.
    spurious_probability: float = 0.3
    spurious_range_m: tuple[float, float] = (1.0, 4.0)

    def covers(self, azimuth_rad: np.ndarray) -> np.ndarray:
        """Whether each azimuth (radians, sensor frame) lies in the sector."""
        offset = np.angle(np.exp(1j * (np.asarray(azimuth_rad) - self.centre_rad)))
        return np.abs(offset) <= 0.5 * self.width_rad

    @property
    def sector_deg(self) -> tuple[int, int]:
        """The sector's bounds in whole degrees (what the self-test reports)."""
        lo = np.degrees(self.centre_rad - 0.5 * self.width_rad)
        hi = np.degrees(self.centre_rad + 0.5 * self.width_rad)
        return round(float(lo)), round(float(hi))


@dataclass(frozen=True)
class RadarBlockage:
    """A blocked radome: real detections lost, ghost targets added."""

    loss_probability: float = 0.7
    ghosts_per_scan: float = 4.0
    ghost_range_m: tuple[float, float] = (5.0, 70.0)
    ghost_rcs_dbsm: tuple[float, float] = (0.0, 12.0)
    ghost_speed_mps: float = 12.0


@dataclass(frozen=True)
class CameraFault:
    """``frozen`` (the last image repeats) or ``smeared`` (blur and a smear over the lens);
    the smear is an ellipse centred at (``centre_x``, ``centre_y``) in image fractions."""

    kind: str
    centre_x: float = 0.5
    centre_y: float = 0.5
    radius: float = 0.3
    blur_sigma_px: float = 6.0


def _rng(seed: int, failure: Failure, index: int) -> np.random.Generator:
    return rng_for(seed, "degraded", failure.sensor, index)


def lidar_blockage(seed: int, failure: Failure, index: int) -> LidarBlockage:
    """The contaminated sector of failure ``index``: 60–120° wide, centred within ±60° of
    straight ahead (where a splash from the road or the car in front lands)."""
    rng = _rng(seed, failure, index)
    centre = rng.uniform(-np.pi / 3, np.pi / 3)
    width = rng.uniform(np.pi / 3, 2 * np.pi / 3)
    return LidarBlockage(float(centre), float(width))


def radar_blockage(seed: int, failure: Failure, index: int) -> RadarBlockage:
    """The radome blockage of failure ``index`` (fixed parameters; a function for symmetry
    with the other sensors and so that a later model may draw them)."""
    del seed, failure, index
    return RadarBlockage()


def camera_fault(seed: int, failure: Failure, index: int) -> CameraFault:
    """Frozen or smeared, with equal probability; a smear covers a fifth to half the image."""
    rng = _rng(seed, failure, index)
    kind = "frozen" if rng.random() < 0.5 else "smeared"
    return CameraFault(
        kind,
        centre_x=float(rng.uniform(0.25, 0.75)),
        centre_y=float(rng.uniform(0.35, 0.75)),
        radius=float(rng.uniform(0.25, 0.45)),
        blur_sigma_px=float(rng.uniform(4.0, 9.0)),
    )


def smear(image: np.ndarray, fault: CameraFault, rng: np.random.Generator) -> np.ndarray:
    """The BGR ``image`` seen through a smeared lens: blurred everywhere (a water film), and
    under an elliptical smear mostly a translucent brown (dirt), with a little noise."""
    h, w = image.shape[:2]
    blurred = cv2.GaussianBlur(image, (0, 0), fault.blur_sigma_px)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = (xx / w - fault.centre_x) / fault.radius
    dy = (yy / h - fault.centre_y) / (0.7 * fault.radius)
    alpha = np.clip(1.2 - np.hypot(dx, dy), 0.0, 0.85)[..., None]
    dirt = np.array([40.0, 62.0, 88.0], np.float32) + rng.normal(0.0, 4.0, (h, w, 3))
    out = (1.0 - alpha) * blurred.astype(np.float32) + alpha * dirt
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
