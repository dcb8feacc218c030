"""Sensor models: lidar ray casting, radar Doppler, CAN encoding, text log, configuration."""

from __future__ import annotations

import cantools
import numpy as np
import pytest

from fusionrt.calibration.transforms import interpolate_poses, quat_to_matrix
from fusionrt.sim import CONDITIONS, SimConfig, World, parse_failure
from fusionrt.sim.can import DBC_PATH, checksum
from fusionrt.sim.lidar import POINT_DTYPE, LidarModel, LidarSimulator, beam_elevations
from fusionrt.sim.radar import RadarModel, RadarSimulator
from fusionrt.sim.raycast import cast_boxes, visible_fraction
from fusionrt.sim.recorder import TOPIC_CAN, TOPIC_EGO
from fusionrt.sim.rig import LIDAR, RADAR, SENSOR_ALIASES, build_rig
from fusionrt.sim.textlog import format_line, log_events, parse_line
from fusionrt.sim.world import CAR, Boxes, rng_for

from .conftest import Drive, stamp_of


def _box(center: tuple[float, float, float], size: tuple[float, float, float], yaw: float) -> Boxes:
    return Boxes(
        center=np.array([center]),
        size=np.array([size]),
        yaw=np.array([yaw]),
        velocity=np.zeros((1, 3)),
        kind=np.array([CAR]),
        track_id=np.array([1]),
        appearance=np.array([0]),
    )


def test_slab_intersection_distances() -> None:
    dirs = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5), 0.0]]])
    dist, idx, axis = cast_boxes(
        np.zeros((1, 3)),
        dirs,
        np.array([[10.0, 0.0, 0.0]]),
        np.array([[1.0, 1.0, 1.0]]),
        np.array([0.0]),
    )
    assert dist[0, 0] == pytest.approx(9.0, abs=1e-5) and idx[0, 0] == 0 and axis[0, 0] == 0
    assert np.isinf(dist[0, 1]) and idx[0, 1] == -1
    assert np.isinf(dist[0, 2])
    # A box turned by 45° presents its corner.
    dist, _, _ = cast_boxes(
        np.zeros((1, 3)), dirs[:, :1], np.array([[10.0, 0.0, 0.0]]), np.array([[1.0, 1.0, 1.0]]),
        np.array([np.pi / 4]),
    )  # fmt: skip
    assert dist[0, 0] == pytest.approx(10.0 - np.sqrt(2.0), abs=1e-5)


def test_occluded_box_is_not_visible() -> None:
    boxes = Boxes.concatenate(
        [_box((10.0, 0.0, 1.0), (2.0, 4.0, 3.0), 0.0), _box((20.0, 0.0, 0.8), (4.0, 1.8, 1.6), 0.0)]
    )
    vis = visible_fraction(np.array([0.0, 0.0, 1.0]), boxes, np.array([0, 1]))
    assert vis[0] == 1.0 and vis[1] == 0.0


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(5, 6.0)


def test_lidar_sweep_fields_and_skew(world: World) -> None:
    rig = build_rig(SimConfig(seed=5))
    model = LidarModel(beams=16, columns=512)
    sweep = LidarSimulator(world, rig, LIDAR, model, CONDITIONS["clear"]).sweep(2.0, rng_for(5, 1))
    pts = sweep.points
    assert pts.dtype == POINT_DTYPE and pts.size > 3000
    assert pts["ring"].max() == 15 and pts["ring"].min() == 0
    assert pts["t"].min() >= 0 and pts["t"].max() < 100_000_000
    assert len(beam_elevations(64)) == 64 and np.all(np.diff(beam_elevations(32)) > 0)
    np.testing.assert_allclose(pts["x"] * 256.0, np.round(pts["x"] * 256.0))  # quantised
    # The first and last columns look the same way (backwards) but are 100 ms apart: the ego has
    # moved on, so the same wall is seen ~1 m further away (the sweep is skewed).
    ego = world.ego(np.array([2.0, 2.1]))
    assert np.hypot(np.diff(ego.x), np.diff(ego.y))[0] > 0.4


