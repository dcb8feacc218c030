"""The rig file: loading, exact round trips, lookups, transforms, projection and validation."""

from __future__ import annotations

import copy
import textwrap

import numpy as np
import pytest
import yaml

from fusionrt import CalibrationError
from fusionrt.calibration import CameraModel, Rig, SensorCalibration, Transform
from fusionrt.calibration.transforms import quat_to_matrix, rpy_to_matrix

ISSUE_RIG = textwrap.dedent(
    """\
    frame: ego                       # the common frame; x forward, y left, z up (ISO 8855)
    sensors:
      cam_front:
        kind: camera
        model: pinhole               # pinhole | plumb_bob (k1 k2 p1 p2 k3) | fisheye (k1..k4)
        width: 1600
        height: 900
        K: [[1266.4, 0, 816.3], [0, 1266.4, 491.5], [0, 0, 1]]
        distortion: []
        extrinsics:                  # sensor -> frame
          translation: [1.70, 0.02, 1.51]
          rotation: {quaternion_wxyz: [0.4998, -0.5030, 0.4997, -0.4969]}
        time_offset_ns: 0
      lidar_top:
        kind: lidar
        extrinsics: {translation: [0.94, 0.0, 1.84], rotation: {rpy_deg: [0, 0, -90]}}
    """
)

FULL_RIG = {
    "frame": "ego",
    "sensors": {
        "cam_left": {
            "kind": "camera",
            "model": "plumb_bob",
            "width": 1280,
            "height": 720,
            "K": [[900.0, 0.0, 640.5], [0.0, 901.0, 360.25], [0.0, 0.0, 1.0]],
            "distortion": [-0.31, 0.11, 0.001, -0.0005, -0.02],
            "extrinsics": {
                "translation": [1.5, 0.3, 1.4],
                "rotation": {"quaternion_xyzw": [-0.5, 0.5, -0.5, 0.5]},
            },
            "time_offset_ns": -1_250_000,
        },
        "cam_fish": {
            "kind": "camera",
            "model": "fisheye",
            "width": 1920,
            "height": 1080,
            "K": [[600.0, 0.0, 960.0], [0.0, 600.0, 540.0], [0.0, 0.0, 1.0]],
            "distortion": [0.05, -0.01, 0.002, -0.0003],
            "extrinsics": {
                "translation": [0.0, 0.0, 2.0],
                "rotation": {"matrix": [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]},
            },
        },
        "radar_front": {
            "kind": "radar",
            "extrinsics": {
                "translation": [3.6, 0.0, 0.5],
                "rotation": {"rpy_deg": [0.0, 1.5, 0.2]},
            },
            "time_offset_ns": 20_000_000,
        },
    },
    "vehicle": {"box_min": [-1.0, -1.0, 0.0], "box_max": [4.0, 1.0, 2.0]},
}


@pytest.fixture
def rig_file(tmp_path):
    p = tmp_path / "rig.yaml"
    p.write_text(ISSUE_RIG)
    return p


# -- loading and round trips -----------------------------------------------------------------


def test_issue_example_loads(rig_file):
    rig = Rig.load(rig_file)
    assert rig.frame == "ego"
    assert list(rig.sensors) == ["cam_front", "lidar_top"]
    cam = rig.camera("cam_front")
    assert (cam.model, cam.width, cam.height) == ("pinhole", 1600, 900)
    assert cam.K[0, 0] == 1266.4
    lidar = rig.sensor("lidar_top")
    assert lidar.kind == "lidar" and lidar.camera is None and lidar.time_offset_ns == 0
    np.testing.assert_allclose(lidar.extrinsics.rotation, rpy_to_matrix([0, 0, -np.pi / 2]))
    # The 4-digit quaternion is normalised (its norm is 0.99971).
    q = np.array([0.4998, -0.5030, 0.4997, -0.4969])
    np.testing.assert_allclose(
        rig.sensor("cam_front").extrinsics.rotation, quat_to_matrix(q / np.linalg.norm(q))
    )
    assert rig.vehicle_box is None


def test_round_trip_is_exact(rig_file, tmp_path):
    raw = yaml.safe_load(rig_file.read_text())
    rig = Rig.load(rig_file)
    assert rig.to_dict() == raw
    out = tmp_path / "saved.yaml"
    rig.save(out, header="saved by a test\nsecond line")
    assert out.read_text().startswith("# saved by a test\n# second line\n")
    assert yaml.safe_load(out.read_text()) == raw
    assert Rig.load(out).to_dict() == raw


