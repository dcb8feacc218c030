"""``fusionrt calib``: look at a rig (``show``) and check it visually on real data (``check``).

``fusionrt calib check --rig RIG --lidar POINTS --image IMAGE --camera NAME --out overlay.png``
projects a lidar scan into a camera image through the rig and writes the points, coloured by
depth, over the image: if the calibration is right they land on the cars and the road edges.

``fusionrt calib show RIG`` prints the rig as a table (sensor, kind, position, rpy, resolution).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fusionrt.calibration.overlay import draw_colour_bar, draw_depth_points
from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sensors.lidar import read_points
from fusionrt.runtime.errors import CalibrationError, DecodeError
from fusionrt.runtime.text_table import format_table

__all__ = ["add_commands", "lidar_xyz"]


def lidar_xyz(path: str | Path) -> np.ndarray:
    """x, y, z (N×3 float64) of a lidar file the lidar plugin reads (KITTI ``.bin``, nuScenes
    ``.pcd.bin``, ``.pcd``); its errors name the file and byte offset."""
    points = read_points(path)
    return np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calib`` command family to the ``fusionrt`` command."""
    calib = subparsers.add_parser(
        "calib", help="show a rig, check a calibration on real data", description=__doc__
    )
    actions = calib.add_subparsers(dest="calib_command", metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="project lidar points into a camera image and write the overlay",
        description="Project a lidar scan into a camera image through the rig; the points, "
        "coloured by depth (red near, blue far), must land on the cars and road edges.",
    )
    check.add_argument("--rig", required=True, type=Path, help="rig YAML file")
    check.add_argument("--lidar", required=True, type=Path, help="points: .bin, .pcd.bin or .npy")
    check.add_argument("--image", required=True, type=Path, help="the camera image")
    check.add_argument("--camera", required=True, help="camera sensor name in the rig")
    check.add_argument("--out", required=True, type=Path, help="overlay image to write (.png)")
    check.add_argument(
        "--lidar-sensor",
        help="lidar sensor name in the rig (default: the rig's only sensor of kind lidar)",
    )
    check.add_argument("--min-depth", type=float, default=1.0, help="drop nearer points [m]")
    check.add_argument(
        "--max-depth", type=float, help="depth of the bluest colour [m] (default: 98th percentile)"
    )
    check.add_argument("--point-size", type=int, default=2, help="dot radius [px]")
    check.set_defaults(func=_check)

    show = actions.add_parser("show", help="print the rig as a table")
    show.add_argument("rig", type=Path, help="rig YAML file")
    show.set_defaults(func=_show)
    calib.set_defaults(func=lambda args: _usage(calib))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _lidar_name(rig: Rig, requested: str | None) -> str:
    if requested:
        rig.require([requested], where="--lidar-sensor")
        return requested
    lidars = rig.names("lidar")
    if len(lidars) != 1:
        raise CalibrationError(
            f"the rig has {len(lidars)} lidars ({', '.join(lidars) or 'none'}); "
            "name one with --lidar-sensor",
            field="sensors",
            file=rig.source,
        )
    return lidars[0]


def _check(args: argparse.Namespace) -> int:
    rig = Rig.load(args.rig)
    lidar = _lidar_name(rig, args.lidar_sensor)
    camera = rig.camera(args.camera)
    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image is None:
        raise DecodeError("cannot read the image", file=str(args.image))
    h, w = image.shape[:2]
    if (w, h) != camera.size:
        raise CalibrationError(
            f"image is {w}×{h} but camera {args.camera!r} is calibrated for "
            f"{camera.width}×{camera.height}",
            sensor=args.camera,
            field="width",
            file=str(args.image),
        )
    points = lidar_xyz(args.lidar)
    uv, depth, valid = rig.project(points, lidar, args.camera)
    keep = valid & (depth >= args.min_depth)
    overlay = draw_depth_points(
        image,
        uv[keep],
        depth[keep],
        min_depth=args.min_depth,
        max_depth=args.max_depth,
        radius=args.point_size,
    )
    top = (
        args.max_depth
        if args.max_depth
        else float(np.percentile(depth[keep], 98))
        if keep.any()
        else 1.0
    )
    draw_colour_bar(overlay, args.min_depth, top)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 6] if args.out.suffix.lower() == ".png" else []
    if not cv2.imwrite(str(args.out), overlay, params):
        raise CalibrationError("cannot write the overlay image", file=str(args.out))
    shown = f"{depth[keep].min():.1f}-{depth[keep].max():.1f} m" if keep.any() else "-"
    print(
        f"{lidar} -> {args.camera}: {int(keep.sum())} of {len(points)} points in the image "
        f"({100.0 * keep.mean() if len(points) else 0.0:.1f} %), depth {shown}; wrote {args.out}"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    rig = Rig.load(args.rig)
    rows = []
    for name, s in rig.sensors.items():
        x, y, z = np.round(s.position, 3) + 0.0  # + 0.0: no "-0.000"
        roll, pitch, yaw = np.round(s.rpy_deg, 2) + 0.0
        cam = s.camera
        resolution = f"{cam.width}x{cam.height} {cam.model}" if cam else "-"
        rows.append(
            [
                name,
                s.kind,
                f"{x:7.3f} {y:7.3f} {z:7.3f}",
                f"{roll:8.2f} {pitch:7.2f} {yaw:8.2f}",
                resolution,
            ]
        )
    print(f"rig {args.rig}: frame {rig.frame!r}, {len(rig.sensors)} sensors")
    header = ["sensor", "kind", "position x y z [m]", "roll pitch yaw [deg]", "resolution"]
    print(format_table(header, rows))
    if rig.vehicle_box is not None:
        lo, hi = rig.vehicle_box
        print(f"vehicle box: min {np.round(lo, 3).tolist()} max {np.round(hi, 3).tolist()} [m]")
    return 0
