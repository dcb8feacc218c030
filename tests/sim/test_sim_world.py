"""The synthetic world: road, ego motion, actors and clutter."""

from __future__ import annotations

import numpy as np
import pytest

from fusionrt.sim import World
from fusionrt.sim.world import (
    BARRIER,
    CAR,
    CONE,
    CYCLIST,
    KIND_NAMES,
    PEDESTRIAN,
    POLE,
    Boxes,
    wrap_angle,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(7, 30.0)


def test_thirty_plus_actors_of_three_classes(world: World) -> None:
    boxes = world.actors_at(10.0)
    assert len(boxes) >= 30
    counts = {KIND_NAMES[k]: int(np.sum(boxes.kind == k)) for k in (CAR, PEDESTRIAN, CYCLIST)}
    assert all(n >= 3 for n in counts.values()), counts
    assert len(set(boxes.track_id.tolist())) == len(boxes)
    # Many of them near the ego at any time.
    near = world.boxes_in_ego(15.0, radius_m=60.0)
    assert np.sum(near.kind <= CYCLIST) >= 30
    # Short drives still have 30 actors.
    assert World.generate(3, 1.0).num_actors >= 30


SIZES = [
    (CAR, (3.9, 5.3), (1.55, 2.15), (1.3, 1.8)),
    (PEDESTRIAN, (0.4, 0.8), (0.4, 0.8), (1.45, 2.05)),
    (CYCLIST, (1.5, 2.1), (0.5, 0.8), (1.4, 2.0)),
]


@pytest.mark.parametrize(("kind", "length", "width", "height"), SIZES)
def test_sizes_are_plausible(
    world: World, kind: int, length: tuple, width: tuple, height: tuple
) -> None:
    size = world.actors_at(0.0).select(world.actors_at(0.0).kind == kind).size
    for axis, (lo, hi) in enumerate((length, width, height)):
        assert lo <= size[:, axis].min() and size[:, axis].max() <= hi


def test_actors_move_where_they_face(world: World) -> None:
    for t in (2.0, 17.0):
        b = world.actors_at(t)
        speed = np.hypot(b.velocity[:, 0], b.velocity[:, 1])
        moving = speed > 0.5
        assert moving.sum() >= 15
        heading = np.arctan2(b.velocity[moving, 1], b.velocity[moving, 0])
        assert np.all(np.abs(wrap_angle(heading - b.yaw[moving])) < np.radians(5.0))
        # Velocities are the derivative of the positions.
        step = (world.actors_at(t + 0.01).center - world.actors_at(t - 0.01).center) / 0.02
        np.testing.assert_allclose(step[:, :2], b.velocity[:, :2], atol=0.02)


def test_ego_speed_and_yaw_rate_vary(world: World) -> None:
    ego = world.ego(np.linspace(0.0, 30.0, 301))
    assert ego.speed.min() >= 4.0 and ego.speed.max() - ego.speed.min() > 3.0
    assert np.ptp(ego.yaw_rate) > 0.03
    # The yaw rate is the derivative of the heading.
    np.testing.assert_allclose(np.gradient(ego.yaw, 0.1)[1:-1], ego.yaw_rate[1:-1], atol=5e-3)


def test_lead_car_keeps_its_distance(world: World) -> None:
    for t in np.linspace(0.0, 30.0, 61):
        b = world.boxes_in_ego(float(t), radius_m=40.0)
        same_lane = (b.kind == CAR) & (np.abs(b.center[:, 1]) < 1.5) & (b.center[:, 0] > 0)
        assert np.all(b.center[same_lane, 0] > 8.0)


def test_static_clutter_is_there(world: World) -> None:
    kinds = set(world.clutter.kind.tolist())
    assert {POLE, BARRIER, CONE} <= kinds
    assert np.all(world.clutter.velocity == 0.0)


def test_box_corners_and_containment() -> None:
    boxes = Boxes(
        center=np.array([[10.0, 0.0, 1.0]]),
        size=np.array([[4.0, 2.0, 2.0]]),
        yaw=np.array([np.pi / 2]),
        velocity=np.zeros((1, 3)),
        kind=np.array([CAR]),
        track_id=np.array([1]),
        appearance=np.array([0]),
    )
    corners = boxes.corners()[0]
    np.testing.assert_allclose(corners[:, 0].min(), 9.0)  # turned: 2 m wide along x
    np.testing.assert_allclose(corners[:, 1].max(), 2.0)
    inside = boxes.contains(np.array([[10.0, 1.9, 1.0], [11.1, 0.0, 1.0]]))
    assert inside[:, 0].tolist() == [True, False]
