"""``fusionrt calib show`` / ``fusionrt calib check`` and the overlay drawing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fusionrt.calibration import cli as calib_cli
from fusionrt.calibration.overlay import depth_colours, draw_depth_points
from fusionrt.calibration.rig import Rig

from .conftest import KITTI, NUSCENES, REAL

RIGS = REAL.parents[2] / "examples" / "rigs"
KITTI_RIG = RIGS / "kitti_2011_09_26.yaml"
NUSCENES_RIG = RIGS / "nuscenes_n015.yaml"


@pytest.fixture
def run():
    """Run ``fusionrt calib ...`` through the fusionrt command."""
    from fusionrt.runtime import cli as runtime_cli

    return runtime_cli.main


def test_show_prints_the_rig_table(run, capsys):
    assert run(["calib", "show", str(NUSCENES_RIG)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "frame 'ego', 7 sensors" in lines[0]
    header = lines[1].split()
    assert header[:2] == ["sensor", "kind"] and "position" in header and "resolution" in header
    front = next(line for line in lines if line.startswith("cam_front "))
    assert front.split()[:5] == ["cam_front", "camera", "1.701", "0.016", "1.511"]
    assert "-90.32" in front and "1600x900 pinhole" in front
    lidar = next(line for line in lines if line.startswith("lidar_top"))
    assert lidar.split()[-1] == "-" and "-89.88" in lidar
    assert "vehicle box: min [-1.0, -1.0, 0.0] max [3.6, 1.0, 2.0]" in out


def test_show_reports_bad_rig(run, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("frame: ego\nsensors:\n  cam:\n    kind: camera\n    width: 10\n")
    assert run(["calib", "show", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "CalibrationError" in err and "sensor='cam'" in err and "field='height'" in err


def test_show_refuses_an_alias_bomb_in_one_line(fusionrt_limited, alias_bomb, tmp_path):
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        "frame: ego\nsensors:\n  lidar:\n    kind: lidar\n    extrinsics:\n"
        f"      translation: {alias_bomb()}\n      rotation: {{rpy_deg: [0, 0, 0]}}\n"
    )
    result = fusionrt_limited("calib", "show", str(rig))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "fusionrt: error: CalibrationError: rig file: refused YAML: its aliases expand to more "
        f"than 200000 nodes [file={str(rig)!r}]"
    ]


def test_check_writes_kitti_overlay(run, tmp_path, capsys):
    image = KITTI / "training" / "image_2" / "000008.png"
    out = tmp_path / "sub" / "overlay.png"
    argv = [
        "calib", "check", "--rig", str(KITTI_RIG),
        "--lidar", str(KITTI / "training" / "velodyne_reduced" / "000008.bin"),
        "--image", str(image), "--camera", "cam2", "--out", str(out), "--point-size", "1",
    ]  # fmt: skip
    assert run(argv) == 0
    msg = capsys.readouterr().out
    assert "lidar -> cam2: 17238 of 17238 points in the image (100.0 %)" in msg
    src, got = cv2.imread(str(image)), cv2.imread(str(out))
    assert got.shape == src.shape
    changed = np.any(got != src, axis=2)
    assert 0.2 < changed.mean() < 0.9  # dots cover part of the image, not all of it
    # the projected points are where the overlay changed
    rig = Rig.load(KITTI_RIG)
    pts = calib_cli.lidar_xyz(KITTI / "training" / "velodyne_reduced" / "000008.bin")
    uv, _, valid = rig.project(pts, "lidar", "cam2")
    ij = np.minimum(np.round(uv[valid]).astype(int), [src.shape[1] - 1, src.shape[0] - 1])
    assert changed[ij[:, 1], ij[:, 0]].mean() > 0.95


def test_check_writes_nuscenes_overlay(run, tmp_path, capsys):
    lidar = next((NUSCENES / "samples" / "LIDAR_TOP").glob("*.pcd.bin"))
    image = next((NUSCENES / "samples" / "CAM_FRONT").glob("*.jpg"))
    out = tmp_path / "front.png"
    argv = [
        "calib",
        "check",
        "--rig",
        str(NUSCENES_RIG),
        "--lidar",
        str(lidar),
        "--image",
        str(image),
    ]
    assert run([*argv, "--camera", "cam_front", "--out", str(out)]) == 0
    msg = capsys.readouterr().out
    # README: 3067 points with the ego-motion chain; the static rig gives about as many (≥ 4.5 m:
    # the nearer ones are the ego vehicle, dropped by --min-depth 1)
    n = int(msg.split(": ")[1].split()[0])
    assert 2800 < n < 3100, msg
    assert cv2.imread(str(out)).shape == (900, 1600, 3)


def test_check_errors(run, tmp_path, capsys):
    lidar = next((NUSCENES / "samples" / "LIDAR_TOP").glob("*.pcd.bin"))
    kitti_image = KITTI / "training" / "image_2" / "000008.png"
    base = [
        "calib",
        "check",
        "--rig",
        str(NUSCENES_RIG),
        "--lidar",
        str(lidar),
        "--out",
        str(tmp_path / "o.png"),
    ]
    assert run([*base, "--image", str(kitti_image), "--camera", "cam_front"]) == 1
    assert (
        "image is 1242×375 but camera 'cam_front' is calibrated for 1600×900"
        in capsys.readouterr().err
    )
    assert run([*base, "--image", str(kitti_image), "--camera", "CAM_FRONT"]) == 1
    assert "did you mean 'cam_front'" in capsys.readouterr().err
    assert run([*base, "--image", str(kitti_image), "--camera", "lidar_top"]) == 1
    assert "has no camera intrinsics" in capsys.readouterr().err
    assert run([*base, "--image", str(tmp_path / "none.png"), "--camera", "cam_front"]) == 1
    assert "cannot read the image" in capsys.readouterr().err
    # two lidars: --lidar-sensor is needed
    d = Rig.load(NUSCENES_RIG).to_dict()
    d["sensors"]["lidar_2"] = d["sensors"]["lidar_top"]
    Rig.from_dict(d).save(tmp_path / "two.yaml")
    image = next((NUSCENES / "samples" / "CAM_FRONT").glob("*.jpg"))
    two = ["calib", "check", "--rig", str(tmp_path / "two.yaml"), "--lidar", str(lidar)]
    two += ["--image", str(image), "--camera", "cam_front", "--out", str(tmp_path / "o.png")]
    assert run(two) == 1
    assert (
        "the rig has 2 lidars (lidar_top, lidar_2); name one with --lidar-sensor"
        in capsys.readouterr().err
    )
    assert run([*two, "--lidar-sensor", "lidar_2"]) == 0


def test_lidar_files_are_read_by_the_lidar_plugin(tmp_path):
    kitti = calib_cli.lidar_xyz(KITTI / "training" / "velodyne" / "000001.bin")
    assert kitti.shape == (120268, 3) and kitti.dtype == np.float64
    nus = calib_cli.lidar_xyz(next((NUSCENES / "samples" / "LIDAR_TOP").glob("*.pcd.bin")))
    assert nus.shape == (34688, 3)
    from fusionrt import DecodeError

    (tmp_path / "odd.bin").write_bytes(b"\0" * 20)
    with pytest.raises(DecodeError) as info:
        calib_cli.lidar_xyz(tmp_path / "odd.bin")
    assert info.value.context == {"path": str(tmp_path / "odd.bin"), "offset": 16}
    with pytest.raises(DecodeError, match="unknown point file suffix"):
        calib_cli.lidar_xyz(tmp_path / "p.txt")


def test_overlay_colours_and_drawing():
    c = depth_colours([1.0, 50.0, 500.0], 1.0, 50.0)
    near, far = c[0].astype(int), c[1].astype(int)
    assert near[2] > near[0]  # BGR: near is red
    assert far[0] > far[2]  # far is blue
    np.testing.assert_array_equal(c[1], c[2])  # clipped beyond max
    img = np.zeros((20, 30, 3), np.uint8)
    out = draw_depth_points(
        img, [[5.0, 5.0], [5.0, 5.0], [20.0, 10.0]], [40.0, 2.0, 10.0], max_depth=40, radius=1
    )
    assert img.max() == 0  # input untouched
    np.testing.assert_array_equal(out[5, 5], depth_colours([2.0], 0.0, 40.0)[0])  # near on top
    assert out[10, 20].any()
    gray = draw_depth_points(np.zeros((4, 4), np.uint8), np.zeros((0, 2)), np.zeros(0))
    assert gray.shape == (4, 4, 3)
