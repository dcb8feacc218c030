"""Synthetic drives: a seeded road world, sensor models, and a recorder that writes ROS 2 bags.

``fusionrt sim --out DIR`` (or :func:`record_drive`) simulates the synthetic car driving through
a road scene and writes what its logger would: a ROS 2 bag with MCAP storage (camera JPEGs,
lidar and radar point clouds, CAN frames, a text log), ground-truth boxes and ego poses, and the
rig YAML beside it. See ``docs/sim.md``.

Modules: :mod:`~fusionrt.sim.world` (road, ego, actors, clutter), :mod:`~fusionrt.sim.lidar`,
:mod:`~fusionrt.sim.camera`, :mod:`~fusionrt.sim.radar`, :mod:`~fusionrt.sim.can`,
:mod:`~fusionrt.sim.textlog` (the sensors), :mod:`~fusionrt.sim.conditions` (weather, night,
failures), :mod:`~fusionrt.sim.timing` (rates, jitter, latency, clock offsets),
:mod:`~fusionrt.sim.rig` (the car's rig), :mod:`~fusionrt.sim.recorder` (the bag).
"""

import lazy_loader

from fusionrt.sim.conditions import CONDITIONS, Failure, parse_failure
from fusionrt.sim.config import SimConfig

# Names re-exported lazily (PEP 562): the recorder and the world pull in the renderers, which
# the ``fusionrt`` command should not pay for at start-up.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "recorder": ["TOPICS", "DriveSimulator", "DriveSummary", "record_drive"],
        "world": ["World"],
    },
)

__all__ = [
    "CONDITIONS",
    "TOPICS",
    "DriveSimulator",
    "DriveSummary",
    "Failure",
    "SimConfig",
    "World",
    "parse_failure",
    "record_drive",
]