def test_radar_doppler_matches_ego_motion(world: World) -> None:
    rig = build_rig(SimConfig(seed=5))
    sim = RadarSimulator(world, rig, RADAR, RadarModel())
    rows = []
    for i in range(20):
        t = 1.0 + 0.06 * i
        scan = sim.scan(t, rng_for(5, "radar", i))
        ego = world.ego(t)
        rows.append((scan, float(ego.speed)))
    n = 0
    for scan, speed in rows:
        az = np.arctan2(scan["y"], scan["x"])
        assert np.all(np.abs(np.degrees(az)) <= 30.0)  # narrow field of view
        vr_comp = scan["vx"] * np.cos(az) + scan["vy"] * np.sin(az)
        # Raw Doppler = compensated radial speed minus the radar's own motion along the ray.
        np.testing.assert_allclose(scan["vr"] - vr_comp, -speed * np.cos(az), atol=0.8)
        n += scan.size
    assert n > 40


def test_can_frames_decode_with_the_dbc(clear_drive: Drive) -> None:
    db = cantools.database.load_file(str(DBC_PATH))
    odo = [(stamp_of(m), m.twist.twist.linear.x) for _, m in clear_drive.decoded(TOPIC_EGO)]
    odo_t = np.array([o[0] for o in odo])
    odo_v = np.array([o[1] for o in odo])
    offset = clear_drive.rig().sensor("can").time_offset_ns
    counters: dict[int, list[int]] = {}
    for _, msg in clear_drive.decoded(TOPIC_CAN):
        data = bytes(msg.data)
        assert msg.dlc == 8 and checksum(msg.id, data) == data[7]
        signals = db.decode_message(msg.id, data)
        counters.setdefault(msg.id, []).append(signals["Counter"])
        if msg.id == 0x1A0:
            t = stamp_of(msg) + offset
            v = np.interp(t, odo_t, odo_v) * 3.6
            assert signals["VehicleSpeed"] == pytest.approx(v, abs=0.05)
    for values in counters.values():
        steps = np.diff(values) % 16
        assert np.all(steps >= 1)  # rolling, with gaps only where frames were dropped


def test_text_log_lines_round_trip_and_mention_road_works() -> None:
    world = World.generate(7, 30.0)
    events = log_events(world, CONDITIONS["fog"], (), 30.0, rng_for(7, "log"))
    assert [e.t_s for e in events] == sorted(e.t_s for e in events)
    gaps = np.diff([e.t_s for e in events])
    assert gaps.std() > 0.5  # irregular
    assert any(e.source == "navigation" and "road works" in e.text for e in events)
    assert any(e.source == "weather" and "fog" in e.text for e in events)
    line = format_line(1_700_000_012_345_678_901, events[0])
    assert parse_line(line)[:3] == (1_700_000_012_345_678_901, events[0].level, events[0].source)
    with pytest.raises(ValueError):
        parse_line("no stamp here")


def test_config_and_failure_parsing() -> None:
    f = parse_failure("radar@10s-15s", "garbage", SENSOR_ALIASES)
    assert (f.sensor, f.start_s, f.end_s, f.mode) == ("radar_front", 10.0, 15.0, "garbage")
    assert parse_failure("can@1.5-2").end_s == 2.0
    for bad in ("radar", "radar@15s-10s", "@1-2"):
        with pytest.raises(ValueError):
            parse_failure(bad)
    for kwargs in ({"condition": "snow"}, {"camera_rate_hz": 40.0}, {"radar_rate_hz": 10.0},
                   {"lidar_beams": 12}, {"duration_s": 0.0}):  # fmt: skip
        with pytest.raises(ValueError):
            SimConfig(**kwargs)  # type: ignore[arg-type]


def test_odometry_is_consistent_with_itself(clear_drive: Drive) -> None:
    """The ego poses integrate the recorded speed and yaw rate."""
    msgs = [m for _, m in clear_drive.decoded(TOPIC_EGO)]
    t = np.array([stamp_of(m) for m in msgs]) / 1e9
    pos = np.array([[m.pose.pose.position.x, m.pose.pose.position.y] for m in msgs])
    speed = np.array([m.twist.twist.linear.x for m in msgs])
    step = np.hypot(*np.diff(pos, axis=0).T) / np.diff(t)
    np.testing.assert_allclose(step, 0.5 * (speed[1:] + speed[:-1]), atol=0.05)
    q = msgs[0].pose.pose.orientation
    poses = np.tile(np.eye(4), (2, 1, 1))
    poses[:, :3, :3] = quat_to_matrix([q.w, q.x, q.y, q.z])
    assert interpolate_poses(np.array([0, 1]), poses, np.array([0]))[0, 2, 2] == pytest.approx(1.0)
