"""nuScenes-layout folders as a replay source, with their real timestamps, rig and ego poses.

Three ways a folder can describe its drive, tried in this order:

1. **devkit tables** (``v1.0-mini/``, ``v1.0-trainval/``…: ``scene``, ``sample``,
   ``sample_data``, ``calibrated_sensor``, ``sensor``, ``ego_pose`` JSON): the ``sample_data``
   of one scene (``scene=`` name or token; required when there are several), key frames and,
   with ``sweeps=True`` (default), the sweeps between them — each at its own timestamp, so the
   streams have their real rates (cameras 12 Hz, lidar 20 Hz, radars 13 Hz);
2. a **scene file** ``scene-*.json`` beside ``samples/`` (the layout of the sample in
   ``tests/data/real/nuscenes``: one key frame's ``sensors`` with calibration and ego poses);
   the files of that scene's log found under ``samples/`` and ``sweeps/`` are replayed;
3. **files only**: ``samples/<CHANNEL>/`` and ``sweeps/<CHANNEL>/`` files named
   ``<log>__<CHANNEL>__<timestamp µs>.<ext>`` (one log, or ``log=``); no rig, no poses.

**Records**: topic = the channel (``CAM_FRONT``, ``LIDAR_TOP``, ``RADAR_FRONT``…), stamp = the
nuScenes timestamp (µs since the epoch) × 1000, ``data`` = the whole file, ``offset`` 0;
msgtype ``nuscenes/camera_jpg`` (camera sensor), ``fusionrt/nuscenes_pcd_bin`` (lidar) or
``fusionrt/pcd`` (radar); files of other channels are left out. Equal stamps replay in
channel-name order.

**Rig** (:meth:`NuScenesSource.rig`): the static rig of
:func:`~fusionrt.calibration.formats.nuscenes.nuscenes_rig` — sensor names are the channels in
lower case (``cam_front``, ``lidar_top``, :func:`sensor_of_topic`), frame ``ego`` = rear axle.
Sensors are related through the ego frame at one instant; the motion between two sensors'
timestamps is for the runtime to compensate with :meth:`NuScenesSource.ego_poses` (ego → global,
one per sample_data; in a scene file the cameras' poses are its ``ego_pose_derived``).

**Ground truth** (:meth:`NuScenesSource.ground_truth`, at rest): the 3D boxes of each key frame
in the ego frame at the key frame's LIDAR_TOP timestamp, from ``sample_annotation`` with devkit
tables and from the ``instances`` in a scene file (:mod:`.nuscenes_truth`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusionrt.calibration.formats.nuscenes import nuscenes_rig, pose_from_record
from fusionrt.calibration.rig import Rig
from fusionrt.plugins.sources import (
    MAX_BAD_RECORDS,
    BadRecord,
    EgoPoses,
    RecordedSource,
    TopicInfo,
    load_rig,
)
from fusionrt.plugins.sources.nuscenes_truth import (
    REFERENCE_CHANNEL,
    Box,
    annotations_in_ego,
    boxes_of,
    instances_in_ego,
)
from fusionrt.runtime.errors import CalibrationError, ConfigError
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.truth import GroundTruthBoxes, IndexedGroundTruth

__all__ = [
    "CAMERA_MSGTYPE",
    "LIDAR_MSGTYPE",
    "RADAR_MSGTYPE",
    "NuScenesSource",
    "sensor_of_topic",
]

#: Msgtype of a nuScenes camera JPEG (decoded by the camera sensor).
CAMERA_MSGTYPE = "nuscenes/camera_jpg"
#: Msgtype of a nuScenes lidar ``.pcd.bin`` (N × 5 float32; decoded by the lidar sensor).
LIDAR_MSGTYPE = "fusionrt/nuscenes_pcd_bin"
#: Msgtype of a nuScenes radar ``.pcd`` (PCD v0.7 binary; decoded by the radar sensor).
RADAR_MSGTYPE = "fusionrt/pcd"
_MSGTYPES = (("CAM", CAMERA_MSGTYPE), ("LIDAR", LIDAR_MSGTYPE), ("RADAR", RADAR_MSGTYPE))
_FILE_NAME = re.compile(r"^(?P<log>.+?)__(?P<channel>[A-Z]+(?:_[A-Z]+)*)__(?P<us>\d+)\.")


def sensor_of_topic(topic: str) -> str:
    """The rig sensor of a channel topic: its lower-case name (``CAM_FRONT`` → ``cam_front``)."""
    return topic.lower()


def _file(stamp_ns: int, channel: str, path: Path) -> _File | None:
    """A file of a CAM, LIDAR or RADAR channel (``None`` for any other channel)."""
    msgtype = next((m for prefix, m in _MSGTYPES if channel.startswith(prefix)), None)
    return None if msgtype is None else _File(stamp_ns, channel, path, msgtype)


@dataclass(frozen=True, slots=True)
class _File:
    stamp_ns: int
    channel: str
    path: Path
    msgtype: str


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read nuScenes JSON: {exc}", path=str(path)) from None


class NuScenesSource(RecordedSource):
    """A nuScenes-layout folder; see the module docstring.

    Options: ``scene`` (name or token, devkit tables), ``version`` (table folder, default: the
    only ``v1.0-*``), ``sweeps`` (include non-key frames, default True), ``log`` (files-only
    layout), ``rig`` (overrides the calibration), and those of
    :class:`~fusionrt.plugins.sources.RecordedSource`.
    """

    name = "nuscenes"
    opens = (
        "a nuScenes folder: devkit tables (v1.0-*/), a scene-*.json beside samples/, or "
        "samples/<CHANNEL>/ files"
    )

    @classmethod
    def can_open(cls, path: Path) -> bool:
        """Whether ``path`` is a nuScenes folder (tables, a scene file or channel folders)."""
        path = Path(path)
        if not path.is_dir():
            return False
        if any(path.glob("v1.0-*/sample_data.json")) or any(path.glob("scene-*.json")):
            return True
        samples = path / "samples"
        return samples.is_dir() and any(
            d.is_dir() and d.name.startswith(("CAM_", "LIDAR_", "RADAR_"))
            for d in samples.iterdir()
        )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scene: str | None = None,
        version: str | None = None,
        sweeps: bool = True,
        log: str | None = None,
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
        self.root = Path(path)
        if not self.root.is_dir():
            raise ConfigError("no nuScenes folder at this path", path=str(self.root))
        self._rig_override = load_rig(rig)
        self._calibration: dict[str, dict[str, Any]] = {}
        self._poses: list[tuple[int, Mapping[str, Any], str]] = []  # (stamp, record, channel)
        self.scene: str | None = None
        self.log: str | None = log
        self._tables: Path | None = None
        # the annotated key frames: sample token -> (LIDAR_TOP timestamp ns, its ego_pose)
        self._key_frames: dict[str, tuple[int, Mapping[str, Any]]] = {}
        self._scene_file_content: Mapping[str, Any] | None = None
        tables = self._tables_folder(version)
        if tables is not None:
            self.layout = "tables"
            self._files = self._from_tables(tables, scene, sweeps)
        else:
            scene_file = self._scene_file(scene)
            if scene_file is not None:
                self.layout = "scene_file"
                self._from_scene_file(scene_file)
            else:
                self.layout = "files"
            self._files = self._from_folders(sweeps)
        self._rig: Rig | None = None
        self._check_topic_filter(self.topics())

    # layouts ---------------------------------------------------------------------------------

    def _tables_folder(self, version: str | None) -> Path | None:
        if version is not None:
            folder = self.root / version
            if not (folder / "sample_data.json").is_file():
                raise ConfigError(f"no nuScenes tables in {version}/", path=str(folder))
            return folder
        found = sorted(p.parent for p in self.root.glob("v1.0-*/sample_data.json"))
        if len(found) > 1:
            raise ConfigError(
                f"several nuScenes versions ({', '.join(p.name for p in found)}); choose one "
                "with version=",
                path=str(self.root),
                key="version",
            )
        return found[0] if found else None

    def _from_tables(self, tables: Path, scene: str | None, sweeps: bool) -> list[_File]:
        scenes = _load_json(tables / "scene.json")
        if scene is None and len(scenes) != 1:
            raise ConfigError(
                f"the dataset has {len(scenes)} scenes "
                f"({', '.join(s['name'] for s in scenes[:12])}{'…' if len(scenes) > 12 else ''}); "
                "choose one with scene=",
                path=str(tables),
                key="scene",
            )
        chosen = next(
            (s for s in scenes if scene is None or scene in (s["name"], s["token"])), None
        )
        if chosen is None:
            raise ConfigError(f"no scene {scene!r} in the dataset", path=str(tables), key="scene")
        self.scene = chosen["name"]
        samples = {
            s["token"]
            for s in _load_json(tables / "sample.json")
            if s["scene_token"] == chosen["token"]
        }
        sensors = {s["token"]: s["channel"] for s in _load_json(tables / "sensor.json")}
        calibrated = {c["token"]: c for c in _load_json(tables / "calibrated_sensor.json")}
        data = [
            d
            for d in _load_json(tables / "sample_data.json")
            if d["sample_token"] in samples and (sweeps or d.get("is_key_frame", True))
        ]
        poses = {p["token"]: p for p in _load_json(tables / "ego_pose.json")}
        files = []
        for d in data:
            try:
                calibration = calibrated[d["calibrated_sensor_token"]]
                channel = sensors[calibration["sensor_token"]]
            except KeyError as exc:
                raise ConfigError(
                    f"sample_data {d.get('token')} refers to a missing record {exc}",
                    path=str(tables),
                ) from None
            record = dict(calibration)
            if d.get("width") and d.get("height"):
                record.update(width=d["width"], height=d["height"])
            self._calibration.setdefault(channel, record)
            pose = poses.get(d["ego_pose_token"])
            if pose is not None:
                self._poses.append((int(pose["timestamp"]) * 1000, pose, channel))
            file = _file(int(d["timestamp"]) * 1000, channel, self.root / d["filename"])
            if file is not None:
                files.append(file)
            if channel == REFERENCE_CHANNEL and d.get("is_key_frame") and pose is not None:
                self._key_frames[d["sample_token"]] = (int(d["timestamp"]) * 1000, pose)
        self._tables = tables
        logs = {p["token"]: p["logfile"] for p in _load_json(tables / "log.json")}
        self.log = logs.get(chosen.get("log_token", ""), self.log)
        files.sort(key=lambda f: (f.stamp_ns, f.channel))
        return files

    def _scene_file(self, scene: str | None) -> Path | None:
        candidates = sorted(self.root.glob("scene-*.json"))
        if scene is not None:
            candidates = [
                p for p in candidates if p.name.startswith(f"{scene}_") or p.stem == scene
            ]
        for path in candidates:
            content = _load_json(path)
            if isinstance(content, Mapping) and isinstance(content.get("sensors"), Mapping):
                return path
        return None

    def _from_scene_file(self, path: Path) -> None:
        content = _load_json(path)
        self._scene_file_content = content
        self.scene = content.get("scene")
        self.log = self.log or content.get("log")
        for channel, sensor in content["sensors"].items():
            record = dict(sensor["calibrated_sensor"])
            if record.get("camera_intrinsic") == []:
                record.pop("camera_intrinsic")
            if "width" in sensor and "height" in sensor:
                record.update(width=sensor["width"], height=sensor["height"])
            self._calibration[channel] = record
            pose = sensor.get("ego_pose") or sensor.get("ego_pose_derived")
            if pose is not None:
                self._poses.append((int(sensor["timestamp_us"]) * 1000, pose, channel))
            file = self.root / sensor["file"]
            if not file.is_file():
                self.bad.report(
                    BadRecord(
                        "unreadable",
                        f"listed in {path.name} but missing",
                        path=str(file),
                        topic=channel,
                        stamp_ns=int(sensor["timestamp_us"]) * 1000,
                    )
                )

    def _from_folders(self, sweeps: bool) -> list[_File]:
        found: dict[str, list[_File]] = {}
        for folder in ("samples", "sweeps") if sweeps else ("samples",):
            for file in sorted((self.root / folder).glob("*/*")):
                match = _FILE_NAME.match(file.name)
                if match is None or match["channel"] != file.parent.name or not file.is_file():
                    continue
                stamp = int(match["us"]) * 1000
                entry = _file(stamp, match["channel"], file)
                if entry is not None:
                    found.setdefault(match["log"], []).append(entry)
        if self.log is None and len(found) > 1:
            raise ConfigError(
                f"the folder holds files of {len(found)} logs ({', '.join(sorted(found))}); "
                "choose one with log=",
                path=str(self.root),
                key="log",
            )
        if self.log is None and found:
            self.log = next(iter(found))
        files = found.get(self.log or "", [])
        files.sort(key=lambda f: (f.stamp_ns, f.channel))
        return files

    # description -----------------------------------------------------------------------------

    def topics(self) -> dict[str, TopicInfo]:
        """The channels replayed, with their record counts."""
        counts: dict[str, int] = {}
        msgtypes: dict[str, str] = {}
        for file in self._files:
            counts[file.channel] = counts.get(file.channel, 0) + 1
            msgtypes[file.channel] = file.msgtype
        return {c: TopicInfo(c, msgtypes[c], n) for c, n in sorted(counts.items())}

    @property
    def first_stamp_ns(self) -> int | None:
        return self._files[0].stamp_ns if self._files else None

    @property
    def last_stamp_ns(self) -> int | None:
        return self._files[-1].stamp_ns if self._files else None

    def rig(self) -> Rig | None:
        """The static rig of the calibrated channels (``None`` without a calibration)."""
        if self._rig_override is not None:
            return self._rig_override
        if self._rig is None and self._calibration:
            self._rig = nuscenes_rig(self._calibration)
        return self._rig

    def ego_poses(self) -> EgoPoses | None:
        """Ego → global poses at the recorded timestamps (``None`` without any)."""
        if not self._poses:
            return None
        by_stamp: dict[int, np.ndarray] = {}
        for stamp, record, channel in sorted(self._poses, key=lambda p: (p[0], p[2])):
            by_stamp.setdefault(stamp, pose_from_record(record, channel, "ego_pose").matrix)
        stamps = np.array(sorted(by_stamp), np.int64)
        return EgoPoses(stamps, np.stack([by_stamp[int(s)] for s in stamps]))

    def ground_truth(
        self, class_names: Sequence[str], topic: str | None = None
    ) -> IndexedGroundTruth | None:
        """The key frames' boxes in the ego frame (module docstring), for the run; ``None``
        for a folder of files only, or without annotations. Read when first scored."""
        names = tuple(class_names)
        tables = self._tables
        if tables is not None and self._key_frames:
            if not (tables / "sample_annotation.json").is_file():
                return None
            key_frames = self._key_frames
            by_stamp = {stamp: token for token, (stamp, _) in key_frames.items()}
            read: list[dict[str, list[Box]]] = []  # the scene's annotations, once read

            def load(stamp_ns: int) -> GroundTruthBoxes:
                if not read:
                    read.append(annotations_in_ego(tables, key_frames))
                return boxes_of(stamp_ns, read[0].get(by_stamp[stamp_ns], []), names)

            return IndexedGroundTruth(by_stamp, load)
        content = self._scene_file_content
        if content is not None and "instances" in content:
            stamp = int(content["sensors"][REFERENCE_CHANNEL]["timestamp_us"]) * 1000
            return IndexedGroundTruth(
                [stamp], lambda s: boxes_of(s, self._instances(content), names)
            )
        return None

    def _instances(self, content: Mapping[str, Any]) -> list[Box]:
        """A scene file's ``instances`` moved into the rig's ego frame."""
        rig = self.rig()
        if rig is None:
            raise CalibrationError("no rig to move the annotations into the ego frame")
        return instances_in_ego(
            content["instances"], rig.transform(sensor_of_topic(REFERENCE_CHANNEL), rig.frame)
        )

    # records ---------------------------------------------------------------------------------

    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        for file in self._files:
            if self.in_window(file.stamp_ns, start_ns, stop_ns) and self.wants(file.channel):
                record = self.file_record(file.channel, file.stamp_ns, file.path, file.msgtype)
                if record is not None:
                    yield record
