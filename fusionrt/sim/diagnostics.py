"""The car's sensor self-diagnostics: when a degraded sensor is announced, on the log and CAN.

A ``degraded`` sensor (:mod:`fusionrt.sim.degradation`) still sends plausible data, so only
the sensor's own self-test can tell; real ones tell late, not always, and sometimes wrongly:

* **late** — a monitor reports a suspicion every cycle and the fault is *confirmed* only when
  a debounce counter fills up (AUTOSAR Dem's counter-based debouncing; a blockage monitor
  also needs the scene to move before it can tell dirt from an empty road), so the
  announcement comes ``delay_s`` (uniform, default 1–3 s) after the fault starts; a fault
  shorter than its delay is never announced;
* **misses** — with ``miss_probability`` (default 0.1) a fault is never confirmed (the dirt
  looked like a plausible scene to the monitor);
* **false alarms** — a Poisson stream of ``false_alarms_per_hour`` per sensor (default 20:
  one every 3 minutes per sensor, each lasting 2–6 s): the monitor confirms a fault that is
  not there (a wet road, a low sun);
* **cleared** ``clear_delay_s`` (0.5–1.5 s) after the fault (or false alarm) ends.

While a DTC is active the sensor's node logs its status every ``status_period_s`` (1 s, the
rate of ROS's ``diagnostic_updater``), so a reader of the recent log lines — the text
sensor keeps the newest 32 tokens — always sees it; the first line names the fault (for the
lidar, the sector in degrees), and a last one says it is cleared. The gateway sends
``DIAG_STATUS`` on CAN at 10 Hz (sensor states and the active DTC; see the DBC).

Every draw comes from ``rng_for(seed, "diagnostics", ...)``: the announcements are a
function of the seed and the failures, and the rest of the drive's log is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from fusionrt.sim.conditions import Failure
from fusionrt.sim.config import DiagnosticsConfig
from fusionrt.sim.degradation import DEGRADABLE, camera_fault, lidar_blockage
from fusionrt.sim.rig import CAMERA, LIDAR, RADAR
from fusionrt.sim.textlog import LogEvent
from fusionrt.sim.world import rng_for

__all__ = [
    "DTC_CODES",
    "Announcement",
    "DiagnosticsConfig",
    "announcement_events",
    "announcements",
    "status_at",
]

#: The 3-byte UDS DTC of each sensor's degradation (C = chassis, manufacturer-specific).
DTC_CODES = {LIDAR: 0xC1A201, RADAR: 0xC1B101, CAMERA: 0xC1C101}


@dataclass(frozen=True)
class Announcement:
    """A DTC of ``sensor`` active from ``onset_s`` until ``clear_s`` (drive seconds);
    ``failure`` is the index of the degraded failure it announces, ``None`` for a false
    alarm; ``detail`` is what the first log line says about the fault."""

    sensor: str
    onset_s: float
    clear_s: float
    failure: int | None
    detail: str

    def active(self, t_s: float) -> bool:
        """Whether the DTC is active at ``t_s``."""
        return self.onset_s <= t_s < self.clear_s


def _detail(seed: int, sensor: str, failure: Failure, index: int) -> str:
    """The fault as the sensor's self-test describes it."""
    if sensor == LIDAR:
        lo, hi = lidar_blockage(seed, failure, index).sector_deg
        return f"window contamination in sector {lo} to {hi} deg, returns degraded"
    if sensor == RADAR:
        return "radome blockage, detection reliability low"
    if camera_fault(seed, failure, index).kind == "frozen":
        return "image stream frozen, frames repeat"
    return "lens obstruction, image blurred"


def announcements(
    failures: tuple[Failure, ...], duration_s: float, config: DiagnosticsConfig, seed: int
) -> list[Announcement]:
    """Every DTC the drive announces: its degraded failures (late, or missed) and false
    alarms, sorted by onset."""
    out: list[Announcement] = []
    for index, failure in enumerate(failures):
        if failure.mode != "degraded":
            continue
        rng = rng_for(seed, "diagnostics", "fault", index)
        missed = rng.random() < config.miss_probability
        onset = failure.start_s + rng.uniform(*config.delay_s)
        clear = failure.end_s + rng.uniform(*config.clear_delay_s)
        if missed or onset >= failure.end_s or onset >= duration_s:
            continue
        detail = _detail(seed, failure.sensor, failure, index)
        out.append(Announcement(failure.sensor, onset, clear, index, detail))
    rate_per_s = config.false_alarms_per_hour / 3600.0
    for sensor in DEGRADABLE:
        if rate_per_s <= 0.0:
            break
        rng = rng_for(seed, "diagnostics", "false_alarm", sensor)
        t = rng.exponential(1.0 / rate_per_s)
        while t < duration_s:
            length = rng.uniform(*config.false_alarm_s)
            # Drawn for every alarm, so the stream does not depend on which are kept.
            fake = Failure(sensor, t, t + length, "degraded")
            detail = _detail(int(rng.integers(2**31)), sensor, fake, 0)
            faulty = any(f.sensor == sensor and f.mode == "degraded" and
                         f.start_s <= t + length and t <= f.end_s for f in failures)  # fmt: skip
            if not faulty:  # a sensor already at fault has its DTC set for a real reason
                out.append(Announcement(sensor, t, t + length, None, detail))
            t += length + rng.exponential(1.0 / rate_per_s)
    return sorted(out, key=lambda a: (a.onset_s, a.sensor))


def announcement_events(
    announced: list[Announcement], duration_s: float, config: DiagnosticsConfig
) -> list[LogEvent]:
    """The log lines of ``announced``: the onset naming the fault, a status line every
    ``status_period_s`` while active, and the clearing."""
    events = []
    for a in announced:
        code = f"DTC {DTC_CODES[a.sensor]:06X}"
        # The code first: a reader of the newest tokens (the model's text input is cut at 32)
        # gets what and which sensor even when a later line pushes the detail out.
        events.append(LogEvent(a.onset_s, "WARN", a.sensor, f"self-test: {code} set, {a.detail}"))
        t = a.onset_s + config.status_period_s
        while t < min(a.clear_s, duration_s):
            events.append(LogEvent(t, "WARN", a.sensor, f"diagnostics: {code} active, degraded"))
            t += config.status_period_s
        events.append(LogEvent(a.clear_s, "INFO", a.sensor, f"diagnostics: {code} cleared"))
    return sorted(e for e in events if e.t_s < duration_s)


def status_at(announced: list[Announcement], t_s: float) -> tuple[dict[str, int], int]:
    """``({sensor: 0 ok | 1 degraded}, active DTC or 0)`` at ``t_s`` (the newest active DTC
    when several are)."""
    states = dict.fromkeys(DEGRADABLE, 0)
    dtc = 0
    for a in announced:
        if a.active(t_s):
            states[a.sensor] = 1
            dtc = DTC_CODES[a.sensor]
    return states, dtc
