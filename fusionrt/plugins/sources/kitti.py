"""KITTI folders as a replay source: the 3D-object layout and the raw-data ("sync") layout.

**Object layout** (``training/`` or ``testing/``, or that folder itself)::

    velodyne/NNNNNN.bin  velodyne_reduced/NNNNNN.bin  image_2/NNNNNN.png  image_3/NNNNNN.png
    calib/NNNNNN.txt     label_2/NNNNNN.txt

Each frame ``NNNNNN`` is a snapshot; its records get the **synthetic stamp**
``epoch_ns + NNNNNN × 100 ms`` (the Velodyne's 10 Hz, from the frame number, so a frame keeps its
stamp whichever subset of frames is replayed). The lidar record comes from ``velodyne/``, or
from ``velodyne_reduced/`` where a frame has no full scan (``lidar="auto"``, the default;
``"velodyne"``, ``"velodyne_reduced"`` or ``None`` choose). The rig of a frame comes from its
calib file through :func:`~fusionrt.calibration.formats.kitti.load_kitti_calib` (frame ``ego``
on the road below the Velodyne; image size read from the PNG); ground-truth boxes from
``label_2`` through :meth:`KittiSource.labels`, :meth:`KittiSource.frame_ground_truth` and, for
a run, :meth:`KittiSource.ground_truth` (at rest: a label file is read when a frame at its
stamp is scored). ``label_2`` covers only what camera 2 sees and only the labelled types:
detections outside its view count as false positives, so a run's mAP on KITTI is a lower
bound.

**Raw layout** (a drive folder ``YYYY_MM_DD_drive_NNNN_sync``)::

    velodyne_points/data/NNNNNNNNNN.bin + timestamps.txt
    image_00/ … image_03/data/NNNNNNNNNN.png + timestamps.txt
    calib_cam_to_cam.txt calib_velo_to_cam.txt [calib_imu_to_velo.txt]   (here or one folder up)

Stamps are the recorded ones (``timestamps.txt``: ``YYYY-MM-DD HH:MM:SS.fffffffff``, local time
without a zone, read as UTC; the Velodyne's is when it faced forward). The calibration files
are converted to the object layout's matrices (``P_rect_0i`` → ``Pi``, ``R_rect_00`` →
``R0_rect``, ``R``/``T`` → ``Tr_*``) and loaded the same way.

**Records** (both layouts): topic ``velodyne`` (msgtype ``fusionrt/kitti_bin``: N × 4 float32
x, y, z, reflectance) and ``image_0`` … ``image_3`` (msgtype ``kitti/image_png``), rig sensors
``lidar`` and ``cam0`` … ``cam3`` (:data:`SENSOR_OF_TOPIC`). ``data`` is the whole file,
``offset`` 0. Within a frame the lidar comes first, then the cameras in number order.
A file that cannot be read is a :class:`~fusionrt.plugins.sources.BadRecord` (``unreadable``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import numpy.typing as npt

from fusionrt.calibration.formats.kitti import KITTI_IMAGE_SIZE, load_kitti_calib
from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sources import (
    MAX_BAD_RECORDS,
    BadRecord,
    RecordedSource,
    TopicInfo,
    load_rig,
)
from fusionrt.runtime.errors import CalibrationError, ConfigError
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.truth import GroundTruthBoxes, IndexedGroundTruth

__all__ = [
    "FRAME_PERIOD_NS",
    "KITTI_CLASSES",
    "LIDAR_MSGTYPE",
    "PNG_MSGTYPE",
    "SENSOR_OF_TOPIC",
    "KittiGroundTruth",
    "KittiLabel",
    "KittiSource",
]

#: Msgtype of a Velodyne ``.bin`` file (decoded by the lidar sensor).
LIDAR_MSGTYPE = "fusionrt/kitti_bin"
#: Msgtype of a KITTI ``.png`` image file (decoded by the camera sensor).
PNG_MSGTYPE = "kitti/image_png"
#: Period of the synthetic stamps of the object layout: the Velodyne's 10 Hz.
FRAME_PERIOD_NS = 100_000_000
LIDAR_TOPIC = "velodyne"
#: Rig sensor of each topic.
SENSOR_OF_TOPIC = {LIDAR_TOPIC: "lidar", **{f"image_{i}": f"cam{i}" for i in range(4)}}
#: fusionrt class of each KITTI object type (other types: ``None``; ``DontCare`` is dropped).
KITTI_CLASSES: dict[str, str | None] = {
    "Car": "car",
    "Van": None,
    "Truck": None,
    "Pedestrian": "pedestrian",
    "Person_sitting": None,
    "Cyclist": "cyclist",
    "Tram": None,
    "Misc": None,
}
_LIDAR_FOLDERS = ("velodyne", "velodyne_reduced")
_FRAME_NAME = re.compile(r"^\d+$")


@dataclass(frozen=True, slots=True)
class KittiLabel:
    """One ``label_2`` line: type, truncation, occlusion, 2D box and 3D box in camera 0.

    ``location`` is the **bottom centre** of the box in the rectified camera-0 frame (x right,
    y down, z forward); ``dimensions`` are height, width, length (m); ``rotation_y`` is the yaw
    about the camera's y axis. ``score`` is set in result files only.
    """

    type: str
    truncated: float
    occluded: int
    alpha: float
    bbox: tuple[float, float, float, float]
    dimensions: tuple[float, float, float]
    location: tuple[float, float, float]
    rotation_y: float
    score: float | None = None


@dataclass(frozen=True, slots=True)
class KittiGroundTruth:
    """The labelled objects of one frame (``DontCare`` dropped) as boxes in the ego frame.

    ``boxes`` is N×7 float64 in the rig frame ``ego`` (on the road below the Velodyne, with the
    rig of the calib files): geometric centre x, y, z,
    length, width, height, yaw about +z — the convention of
    :class:`~fusionrt.Detections`. ``classes`` are fusionrt class names (``None`` for KITTI
    types outside car / pedestrian / cyclist), ``labels`` the source lines.
    """

    frame: str
    stamp_ns: int
    boxes: npt.NDArray[np.float64]
    classes: tuple[str | None, ...]
    labels: tuple[KittiLabel, ...]


@dataclass(frozen=True, slots=True)
class _Frame:
    name: str
    stamp_ns: int
    files: tuple[tuple[str, Path, str], ...]  # (topic, file, msgtype), lidar first


def read_labels(path: str | os.PathLike[str]) -> list[KittiLabel]:
    """Parse a KITTI ``label_2`` (or result) file; ``ConfigError`` naming the line if malformed."""
    labels = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) not in (15, 16):
                raise ValueError(f"{len(fields)} fields, expected 15 (16 with a score)")
            v = [float(x) for x in fields[1:]]
        except ValueError as exc:
            raise ConfigError(
                f"line {lineno} is not a KITTI label: {exc}", path=str(path), key=f"line {lineno}"
            ) from None
        labels.append(
            KittiLabel(
                fields[0],
                v[0],
                int(v[1]),
                v[2],
                (v[3], v[4], v[5], v[6]),
                (v[7], v[8], v[9]),
                (v[10], v[11], v[12]),
                v[13],
                v[14] if len(v) == 15 else None,
            )
        )
    return labels


def png_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's header, ``None`` if it is not a readable PNG."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def parse_raw_timestamp(text: str) -> int:
    """``YYYY-MM-DD HH:MM:SS.fffffffff`` (KITTI raw) → ns since the epoch, read as UTC."""
    whole, _, fraction = text.strip().partition(".")
    seconds = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    digits = (fraction + "000000000")[:9]
    if not digits.isdigit():
        raise ValueError(f"not a KITTI raw timestamp: {text.strip()!r}")
    return int(seconds.timestamp()) * 1_000_000_000 + int(digits)


def _stems(folder: Path, suffix: str) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        p.name.removesuffix(suffix): p
        for p in folder.iterdir()
        if p.name.endswith(suffix) and _FRAME_NAME.match(p.name.removesuffix(suffix))
    }


class KittiSource(RecordedSource):
    """KITTI object or raw folder; see the module docstring.

    ``path``: a dataset folder holding ``training/``, an object split folder (``velodyne/``,
    ``image_2/``…), or a raw drive folder (``velodyne_points/``, ``image_02/``…). Options:
    ``split`` (``training``, the default, or ``testing``; object layout), ``frames`` (frame
    numbers or names to keep, or the path of an ``ImageSets`` list), ``lidar`` (``auto``,
    ``velodyne``, ``velodyne_reduced`` or ``None``), ``epoch_ns`` (stamp of frame 0 in the
    object layout), ``rig`` (overrides the calib files), and those of
    :class:`~fusionrt.plugins.sources.RecordedSource`.
    """

    name = "kitti"
    opens = (
        "a KITTI folder: the object layout (a folder holding training/, or a split folder "
        "with velodyne/, image_2/) or a raw drive (velodyne_points/, image_0x/)"
    )

    @classmethod
    def can_open(cls, path: Path) -> bool:
        """Whether ``path`` is a KITTI object or raw folder (by its sub-folders)."""
        path = Path(path)
        if not path.is_dir():
            return False
        if (path / "velodyne_points").is_dir() or any(
            (path / f"image_0{i}").is_dir() for i in range(4)
        ):
            return True
        return any(
            (root / folder).is_dir()
            for root in (path, path / "training", path / "testing")
            for folder in (*_LIDAR_FOLDERS, "image_2")
        )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        split: str = "training",
        frames: Iterable[int | str] | str | os.PathLike[str] | None = None,
        lidar: str | None = "auto",
        epoch_ns: int = 0,
        rig: Rig | str | os.PathLike[str] | None = None,
        topics: Collection[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        on_bad_record: Callable[[BadRecord], None] | None = None,
        max_bad_records: int = MAX_BAD_RECORDS,
    ) -> None:
        super().__init__(
            topics=topics,
            start_ns=start_ns,
            stop_ns=stop_ns,
            on_bad_record=on_bad_record,
            max_bad_records=max_bad_records,
        )
        root = Path(path)
        if lidar not in ("auto", *_LIDAR_FOLDERS, None):
            raise ConfigError(
                f"lidar must be 'auto', 'velodyne', 'velodyne_reduced' or None, got {lidar!r}",
                key="lidar",
            )
        self._rig_override = load_rig(rig)
        if (root / "velodyne_points").is_dir() or any(root.glob("image_0[0-3]")):
            self.layout = "raw"
            self.root = root
            self._frames = self._raw_frames(lidar)
        else:
            self.layout = "object"
            self.root = root / split if (root / split).is_dir() else root
            if not any((self.root / d).is_dir() for d in (*_LIDAR_FOLDERS, "image_2")):
                raise ConfigError(
                    "not a KITTI folder: no velodyne/, image_2/ (object layout) or "
                    "velodyne_points/, image_0x/ (raw layout)",
                    path=str(root),
                )
            self._frames = self._object_frames(lidar, epoch_ns)
        keep = self._selection(frames)
        if keep is not None:
            self._frames = [f for f in self._frames if int(f.name) in keep]
        self._by_number: dict[int, _Frame] = {}
        for f in self._frames:
            self._by_number.setdefault(int(f.name), f)
        self._rigs: dict[str, Rig] = {}
        self._check_topic_filter(self.topics())

    # layout ----------------------------------------------------------------------------------

    def _object_frames(self, lidar: str | None, epoch_ns: int) -> list[_Frame]:
        lidar_files = {d: _stems(self.root / d, ".bin") for d in _LIDAR_FOLDERS}
        cameras = {i: _stems(self.root / f"image_{i}", ".png") for i in range(4)}
        names = set().union(*lidar_files.values(), *cameras.values())
        folders = _LIDAR_FOLDERS if lidar == "auto" else () if lidar is None else (lidar,)
        frames = []
        for name in sorted(names, key=int):
            files: list[tuple[str, Path, str]] = []
            for folder in folders:
                if name in lidar_files[folder]:
                    files.append((LIDAR_TOPIC, lidar_files[folder][name], LIDAR_MSGTYPE))
                    break
            files += [
                (f"image_{i}", cameras[i][name], PNG_MSGTYPE)
                for i in range(4)
                if name in cameras[i]
            ]
            frames.append(_Frame(name, epoch_ns + int(name) * FRAME_PERIOD_NS, tuple(files)))
        return frames

    def _raw_frames(self, lidar: str | None) -> list[_Frame]:
        sensors: list[tuple[str, Path, str, str]] = []  # topic, data folder, suffix, msgtype
        if lidar is not None:
            sensors.append((LIDAR_TOPIC, self.root / "velodyne_points", ".bin", LIDAR_MSGTYPE))
        sensors += [
            (f"image_{i}", self.root / f"image_0{i}", ".png", PNG_MSGTYPE) for i in range(4)
        ]
        frames = []
        for topic, folder, suffix, msgtype in sensors:
            files = _stems(folder / "data", suffix)
            if not files:
                continue
            stamps = self._raw_stamps(folder / "timestamps.txt", topic)
            for name, file in files.items():
                index = int(name)
                if index >= len(stamps):
                    self.bad.report(
                        BadRecord(
                            "unreadable",
                            f"no line {index + 1} in timestamps.txt for this file",
                            path=str(file),
                            topic=topic,
                        )
                    )
                    continue
                frames.append(_Frame(name, stamps[index], ((topic, file, msgtype),)))
        frames.sort(key=lambda f: (f.stamp_ns, f.files[0][0] != LIDAR_TOPIC, f.files[0][0]))
        return frames

    def _raw_stamps(self, path: Path, topic: str) -> list[int]:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            return [parse_raw_timestamp(line) for line in lines if line.strip()]
        except (OSError, ValueError) as exc:
            self.bad.report(
                BadRecord(
                    "unreadable", f"timestamps unreadable: {exc}", path=str(path), topic=topic
                )
            )
            return []

    @staticmethod
    def _selection(frames: Iterable[int | str] | str | os.PathLike[str] | None) -> set[int] | None:
        """Frame numbers to keep (``None``: all) from numbers, names or an ImageSets file."""
        if frames is None:
            return None
        if isinstance(frames, str | os.PathLike):
            try:
                frames = Path(frames).read_text(encoding="utf-8").split()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the frame list: {exc.strerror or exc}", path=str(frames)
                ) from None
        try:
            return {int(frame) for frame in frames}
        except ValueError as exc:
            raise ConfigError(f"frames must be frame numbers: {exc}", key="frames") from None

    # description -----------------------------------------------------------------------------

    @property
    def frames(self) -> list[str]:
        """Frame names (``000008``) in replay order."""
        return list(dict.fromkeys(f.name for f in self._frames))

    def stamp_of(self, frame: int | str) -> int:
        """The stamp of a frame's records."""
        return self._frame(frame).stamp_ns

    def _frame(self, frame: int | str) -> _Frame:
        """A frame by number or name (raw layout: its first record's)."""
        try:
            return self._by_number[int(frame)]
        except (KeyError, ValueError):
            raise ConfigError(
                f"no KITTI frame {frame!r} in this folder", path=str(self.root)
            ) from None

    def topics(self) -> dict[str, TopicInfo]:
        """The topics present, with their record counts."""
        counts: dict[str, int] = {}
        msgtypes: dict[str, str] = {}
        for frame in self._frames:
            for topic, _, msgtype in frame.files:
                counts[topic] = counts.get(topic, 0) + 1
                msgtypes[topic] = msgtype
        return {t: TopicInfo(t, msgtypes[t], counts[t]) for t in sorted(counts)}

    @property
    def first_stamp_ns(self) -> int | None:
        return self._frames[0].stamp_ns if self._frames else None

    @property
    def last_stamp_ns(self) -> int | None:
        return self._frames[-1].stamp_ns if self._frames else None

    # calibration and labels ------------------------------------------------------------------

    def rig(self, frame: int | str | None = None) -> Rig | None:
        """The rig of ``frame`` (default: the first frame with a calibration), ``None`` if none.

        Object layout: from ``calib/<frame>.txt``; raw layout: from the drive's calib files.
        """
        if self._rig_override is not None:
            return self._rig_override
        if self.layout == "raw":
            if "raw" not in self._rigs:
                self._rigs["raw"] = _raw_rig(self.root, self._image_size(self._frames))
            return self._rigs["raw"]
        if frame is None:
            frame = next(
                (f.name for f in self._frames if (self.root / "calib" / f"{f.name}.txt").is_file()),
                None,
            )
            if frame is None:
                return None
        found = self._frame(frame)
        calib = self.root / "calib" / f"{found.name}.txt"
        if not calib.is_file():
            return None
        if found.name not in self._rigs:
            self._rigs[found.name] = load_kitti_calib(calib, self._image_size([found]))
        return self._rigs[found.name]

    @staticmethod
    def _image_size(frames: Iterable[_Frame]) -> tuple[int, int]:
        """The size of the first ``image_2`` of ``frames`` (KITTI's usual size without one)."""
        for frame in frames:
            for topic, file, _ in frame.files:
                if topic == "image_2":
                    return png_size(file) or KITTI_IMAGE_SIZE
        return KITTI_IMAGE_SIZE

    def labels(self, frame: int | str) -> list[KittiLabel] | None:
        """The ``label_2`` lines of a frame (``DontCare`` included); ``None`` if unlabelled."""
        path = self.root / "label_2" / f"{self._frame(frame).name}.txt"
        return read_labels(path) if path.is_file() else None

    def frame_ground_truth(self, frame: int | str) -> KittiGroundTruth | None:
        """A frame's labelled boxes in the rig's ego frame; ``None`` if it has no labels."""
        found = self._frame(frame)
        labels = self.labels(found.name)
        rig = self.rig(found.name)
        if labels is None or rig is None:
            return None
        kept = tuple(label for label in labels if label.type != "DontCare")
        to_ego = rig.transform("cam0", rig.frame)
        boxes = np.zeros((len(kept), 7), np.float64)
        for i, label in enumerate(kept):
            h, w, length = label.dimensions
            x, y, z = label.location
            centre = to_ego.apply(np.array([[x, y - h / 2.0, z]]))[0]  # y points down
            heading = to_ego.rotation @ np.array(
                [math.cos(label.rotation_y), 0.0, -math.sin(label.rotation_y)]
            )
            boxes[i] = (*centre, length, w, h, math.atan2(heading[1], heading[0]))
        classes = tuple(KITTI_CLASSES.get(label.type) for label in kept)
        return KittiGroundTruth(found.name, found.stamp_ns, boxes, classes, kept)

    def ground_truth(
        self, class_names: Sequence[str], topic: str | None = None
    ) -> IndexedGroundTruth | None:
        """The ``label_2`` boxes of the labelled frames of the object layout, for the run (at
        rest: a frame's labels are read when it is scored); ``None`` without any. Types mapped
        by :data:`KITTI_CLASSES` to ``class_names``; the others (``Van``, ``Truck``...) are left
        out. Visibility 1: KITTI's occlusion flags are words (0-3), not fractions."""
        if self.layout != "object":
            return None
        by_stamp = {
            f.stamp_ns: f.name
            for f in self._frames
            if (self.root / "label_2" / f"{f.name}.txt").is_file()
        }
        if not by_stamp:
            return None
        names = tuple(class_names)

        def load(stamp_ns: int) -> GroundTruthBoxes:
            truth = self.frame_ground_truth(by_stamp[stamp_ns])
            if truth is None:  # the labelled frame has no calib file
                raise CalibrationError(
                    "no calib file for a labelled frame",
                    file=str(self.root / "calib" / f"{by_stamp[stamp_ns]}.txt"),
                )
            kept = [i for i, c in enumerate(truth.classes) if c is not None and c in names]
            return GroundTruthBoxes.from_lists(
                stamp_ns,
                truth.boxes[kept],
                [names.index(str(truth.classes[i])) for i in kept],
                [1.0] * len(kept),
            )

        return IndexedGroundTruth(by_stamp, load)

    # records ---------------------------------------------------------------------------------

    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        for frame in self._frames:
            if not self.in_window(frame.stamp_ns, start_ns, stop_ns):
                continue
            for topic, file, msgtype in frame.files:
                if self.wants(topic):
                    record = self.file_record(topic, frame.stamp_ns, file, msgtype)
                    if record is not None:
                        yield record


