"""A fragmented MP4 written with PyAV: every frame on disk as it comes, every failure raised.

``cv2.VideoWriter`` was replaced because it hides failures: its ``write`` only returns
``False`` (no cause) when the disk is full, and it writes the ``moov`` index at ``release``, so
a run that is killed or runs out of space leaves an MP4 no player opens. Here PyAV (FFmpeg's
libraries, the same ``mpeg4``/mp4v encoder OpenCV used) writes a *fragmented* MP4: the
``moov`` comes first, each frame is a ``moof`` + ``mdat`` fragment flushed to the file as it
is encoded, so a killed run leaves every frame but the last readable; a failed write raises
:class:`~fusionrt.runtime.errors.SinkError` (FFmpeg's own error, ``[Errno 28] No space left on
device``) and :meth:`Mp4File.close` cuts the torn fragment off (:mod:`.isobmff`).
"""

from __future__ import annotations

import os
from contextlib import suppress
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from fusionrt.plugins.sinks.files import sink_error
from fusionrt.plugins.sinks.isobmff import whole_end
from fusionrt.runtime.errors import SinkError

__all__ = ["Mp4File"]

#: moov first and empty; a fragment per frame, each at its own moof's offset (what browsers
#: and ffmpeg expect of fragmented MP4)
_MOVFLAGS = "empty_moov+frag_every_frame+default_base_moof"
#: bits per pixel and frame: about cv2.VideoWriter's mp4v quality (32.8 against 32.7 dB PSNR,
#: 1.1x its size, on the sample drive's video frames)
_BITS_PER_PIXEL = 0.7


class Mp4File:
    """An MP4 of BGR frames of one size at ``fps`` (module docstring). Errors are
    :class:`SinkError` naming ``sink`` and the file."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], sink: str) -> None:
        self.path, self.sink = Path(path), sink
        self.error: SinkError | None = None
        width, height = size
        rate = Fraction(fps).limit_denominator(1001)
        try:
            self._container: Any = av.open(
                str(self.path),
                "w",
                format="mp4",
                options={"movflags": _MOVFLAGS, "flush_packets": "1"},
            )
            stream = self._container.add_stream("mpeg4", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.bit_rate = round(_BITS_PER_PIXEL * width * height * float(rate))
            stream.gop_size = max(1, round(float(rate)))  # a keyframe a second: seeking
        except (OSError, av.FFmpegError) as exc:
            raise self._error(exc, "open") from exc
        self._stream = stream
        self._count = 0

    def _error(self, exc: Exception, action: str = "write") -> SinkError:
        if isinstance(exc, OSError) and exc.errno is not None:
            return sink_error(self.sink, self.path, exc, action)
        return SinkError(f"cannot {action} its output: {exc}", sink=self.sink, file=str(self.path))

    def write(self, image_bgr: np.ndarray) -> None:
        """Encode one frame and write its fragment."""
        if self.error is not None:
            raise self.error
        frame = av.VideoFrame.from_ndarray(image_bgr, format="bgr24")
        frame.pts = self._count
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            self.error = self._error(exc)
            raise self.error from exc
        self._count += 1

    def close(self) -> None:
        """Write the last frames and close; after a failure, cut the torn fragment off.

        Raises the :class:`SinkError` of a write that fails here, not one already raised.
        """
        container, self._container = self._container, None
        if container is None:
            return
        error: SinkError | None = None
        if self.error is None:
            try:
                for packet in self._stream.encode():
                    container.mux(packet)
                container.close()
            except (OSError, av.FFmpegError) as exc:
                self.error = error = self._error(exc)
        if self.error is not None:
            with suppress(OSError, av.FFmpegError):  # what it could not write is cut off below
                container.close()
            with suppress(OSError):  # a file that cannot even be cut keeps its torn tail
                os.truncate(self.path, whole_end(self.path))
        if error is not None:
            raise error
