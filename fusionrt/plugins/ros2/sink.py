"""The ``ros2`` sink: detections and diagnostics to the rest of a ROS 2 stack, over Zenoh.

Each frame's detections are published as ``vision_msgs/msg/Detection3DArray`` on ``topic``
(default ``/fusionrt/detections``) and, with ``autoware_topic`` set, also as
``autoware_perception_msgs/msg/DetectedObjects`` (:mod:`~fusionrt.plugins.ros2.convert`
says how); header stamp = the frame's stamp, frame id = the rig frame. Once ``start(info)``
has given it the run's health, a timer thread publishes ``diagnostic_msgs/msg/DiagnosticArray``
on ``diagnostics_topic`` (default ``/diagnostics``) every ``diagnostics_period_s`` (default 1 s;
0 turns it off) — :mod:`~fusionrt.plugins.ros2.diagnostics` says what it holds.

Publishing never blocks the pipeline: a subscriber that is slow or absent costs it nothing
(samples Zenoh cannot queue are dropped, as rmw_zenoh's publishers drop them). A session that
cannot publish (closed, broken) is a :class:`~fusionrt.runtime.errors.SinkError` naming the
sink and topic. Session options are the source's (``domain_id``, ``mode``, ``connect``,
``listen``, ``multicast_scouting``, ``node_name``, ``namespace``); in a pipeline with a
``live:`` section of transport ``zenoh`` they default to that section's, and a source and sink
with the same options share one node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fusionrt.plugins.ros2 import convert
from fusionrt.plugins.ros2.diagnostics import DIAGNOSTIC_ARRAY, diagnostic_array
from fusionrt.plugins.ros2.session import SessionOptions
from fusionrt.plugins.ros2.wire import validate_topic
from fusionrt.runtime.components import Sink
from fusionrt.runtime.errors import ConfigError, FusionError
from fusionrt.runtime.health import RunHealth
from fusionrt.runtime.messages import Detections, Frame

if TYPE_CHECKING:
    from fusionrt.plugins.ros2.node import Node, Publisher

__all__ = ["Ros2Sink"]

logger = logging.getLogger("fusionrt.ros2.sink")


class Ros2Sink(Sink):
    """Publishes detections and diagnostics as ROS 2 messages (see the module docstring)."""

    name = "ros2"
    #: in a pipeline whose ``live:`` transport is the ``ros2`` source, the sink's session
    #: options default to that section's, so source and sink share one node and session
    live_transport: ClassVar[str] = "ros2"

    def __init__(
        self,
        out_dir: Path = Path("out"),
        *,
        topic: str = "/fusionrt/detections",
        autoware_topic: str | None = None,
        diagnostics_topic: str = "/diagnostics",
        diagnostics_period_s: float = 1.0,
        **session_options: Any,
    ) -> None:
        for key, value in (
            ("topic", topic),
            ("autoware_topic", autoware_topic),
            ("diagnostics_topic", diagnostics_topic),
        ):
            if key == "autoware_topic" and value is None:
                continue
            try:
                validate_topic(value)  # type: ignore[arg-type]
            except ValueError as exc:
                raise ConfigError(str(exc), sink=self.name, key=key) from None
        period = diagnostics_period_s
        if isinstance(period, bool) or not isinstance(period, int | float) or not period >= 0:
            raise ConfigError(
                f"diagnostics_period_s must be a number >= 0, got {period!r}",
                sink=self.name,
                key="diagnostics_period_s",
            )
        options = SessionOptions.from_options(session_options, owner="sink ros2")
        self.diagnostics_period_s = float(period)
        self.frame_id = "ego"
        self.published = 0
        self.diagnostics_published = 0
        self._health: Any = None
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._closed = False
        from fusionrt.plugins.ros2.node import Node  # noqa: PLC0415  (Zenoh loads on first use)

        self.node: Node = Node.acquire(options)
        try:
            self._detections = self.node.publisher(topic, convert.DETECTION3D_ARRAY)
            self._objects: Publisher | None = None
            if autoware_topic is not None:
                self._objects = self.node.publisher(autoware_topic, convert.DETECTED_OBJECTS)
            self._diagnostics = self.node.publisher(diagnostics_topic, DIAGNOSTIC_ARRAY)
        except BaseException:
            self.node.release()
            raise

    def start(self, info: Any) -> None:
        """Take the rig frame and the health snapshot; start the diagnostics timer."""
        rig = getattr(info, "rig", None)
        if rig is not None:
            self.frame_id = rig.frame
        self._health = getattr(info, "health", None)
        if self._health is not None and self.diagnostics_period_s > 0 and self._timer is None:
            self._timer = threading.Thread(
                target=self._diagnostics_loop, name="fusionrt-ros2-diagnostics", daemon=True
            )
            self._timer.start()

    def write(self, frame: Frame, detections: Detections, timings_ms: Mapping[str, float]) -> None:
        """Publish the frame's detections (and objects)."""
        stamp = int(frame.stamp_ns)
        message = convert.detection3d_array(detections, stamp, self.frame_id)
        self._detections.publish(convert.serialize(message))
        if self._objects is not None:
            objects = convert.detected_objects(detections, stamp, self.frame_id)
            self._objects.publish(convert.serialize(objects))
        self.published += 1

    def _diagnostics_loop(self) -> None:
        """Publish a DiagnosticArray every period until closed; a failure is logged, never
        fatal (diagnostics must not take the run down)."""
        previous: RunHealth | None = None
        while not self._stop.wait(self.diagnostics_period_s):
            try:
                previous = self.publish_diagnostics(previous)
            except (FusionError, RuntimeError) as exc:
                logger.warning("%s: diagnostics not published: %s", self.name, exc)

    def publish_diagnostics(self, previous: RunHealth | None = None) -> RunHealth:
        """Publish one DiagnosticArray from a fresh snapshot (and ``previous``); the snapshot."""
        current: RunHealth = self._health()
        message = diagnostic_array(current, previous, time.time_ns(), self.node.options.node_name)
        self._diagnostics.publish(convert.serialize(message))
        self.diagnostics_published += 1
        return current

    def close(self) -> None:
        """Stop the timer, undeclare the publishers and give back the node (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.join()
        for publisher in (self._detections, self._objects, self._diagnostics):
            if publisher is not None:
                publisher.close()
        self.node.release()
