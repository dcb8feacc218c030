"""A fragmented MP4 written with PyAV: every frame on disk as it comes, every failure raised,
in a codec browsers play.

``cv2.VideoWriter`` was replaced because it hides failures: its ``write`` only returns
``False`` (no cause) when the disk is full, and it writes the ``moov`` index at ``release``, so
a run that is killed or runs out of space leaves an MP4 no player opens. Here PyAV (FFmpeg's
libraries) writes a *fragmented* MP4: the ``moov`` comes first (what ``+faststart`` gives a
plain MP4, without rewriting the file at the end) and each frame is a ``moof`` + ``mdat``
fragment written as it is encoded, so a killed run leaves every frame but the last readable.
Browsers play fragmented MP4 (it is what DASH and Media Source Extensions stream).

The codec (:data:`CODECS`): H.264 (``libx264``, in PyAV's wheels; every browser), else VP9
(``libvpx-vp9``: Chrome, Firefox, Edge, Safari 14+), else MPEG-4 Part 2 (``mpeg4``: players,
no browser); a codec whose encoder this FFmpeg lacks is skipped with a logged reason. Each is
set for one frame in, one packet out (no B-frames, no look-ahead), so what reaches the disk
is every frame but the last, as above.

FFmpeg writes through a :class:`~fusionrt.plugins.sinks.files.RecordFile` (PyAV's Python file
object support), not to a path of its own: FFmpeg ignores a failed write while it closes a
file (the end of the MP4 would be lost without a word), whereas the RecordFile raises
:class:`~fusionrt.runtime.errors.SinkError` with the cause, which PyAV passes on. After a
failure :meth:`Mp4File.close` cuts the torn fragment off (:mod:`.isobmff`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
import cv2
import numpy as np

from fusionrt.plugins.sinks.files import RecordFile
from fusionrt.plugins.sinks.isobmff import whole_end
from fusionrt.runtime.errors import SinkError

if TYPE_CHECKING:
    from av.video.stream import VideoStream

__all__ = ["CODECS", "FALLBACKS", "Mp4File", "choose_codec", "has_encoder"]

#: moov first and empty; a fragment per frame, each at its own moof's offset (what browsers
#: and ffmpeg expect of fragmented MP4); each written out as soon as it is complete
_OPTIONS = {"movflags": "empty_moov+frag_every_frame+default_base_moof", "flush_packets": "1"}
#: codec -> (FFmpeg encoder, its options): a packet per frame, at once (module docstring);
#: qualities chosen on the sample drive's video frames (about 40 dB PSNR, the size of mp4v's)
CODECS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}),
    "vp9": (
        "libvpx-vp9",
        {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "crf": "32", "b": "0"},
    ),
    "mpeg4": ("mpeg4", {}),
}
#: the codecs tried, in order, from each one asked for
FALLBACKS = {"h264": ("h264", "vp9", "mpeg4"), "vp9": ("vp9", "mpeg4"), "mpeg4": ("mpeg4",)}
#: FFmpeg's AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic SMPTE170M (BT.601)
#: and AVColorRange MPEG (limited)
_BT601 = 6
_LIMITED_RANGE = 1
#: mpeg4's bits per pixel and frame: about cv2.VideoWriter's mp4v quality
_MPEG4_BITS_PER_PIXEL = 0.7

log = logging.getLogger(__name__)


def has_encoder(name: str) -> bool:
    """Whether this PyAV's FFmpeg has the encoder ``name``."""
    try:
        av.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def choose_codec(codec: str, available: Callable[[str], bool] = has_encoder) -> str:
    """The first codec of ``codec``'s fallbacks whose encoder is ``available``; each one
    skipped is logged with the reason."""
    for candidate in FALLBACKS[codec]:
        encoder = CODECS[candidate][0]
        if available(encoder):
            return candidate
        log.warning(
            "video: this FFmpeg (PyAV %s) has no %s encoder (%s): trying the next codec",
            av.__version__,
            candidate,
            encoder,
        )
    raise SinkError(f"no video encoder of {', '.join(FALLBACKS[codec])} in this FFmpeg")


