"""What Foxglove makes of the ``mcap`` sink's file: read back with the ``mcap`` reader, every
message decoded with the protobuf schemas embedded in the file, and checked against the rig,
the recording and Foxglove's documented semantics (transforms place every frame, the camera
calibration is the rig's, the image is the recorded JPEG, the annotations are the boxes
projected by OpenCV, a box that vanishes is gone with the next frame)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from sink_support import (
    SAMPLE_DRIVE,
    SAMPLE_MCAP_SCHEMAS,
    Captured,
    check_foxglove_message,
    decode,
    feed,
)

from fusionrt.plugins.sinks.mcap import FoxgloveMcapSink
from fusionrt.runtime.messages import Detections
from fusionrt.runtime.truth import GroundTruthBoxes

CAMERA = "camera_front"
CAMERA_TOPIC = "/sensors/camera_front/image/compressed"


@dataclasses.dataclass
class Read:
    """An MCAP read back: per message (topic, log time, decoded), in file order."""

    messages: list[tuple[str, int, Any]]
    schemas: dict[str, str]

    def on(self, topic: str) -> list[Any]:
        return [m for t, _, m in self.messages if t == topic]


def write_and_read(folder: Path, captured: Captured, frames: int | None = None) -> Read:
    sink = FoxgloveMcapSink(folder)
    feed(sink, captured, frames)
    sink.close()
    with (folder / "run.mcap").open("rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None
        schemas = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        messages = [
            (channel.topic, message.log_time, decode(schema, message.data))
            for schema, channel, message in reader.iter_messages(log_time_order=False)
        ]
    return Read(messages, schemas)


@pytest.fixture(scope="module")
def read(sample, tmp_path_factory) -> Read:
    return write_and_read(tmp_path_factory.mktemp("foxglove"), sample)


def ns(stamp: Any) -> int:
    return stamp.seconds * 1_000_000_000 + stamp.nanos


# -- channels and transforms ------------------------------------------------------------


def test_every_channel_has_its_foxglove_schema_and_every_message_decodes(read, sample):
    frames = len(sample.frames)
    assert read.schemas == SAMPLE_MCAP_SCHEMAS
    counts = defaultdict(int)
    for topic, _, message in read.messages:
        check_foxglove_message(topic, message)
        counts[topic] += 1
    assert counts == {topic: frames for topic in SAMPLE_MCAP_SCHEMAS} | {
        "/fusionrt/transforms": 1,  # static: once, before the first frame
        "/fusionrt/camera/camera_front/calibration": 1,
    }


def test_the_transforms_place_every_rig_sensor_before_the_first_message(read, sample):
    rig = sample.info.rig
    (transforms,) = read.on("/fusionrt/transforms")
    placed = {t.child_frame_id: t for t in transforms.transforms}
    assert set(placed) == set(rig.sensors)
    for name, t in placed.items():
        extrinsics = rig.sensors[name].extrinsics  # sensor -> ego: the sensor's pose in ego
        assert t.parent_frame_id == rig.frame
        q = t.rotation
        rotation = cv2.Rodrigues(_rotvec(q.x, q.y, q.z, q.w))[0]
        np.testing.assert_allclose(rotation, extrinsics.rotation, atol=1e-12)
        position = [t.translation.x, t.translation.y, t.translation.z]
        np.testing.assert_allclose(position, extrinsics.translation, atol=1e-12)
    # Foxglove looks transforms up by time: stamped at or before every stamp in the file
    stamp = ns(transforms.transforms[0].timestamp)
    assert all(ns(t.timestamp) == stamp for t in transforms.transforms)
    stamps = [ns(s) for _, _, m in read.messages for s in _stamps(m)]
    assert len(stamps) > len(read.messages) and stamp == min(stamps)
    log_times = [log_time for _, log_time, _ in read.messages]
    assert read.messages[0][0] == "/fusionrt/transforms" and log_times[0] == min(log_times)
    # every frame a message names is the rig frame or one the transforms place
    frames = {rig.frame, *placed}
    for _, _, message in read.messages:
        for named in [message, *getattr(message, "entities", [])]:
            if hasattr(named, "frame_id"):
                assert named.frame_id in frames, named.frame_id


def _stamps(message: Any) -> list[Any]:
    """The timestamps a message holds (its own, its entities', its transforms')."""
    stamps = [message.timestamp] if "timestamp" in message.DESCRIPTOR.fields_by_name else []
    for part in [*getattr(message, "entities", []), *getattr(message, "transforms", [])]:
        stamps.append(part.timestamp)
    return stamps


def _rotvec(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The rotation vector of a unit quaternion (x, y, z, w), for OpenCV's Rodrigues."""
    angle = 2 * np.arctan2(np.linalg.norm([x, y, z]), w)
    axis = np.array([x, y, z]) / max(np.linalg.norm([x, y, z]), 1e-300)
    return axis * angle