def test_round_trip_keeps_every_representation(tmp_path):
    original = copy.deepcopy(FULL_RIG)
    rig = Rig.from_dict(FULL_RIG)
    assert original == FULL_RIG  # not mutated
    assert rig.to_dict() == FULL_RIG
    rig.save(tmp_path / "r.yaml")
    assert yaml.safe_load((tmp_path / "r.yaml").read_text()) == FULL_RIG
    again = Rig.load(tmp_path / "r.yaml")
    assert again.to_dict() == FULL_RIG
    for name in FULL_RIG["sensors"]:
        assert again.sensor(name).extrinsics.allclose(rig.sensor(name).extrinsics, atol=0)
    lo, hi = rig.vehicle_box
    np.testing.assert_array_equal(lo, [-1, -1, 0])
    np.testing.assert_array_equal(hi, [4, 1, 2])
    assert rig.sensor("cam_left").time_offset_ns == -1_250_000
    assert rig.camera("cam_left").distortion.shape == (5,)


def test_quaternion_orders_agree():
    wxyz = {"quaternion_wxyz": [0.5, -0.5, 0.5, -0.5]}
    xyzw = {"quaternion_xyzw": [-0.5, 0.5, -0.5, 0.5]}
    a = _one_sensor_rig(rotation=wxyz).sensor("s").extrinsics
    b = _one_sensor_rig(rotation=xyzw).sensor("s").extrinsics
    assert a.allclose(b, atol=1e-15)
    # camera looking forward: optical axis (z) along ego x, image right (x) along ego -y
    np.testing.assert_allclose(a.rotate([0, 0, 1]), [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(a.rotate([1, 0, 0]), [0, -1, 0], atol=1e-15)


def test_programmatic_rig_serialises_in_the_chosen_format():
    ext = Transform.from_rpy(np.radians([1.0, 2.0, 30.0]), [1, 2, 3])
    cam = CameraModel(
        np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), [], "pinhole", 640, 480
    )
    sensors = [
        SensorCalibration("c", "camera", ext, camera=cam, rotation_format="rpy_deg"),
        SensorCalibration("l", "lidar", ext, rotation_format="matrix"),
        SensorCalibration("r", "radar", ext, rotation_format="quaternion_xyzw", time_offset_ns=5),
    ]
    rig = Rig("ego", sensors)
    d = rig.to_dict()
    np.testing.assert_allclose(d["sensors"]["c"]["extrinsics"]["rotation"]["rpy_deg"], [1, 2, 30])
    assert d["sensors"]["c"]["distortion"] == [] and d["sensors"]["c"]["model"] == "pinhole"
    assert d["sensors"]["l"]["time_offset_ns"] == 0
    again = Rig.from_dict(d)
    assert again.to_dict() == d
    for name in "clr":
        assert again.sensor(name).extrinsics.allclose(ext, atol=1e-12)


# -- lookups -----------------------------------------------------------------------------------


def test_missing_sensor_is_named(rig_file):
    rig = Rig.load(rig_file)
    with pytest.raises(
        CalibrationError, match=r"sensor 'CAM_FRONT' is not in the rig.*did you mean 'cam_front'"
    ) as e:
        rig.sensor("CAM_FRONT")
    assert e.value.context["sensor"] == "CAM_FRONT"
    assert e.value.context["file"] == str(rig_file)
    with pytest.raises(CalibrationError, match="'radar' is not in the rig"):
        rig.transform("radar", "ego")
    with pytest.raises(CalibrationError, match="has no camera intrinsics") as e:
        rig.camera("lidar_top")
    assert e.value.context == {"sensor": "lidar_top", "field": "K", "file": str(rig_file)}


def test_require(rig_file):
    rig = Rig.load(rig_file)
    rig.require(["cam_front", "lidar_top"], where="pipeline.yaml")
    rig.require(["cam_front"], kind="camera")
    with pytest.raises(
        CalibrationError,
        match=r"sensors 'radar_front', 'cam_back' not in the rig \(referenced by pipeline.yaml\)",
    ) as e:
        rig.require(["cam_front", "radar_front", "cam_back"], where="pipeline.yaml")
    assert e.value.context["sensor"] == "radar_front, cam_back"
    with pytest.raises(
        CalibrationError, match=r"expected sensors of kind 'camera'.*'lidar_top' is 'lidar'"
    ):
        rig.require(["lidar_top"], where="camera plugin", kind="camera")
    assert "cam_front" in rig and "nope" not in rig
    assert rig.names("camera") == ["cam_front"]


# -- geometry ---------------------------------------------------------------------------------


def test_transform_between_sensors_and_frame(rig_file):
    rig = Rig.load(rig_file)
    cam = rig.sensor("cam_front").extrinsics
    lidar = rig.sensor("lidar_top").extrinsics
    assert rig.transform("ego", "ego").allclose(Transform.identity(), atol=0)
    assert rig.transform("lidar_top", "ego").allclose(lidar, atol=0)
    assert rig.transform("ego", "cam_front").allclose(cam.inverse(), atol=1e-15)
    t = rig.transform("lidar_top", "cam_front")
    assert t.allclose(cam.inverse() @ lidar, atol=1e-15)
    assert (t @ rig.transform("cam_front", "lidar_top")).allclose(Transform.identity(), atol=1e-12)
    assert rig.transform("lidar_top", "cam_front") is t  # cached
    # lidar_top is yawed -90°: its +y axis points forward along ego +x
    np.testing.assert_allclose(
        rig.transform("lidar_top", "ego").apply([0, 1, 0]), [1.94, 0, 1.84], atol=1e-12
    )


def test_project_frame_points(rig_file):
    rig = Rig.load(rig_file)
    cam = rig.camera("cam_front")
    ext = rig.sensor("cam_front").extrinsics
    # a point 20 m straight down the optical axis lands on the principal point
    on_axis = ext.apply([[0.0, 0.0, 20.0]])
    uv, depth, valid = rig.project(on_axis, "ego", "cam_front")
    np.testing.assert_allclose(uv, [[cam.cx, cam.cy]], atol=1e-9)
    np.testing.assert_allclose(depth, [20.0], atol=1e-12)
    assert valid.tolist() == [True]
    pts = np.array([[10.0, 0.0, 1.5], [-10.0, 0.0, 1.5], [10.0, 30.0, 1.5], [0.0, 0.0, 0.0]])
    uv, depth, valid = rig.project(pts, "ego", "cam_front")
    assert uv.shape == (4, 2) and depth.shape == (4,) and valid.dtype == bool
    assert valid.tolist() == [True, False, False, False]  # behind, outside the image, behind
    assert depth[1] < 0
    with pytest.raises(ValueError, match="N×3"):
        rig.project(np.zeros((3, 4)), "ego", "cam_front")
    empty = rig.project(np.zeros((0, 3)), "lidar_top", "cam_front")
    assert [a.shape[0] for a in empty] == [0, 0, 0]


def test_vehicle_box_and_frame_name_clash():
    d = copy.deepcopy(FULL_RIG)
    d["vehicle"] = {"box_min": [1, 0, 0], "box_max": [0, 1, 1]}
    with pytest.raises(CalibrationError, match=r"box_min .* must be below box_max") as e:
        Rig.from_dict(d)
    assert e.value.context["field"] == "vehicle"
    d = copy.deepcopy(FULL_RIG)
    d["sensors"]["ego"] = d["sensors"].pop("radar_front")
    with pytest.raises(CalibrationError, match="may not be named like the rig frame"):
        Rig.from_dict(d)


# -- validation errors: each names the sensor and the field -------------------------------------


def _one_sensor_rig(**overrides):
    sensor = {
        "kind": "camera",
        "model": "pinhole",
        "width": 640,
        "height": 480,
        "K": [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]],
        "distortion": [],
        "extrinsics": {
            "translation": [0.0, 0.0, 0.0],
            "rotation": {"rpy_deg": [-90.0, 0.0, -90.0]},
        },
    }
    for key, value in overrides.items():
        if key in ("translation", "rotation"):
            sensor["extrinsics"][key] = value
        elif value is None:
            del sensor[key]
        else:
            sensor[key] = value
    return Rig.from_dict({"frame": "ego", "sensors": {"s": sensor}}, source="rig.yaml")


