"""The car's text log: weather advisories, road-works notes and system messages.

Messages come at irregular times: a Poisson stream of routine system messages (load, GNSS,
storage, sensor temperatures, camera exposure, which tells a reader how dark it is), weather
advisories at the start and every 8–15 s (the condition of the drive: fog and rain are announced
here), navigation notes as the ego approaches and leaves the road-works zone, and watchdog
errors while a sensor has failed (a ``degraded`` sensor's link is fine: its self-diagnostics
announce it instead, :mod:`fusionrt.sim.diagnostics`).

Recorded as ``rcl_interfaces/msg/Log`` (what ROS 2 nodes publish on ``/rosout``): ``stamp``
is the line's own time on the logger's clock (the rig's ``log`` sensor, whose
``time_offset_ns`` maps it to the common clock), ``level`` the ROS severity (INFO 20, WARN 30,
ERROR 40), ``name`` the source (``weather``, ``navigation``, ``radar_front``...), ``msg`` the
text. A plain ``std_msgs/msg/String`` has no stamp of its own (only the bag's log time, which
is the arrival at the logger), so the stamped message type is used. :func:`format_line` renders
a line as ``<seconds>.<nanoseconds> <LEVEL> <source>: <text>`` (the text file form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fusionrt.sim.conditions import Condition, Failure
from fusionrt.sim.world import World

__all__ = ["LEVELS", "LINE_PATTERN", "LogEvent", "format_line", "log_events", "parse_line"]

#: ``rcl_interfaces/msg/Log`` severity of each level name.
LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40, "FATAL": 50}

#: The format of one recorded line (see the module docstring).
LINE_PATTERN = re.compile(
    r"^(?P<sec>\d+)\.(?P<nsec>\d{9}) (?P<level>DEBUG|INFO|WARN|ERROR|FATAL) (?P<source>[\w.-]+): "
    r"(?P<text>.*)$"
)


@dataclass(frozen=True, order=True)
class LogEvent:
    """One log line at simulation time ``t_s`` (true time, before the logger's clock)."""

    t_s: float
    level: str
    source: str
    text: str


def format_line(stamp_ns: int, event: LogEvent) -> str:
    """The recorded text of ``event`` stamped ``stamp_ns`` (logger clock)."""
    sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
    return f"{sec}.{nsec:09d} {event.level} {event.source}: {event.text}"


def parse_line(line: str) -> tuple[int, str, str, str]:
    """``(stamp_ns, level, source, text)`` of a recorded line; ``ValueError`` if malformed."""
    m = LINE_PATTERN.match(line)
    if m is None:
        raise ValueError(f"not a fusionrt log line: {line!r}")
    return int(m["sec"]) * 1_000_000_000 + int(m["nsec"]), m["level"], m["source"], m["text"]


def log_events(
    world: World,
    condition: Condition,
    failures: tuple[Failure, ...],
    duration_s: float,
    rng: np.random.Generator,
) -> list[LogEvent]:
    """Every log line of the drive, sorted by time."""
    events = [
        LogEvent(0.05, "INFO", "system", f"logger started; drive seed {world.seed}"),
        LogEvent(0.12, condition.advisory_level, "weather", condition.advisory),
    ]
    # Weather advisories repeat every 8-15 s.
    t = 0.12 + rng.uniform(8.0, 15.0)
    while t < duration_s:
        events.append(LogEvent(t, condition.advisory_level, "weather", condition.advisory))
        t += rng.uniform(8.0, 15.0)
    # Road works: a note 150 m before, and one when the zone is behind.
    start, end = world.road_works
    for s_mark, text in (
        (
            start - 150.0,
            f"road works ahead in 150 m: right parking lane closed for {end - start:.0f} m",
        ),
        (end + 5.0, "road works zone ended"),
    ):
        t_mark = _time_at_s(world, s_mark, duration_s)
        if t_mark is not None:
            events.append(LogEvent(t_mark, "INFO", "navigation", text))
    # Failures: watchdog errors while failed, and a note when data comes back.
    for f in failures:
        if f.start_s >= duration_s or f.mode == "degraded":  # the data link is fine: no watchdog
            continue
        what = "no data for 300 ms" if f.mode == "silent" else "checksum errors on the data link"
        events.append(LogEvent(f.start_s + 0.3, "ERROR", f.sensor, f"watchdog: {what}"))
        if f.end_s + 0.2 < duration_s:
            events.append(LogEvent(f.end_s + 0.2, "INFO", f.sensor, "data link restored"))
    # Routine system messages, a Poisson stream (mean gap 2.5 s).
    t = rng.exponential(2.5)
    while t < duration_s:
        events.append(LogEvent(t, "INFO", *_routine(condition, rng)))
        t += rng.exponential(2.5)
    return sorted(e for e in events if 0.0 <= e.t_s < duration_s)


def _time_at_s(world: World, s_mark: float, duration_s: float) -> float | None:
    """When the ego passes arc length ``s_mark`` during the drive, if it does."""
    t = np.linspace(0.0, duration_s, int(duration_s * 50) + 2)
    s = np.array([world.ego_s(x) for x in t])
    if not s[0] <= s_mark <= s[-1]:
        return None
    return float(np.interp(s_mark, s, t))


def _routine(condition: Condition, rng: np.random.Generator) -> tuple[str, str]:
    kind = int(rng.integers(0, 5))
    if kind == 0:
        return "system", f"cpu load {rng.integers(25, 70)}%, memory {rng.integers(38, 61)}%"
    if kind == 1:
        return (
            "gnss",
            f"fix RTK, {rng.integers(12, 22)} satellites, hdop {rng.uniform(0.6, 1.3):.1f}",
        )
    if kind == 2:
        return "storage", f"{rng.uniform(180.0, 240.0):.1f} GB free"
    if kind == 3:
        return "lidar_top", f"motor 600 rpm, temperature {rng.integers(38, 47)} C"
    dark = condition.light < 0.2
    exposure = (
        rng.uniform(25.0, 33.0) if dark else rng.uniform(0.8, 4.0) / max(condition.light, 0.1)
    )
    gain = rng.uniform(18.0, 24.0) if dark else rng.uniform(0.0, 6.0)
    return "camera_front", f"auto exposure {exposure:.1f} ms, gain {gain:.1f} dB"