def test_the_camera_calibration_is_the_rigs_in_the_cameras_frame(read, sample):
    model = sample.info.rig.camera(CAMERA)
    (calibration,) = read.on(f"/fusionrt/camera/{CAMERA}/calibration")
    assert calibration.frame_id == CAMERA
    assert (calibration.width, calibration.height) == (model.width, model.height)
    assert calibration.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(np.reshape(calibration.K, (3, 3)), model.K)
    np.testing.assert_array_equal(calibration.D, model.distortion)
    np.testing.assert_array_equal(np.reshape(calibration.R, (3, 3)), np.eye(3))
    np.testing.assert_array_equal(
        np.reshape(calibration.P, (3, 4)), np.hstack([model.K, [[0]] * 3])
    )


# -- data -------------------------------------------------------------------------------


def test_the_camera_image_is_the_recorded_jpeg_at_its_own_stamp(read, sample):
    offset = sample.info.rig.sensors[CAMERA].time_offset_ns  # common clock = header + offset
    with (SAMPLE_DRIVE / "bag" / "bag.mcap").open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        recorded = {
            m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec + offset: bytes(m.data)
            for _, _, _, m in reader.iter_decoded_messages(topics=[CAMERA_TOPIC])
        }
    images = read.on(f"/fusionrt/camera/{CAMERA}/image")
    assert len(images) == len(sample.frames)
    for image, (frame, _, _) in zip(images, sample.frames, strict=True):
        assert ns(image.timestamp) == frame.messages[CAMERA].stamp_ns
        assert image.frame_id == CAMERA and image.format == "jpeg"
        assert image.data == recorded[ns(image.timestamp)]  # byte for byte: not re-encoded


def test_the_lidar_cloud_is_the_sweep_in_the_lidars_frame(read, sample):
    clouds = read.on("/fusionrt/lidar/lidar_top")
    for cloud, (frame, _, _) in zip(clouds, sample.frames, strict=True):
        sweep = frame.messages["lidar_top"]
        assert cloud.frame_id == "lidar_top" and ns(cloud.timestamp) == sweep.stamp_ns
        assert cloud.point_stride == sweep.payload.dtype.itemsize
        fields = {f.name: f.offset for f in cloud.fields}
        assert set(fields) == set(sweep.payload.dtype.names)
        points = np.frombuffer(cloud.data, sweep.payload.dtype)
        np.testing.assert_array_equal(points, sweep.payload)
        for name, offset in fields.items():
            assert sweep.payload.dtype.fields[name][1] == offset


