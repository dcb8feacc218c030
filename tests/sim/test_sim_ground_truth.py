"""The ground truth agrees with what the sensors recorded."""

from __future__ import annotations

import numpy as np

from fusionrt.calibration.transforms import interpolate_poses, quat_to_matrix
from fusionrt.plugins.sensors.pointcloud2 import decode_pointcloud2
from fusionrt.sim.camera import CAR_PAINTS, encode_jpeg
from fusionrt.sim.preview import GroundTruth, ground_truth_from_msg
from fusionrt.sim.recorder import (
    TOPIC_ACTORS,
    TOPIC_CAMERA,
    TOPIC_EGO,
    TOPIC_LIDAR,
    DriveSimulator,
)
from fusionrt.sim.rig import CAMERA, LIDAR
from fusionrt.sim.world import CAR, DRIVE_EPOCH_NS, rng_for

from .conftest import Drive, stamp_of, xyz


def _ego_poses(drive: Drive) -> tuple[np.ndarray, np.ndarray]:
    """Stamps and ego -> world 4×4 poses from the odometry topic."""
    stamps, poses = [], []
    for _, msg in drive.decoded(TOPIC_EGO):
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        m = np.eye(4)
        m[:3, :3] = quat_to_matrix([q.w, q.x, q.y, q.z])
        m[:3, 3] = [p.x, p.y, p.z]
        stamps.append(stamp_of(msg))
        poses.append(m)
    order = np.argsort(stamps)
    return np.array(stamps, dtype=np.int64)[order], np.array(poses)[order]


def _ground_truth(drive: Drive) -> dict[int, GroundTruth]:
    return {stamp_of(msg): ground_truth_from_msg(msg) for _, msg in drive.decoded(TOPIC_ACTORS)}


def test_lidar_points_fall_inside_ground_truth_boxes(clear_drive: Drive) -> None:
    rig = clear_drive.rig()
    lidar_to_ego = rig.transform(LIDAR, rig.frame)
    offset = rig.sensor(LIDAR).time_offset_ns
    pose_stamps, poses = _ego_poses(clear_drive)
    truth = _ground_truth(clear_drive)
    checked = hit = 0
    counted, reported = [], []
    for _, raw in clear_drive.raw(TOPIC_LIDAR):
        cloud = decode_pointcloud2(raw)
        stamp = cloud.stamp_ns + offset
        gt = truth[stamp]
        # Each point is in the ego frame at its own firing time: move it to the ego frame at
        # the stamp with the recorded ego poses (the sweep is skewed by the ego's motion).
        when = stamp + cloud.points["t"].astype(np.int64)
        pts = lidar_to_ego.apply(xyz(cloud.points))
        at_point = interpolate_poses(pose_stamps, poses, when)
        at_stamp = interpolate_poses(pose_stamps, poses, np.array([stamp]))[0]
        world = np.einsum("nij,nj->ni", at_point[:, :3, :3], pts) + at_point[:, :3, 3]
        inv = np.linalg.inv(at_stamp)
        pts_stamp = world @ inv[:3, :3].T + inv[:3, 3]
        dt = (when - stamp) / 1e9
        for k in range(len(gt.track_id)):
            dist = float(np.hypot(*gt.center[k, :2]))
            # ... and each actor moves with its ground-truth velocity during the sweep.
            rel = pts_stamp - gt.velocity[k] * dt[:, None] - gt.center[k]
            c, s = np.cos(gt.yaw[k]), np.sin(gt.yaw[k])
            lx, ly = c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]
            half = 0.5 * gt.size[k] + 0.15
            inside = (
                (np.abs(lx) <= half[0]) & (np.abs(ly) <= half[1]) & (np.abs(rel[:, 2]) <= half[2])
            )
            n_in = int(inside.sum())
            if gt.visibility[k] >= 0.6 and dist <= 40.0:
                checked += 1
                hit += n_in >= 3
            if gt.num_lidar_points[k] >= 20:
                counted.append(n_in)
                reported.append(int(gt.num_lidar_points[k]))
    assert checked >= 20
    assert hit / checked > 0.9, f"{hit}/{checked} unoccluded actors within 40 m have points"
    # The reported point counts agree with the points found in the boxes.
    ratio = np.array(counted) / np.array(reported)
    assert np.median(ratio) > 0.9
    assert np.mean(ratio > 0.7) > 0.9


