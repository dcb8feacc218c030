"""Test video written with PyAV (FFmpeg): H.264 files, and an MPEG-TS/H.264 stream over TCP.

Frames are flat grey (one level per frame or per stream), so a lossy codec keeps them
recognisable. Run as a script, in a subprocess the test can kill mid-stream::

    python video_stream.py serve PORT GREY [--fps 25] [--size 96x64]

listens on ``127.0.0.1:PORT`` (0: a free port; ``SO_REUSEADDR``, so a second server may take
the port of a killed one), prints ``listening PORT`` once it does, accepts one client and
streams frames of level ``GREY`` to it until killed. The socket is the server's own (rather than
FFmpeg's ``tcp://...?listen=1``, which PyAV also writes to) so that the test knows when it
listens: a client connecting earlier would be refused.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path

import av
import numpy as np

SIZE = (96, 64)  # width, height


def frame_of(level: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A flat grey RGB frame."""
    return np.full((size[1], size[0], 3), level, np.uint8)


def write_file(path: Path, levels: list[int], fps: int = 25, size: tuple[int, int] = SIZE) -> Path:
    """An H.264 MP4 of one flat frame per level, at ``fps``."""
    with av.open(str(path), "w") as out:
        stream = _stream(out, fps, size)
        for index, level in enumerate(levels):
            out.mux(stream.encode(_video_frame(level, index, size)))
        out.mux(stream.encode(None))
    return path


def _stream(out: av.container.OutputContainer, fps: int, size: tuple[int, int]) -> av.VideoStream:
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
    return stream


def _video_frame(level: int, index: int, size: tuple[int, int]) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(frame_of(level, size), format="rgb24")
    frame.pts = index
    return frame


def serve(port: int, level: int, fps: int, size: tuple[int, int]) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    client, _ = listener.accept()
    with client.makefile("wb") as wire, av.open(wire, "w", format="mpegts") as out:
        stream = _stream(out, fps, size)
        index = 0
        while True:  # until killed
            out.mux(stream.encode(_video_frame(level, index, size)))
            wire.flush()
            index += 1
            time.sleep(1 / fps)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve"])
    parser.add_argument("port", type=int)
    parser.add_argument("grey", type=int)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    serve(args.port, args.grey, args.fps, (width, height))