def _opencv_edges(boxes: np.ndarray, rig: Any) -> list[np.ndarray]:
    """Per box, its 12 edges (12×2×2 px) projected by OpenCV, or nothing where a corner is
    outside the image or behind the camera (only whole boxes are compared)."""
    model, extrinsics = rig.camera(CAMERA), rig.sensors[CAMERA].extrinsics
    rvec = cv2.Rodrigues(extrinsics.rotation.T)[0]  # ego -> camera
    tvec = -extrinsics.rotation.T @ extrinsics.translation
    out = []
    for x, y, z, length, width, height, yaw in np.asarray(boxes, np.float64):
        local = np.array(
            [[sx * length, sy * width, sz * height] for sx in (.5, -.5) for sy in (.5, -.5)
             for sz in (-.5, .5)]
        )  # fmt: skip
        c, s = np.cos(yaw), np.sin(yaw)
        corners = local @ np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]]) + [x, y, z]
        depth = (corners - extrinsics.translation) @ extrinsics.rotation[:, 2]
        uv = cv2.projectPoints(corners, rvec, tvec, model.K, model.distortion)[0].reshape(8, 2)
        inside = (
            (uv >= 0).all() and (uv[:, 0] < model.width).all() and (uv[:, 1] < model.height).all()
        )
        if (depth > 0.5).all() and inside:
            edges = [(0, 1), (1, 3), (3, 2), (2, 0), (4, 5), (5, 7), (7, 6), (6, 4)]
            edges += [(0, 4), (1, 5), (2, 6), (3, 7)]
            out.append(uv[np.array(edges)])
    return out


def test_the_annotations_are_the_boxes_projected_onto_the_image(read, sample):
    rig = sample.info.rig
    model = rig.camera(CAMERA)
    images = read.on(f"/fusionrt/camera/{CAMERA}/image")
    annotations = read.on(f"/fusionrt/camera/{CAMERA}/annotations")
    compared = 0
    for image, annotation, (_, detections, _) in zip(
        images, annotations, sample.frames, strict=True
    ):
        decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape[:2] == (model.height, model.width)  # the calibrated image
        assert ns(annotation.timestamp) == ns(image.timestamp)  # synced to its image
        green = [p for p in annotation.points if p.outline_color.g > p.outline_color.r]
        points = np.array([(q.x, q.y) for p in green for q in p.points]).reshape(-1, 2, 2)
        bad = ~((points >= 0) & (points <= [model.width, model.height])).all(axis=(1, 2))
        assert not bad.any(), points[bad]
        for edges in _opencv_edges(detections.boxes, rig):
            # Foxglove counts pixels from the top-left pixel's corner, OpenCV from its centre
            expected = edges + 0.5
            for edge in expected:
                distance = np.abs(points - edge).max(axis=(1, 2))
                assert distance.min() < 1e-6, edge
            compared += 1
        texts = [t for t in annotation.texts if t.text_color.g > t.text_color.r]
        assert all(t.text.split()[0] in detections.class_names for t in texts)
    assert compared > 20  # whole boxes in view were compared, edge by edge


def test_an_image_recorded_raw_is_encoded_once_and_annotated_at_its_size(sample, tmp_path):
    frame, detections, timings = sample.frames[0]
    message = frame.messages[CAMERA]
    meta = {k: v for k, v in message.meta.items() if k != "compressed"} | {"encoding": "rgb8"}
    raw = dataclasses.replace(message, meta=meta)  # the reduced 240×135 RGB payload only
    captured = Captured(
        sample.info,
        [
            (
                dataclasses.replace(frame, messages=frame.messages | {CAMERA: raw}),
                detections,
                timings,
            )
        ],
    )
    raw_read = write_and_read(tmp_path, captured)
    (image,) = raw_read.on(f"/fusionrt/camera/{CAMERA}/image")
    decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)
    assert image.format == "jpeg" and decoded.shape == message.payload.shape
    full = write_and_read(tmp_path / "full", Captured(sample.info, sample.frames[:1]))
    (scaled,) = raw_read.on(f"/fusionrt/camera/{CAMERA}/annotations")
    (whole,) = full.on(f"/fusionrt/camera/{CAMERA}/annotations")
    scale = message.payload.shape[1] / sample.info.rig.camera(CAMERA).width
    for a, b in zip(scaled.points, whole.points, strict=True):
        np.testing.assert_allclose(
            [(q.x, q.y) for q in a.points], [(q.x * scale, q.y * scale) for q in b.points]
        )


