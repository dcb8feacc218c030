"""ROS 2 bags as a replay source: MCAP and sqlite3 storage, split bags merged by time.

:class:`RosbagSource` yields one :class:`~fusionrt.RawRecord` per recorded message: the topic,
the **raw CDR bytes** as recorded, the ``msgtype`` (``sensor_msgs/msg/PointCloud2``...), the
storage file (``path``) and where the message is in it (``offset``). It does not deserialize:
the sensors do.

**Why it reads bags itself** rather than through rosbags' ``Reader`` (whose typestore it
uses): rosbags raises on a bag cut short (an MCAP file without its end magic, a sqlite3
database shorter than its header says: ``ReaderError`` before the first message) and on a
damaged chunk (the decompressor's error, mid-replay), and a drive recorded on a car is often
exactly that (the recorder killed, a copy interrupted, bit rot). The storage readers below
replay every message the file still holds and report what is lost, with its count.

**Order.** Records come in the order of their *log time* — the time the recorder received
the message, which rosbag2 stores as the message timestamp (MCAP ``log_time``, the sqlite3
``timestamp`` column) — and that is ``RawRecord.stamp_ns``. A message's header stamp (the
sensor's own acquisition time) can differ and arrive out of order; the sensors read it when
they decode. Equal log times keep the order in which they were written (file, then position).
A storage file in which a topic's log time steps back by more than ``log_time_step_ns``
(default 1 s) from one message to the next was recorded across a step of the recorder's
clock: merged by log time, two stretches of the drive would interleave, so that file is
replayed in write order instead (``stamp_ns`` stays the recorded log time) and the step is
reported once (``log_time_step``). The files of a split bag are merged by log time.

**Streaming.** Memory stays constant however long the bag: a storage reader holds about one
MCAP chunk (1 MiB or so, for a recorder writing in time order), or walks the sqlite3
``timestamp`` index (a damaged sqlite3 file: about 40 bytes a row); the files of a split bag
are merged lazily with :func:`heapq.merge`.
The storage readers are :mod:`~fusionrt.plugins.sources.rosbag_mcap` and
:mod:`~fusionrt.plugins.sources.rosbag_sqlite3`.

**Bad recordings** are reported as :class:`~fusionrt.plugins.sources.BadRecord` s, and the
replay goes on with what can be read. Every message a file holds is replayed once or reported
lost, with the number lost (``BadRecord.lost``) wherever the file's indexes say it:

* MCAP: each chunk is checked against the file's own indexes (see
  :mod:`~fusionrt.plugins.sources.rosbag_mcap`). A chunk that is damaged (not a chunk record
  where the chunk index places one, e.g. zero-filled; a failed CRC; data that does not
  decompress or parse; messages its message index lists but its records lack) is
  ``corrupt_chunk`` (offset = the chunk) and the other chunks replay; a chunk index that
  disagrees with the chunks in the file is ``corrupt_index``, and each chunk in the file is
  read once; a file cut short (no footer) is read up to the cut (``truncated``, offset = where
  the cut record starts);
* sqlite3: a file shorter than its header says is ``truncated`` (offset = the file size); the
  rows still on its pages replay in stamp order (SQL cannot reach them once the b-tree's
  interior pages are lost), and the rows no page holds are ``corrupt_record`` (offset = the
  first row id of each run, ``lost`` = its length; see
  :mod:`~fusionrt.plugins.sources.rosbag_sqlite3`);
* a ``metadata.yaml`` that cannot be read (not UTF-8, not YAML, an alias bomb, the wrong
  shape): ``corrupt_index`` naming it, and the storage files in the directory are read;
* a topic whose type has no known definition (neither in fusionrt's typestore,
  :func:`fusionrt.plugins.ros_types.typestore`, nor in the bag) or whose serialization is not
  CDR: every message of it is reported (``unknown_type`` / ``unsupported_encoding``, with
  topic, offset and stamp) instead of yielded;
* a storage file that cannot be opened at all: ``unreadable``.

A message whose bytes are not a valid message of its type is not the reader's to detect: the
sensor's ``decode`` raises a ``DecodeError`` naming the topic, path and offset. Without a
chunk CRC (rosbags and rosbag2 write none; ``fusionrt sim`` does), bytes altered inside a
message's data cannot be told from the recorded ones.

**Offsets** (``RawRecord.offset``, ``BadRecord.offset``): in an MCAP file, the byte offset of
the chunk record holding the message (of the message record itself for a message outside any
chunk; ``mcap info`` / ``mcap cat`` find it); in a sqlite3 file, the message's row id
(``messages.id``). With the topic and the stamp it identifies the message.

**Layouts read** (:meth:`RosbagSource.can_open`): a bag directory with ``metadata.yaml``
(rosbag2 versions 1-9; compression modes ``file`` and ``message``, zstd), a directory without
it (a recorder that crashed before writing it: its ``*.mcap`` / ``*.db3`` files are read in
name order), one ``.mcap`` / ``.db3`` file, or a drive folder holding such a bag as ``bag/``
(``fusionrt sim``'s layout, ``rig.yaml`` beside it).

**Ground truth** (:meth:`RosbagSource.ground_truth`): the simulator's
``fusionrt_msgs/msg/ActorArray`` topic, streamed (:mod:`~fusionrt.plugins.sources.rosbag_truth`).

**Rig**: ``rig=`` (a :class:`~fusionrt.calibration.Rig` or a YAML path), else ``rig.yaml`` in
the bag directory, else ``rig.yaml`` beside it (in its parent directory), else none.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from pathlib import Path, PurePath
from tempfile import TemporaryDirectory
from typing import Any

import zstandard

from fusionrt.calibration.rig import Rig
from fusionrt.plugins.ros_types import typestore as fusionrt_typestore
from fusionrt.plugins.sources import (
    MAX_BAD_RECORDS,
    BadRecord,
    RecordedSource,
    TopicInfo,
    load_rig,
)
from fusionrt.plugins.sources.rosbag_mcap import McapStorage
from fusionrt.plugins.sources.rosbag_sqlite3 import Sqlite3Storage
from fusionrt.plugins.sources.rosbag_storage import (
    STEP_TOLERANCE_NS,
    Connection,
    Entry,
    StorageUnreadable,
)
from fusionrt.plugins.sources.rosbag_truth import bag_ground_truth
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.safe_yaml import read_yaml
from fusionrt.runtime.truth import StreamedGroundTruth

__all__ = ["RosbagSource", "bag_path"]

_INT64_MAX = 2**63 - 1
_Storage = McapStorage | Sqlite3Storage
_SUFFIXES = (".mcap", ".db3")
_COMPRESSED_SUFFIXES = (".mcap.zstd", ".db3.zstd")


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _is_storage_file(path: Path) -> bool:
    return path.suffix in _SUFFIXES or path.name.endswith(_COMPRESSED_SUFFIXES)


def _is_bag_folder(path: Path) -> bool:
    """A folder with ``metadata.yaml`` or storage files (a recorder that died before writing
    ``metadata.yaml`` leaves only those)."""
    if not path.is_dir():
        return False
    if (path / "metadata.yaml").is_file():
        return True
    try:
        return any(_is_storage_file(p) and p.is_file() for p in path.iterdir())
    except OSError:
        return False


def bag_path(path: str | os.PathLike[str]) -> Path | None:
    """The bag at ``path`` (``path`` itself, or the ``bag/`` of a drive folder), ``None`` when
    ``path`` is no ROS 2 bag."""
    path = Path(path)
    if path.is_file():
        return path if _is_storage_file(path) else None
    if _is_bag_folder(path):
        return path
    if _is_bag_folder(path / "bag"):
        return path / "bag"
    return None


class RosbagSource(RecordedSource):
    """A ROS 2 bag (MCAP or sqlite3) replayed in log-time order; see the module docstring.

    ``path`` is a bag directory, one ``.mcap`` / ``.db3`` file, or a drive folder holding
    ``bag/`` (:func:`bag_path`). Options: ``topics`` (keep
    only these), ``start_ns`` / ``stop_ns`` (log-time bounds, ``stop_ns`` exclusive), ``rig``
    (a Rig or YAML path; default: ``rig.yaml`` in or beside the bag), ``typestore`` (the
    rosbags typestore whose types count as known; default fusionrt's), ``log_time_step_ns``
    (a topic's log time stepping back more than this marks a clock step: the file is then
    replayed in write order), ``on_bad_record``, ``max_bad_records``.
    """

    name = "rosbag"
    opens = (
        "a ROS 2 bag: a folder with metadata.yaml or .mcap/.db3 files, one .mcap or .db3 "
        "file, or a drive folder holding bag/"
    )

    @classmethod
    def can_open(cls, path: Path) -> bool:
        """Whether ``path`` is a ROS 2 bag (see :func:`bag_path`)."""
        return bag_path(path) is not None

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        topics: Collection[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        rig: Rig | str | os.PathLike[str] | None = None,
        typestore: Any = None,
        on_bad_record: Callable[[BadRecord], None] | None = None,
        max_bad_records: int = MAX_BAD_RECORDS,
        log_time_step_ns: int = STEP_TOLERANCE_NS,
    ) -> None:
        super().__init__(
            topics=topics,
            start_ns=start_ns,
            stop_ns=stop_ns,
            on_bad_record=on_bad_record,
            max_bad_records=max_bad_records,
        )
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError("no ROS 2 bag at this path", path=str(self.path))
        self.path = bag_path(self.path) or self.path  # a drive folder: its bag/
        self._known_types: Collection[str] = (typestore or fusionrt_typestore()).types
        self._rig_arg = rig
        self._rig: Rig | None = None
        self._rig_loaded = False
        self._tmpdir: TemporaryDirectory[str] | None = None
        self._metadata: dict[str, Any] = {}
        self._step_ns = int(log_time_step_ns)
        files, compression = self._storage_files()
        self._decompress_messages = compression == "message"
        self._storages: list[_Storage] = []
        self._display_paths: dict[int, str] = {}
        for index, file in enumerate(files):
            self._open_storage(index, file, compression == "file")
        if not self._storages:
            self.close()
            raise DecodeError(
                "no readable storage file in the bag "
                f"({'; '.join(str(b) for b in self.bad_records) or 'no .mcap or .db3 file'})",
                path=str(self.path),
            )
        self._problems: dict[tuple[int, int], str | None] = {}
        self._topics: dict[str, TopicInfo] | None = None
        self._check_topic_filter({c.topic for s in self._storages for c in s.connections.values()})

    # opening ---------------------------------------------------------------------------------

    def _storage_files(self) -> tuple[list[Path], str]:
        """The bag's storage files in order, and its compression mode (``''``, file, message)."""
        if self.path.is_file():
            return [self.path], "file" if self.path.suffix == ".zstd" else ""
        meta_path = self.path / "metadata.yaml"
        info = self._read_metadata(meta_path) if meta_path.is_file() else None
        if info is not None:
            files = [self.path / PurePath(name).name for name in info["relative_file_paths"]]
            mode = str(info.get("compression_mode") or "").lower()
            mode = "" if mode == "none" else mode
            fmt = str(info.get("compression_format") or "zstd").lower()
            if mode and fmt != "zstd":
                raise ConfigError(
                    f"compression format {fmt!r} is not supported (zstd is)",
                    path=str(meta_path),
                    key="compression_format",
                )
            self._metadata = info
            return files, mode
        files = sorted((p for p in self.path.iterdir() if p.suffix in _SUFFIXES), key=_natural_key)
        compressed = sorted(
            (p for p in self.path.iterdir() if p.name.endswith(_COMPRESSED_SUFFIXES)),
            key=_natural_key,
        )
        if compressed and not files:
            return compressed, "file"
        return files, ""

    def _read_metadata(self, meta_path: Path) -> dict[str, Any] | None:
        """``rosbag2_bagfile_information`` of ``metadata.yaml``; ``None``, reported as
        ``corrupt_index``, when it is unreadable (the storage files are then read without)."""
        try:
            info = read_yaml(meta_path)["rosbag2_bagfile_information"]
            names = info["relative_file_paths"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise TypeError("relative_file_paths is not a list of file names")
        except ConfigError as exc:
            problem = exc.message + (
                f" (line {exc.context['line']})" if "line" in exc.context else ""
            )
        except (KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            return dict(info)
        self.bad.report(
            BadRecord(
                "corrupt_index",
                f"metadata.yaml unreadable ({problem}); reading the storage files found in "
                "the directory",
                path=str(meta_path),
            )
        )
        return None

    def _listed_count(self, file: Path) -> int | None:
        """How many messages ``metadata.yaml`` says the storage file holds."""
        for entry in self._metadata.get("files") or []:
            try:
                if PurePath(entry["path"]).name == file.name:
                    return int(entry["message_count"])
            except (KeyError, TypeError, ValueError):
                return None
        if len(self._metadata.get("relative_file_paths") or []) == 1:
            try:
                return int(self._metadata["message_count"])
            except (KeyError, TypeError, ValueError):
                return None
        return None

    def _open_storage(self, index: int, file: Path, decompress_file: bool) -> None:
        display = str(file)
        try:
            listed = self._listed_count(file)
            if decompress_file:
                file = self._decompressed(file)
            storage: _Storage
            if file.suffix == ".mcap":
                storage = McapStorage(file, index, self.bad.report, self._step_ns)
            elif file.suffix == ".db3":
                storage = Sqlite3Storage(file, index, self.bad.report, self._step_ns, listed)
            else:
                raise StorageUnreadable(f"unknown storage file suffix {file.suffix!r}")
        except (StorageUnreadable, OSError, zstandard.ZstdError) as exc:
            self.bad.report(BadRecord("unreadable", str(exc), path=display))
            return
        self._storages.append(storage)
        self._display_paths[index] = display

    def _decompressed(self, file: Path) -> Path:
        """A zstd-compressed storage file (compression mode ``file``) decompressed to a temp dir."""
        if self._tmpdir is None:
            self._tmpdir = TemporaryDirectory(prefix="fusionrt-bag-")
        target = Path(self._tmpdir.name) / file.name.removesuffix(".zstd")
        with file.open("rb") as src, target.open("wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
        return target

    # description -----------------------------------------------------------------------------

    def _problem(self, storage_index: int, conn: Connection) -> str | None:
        """Why a connection's messages cannot be yielded (``None``: they can)."""
        key = (storage_index, conn.id)
        if key not in self._problems:
            problem = None
            if conn.encoding != "cdr":
                problem = "unsupported_encoding"
            elif not conn.msgtype or (
                conn.msgtype not in self._known_types and conn.definition is None
            ):
                problem = "unknown_type"
            self._problems[key] = problem
        return self._problems[key]

    def topics(self) -> dict[str, TopicInfo]:
        """Every topic of the bag with its msgtype and count (from metadata.yaml when present)."""
        if self._topics is None:
            listed = {
                entry["topic_metadata"]["name"]: int(entry["message_count"])
                for entry in self._metadata.get("topics_with_message_count") or []
            }
            counts: dict[str, int | None] = {}
            types: dict[str, str] = {}
            known: dict[str, bool] = {}
            for storage in self._storages:
                storage_counts = storage.counts
                for conn in storage.connections.values():
                    types.setdefault(conn.topic, conn.msgtype)
                    ok = self._problem(storage.file_index, conn) is None
                    known[conn.topic] = known.get(conn.topic, True) and ok
                    n = None if storage_counts is None else storage_counts.get(conn.id, 0)
                    previous = counts.get(conn.topic, 0)
                    counts[conn.topic] = None if n is None or previous is None else previous + n
            self._topics = {
                topic: TopicInfo(
                    topic, types[topic], listed.get(topic, counts[topic]), known[topic]
                )
                for topic in sorted(types)
            }
        return self._topics

    @property
    def storage_paths(self) -> list[str]:
        """The storage files being read, in the bag's order."""
        return [self._display_paths[s.file_index] for s in self._storages]

    @property
    def first_stamp_ns(self) -> int | None:
        """Log time of the bag's first message."""
        return min(
            (s.first_stamp_ns for s in self._storages if s.first_stamp_ns is not None), default=None
        )

    @property
    def last_stamp_ns(self) -> int | None:
        """Log time of the bag's last message."""
        return max(
            (s.last_stamp_ns for s in self._storages if s.last_stamp_ns is not None), default=None
        )

    def rig(self) -> Rig | None:
        """The rig given, else ``rig.yaml`` in or beside the bag (loaded once), else ``None``."""
        if not self._rig_loaded:
            rig = self._rig_arg
            if rig is None:
                candidates = [self.path.parent / "rig.yaml"]
                if self.path.is_dir():
                    candidates.insert(0, self.path / "rig.yaml")
                rig = next((p for p in candidates if p.is_file()), None)
            self._rig = load_rig(rig)
            self._rig_loaded = True
        return self._rig

    def ground_truth(
        self, class_names: Sequence[str], topic: str | None = None
    ) -> StreamedGroundTruth | None:
        """The simulator's ground-truth topic (``topic``, else the bag's one
        ``fusionrt_msgs/msg/ActorArray`` topic), streamed: its records are replayed from now
        on, whatever the topic filter, for the run to hand to it. ``None`` without one."""
        msgtypes = {t: info.msgtype for t, info in self.topics().items()}
        truth = bag_ground_truth(msgtypes, class_names, topic)
        if truth is not None and self.topic_filter is not None:
            self.topic_filter = self.topic_filter | frozenset(truth.topics)
        return truth

    # records ---------------------------------------------------------------------------------

    def _wanted(self, conn: Connection) -> bool:
        return self.wants(conn.topic)

    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        low = -_INT64_MAX - 1 if start_ns is None else start_ns
        high = _INT64_MAX if stop_ns is None else stop_ns
        streams = [s.messages(low, high, self._wanted) for s in self._storages]
        if not streams:
            return
        merged: Iterator[Entry] = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        decompressor = zstandard.ZstdDecompressor() if self._decompress_messages else None
        for stamp, file_index, offset, _, conn, stored in merged:
            path = self._display_paths[file_index]
            problem = self._problem(file_index, conn)
            if problem is not None:
                self.bad.report(
                    BadRecord(
                        problem,
                        f"topic type {conn.msgtype!r} has no known definition"
                        if problem == "unknown_type"
                        else f"serialization {conn.encoding!r} is not CDR",
                        path=path,
                        topic=conn.topic,
                        offset=offset,
                        stamp_ns=stamp,
                    )
                )
                continue
            data = stored
            if decompressor is not None:
                try:
                    data = decompressor.decompressobj().decompress(stored)
                except zstandard.ZstdError as exc:
                    self.bad.report(
                        BadRecord(
                            "corrupt_record",
                            f"message does not decompress (zstd): {exc}",
                            path=path,
                            topic=conn.topic,
                            offset=offset,
                            stamp_ns=stamp,
                        )
                    )
                    continue
            yield RawRecord(conn.topic, stamp, data, conn.msgtype, path, offset)

    def close(self) -> None:
        """Close the storage files and remove decompressed copies."""
        for storage in getattr(self, "_storages", []):
            storage.close()
        self._storages = []
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None
