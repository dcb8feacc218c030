"""ROS 2 over Zenoh: fusionrt as a node of a ROS 2 stack running rmw_zenoh, without ROS.

* :mod:`~fusionrt.plugins.ros2.wire` — rmw_zenoh's wire conventions (key expressions,
  attachments, liveliness tokens, GIDs, QoS), the one place they are spelled;
* :mod:`~fusionrt.plugins.ros2.session` / :mod:`~fusionrt.plugins.ros2.node` — a Zenoh
  session from the ``live:`` options and the node on it (tokens, publishers, subscriptions);
* :class:`~fusionrt.plugins.ros2.source.Ros2Source` (live source ``ros2``) — topics in, as the
  same records a bag gives;
* :class:`~fusionrt.plugins.ros2.sink.Ros2Sink` (sink ``ros2``) — detections
  (``vision_msgs``, optionally ``autoware_perception_msgs``) and ``/diagnostics`` out;
* :mod:`~fusionrt.plugins.ros2.play` — ``fusionrt play``: a recorded drive onto Zenoh.

The message definitions fusionrt publishes that rosbags lacks ship in ``interfaces/`` with
their licence and are registered in :func:`fusionrt.plugins.ros_types.typestore`. See
``docs/ros2.md``.
"""

from __future__ import annotations

from fusionrt.runtime.components import Sink, Source
from fusionrt.runtime.hookspecs import hookimpl

__all__ = ["fusionrt_sinks", "fusionrt_sources"]


@hookimpl
def fusionrt_sources() -> list[type[Source]]:
    """The ``ros2`` live source."""
    from fusionrt.plugins.ros2.source import Ros2Source  # noqa: PLC0415

    return [Ros2Source]


@hookimpl
def fusionrt_sinks() -> list[type[Sink]]:
    """The ``ros2`` sink."""
    from fusionrt.plugins.ros2.sink import Ros2Sink  # noqa: PLC0415

    return [Ros2Sink]
