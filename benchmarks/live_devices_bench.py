"""Cost of the ``socketcan`` and ``video`` live sources (functions ``benchmarks/live_bench.py``
may call; run alone, JSON to ``benchmarks/results/live_devices_bench.json``).

* :func:`can_source_cost` — the sample drive's CAN frames (``can0.log``, repeated to
  ``frames``) sent by another node of a python-can ``virtual`` bus, received by the
  ``socketcan`` source into a ``RecordInbox`` and decoded by the sample pipeline's ``can``
  sensor on a consumer thread, against the same frames read from the candump log into records
  and decoded on one thread. Per frame: the CPU time of the source's receive thread
  (``pthread_getcpuclockid``; the sender's deep copies are the sender's), of the consumer
  (inbox + decode), of the log reader (lines → records) and of its decode; the ratio of the live
  path (receive + consume) to the log path (read + decode); and the frames per second one core
  sustains through the source (1 / its CPU per frame). Best of ``repeat``.
* :func:`video_arrival_latency` — an H.264 file of a synthetic road scene played by the
  ``video`` source (paced at 30 frames/s; the encodings round-robin, ``repeat`` times): for
  each frame, the wall time its record entered the
  inbox minus its stamp (the time ``grab`` returned it): what the source adds between a frame's
  arrival and its record (OpenCV's ``retrieve``, a YUV → BGR conversion, and the record's
  bytes); the CPU time of the record's bytes alone and of the ``camera`` sensor's decode of the
  record (median of 20, all threads of the process), for each ``encoding``.

    python benchmarks/live_devices_bench.py [--can-frames 60000] [--repeat 3]
        [--video-frames 60] [--out PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import av
import can
import cv2
import numpy as np
from machine import cpu_name, package_version

from fusionrt.plugins.sensors.camera import CameraSensor, synthetic_road_image
from fusionrt.plugins.sensors.can import CANDUMP_LINE_MSGTYPE, CanSensor, read_candump
from fusionrt.plugins.sources.frame_records import frame_record_bytes
from fusionrt.plugins.sources.socketcan import SocketCanSource
from fusionrt.plugins.sources.video_capture import VideoCaptureSource
from fusionrt.runtime.live import RecordInbox
from fusionrt.runtime.messages import RawRecord

ROOT = Path(__file__).resolve().parents[1]
CAN_LOG = ROOT / "examples" / "drives" / "sample" / "can0.log"
TOPIC = "/vehicle/can0"
CAN_OPTIONS = {  # the sample pipeline's CAN sensor (examples/pipelines/sample.yaml)
    "dbc_paths": [str(ROOT / "fusionrt" / "sim" / "data" / "fusionrt_car.dbc")],
    "signals": {
        "VEHICLE_SPEED.VehicleSpeed": {"slot": "speed_mps", "scale": 1 / 3.6},
        "YAW_RATE.YawRate": {"slot": "yaw_rate_rps", "scale": np.pi / 180},
        "STEERING.SteeringWheelAngle": {"slot": "steering_angle_rad", "scale": np.pi / 180},
    },
}


def _thread_cpu_ns(thread: threading.Thread) -> int:
    """CPU time of another thread of this process (Linux)."""
    assert thread.ident is not None
    return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))


def _us(ns: float, count: int) -> float:
    return round(ns / count / 1e3, 3)


def can_live_once(frames: list[can.Message]) -> dict[str, float]:
    """One run of the live path: per-frame CPU of the receive thread and of the consumer."""
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    source = SocketCanSource([TOPIC], interface="virtual", channel=channel)
    inbox = RecordInbox(len(frames))
    source.start(inbox)
    while source.bus is None:
        time.sleep(0.001)
    receiver = next(t for t in threading.enumerate() if t.name.endswith(channel))
    sensor = CanSensor("can", TOPIC, **CAN_OPTIONS)
    consumed: dict[str, int] = {}

    def consume() -> None:
        start = time.thread_time_ns()
        for _ in range(len(frames)):
            arrival = inbox.get(timeout_s=30)
            if arrival is None:
                raise RuntimeError("the socketcan source stopped delivering")
            sensor.decode(arrival[0])
        consumed["cpu_ns"] = time.thread_time_ns() - start

    consumer = threading.Thread(target=consume)
    sender = can.Bus(interface="virtual", channel=channel)  # stamps each frame as it sends
    receive_before = _thread_cpu_ns(receiver)
    started = time.perf_counter()
    consumer.start()
    for message in frames:
        sender.send(message)
    consumer.join()
    wall_s = time.perf_counter() - started
    receive_ns = _thread_cpu_ns(receiver) - receive_before
    sender.shutdown()
    source.close()
    count = len(frames)
    return {
        "receive_cpu_us": _us(receive_ns, count),
        "consume_cpu_us": _us(consumed["cpu_ns"], count),
        "live_cpu_us": _us(receive_ns + consumed["cpu_ns"], count),
        "wall_frames_per_s": round(count / wall_s),  # sender, source and consumer on 1 GIL
    }


def can_log_once(path: Path, count: int) -> dict[str, float]:
    """One run of the log path: lines → records (as a replay reads a candump log) → decode."""
    lines = [raw for raw in path.read_bytes().splitlines() if raw.strip()]
    sensor = CanSensor("can", TOPIC, **CAN_OPTIONS)
    start = time.thread_time_ns()
    records = []
    for index, raw in zip(range(count), itertools.cycle(lines), strict=False):
        records.append(RawRecord(TOPIC, index, raw, CANDUMP_LINE_MSGTYPE, str(path), index))
    read_ns = time.thread_time_ns() - start
    start = time.thread_time_ns()
    for record in records:
        sensor.decode(record)
    decode_ns = time.thread_time_ns() - start
    return {
        "read_cpu_us": _us(read_ns, count),
        "decode_cpu_us": _us(decode_ns, count),
        "log_cpu_us": _us(read_ns + decode_ns, count),
    }


def can_source_cost(frames: int = 60_000, repeat: int = 3) -> dict[str, Any]:
    """The socketcan source's cost per frame against reading a candump log (module docstring)."""
    logged = list(read_candump(CAN_LOG))
    messages = [
        can.Message(
            arbitration_id=frame.arbitration_id,
            is_extended_id=frame.is_extended,
            data=frame.data,
        )
        for frame, _ in zip(itertools.cycle(logged), range(frames), strict=False)
    ]
    live_runs, log_runs = [], []
    for _ in range(repeat):  # interleaved, so that load from other processes hits both alike
        live_runs.append(can_live_once(messages))
        log_runs.append(can_log_once(CAN_LOG, frames))
    live = min(live_runs, key=lambda run: run["live_cpu_us"])
    log = min(log_runs, key=lambda run: run["log_cpu_us"])
    return {
        "frames": frames,
        "live": live,
        "log": log,
        "live_to_log_ratio": round(live["live_cpu_us"] / log["log_cpu_us"], 3),
        "receive_to_read_ratio": round(live["receive_cpu_us"] / log["read_cpu_us"], 3),
        "source_frames_per_s_one_core": round(1e6 / live["receive_cpu_us"]),
        "runs": {"live": live_runs, "log": log_runs},
    }


