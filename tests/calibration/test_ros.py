"""ROS importer: sensor_msgs/CameraInfo (ROS 1 mappings, ROS 2 rosbags messages) and static tf."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fusionrt import CalibrationError
from fusionrt.calibration import Rig
from fusionrt.calibration.formats.ros import TfTree, camera_model_from_camera_info, ros_rig
from fusionrt.calibration.transforms import Transform

K9 = [700.0, 0.0, 640.0, 0.0, 702.0, 360.0, 0.0, 0.0, 1.0]
P12 = [650.0, 0.0, 630.0, 0.0, 0.0, 650.0, 350.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def _info_ros1(model, d, frame="cam_optical"):
    return {
        "header": {"frame_id": frame},
        "width": 1280,
        "height": 720,
        "distortion_model": model,
        "D": d,
        "K": K9,
        "R": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        "P": P12,
    }


def _info_ros2(model, d, frame="cam_optical"):
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    t = ts.types
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=frame
    )
    roi = t["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return t["sensor_msgs/msg/CameraInfo"](
        header=header,
        height=720,
        width=1280,
        distortion_model=model,
        d=np.array(d, dtype=np.float64),
        k=np.array(K9),
        r=np.eye(3).ravel(),
        p=np.array(P12),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


@pytest.mark.parametrize("make", [_info_ros1, _info_ros2], ids=["ros1-mapping", "ros2-rosbags"])
def test_camera_info_models(make):
    pb = camera_model_from_camera_info(make("plumb_bob", [-0.3, 0.1, 0.001, -0.002, -0.02]))
    assert (pb.model, pb.size, pb.distortion.size) == ("plumb_bob", (1280, 720), 5)
    np.testing.assert_array_equal(pb.K, np.reshape(K9, (3, 3)))
    pts = np.array([[0.3, -0.2, 2.0], [-1.0, 0.4, 3.0]])
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), pb.K, pb.distortion)
    np.testing.assert_allclose(pb.project(pts)[0], ref.reshape(-1, 2), atol=1e-6)

    assert (
        camera_model_from_camera_info(make("plumb_bob", [-0.3, 0.1, 0.0, 0.0])).distortion.size == 5
    )
    rat = camera_model_from_camera_info(
        make("rational_polynomial", [0.1, -0.02, 0, 0, 0.001, 0.3, 0.01, 0.0])
    )
    assert (rat.model, rat.distortion.size) == ("plumb_bob", 8)
    fish = camera_model_from_camera_info(make("equidistant", [0.01, -0.002, 0.0003, 0.0]))
    assert (fish.model, fish.distortion.size) == ("fisheye", 4)
    assert camera_model_from_camera_info(make("plumb_bob", [0.0] * 5)).model == "pinhole"
    assert camera_model_from_camera_info(make("", [])).model == "pinhole"
    rect = camera_model_from_camera_info(make("plumb_bob", [-0.3, 0.1, 0, 0, 0]), rectified=True)
    assert rect.model == "pinhole" and rect.fx == 650.0 and rect.cx == 630.0
    with pytest.raises(CalibrationError, match="unsupported distortion_model 'kb8'") as e:
        camera_model_from_camera_info(make("kb8", [0.1] * 8))
    assert e.value.context == {"sensor": "cam_optical", "field": "distortion_model"}
    with pytest.raises(CalibrationError, match="takes 4 distortion coefficients"):
        camera_model_from_camera_info(make("equidistant", [0.1] * 5))


def _tf(parent, child, xyz, q_xyzw):
    return {
        "header": {"frame_id": parent},
        "child_frame_id": child,
        "transform": {
            "translation": dict(zip("xyz", xyz, strict=True)),
            "rotation": dict(zip("xyzw", q_xyzw, strict=True)),
        },
    }


# REP 103 optical frame: z forward, x right, y down, child of an x-forward camera_link
OPTICAL = (-0.5, 0.5, -0.5, 0.5)
YAW_90 = (0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5))
TF_STATIC = [
    _tf("base_link", "lidar_link", (1.0, 0.0, 1.8), YAW_90),
    _tf("base_link", "camera_link", (1.5, 0.1, 1.4), (0.0, 0.0, 0.0, 1.0)),
    _tf("camera_link", "cam_optical", (0.0, 0.0, 0.0), OPTICAL),
    _tf("map", "odom", (5.0, 5.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
]


def test_ros_rig_from_camera_info_and_static_tf(tmp_path):
    sensors = {
        "cam_front": {"camera_info": _info_ros1("plumb_bob", [-0.3, 0.1, 0.001, -0.002, -0.02])},
        "lidar_top": {"kind": "lidar", "frame_id": "lidar_link", "time_offset_ns": 1500},
    }
    rig = ros_rig(sensors, [{"transforms": TF_STATIC}])  # a TFMessage works like a list
    assert rig.frame == "ego"
    cam = rig.sensor("cam_front")
    assert cam.kind == "camera" and cam.camera.model == "plumb_bob"
    # optical axis along base_link x, image right along -y, image down along -z
    np.testing.assert_allclose(cam.extrinsics.rotate([0, 0, 1]), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(cam.extrinsics.rotate([1, 0, 0]), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(cam.extrinsics.rotate([0, 1, 0]), [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(cam.position, [1.5, 0.1, 1.4])
    lidar = rig.sensor("lidar_top")
    assert lidar.time_offset_ns == 1500
    np.testing.assert_allclose(
        rig.transform("lidar_top", "ego").apply([1.0, 0, 0]), [1.0, 1.0, 1.8], atol=1e-12
    )
    # a point 10 m ahead of the car at camera height lands near the principal point
    uv, depth, valid = rig.project([[11.5, 0.1, 1.4]], "ego", "cam_front")
    np.testing.assert_allclose(uv[0], [640.0, 360.0], atol=1e-9)
    assert depth[0] == pytest.approx(10.0) and valid[0]
    rig.save(tmp_path / "ros.yaml")
    assert Rig.load(tmp_path / "ros.yaml").to_dict() == rig.to_dict()


def test_tf_tree_lookup_and_errors():
    tree = TfTree(TF_STATIC)
    t = tree.lookup("lidar_link", "cam_optical")
    direct = tree.lookup("base_link", "lidar_link").inverse() @ tree.lookup(
        "base_link", "cam_optical"
    )
    assert t.allclose(direct, atol=1e-12)
    assert tree.lookup("base_link", "base_link").allclose(Transform.identity())
    with pytest.raises(CalibrationError, match="not connected in the tf tree"):
        tree.lookup("base_link", "odom")
    with pytest.raises(CalibrationError, match="frame 'radar_link' is not in the tf tree"):
        tree.lookup("base_link", "radar_link")
    with pytest.raises(CalibrationError, match="two parents"):
        TfTree([*TF_STATIC, _tf("odom", "camera_link", (0, 0, 0), (0, 0, 0, 1))])
    with pytest.raises(CalibrationError, match="quaternion norm 2 is not 1"):
        TfTree([_tf("a", "b", (0, 0, 0), (0, 0, 0, 2))])
    with pytest.raises(CalibrationError, match="sensor 'radar'") as e:
        ros_rig({"radar": {"kind": "radar", "frame_id": "radar_link"}}, TF_STATIC)
    assert e.value.context["sensor"] == "radar"
    with pytest.raises(CalibrationError, match="needs a 'frame_id'"):
        ros_rig({"radar": {"kind": "radar"}}, TF_STATIC)
