"""The ``video`` live source: a camera read with ``cv2.VideoCapture``, as ROS 2 image records.

``uri`` names what OpenCV opens: a device index (``0``), a V4L2 device (``/dev/video0``), a
video file, a stream URL (``rtsp://``, ``tcp://``, ``http://``, ``udp://`` …) or a GStreamer
pipeline ending in ``appsink`` (a string holding ``!``; it needs an OpenCV built with
GStreamer, which pip's is not — see ``docs/live_sources.md``). ``api`` picks OpenCV's backend
(``any``, ``ffmpeg``, ``gstreamer``, ``v4l2``); ``properties`` sets ``CAP_PROP_*`` values after
opening (``{FRAME_WIDTH: 1920, FRAME_HEIGHT: 1080, FPS: 30, FOURCC: MJPG}``: OpenCV's V4L2
backend otherwise asks a camera for 640×480), each read back and a refusal logged.

Each frame is stamped on arrival — the wall clock (``time.time_ns``) when ``grab`` returns it —
and becomes one record of the camera sensor's topic in the form ``encoding`` says
(:mod:`.frame_records`: ``rgb8`` by default, the cheapest for the camera to decode), the stamp
in the message header and the record, ``path`` the URI (a password in it masked) and
``offset`` the frame's number. A file is played at its own frame rate (its frames' presentation
times), once; ``finished`` is set at its end.

A stream that fails — cannot be opened, or ``grab`` returns nothing within
``read_timeout_ms`` (the FFmpeg backend's timeout; a camera unplugged, a server gone) — is
reported once per outage (``inbox.report_drop(topic, "stream_down", ...)``), released and
reopened with back-off (at once, then ``retry_initial_ms`` doubling to ``retry_max_ms``:
:class:`~.device_source.DeviceSource`); ``reconnects`` counts the outages survived. A frame
that is not 8-bit BGR is counted as ``bad_frame``. The records themselves go through the run's
bounded inbox, which drops the oldest frame when the pipeline falls behind.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sources.device_source import DeviceSource
from fusionrt.plugins.sources.frame_records import ENCODINGS, frame_record_bytes
from fusionrt.runtime.errors import ConfigError
from fusionrt.runtime.live import RecordInbox
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.options import Option, resolve_options

__all__ = ["APIS", "DROP_REASONS", "VideoCaptureSource"]

#: ``api`` option → OpenCV backend.
APIS: dict[str, int] = {
    "any": cv2.CAP_ANY,
    "ffmpeg": cv2.CAP_FFMPEG,
    "gstreamer": cv2.CAP_GSTREAMER,
    "v4l2": cv2.CAP_V4L2,
}
#: Why the source counts an event instead of a record (see the module docstring).
DROP_REASONS = ("stream_down", "bad_frame")

_CREDENTIALS = re.compile(r"(?<=://)([^/@:]*):[^/@]*@")  # user:password@ in a URL


class VideoCaptureSource(DeviceSource[cv2.VideoCapture]):
    """Receives one camera into the topic of its ``camera`` sensor (see the module docstring).

    Constructed ``VideoCaptureSource(topics=[TOPIC], uri=..., ...)`` by the pipeline from a
    sensor's ``source: {name: video, options: {...}}``. An invalid option, a file that does
    not exist or cannot be read, or a GStreamer pipeline without GStreamer is a ConfigError
    naming the option; a camera or stream that is not there yet is not (it is retried).
    """

    name = "video"
    down_reason = "stream_down"
    logger = logging.getLogger("fusionrt.sources.video")
    option_specs: ClassVar[Mapping[str, Option]] = {
        "uri": Option(None, (int, str), nullable=True),
        "api": Option("any", str, choices=tuple(APIS)),
        "encoding": Option("rgb8", str, choices=ENCODINGS),
        "jpeg_quality": Option(90, int, minimum=1, maximum=100),
        "properties": Option({}, dict),
        "open_timeout_ms": Option(5000, int, minimum=1),
        "read_timeout_ms": Option(2000, int, minimum=1),
        "retry_initial_ms": Option(100, int, minimum=1),
        "retry_max_ms": Option(5000, int, minimum=1),
    }

    def __init__(self, topics: Collection[str], **options: Any) -> None:
        opts = resolve_options(self.option_specs, options, owner="video source")
        uri = opts["uri"]
        if uri is None:
            raise ConfigError(
                "the video source needs a uri (a device index, a path, a URL or a GStreamer "
                "pipeline)",
                key="uri",
            )
        super().__init__(
            topics,
            what="camera",
            where=_CREDENTIALS.sub(r"\1:***@", str(uri)),
            retry_initial_ms=opts["retry_initial_ms"],
            retry_max_ms=opts["retry_max_ms"],
            # a thread blocked in OpenCV returns within its open or read timeout
            join_timeout_s=max(opts["open_timeout_ms"], opts["read_timeout_ms"]) / 1000 + 1,
        )
        self.uri: int | str = uri
        self.api = _backend(opts["api"], uri)
        self.is_file = _is_file(uri)
        self.encoding: str = opts["encoding"]
        self.jpeg_quality: int = opts["jpeg_quality"]
        self.properties = _properties(opts["properties"])
        self._open_params = _timeouts(uri, opts["open_timeout_ms"], opts["read_timeout_ms"])
        if self.is_file:
            self._check_file()
        #: Set when a file has been played to its end.
        self.finished = threading.Event()
        self._frames = 0

    def start(self, inbox: RecordInbox) -> None:
        """Start the capture thread (it opens the camera, retrying until it is there)."""
        typestore()  # built now, not while the first frame waits
        super().start(inbox)

    def _open_device(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.uri, self.api, self._open_params)
        if not capture.isOpened():
            capture.release()
            raise OSError("OpenCV cannot open it")
        self._apply_properties(capture)
        return capture

    def _release(self, capture: cv2.VideoCapture) -> None:
        capture.release()

    def _read(self, capture: cv2.VideoCapture, inbox: RecordInbox) -> str | None:
        """Frames into the inbox until the source closes or a file ends (``None``) or the
        stream fails (why)."""
        first: tuple[float, float] | None = None  # a file's first frame: (monotonic s, ms)
        while not self._stop.is_set():
            if not capture.grab():
                return self._ended("no frame within the read timeout, or the stream ended")
            if self.is_file:  # pace a file by its presentation times, like a camera
                at_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                if first is None:
                    first = (time.monotonic(), at_ms)
                delay = first[0] + (at_ms - first[1]) / 1000 - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return None
            stamp_ns = time.time_ns()
            ok, frame = capture.retrieve()
            if not ok:
                return self._ended("a grabbed frame could not be retrieved")
            self._frames += 1
            self._put(frame, stamp_ns, inbox)
        return None

    def _ended(self, why: str) -> str | None:
        """A stream that fails is down (``why``); a file is over (played once, not reopened)."""
        if not self.is_file:
            return why
        self.logger.info("%s: end of file after %d frames", self.where, self._frames)
        self.finished.set()
        return None

    def _put(self, frame: np.ndarray, stamp_ns: int, inbox: RecordInbox) -> None:
        """One captured frame → its record in the inbox (or a ``bad_frame`` count)."""
        try:
            data, msgtype = frame_record_bytes(
                frame, self.encoding, stamp_ns, jpeg_quality=self.jpeg_quality
            )
        except ValueError as exc:
            self._warn_once("bad_frame", "frame %d dropped: %s", self._frames, exc)
            self._report(inbox, "bad_frame", str(exc))
            return
        inbox.put(RawRecord(self.topic, stamp_ns, data, msgtype, self.where, self._frames))

    def _apply_properties(self, capture: cv2.VideoCapture) -> None:
        """Set ``properties`` on a freshly opened capture; log what the device did not take."""
        for name, (prop, value) in self.properties.items():
            capture.set(prop, value)
            got = capture.get(prop)
            if got != value:
                self.logger.warning(
                    "%s: %s is %g, not the %g asked for", self.where, name, got, value
                )

    def _check_file(self) -> None:
        capture = cv2.VideoCapture(self.uri, self.api, self._open_params)
        try:
            if not capture.isOpened():
                raise ConfigError(f"OpenCV cannot read the video file {self.uri}", key="uri")
        finally:
            capture.release()


# -- options --------------------------------------------------------------------------------


def _is_gstreamer(uri: int | str) -> bool:
    return isinstance(uri, str) and "!" in uri and "://" not in uri.split("!", 1)[0]


def _is_device(uri: int | str) -> bool:
    return isinstance(uri, int) or uri.startswith("/dev/")


def _is_file(uri: int | str) -> bool:
    """Whether ``uri`` names a video file (a path outside ``/dev`` that is no URL or pipeline);
    one that does not exist is a ConfigError (a typo, not a camera yet to come)."""
    if _is_device(uri) or _is_gstreamer(uri) or "://" in str(uri):
        return False
    path = Path(str(uri))
    if not path.is_file():
        raise ConfigError(
            f"no video file {uri} (a camera is an index, a /dev path, a URL or a GStreamer "
            "pipeline)",
            key="uri",
        )
    return True


def _backend(api: str, uri: int | str) -> int:
    """The OpenCV backend of ``api`` for ``uri``; a ConfigError if this OpenCV lacks it."""
    if api == "any" and _is_gstreamer(uri):
        api = "gstreamer"
    backend = APIS[api]
    if backend != cv2.CAP_ANY and not cv2.videoio_registry.hasBackend(backend):
        why = " (a GStreamer pipeline)" if _is_gstreamer(uri) else ""
        raise ConfigError(
            f"this OpenCV has no {api} backend{why}: pip's opencv-python has FFmpeg and V4L2; "
            "GStreamer needs the system's OpenCV (see docs/live_sources.md, Jetson cameras)",
            key="api",
        )
    return backend


def _timeouts(uri: int | str, open_ms: int, read_ms: int) -> list[int]:
    """OpenCV open parameters: the open and read timeouts for files, URLs and pipelines (the
    FFmpeg and GStreamer backends honour them); none for devices, whose V4L2 backend may
    refuse parameters it does not know."""
    if _is_device(uri):
        return []
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms]


def _properties(given: Mapping[str, Any]) -> dict[str, tuple[int, float]]:
    """``{FRAME_WIDTH: 1920, FOURCC: MJPG}`` → ``{name: (cv2.CAP_PROP_*, value)}``."""
    out: dict[str, tuple[int, float]] = {}
    for name, value in given.items():
        prop = getattr(cv2, f"CAP_PROP_{str(name).upper()}", None)
        if not isinstance(prop, int):
            raise ConfigError(f"no OpenCV capture property CAP_PROP_{name}", key="properties")
        number = value
        if str(name).upper() == "FOURCC" and isinstance(value, str) and len(value) == 4:
            number = cv2.VideoWriter.fourcc(*value)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ConfigError(
                f"capture property {name} must be a number (FOURCC: four letters), got {value!r}",
                key="properties",
            )
        out[str(name).upper()] = (prop, float(number))
    return out