# -- per-frame replacement ----------------------------------------------------------------


def foxglove_scene(updates: list[Any], at_ns: list[int]) -> list[dict[str, Any]]:
    """The entities Foxglove shows after each update, at each time (the documented rules:
    deletions before entities; a deletion removes matching entities earlier than it; an entity
    replaces the one of its id and lives ``lifetime`` after its stamp, forever if zero)."""
    scene: dict[str, Any] = {}
    shown = []
    for update, now in zip(updates, at_ns, strict=True):
        for deletion in update.deletions:
            before = ns(deletion.timestamp)
            for key, entity in list(scene.items()):
                matches = deletion.type == 1 or entity.id == deletion.id  # 1: ALL
                if matches and ns(entity.timestamp) < before:
                    del scene[key]
        for entity in update.entities:
            scene[entity.id] = entity
        lifetime = {k: ns(e.lifetime) for k, e in scene.items()}
        shown.append(
            {
                k: e
                for k, e in scene.items()
                if lifetime[k] == 0 or ns(e.timestamp) + lifetime[k] > now
            }
        )
    return shown


def _centres(entities: dict[str, Any]) -> list[tuple[float, float]]:
    return sorted(
        (round(e.cubes[0].pose.position.x, 4), round(e.cubes[0].pose.position.y, 4))
        for e in entities.values()
    )


def test_each_frame_shows_exactly_its_own_boxes(read, sample):
    updates = read.on("/fusionrt/detections")
    stamps = [frame.stamp_ns for frame, _, _ in sample.frames]
    for shown, (_, detections, _) in zip(
        foxglove_scene(updates, stamps), sample.frames, strict=True
    ):
        expected = sorted(
            (round(float(x), 4), round(float(y), 4)) for x, y in detections.boxes[:, :2]
        )
        assert _centres(shown) == expected


def _first(detections: Detections, count: int) -> Detections:
    return Detections(
        detections.stamp_ns,
        detections.boxes[:count],
        detections.scores[:count],
        detections.labels[:count],
        detections.class_names,
    )


def test_a_box_that_vanishes_is_gone_in_the_next_scene_update(sample, tmp_path):
    (a, det_a, t_a), (b, det_b, t_b) = sample.frames[:2]
    three, one = _first(det_a, 3), _first(det_b, 1)
    truth = GroundTruthBoxes(a.stamp_ns, three.boxes, three.labels, np.ones(3))
    info = dataclasses.replace(
        sample.info, ground_truth=lambda stamp: truth if stamp == a.stamp_ns else None
    )
    run = write_and_read(tmp_path, Captured(info, [(a, three, t_a), (b, one, t_b)]))
    stamps = [a.stamp_ns, b.stamp_ns]
    shown = foxglove_scene(run.on("/fusionrt/detections"), stamps)
    assert [len(s) for s in shown] == [3, 1]
    assert _centres(shown[1]) == _centres({"0": run.on("/fusionrt/detections")[1].entities[0]})
    # ground truth known at the first frame, none at the second: emptied, not left standing
    assert [len(s) for s in foxglove_scene(run.on("/fusionrt/ground_truth"), stamps)] == [3, 0]


def test_no_boxes_clear_the_scene(sample, tmp_path):
    frames = [(f, Detections.empty(f.stamp_ns), t) for f, _, t in sample.frames[:2]]
    run = write_and_read(tmp_path, Captured(sample.info, [sample.frames[0], frames[1]]))
    stamps = [f.stamp_ns for f, _, _ in frames]
    shown = foxglove_scene(run.on("/fusionrt/detections"), stamps)
    assert len(shown[0]) == len(sample.frames[0][1]) > 0 and shown[1] == {}