def _write_video(path: Path, width: int, height: int, frames: int, fps: int) -> None:
    scene = synthetic_road_image(width, height)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            moved = np.roll(scene, 4 * index, axis=1)  # motion, so frames differ
            frame = av.VideoFrame.from_ndarray(moved, format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


class _StampedInbox(RecordInbox):
    """Notes, for each record put, the wall time it entered minus its stamp."""

    def __init__(self) -> None:
        super().__init__(1 << 16)
        self.latency_ns: list[int] = []

    def put(self, record: RawRecord, arrival_ns: int | None = None) -> None:
        self.latency_ns.append(time.time_ns() - record.stamp_ns)
        super().put(record, arrival_ns)


def _play(path: Path, encoding: str, frames: int, fps: int) -> tuple[list[float], RawRecord]:
    """One play of ``path`` through the video source: each frame's arrival-to-record latency
    (ms) and the first record."""
    source = VideoCaptureSource(["/camera"], uri=str(path), encoding=encoding)
    inbox = _StampedInbox()
    source.start(inbox)
    if not source.finished.wait(frames / fps * 5 + 30):
        raise RuntimeError("the video file did not play to its end")
    source.close()
    first = inbox.get(timeout_s=0)
    if first is None or len(inbox) + 1 != frames:
        raise RuntimeError(f"{len(inbox) + 1} of {frames} frames arrived")
    return [ns / 1e6 for ns in inbox.latency_ns], first[0]


def _cpu_ms(func: Any, repeat: int = 20) -> float:
    """Median CPU time of ``func()`` over every thread of the process (OpenCV's included), which
    a loaded machine's preemption does not inflate as it does wall time."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        func()
        samples.append((time.process_time() - start) * 1e3)
    return float(np.median(samples))


def _decode_ms(record: RawRecord) -> float:
    camera = CameraSensor("camera", "/camera")
    return _cpu_ms(lambda: camera.decode(record))


def _record_ms(path: Path, encoding: str) -> float:
    """The record's bytes alone, from the file's first frame (the rest of the latency is
    OpenCV's ``retrieve``)."""
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"cannot read {path}")
    return _cpu_ms(lambda: frame_record_bytes(bgr, encoding, time.time_ns()))


def video_arrival_latency(
    width: int,
    height: int,
    *,
    encodings: tuple[str, ...] = ("rgb8", "bgr8", "jpeg"),
    frames: int = 60,
    repeat: int = 3,
    fps: int = 30,
) -> list[dict[str, Any]]:
    """Arrival-to-record latency of the video source and the camera's decode of its records,
    per encoding; the encodings played round-robin ``repeat`` times (the percentiles are over
    every frame of every play) so that load from other processes hits them alike."""
    latencies: dict[str, list[float]] = {encoding: [] for encoding in encodings}
    firsts: dict[str, RawRecord] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.mp4"
        _write_video(path, width, height, frames, fps)
        for _ in range(repeat):
            for encoding in encodings:
                played, firsts[encoding] = _play(path, encoding, frames, fps)
                latencies[encoding].extend(played)
        record_ms = {encoding: _record_ms(path, encoding) for encoding in encodings}
    out = []
    for encoding in encodings:
        latency_ms = np.asarray(latencies[encoding])
        record = firsts[encoding]
        out.append(
            {
                "size": f"{width}x{height}",
                "encoding": encoding,
                "frames": int(latency_ms.size),
                "record_bytes": len(record.data),
                "arrival_to_record_ms": {
                    "p50": round(float(np.percentile(latency_ms, 50)), 3),
                    "p90": round(float(np.percentile(latency_ms, 90)), 3),
                    "max": round(float(latency_ms.max()), 3),
                },
                "record_bytes_cpu_ms": round(record_ms[encoding], 3),
                "camera_decode_cpu_ms": round(_decode_ms(record), 3),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--can-frames", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--video-frames", type=int, default=60)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/live_devices_bench.json"
    )
    args = parser.parse_args()
    can_result = can_source_cost(args.can_frames, args.repeat)
    live, log = can_result["live"], can_result["log"]
    print(
        f"can: receive {live['receive_cpu_us']} + consume {live['consume_cpu_us']} µs/frame "
        f"live, read {log['read_cpu_us']} + decode {log['decode_cpu_us']} µs/frame from the "
        f"log: ratio {can_result['live_to_log_ratio']}; "
        f"{can_result['source_frames_per_s_one_core']} frames/s per core through the source"
    )
    video = []
    for width, height in [(640, 480), (1920, 1080)]:
        for result in video_arrival_latency(
            width, height, frames=args.video_frames, repeat=args.repeat
        ):
            video.append(result)
            print(
                f"video {result['size']:9s} {result['encoding']:4s}: arrival→record p50 "
                f"{result['arrival_to_record_ms']['p50']} ms (p90 "
                f"{result['arrival_to_record_ms']['p90']}; record bytes "
                f"{result['record_bytes_cpu_ms']} ms CPU), camera decode "
                f"{result['camera_decode_cpu_ms']} ms CPU"
            )
    report = {
        "benchmark": "live_devices_bench",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "python-can": package_version("python-can"),
            "opencv": cv2.__version__,
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),  # 2 shared cores
        },
        "command": "python benchmarks/live_devices_bench.py " + " ".join(sys.argv[1:]),
        "results": {"can": can_result, "video": video},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