def _extrapolate(
    gt: GroundTruth, pose_gt: np.ndarray, pose_cam: np.ndarray, dt: float
) -> np.ndarray:
    """Box centres at the camera time, ego frame then: ego motion from the poses, actor motion
    from the ground-truth velocity."""
    world = gt.center @ pose_gt[:3, :3].T + pose_gt[:3, 3]
    world += (gt.velocity @ pose_gt[:3, :3].T) * dt
    inv = np.linalg.inv(pose_cam)
    return world @ inv[:3, :3].T + inv[:3, 3]


def test_ground_truth_boxes_project_onto_the_rendered_actors(clear_drive: Drive) -> None:
    """Camera images of the bag are exactly what the renderer draws at the message's time;
    ground-truth boxes (from the bag, moved to the camera's time) projected with
    ``rig.project`` land on those actors in the instance mask rendered alongside, and the
    pixels of a car have its paint colour."""
    rig = clear_drive.rig()
    offset = rig.sensor(CAMERA).time_offset_ns
    pose_stamps, poses = _ego_poses(clear_drive)
    truth = _ground_truth(clear_drive)
    gt_stamps = np.array(sorted(truth))
    sim = DriveSimulator(clear_drive.config)
    sched = sim.camera_schedule()
    renderer = sim._renderer()
    world_actors = sim.world.actors_at(0.0)
    appearance = dict(
        zip(world_actors.track_id.tolist(), world_actors.appearance.tolist(), strict=True)
    )
    checked = landed = cars = painted = 0
    images = list(clear_drive.decoded(TOPIC_CAMERA))
    for _, msg in images[:: max(1, len(images) // 6)]:
        common = stamp_of(msg) + offset
        i = int(np.argmin(np.abs(sched.capture_s - (common - DRIVE_EPOCH_NS) / 1e9)))
        frame = renderer.render(
            float(sched.capture_s[i]), rng_for(clear_drive.config.seed, CAMERA, i)
        )
        assert encode_jpeg(frame.image, clear_drive.config.jpeg_quality) == bytes(msg.data)
        t_gt = int(gt_stamps[np.argmin(np.abs(gt_stamps - common))])
        gt = truth[t_gt]
        pose_gt, pose_cam = interpolate_poses(pose_stamps, poses, np.array([t_gt, common]))
        centres = _extrapolate(gt, pose_gt, pose_cam, (common - t_gt) / 1e9)
        uv, depth, valid = rig.project(centres, rig.frame, CAMERA)
        for k in np.flatnonzero(valid & (depth < 35.0) & (gt.visibility >= 0.9)):
            u, v = np.round(uv[k]).astype(int)
            patch = frame.mask[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2]
            track = int(gt.track_id[k])
            checked += 1
            landed += bool(np.any(patch == track))
            if gt.class_id[k] == CAR:
                paint = np.array(CAR_PAINTS[appearance[track] % len(CAR_PAINTS)], dtype=float)
                pixels = frame.image[frame.mask == track].astype(float)
                # Shaded paint: a multiple (0.5-1.05) of the paint colour, give or take noise.
                scale = np.clip(pixels @ paint / max(paint @ paint, 1.0), 0.5, 1.05)
                err = np.linalg.norm(pixels - scale[:, None] * paint, axis=1)
                cars += 1
                painted += np.mean(err < 25.0) > 0.3
    assert checked >= 8
    assert landed / checked > 0.85, f"{landed}/{checked} projected centres on their actor"
    assert cars >= 3 and painted / cars > 0.8, f"{painted}/{cars} cars show their paint"
