"""Replay sources: recorded drives as streams of :class:`~fusionrt.RawRecord` s, oldest first;
and live sources that read a device directly.

Built-in sources (registered with the ``fusionrt_sources`` hook below):

* :class:`~fusionrt.plugins.sources.rosbag.RosbagSource` (``rosbag``): ROS 2 bags, MCAP and
  sqlite3 storage, split bags merged by time;
* :class:`~fusionrt.plugins.sources.kitti.KittiSource` (``kitti``): KITTI object and raw folders;
* :class:`~fusionrt.plugins.sources.nuscenes.NuScenesSource` (``nuscenes``): nuScenes folders;
* :class:`~fusionrt.plugins.sources.velodyne_pcap.VelodynePcapSource` (``velodyne_pcap``): a
  ``.pcap`` of Velodyne lidar packets; and the live
  :class:`~fusionrt.plugins.sources.velodyne.VelodyneSource` (``velodyne``): the same packets
  over UDP (both need the ``velodyne`` extra to open, not to register);
* the live :class:`~fusionrt.plugins.sources.socketcan.SocketCanSource` (``socketcan``), a CAN
  bus through python-can, and
  :class:`~fusionrt.plugins.sources.video_capture.VideoCaptureSource` (``video``), a camera or
  stream through OpenCV.

Each says which paths it reads (``can_open``), so ``fusionrt run --source PATH`` finds the one
that opens a drive, and gives the drive's ground truth (``ground_truth``): the bag's simulator
topic, KITTI's ``label_2`` files, nuScenes' annotations. They share :class:`RecordedSource`,
which adds to the runtime's :class:`Source` what replaying a recording needs: ``topics()``,
``rig()``, ``ego_poses()``, the first and last stamps, a topic filter, ``seek(start_ns)`` and
the bad-record report. Sources never decode: a record carries the
recorded bytes and a ``msgtype`` saying what they are; the sensors decode. What a source itself
finds broken (a truncated file, a corrupt chunk, a topic of an unknown type, a file it cannot
read) is a :class:`BadRecord`: counted by reason, kept (the first ``max_bad_records``), passed to
``on_bad_record`` and logged, and the replay goes on with the rest. Pacing (real time, step) is
:mod:`fusionrt.runtime.replay`'s job (it paces any source).
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fusionrt.calibration.rig import Rig
from fusionrt.runtime.components import Source
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.hookspecs import hookimpl
from fusionrt.runtime.messages import RawRecord

logger = logging.getLogger("fusionrt.sources")

#: Default number of :class:`BadRecord` s a source keeps (all are counted and reported).
MAX_BAD_RECORDS = 1000
#: :class:`BadRecord` reasons that lose no message of the sensors: an index found wrong or a
#: clock step (the data was read another way), packets of another device in a capture.
NOT_LOST = frozenset({"corrupt_index", "log_time_step", "unexpected_sender", "wrong_model"})


@dataclass(frozen=True, slots=True)
class BadRecord:
    """Something a source could not turn into a record; the replay went on without it.

    ``reason`` is a short machine-readable word:

    * ``truncated``: the file ends inside a record (or holds no record from some byte on);
    * ``corrupt_chunk``: an MCAP chunk is damaged (not a chunk record where the index says
      one starts, a failed CRC, data that does not decompress or parse, messages that its
      message index lists but its records lack);
    * ``corrupt_record``: one message, row or range of rows cannot be read, or bytes between
      records are not a record;
    * ``corrupt_index``: an index disagrees with the data or is unusable (``metadata.yaml``,
      an MCAP summary, chunk index or message index); what can be verified was read instead;
    * ``log_time_step``: the recorder's clock stepped back, so the file is replayed in write
      order;
    * ``unknown_type``: no definition of the topic's type is known;
    * ``unsupported_encoding``: not CDR;
    * ``unknown_channel``: a message of an undeclared MCAP channel;
    * ``unreadable``: a file cannot be opened or read.

    ``offset`` locates the bytes in ``path`` (its meaning depends on the format; see each
    source), ``stamp_ns`` is the record's stamp when known, ``lost`` the number of messages
    lost with this report when the recording says it (``None``: unknown, or not a loss).
    """

    reason: str
    detail: str
    path: str | None = None
    topic: str | None = None
    offset: int | None = None
    stamp_ns: int | None = None
    lost: int | None = None

    @property
    def loses_data(self) -> bool:
        """Whether the report means messages of the recording are not replayed (an index
        found wrong, or a clock step, loses nothing: the data was read another way)."""
        return self.reason not in NOT_LOST

    def __str__(self) -> str:
        where = ", ".join(
            f"{key}={value!r}"
            for key, value in (
                ("topic", self.topic),
                ("path", self.path),
                ("offset", self.offset),
                ("stamp_ns", self.stamp_ns),
                ("lost", self.lost),
            )
            if value is not None
        )
        return f"{self.reason}: {self.detail}" + (f" [{where}]" if where else "")


class BadRecordLog:
    """Counts, keeps and forwards :class:`BadRecord` s.

    Every report is counted by reason (``counts``) and passed to ``callback``; the first
    ``max_kept`` are kept in ``records`` (bounded memory however bad the recording). The first
    report of each (reason, topic, path) is logged as a warning, the others at debug level.
    """

    def __init__(
        self,
        callback: Callable[[BadRecord], None] | None = None,
        max_kept: int = MAX_BAD_RECORDS,
    ) -> None:
        self.callback = callback
        self.max_kept = max_kept
        self.records: list[BadRecord] = []
        self.counts: Counter[str] = Counter()
        self._logged: set[tuple[str, str | None, str | None]] = set()

    def report(self, bad: BadRecord) -> None:
        """Count, keep, log and forward one bad record."""
        self.counts[bad.reason] += 1
        if len(self.records) < self.max_kept:
            self.records.append(bad)
        key = (bad.reason, bad.topic, bad.path)
        if key in self._logged:
            logger.debug("%s", bad)
        else:
            self._logged.add(key)
            logger.warning("%s", bad)
        if self.callback is not None:
            self.callback(bad)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """One topic of a recording: its msgtype, message count (``None``: unknown without a scan)
    and whether a definition of its type is known (``False``: its records are reported as
    ``unknown_type`` and not yielded)."""

    topic: str
    msgtype: str
    count: int | None = None
    known: bool = True


@dataclass(frozen=True, slots=True)
class EgoPoses:
    """Ego → global poses: ``stamps_ns`` (K,) int64 sorted and ``poses`` (K, 4, 4) float64.

    The form the lidar sensor's ``PreprocessContext.ego_poses`` and
    :func:`fusionrt.calibration.transforms.interpolate_poses` take.
    """

    stamps_ns: npt.NDArray[np.int64]
    poses: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.stamps_ns)


class RecordedSource(Source):
    """A :class:`Source` over a recording: topics, rig, time range, topic filter, seek, reports.

    Subclasses implement :meth:`_read` (records of the wanted topics with
    ``start_ns <= stamp_ns < stop_ns``, in stamp order), :meth:`topics`, ``first_stamp_ns`` and
    ``last_stamp_ns``, and :meth:`rig` when the recording has a calibration.

    ``topics`` (a collection of topic names) keeps only those topics; names the recording lacks
    are logged and listed in ``missing_topics`` (a sensor absent for the whole drive is not an
    error). ``start_ns`` / ``stop_ns`` bound the replay on the recording's clock (``stop_ns``
    exclusive). ``on_bad_record`` is called with each :class:`BadRecord`.
    """

    def __init__(
        self,
        *,
        topics: Collection[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        on_bad_record: Callable[[BadRecord], None] | None = None,
        max_bad_records: int = MAX_BAD_RECORDS,
    ) -> None:
        if isinstance(topics, str):
            raise ConfigError(
                f"topics must be a collection of topic names, not the string {topics!r}",
                key="topics",
            )
        self.topic_filter: frozenset[str] | None = None if topics is None else frozenset(topics)
        self.missing_topics: tuple[str, ...] = ()
        self._start_ns = None if start_ns is None else int(start_ns)
        self._stop_ns = None if stop_ns is None else int(stop_ns)
        self._seek_generation = 0
        self.bad = BadRecordLog(on_bad_record, max_bad_records)

    # -- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def _read(self, start_ns: int | None, stop_ns: int | None) -> Generator[RawRecord, None, None]:
        """Records of the wanted topics in ``[start_ns, stop_ns)``, oldest first, streaming."""

    @abstractmethod
    def topics(self) -> dict[str, TopicInfo]:
        """Every topic of the recording (the topic filter does not apply)."""

    @property
    @abstractmethod
    def first_stamp_ns(self) -> int | None:
        """Stamp of the recording's first record (``None`` when it has none)."""

    @property
    @abstractmethod
    def last_stamp_ns(self) -> int | None:
        """Stamp of the recording's last record (``None`` when it has none)."""

    def rig(self) -> Rig | None:
        """The recording's rig (calibration), ``None`` when it has none."""
        return None

    def ego_poses(self) -> EgoPoses | None:
        """Recorded ego → world poses for motion compensation, ``None`` when there are none."""
        return None

    def recorded_topics(self) -> list[str]:
        """Every topic of the recording (the keys of :meth:`topics`)."""
        return list(self.topics())

    # -- shared behaviour ---------------------------------------------------------------------

    @property
    def bad_records(self) -> list[BadRecord]:
        """The bad records reported so far (the first ``max_bad_records``)."""
        return self.bad.records

    @property
    def bad_counts(self) -> Counter[str]:
        """Bad records reported so far, by reason (all of them)."""
        return self.bad.counts

    def wants(self, topic: str) -> bool:
        """Whether the topic filter keeps ``topic``."""
        return self.topic_filter is None or topic in self.topic_filter

    @staticmethod
    def in_window(stamp_ns: int, start_ns: int | None, stop_ns: int | None) -> bool:
        """Whether ``start_ns <= stamp_ns < stop_ns`` (``None``: unbounded)."""
        return (start_ns is None or stamp_ns >= start_ns) and (
            stop_ns is None or stamp_ns < stop_ns
        )

    def file_record(self, topic: str, stamp_ns: int, path: Path, msgtype: str) -> RawRecord | None:
        """A record holding a whole file (offset 0); ``None``, reported ``unreadable``, if the
        file cannot be read."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.bad.report(
                BadRecord(
                    "unreadable",
                    f"cannot read: {exc.strerror or exc}",
                    path=str(path),
                    topic=topic,
                    stamp_ns=stamp_ns,
                )
            )
            return None
        return RawRecord(topic, stamp_ns, data, msgtype, str(path), 0)

    def _check_topic_filter(self, available: Collection[str]) -> None:
        """Record (and log) the filtered topics the recording lacks."""
        if self.topic_filter is None:
            return
        self.missing_topics = tuple(sorted(self.topic_filter.difference(available)))
        if self.missing_topics:
            logger.warning(
                "%s: no topic %s in the recording (topics: %s)",
                self.name,
                ", ".join(self.missing_topics),
                ", ".join(sorted(available)) or "none",
            )

    @property
    def message_count(self) -> int | None:
        """Records the replay will yield at most (``None`` when a count is unknown)."""
        total = 0
        for info in self.topics().values():
            if not self.wants(info.topic) or not info.known:
                continue
            if info.count is None:
                return None
            total += info.count
        return total

    def seek(self, start_ns: int) -> None:
        """Replay from the first record at or after ``start_ns`` (the recording's clock).

        Applies to every iterator of :meth:`records`, live ones included: the next record any
        of them yields is the first at or after ``start_ns``.
        """
        self._start_ns = int(start_ns)
        self._seek_generation += 1

    def records(self) -> Iterator[RawRecord]:
        """The records, oldest first; streaming (see :meth:`seek` for jumps)."""
        while True:
            generation = self._seek_generation
            reader = self._read(self._start_ns, self._stop_ns)
            try:
                for record in reader:
                    yield record
                    if self._seek_generation != generation:
                        break
                else:
                    return
            finally:
                reader.close()


def load_rig(rig: Rig | str | os.PathLike[str] | None) -> Rig | None:
    """A :class:`Rig` from a Rig, a YAML path or ``None``."""
    if rig is None or isinstance(rig, Rig):
        return rig
    return Rig.load(Path(rig))


# The concrete sources import the shared classes above, so they come last.
from fusionrt.plugins.sources.kitti import KittiSource  # noqa: E402
from fusionrt.plugins.sources.nuscenes import NuScenesSource  # noqa: E402
from fusionrt.plugins.sources.rosbag import RosbagSource  # noqa: E402
from fusionrt.plugins.sources.socketcan import SocketCanSource  # noqa: E402
from fusionrt.plugins.sources.velodyne import VelodyneSource  # noqa: E402
from fusionrt.plugins.sources.velodyne_pcap import VelodynePcapSource  # noqa: E402
from fusionrt.plugins.sources.video_capture import VideoCaptureSource  # noqa: E402


@hookimpl
def fusionrt_sources() -> list[type[Source]]:
    """The built-in replay sources and the live ``velodyne``, ``socketcan`` and ``video``
    sources."""
    return [
        RosbagSource,
        KittiSource,
        NuScenesSource,
        VelodynePcapSource,
        VelodyneSource,
        SocketCanSource,
        VideoCaptureSource,
    ]


__all__ = [
    "MAX_BAD_RECORDS",
    "NOT_LOST",
    "BadRecord",
    "BadRecordLog",
    "EgoPoses",
    "KittiSource",
    "NuScenesSource",
    "RecordedSource",
    "RosbagSource",
    "SocketCanSource",
    "TopicInfo",
    "VelodynePcapSource",
    "VelodyneSource",
    "VideoCaptureSource",
    "fusionrt_sources",
]