BAD = {
    "non-orthonormal matrix": (
        {"rotation": {"matrix": [[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}},
        "extrinsics.rotation.matrix",
        r"rotation matrix is not orthonormal: max \|RᵀR - I\| = 0.2 > 0.001",
    ),
    "reflection": (
        {"rotation": {"matrix": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]}},
        "extrinsics.rotation.matrix",
        "determinant -1 .a reflection",
    ),
    "quaternion far from unit": (
        {"rotation": {"quaternion_wxyz": [1.0, 0.0, 0.5, 0.0]}},
        "extrinsics.rotation.quaternion_wxyz",
        r"quaternion norm is 1.11803, too far from 1 \(tolerance 0.01; check the order",
    ),
    "two rotations": (
        {"rotation": {"rpy_deg": [0, 0, 0], "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}},
        "extrinsics.rotation",
        "expected exactly one of quaternion_wxyz, quaternion_xyzw, rpy_deg, matrix",
    ),
    "unknown rotation format": (
        {"rotation": {"euler": [0, 0, 0]}},
        "extrinsics.rotation.euler",
        "unknown key 'euler'; allowed: quaternion_wxyz",
    ),
    "negative focal length": (
        {"K": [[-500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]]},
        "K",
        r"K has a negative or zero focal length \(fx=-500, fy=500\)",
    ),
    "malformed K": (
        {"K": [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 2.0]]},
        "K",
        r"K must have the form \[\[fx, s, cx\], \[0, fy, cy\], \[0, 0, 1\]\]",
    ),
    "K not 3x3": ({"K": [[500.0, 0.0, 320.0]]}, "K", "expected a 3×3 matrix"),
    "plumb_bob with 4 coefficients": (
        {"model": "plumb_bob", "distortion": [0.1, 0.0, 0.0, 0.0]},
        "distortion",
        r"model 'plumb_bob' takes 5 or 8 distortion coefficients \(k1 k2 p1 p2 k3.*got 4",
    ),
    "fisheye with 5 coefficients": (
        {"model": "fisheye", "distortion": [0.1, 0.0, 0.0, 0.0, 0.0]},
        "distortion",
        r"model 'fisheye' takes 4 distortion coefficients \(k1 k2 k3 k4\), got 5",
    ),
    "pinhole with coefficients": (
        {"distortion": [0.1]},
        "distortion",
        r"model 'pinhole' takes 0 distortion coefficients \(none\), got 1",
    ),
    "unknown model": ({"model": "kannala"}, "model", "unknown camera model 'kannala'"),
    "unknown sensor key": (
        {"time_offset_s": 0.1},
        "time_offset_s",
        "unknown key 'time_offset_s' .did you mean 'time_offset_ns'",
    ),
    "float time offset": (
        {"time_offset_ns": 0.5},
        "time_offset_ns",
        "expected an integer number of nanoseconds",
    ),
    "missing kind": ({"kind": None}, "kind", "missing required key 'kind'"),
    "camera without K": ({"K": None}, "K", "missing required key 'K'"),
    "zero width": ({"width": 0}, "width", "expected a positive integer, got 0"),
    "short translation": (
        {"translation": [1.0, 2.0]},
        "extrinsics.translation",
        "expected a list of 3 numbers",
    ),
    "string in translation": (
        {"translation": [1.0, "x", 2.0]},
        "extrinsics.translation[1]",
        "expected a number, got 'x'",
    ),
    "nan in rpy": (
        {"rotation": {"rpy_deg": [0.0, float("nan"), 0.0]}},
        "extrinsics.rotation.rpy_deg[1]",
        "finite",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_validation_errors_name_sensor_and_field(case):
    overrides, field, message = BAD[case]
    with pytest.raises(CalibrationError, match=message) as e:
        _one_sensor_rig(**overrides)
    assert e.value.context == {"sensor": "s", "field": field, "file": "rig.yaml"}
    assert f"sensor='s', field='{field}'" in str(e.value)


def test_near_unit_quaternion_and_near_orthonormal_matrix_are_normalised():
    ext = (
        _one_sensor_rig(rotation={"quaternion_wxyz": [1.004, 0.0, 0.0, 0.0]}).sensor("s").extrinsics
    )
    np.testing.assert_allclose(ext.rotation, np.eye(3), atol=1e-15)
    r = rpy_to_matrix([0.1, 0.2, 0.3]) + 2e-4  # typed with 4 decimals, say
    rig = _one_sensor_rig(rotation={"matrix": r.tolist()})
    rot = rig.sensor("s").extrinsics.rotation
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(rot, r, atol=1e-3)
    assert rig.to_dict()["sensors"]["s"]["extrinsics"]["rotation"]["matrix"] == r.tolist()


def test_top_level_errors(tmp_path):
    with pytest.raises(
        CalibrationError, match=r"unknown key 'sensor' .did you mean 'sensors'"
    ) as e:
        Rig.from_dict({"frame": "ego", "sensor": {}})
    assert e.value.context["field"] == "sensor"
    with pytest.raises(CalibrationError, match="missing required key 'frame'"):
        Rig.from_dict({"sensors": {}})
    with pytest.raises(CalibrationError, match="missing required mapping 'sensors'"):
        Rig.from_dict({"frame": "ego"})
    with pytest.raises(CalibrationError, match="expected a mapping"):
        Rig.from_dict([1, 2])
    with pytest.raises(CalibrationError, match="unknown key 'size'") as e:
        Rig.from_dict({"frame": "ego", "sensors": {}, "vehicle": {"size": [1, 2, 3]}})
    assert e.value.context["field"] == "vehicle.size"
    with pytest.raises(CalibrationError, match="expected a mapping") as e:
        Rig.from_dict({"frame": "ego", "sensors": {"x": [1]}})
    assert e.value.context["sensor"] == "x"
    bad = tmp_path / "bad.yaml"
    bad.write_text("frame: ego\nsensors: {a: [1,\n")
    with pytest.raises(CalibrationError, match="not valid YAML") as e:
        Rig.load(bad)
    assert e.value.context["file"] == str(bad)
    with pytest.raises(CalibrationError, match="rig file: cannot read"):
        Rig.load(tmp_path / "missing.yaml")


def test_ego_height_declares_where_the_frame_is(tmp_path):
    road = Rig.from_dict({"frame": "ego", "ego_height_m": 0.0, "sensors": {}})
    assert road.road_level is True and road.require_road_level("model 'reference'")
    assert Rig.from_dict(road.to_dict()).to_dict() == {
        "frame": "ego",
        "ego_height_m": 0.0,
        "sensors": {},
    }
    silent = Rig.from_dict({"frame": "ego", "sensors": {}})
    assert silent.road_level is None and not silent.require_road_level("model 'reference'")
    assert "ego_height_m" not in silent.to_dict()  # left out stays out
    lidar = Rig.from_dict({"frame": "ego", "ego_height_m": 1.73, "sensors": {}}, source="r.yaml")
    with pytest.raises(CalibrationError, match=r"ego_height_m: 1\.73") as e:
        lidar.require_road_level("model 'reference'")
    assert "model 'reference' assumes the ego frame on the road" in str(e.value)
    assert e.value.context == {"field": "ego_height_m", "file": "r.yaml"}
    for bad in ("low", float("nan"), True):
        with pytest.raises(CalibrationError, match=r"expected a (finite )?number") as e:
            Rig.from_dict({"frame": "ego", "ego_height_m": bad, "sensors": {}})
        assert e.value.context["field"] == "ego_height_m"
    with pytest.raises(CalibrationError, match="did you mean 'ego_height_m'"):
        Rig.from_dict({"frame": "ego", "ego_height": 0.0, "sensors": {}})


def test_non_utf8_rig_names_the_file_and_offset(tmp_path):
    bad = tmp_path / "rig.yaml"
    bad.write_bytes(b"frame: ego\nsensors: {}\n# \xff\n")
    with pytest.raises(CalibrationError, match="not UTF-8") as e:
        Rig.load(bad)
    assert e.value.context == {"file": str(bad), "offset": 25}


def test_errors_quote_a_huge_value_briefly(tmp_path):
    entry = {"kind": "lidar", "extrinsics": {"translation": list(range(100_000))}}
    entry["extrinsics"]["rotation"] = {"rpy_deg": [0, 0, 0]}
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump({"frame": "ego", "sensors": {"lidar": entry}}))
    with pytest.raises(CalibrationError, match="expected a list of 3 numbers") as e:
        Rig.load(path)
    assert e.value.context["field"] == "extrinsics.translation"
    assert len(str(e.value)) < 300


def test_rig_pickles_for_worker_processes(rig_file):
    import pickle

    rig = Rig.from_dict(FULL_RIG)
    rig.camera("cam_left").undistort_maps()  # a filled cache must not break pickling
    again = pickle.loads(pickle.dumps(rig))
    assert again.to_dict() == FULL_RIG
    pts = np.array([[10.0, 1.0, 1.0], [5.0, -2.0, 0.5]])
    for a, b in zip(
        rig.project(pts, "ego", "cam_fish"), again.project(pts, "ego", "cam_fish"), strict=True
    ):
        np.testing.assert_array_equal(a, b)