class _Output:
    """What PyAV writes to: write-only (no seek: fragmented MP4 needs none)."""

    def __init__(self, file: RecordFile) -> None:
        self.file = file

    def write(self, data: bytes) -> int:
        self.file.append(data)
        return len(data)


class Mp4File:
    """An MP4 of BGR frames of one even size at ``fps`` in ``codec`` (or its fallback: module
    docstring; ``self.codec`` says which). Errors are :class:`SinkError` naming ``sink`` and
    the file."""

    def __init__(
        self, path: Path, fps: float, size: tuple[int, int], sink: str, codec: str = "h264"
    ) -> None:
        self.path, self.sink = Path(path), sink
        width, height = size
        if width % 2 or height % 2:  # 4:2:0 chroma: H.264 and VP9 encoders refuse odd sizes
            raise ValueError(f"video size {width}x{height} must be even")
        try:
            self.codec = choose_codec(codec)
        except SinkError as exc:
            raise SinkError(exc.message, sink=sink, file=str(path)) from None
        encoder, options = CODECS[self.codec]
        self._file = RecordFile(self.path, sink)
        rate = Fraction(fps).limit_denominator(1001)
        try:
            self._container: Any = av.open(_Output(self._file), "w", format="mp4", options=_OPTIONS)
            stream = cast(
                "VideoStream",
                self._container.add_stream(encoder, rate=rate, options=dict(options)),
            )
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            # what OpenCV's BGR -> I420 gives (write): BT.601, limited range; said in the
            # stream so that players do not guess BT.709
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = _BT601
            context.color_range = _LIMITED_RANGE
            if self.codec == "mpeg4":
                stream.bit_rate = round(_MPEG4_BITS_PER_PIXEL * width * height * float(rate))
            stream.gop_size = max(1, round(float(rate)))  # a keyframe a second: seeking
        except av.FFmpegError as exc:
            self._file.close()
            raise SinkError(f"cannot open its output: {exc}", sink=sink, file=str(path)) from exc
        self._stream = stream
        self._count = 0

    def _encode(self, frame: av.VideoFrame | None) -> None:
        """Encode ``frame`` (``None``: drain the encoder) and mux its packets."""
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.FFmpegError as exc:  # FFmpeg's own failure, not a write (that is SinkError)
            raise SinkError(
                f"cannot encode its output: {exc}", sink=self.sink, file=str(self.path)
            ) from exc

    def write(self, image_bgr: np.ndarray) -> None:
        """Encode one frame and write its fragment."""
        if self._file.error is not None:
            raise self._file.error
        # OpenCV's conversion, not FFmpeg's: swscale's bgr24 -> yuv420p costs 2.5 ms a frame
        # of the sample drive's video, cvtColor 0.2 ms
        yuv = np.asarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YUV_I420), np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self._count
        self._encode(frame)
        self._count += 1

    def close(self) -> None:
        """Write the last frames and close; after a failure, cut the torn fragment off.

        Raises the :class:`SinkError` of a write that fails here, not one already raised.
        """
        container, self._container = self._container, None
        if container is None:
            return
        error: SinkError | None = None
        if self._file.error is None:
            try:
                self._encode(None)
                container.close()  # the last fragment and the fragment index (mfra)
            except SinkError as exc:
                error = exc
            except av.FFmpegError as exc:
                error = SinkError(
                    f"cannot finish its output: {exc}", sink=self.sink, file=str(self.path)
                )
        if self._file.error is not None or error is not None:
            with suppress(SinkError, av.FFmpegError):  # what it cannot write is cut off below
                container.close()
            self._file.truncate(whole_end(self.path))
        self._file.close()
        if error is not None:
            raise error