def _raw_rig(drive: Path, image_size: tuple[int, int]) -> Rig:
    """The rig of a raw drive from ``calib_*.txt`` (in the drive folder or its parent)."""
    folder = next(
        (d for d in (drive, drive.parent) if (d / "calib_cam_to_cam.txt").is_file()), None
    )
    if folder is None:
        raise CalibrationError(
            "KITTI raw drive without calib_cam_to_cam.txt (looked in the drive and its parent)",
            file=str(drive),
        )

    def values(name: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        path = folder / name
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, rest = line.partition(":")
            try:
                out[key.strip()] = [float(v) for v in rest.split()]
            except ValueError:
                continue  # calib_time: 09-Jan-2012 13:57:47
        return out

    cam = values("calib_cam_to_cam.txt")
    lines = [f"P{i}: " + " ".join(map(repr, cam[f"P_rect_0{i}"])) for i in range(4)]
    lines.append("R0_rect: " + " ".join(map(repr, cam["R_rect_00"])))
    for name, key in (
        ("calib_velo_to_cam.txt", "Tr_velo_to_cam"),
        ("calib_imu_to_velo.txt", "Tr_imu_to_velo"),
    ):
        if (folder / name).is_file():
            rt = values(name)
            matrix = np.hstack([np.reshape(rt["R"], (3, 3)), np.reshape(rt["T"], (3, 1))])
            lines.append(f"{key}: " + " ".join(map(repr, matrix.ravel().tolist())))
    size = cam.get("S_rect_02")
    if size is not None:
        image_size = (round(size[0]), round(size[1]))
    with TemporaryDirectory(prefix="fusionrt-kitti-") as tmp:
        converted = Path(tmp) / "calib.txt"
        converted.write_text("\n".join(lines) + "\n", encoding="utf-8")
        rig = load_kitti_calib(converted, image_size)
    rig.source = str(folder)
    return rig
