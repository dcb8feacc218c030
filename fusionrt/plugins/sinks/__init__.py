"""Built-in sinks: where a run's detections go.

* :class:`~fusionrt.plugins.sinks.jsonl.JsonLinesSink` (``jsonl``): one JSON line per frame;
* :class:`~fusionrt.plugins.sinks.mcap.FoxgloveMcapSink` (``mcap``): an MCAP file for Foxglove
  (the channels of :mod:`~fusionrt.plugins.sinks.foxglove_channels`: rig transforms, camera
  calibrations, boxes, clouds, the recorded images with the boxes as annotations);
* :class:`~fusionrt.plugins.sinks.video.VideoSink` (``video``): camera + bird's-eye view as
  H.264 MP4 and PNGs;
* :class:`~fusionrt.plugins.sinks.foxglove_live.FoxgloveLiveSink` (``foxglove``): the same
  channels as the ``mcap`` sink, served live to the Foxglove app over WebSocket.

Sink contract (besides :class:`~fusionrt.runtime.components.Sink`): the pipeline constructs a
sink as ``cls(out_dir=PATH, **options)`` (options from the pipeline file) and, when the sink
has a ``start(info)`` method, calls it once before the first frame with a
:class:`~fusionrt.runtime.pipeline.RunInfo` (rig, model, sensors, ground-truth lookup).
``write`` is called from one thread, in frame order; ``close`` once, also on Ctrl-C or after
a failed ``write``. A ``write`` or ``close`` that cannot write raises
:class:`~fusionrt.runtime.errors.SinkError` naming the sink and the file, after leaving the
file readable up to the failure; ``close`` does not raise again an error ``write`` raised.

``fusionrt mcap-recover`` (:mod:`~fusionrt.plugins.sinks.mcap_recover`) rewrites the MCAP of a
killed run whole.
"""

from __future__ import annotations

from fusionrt.runtime.components import Sink
from fusionrt.runtime.hookspecs import hookimpl


@hookimpl
def fusionrt_sinks() -> list[type[Sink]]:
    """The built-in sinks (their modules load lazily: the Foxglove sinks import foxglove)."""
    from fusionrt.plugins.sinks.foxglove_live import FoxgloveLiveSink  # noqa: PLC0415
    from fusionrt.plugins.sinks.jsonl import JsonLinesSink  # noqa: PLC0415
    from fusionrt.plugins.sinks.mcap import FoxgloveMcapSink  # noqa: PLC0415
    from fusionrt.plugins.sinks.video import VideoSink  # noqa: PLC0415

    return [JsonLinesSink, FoxgloveMcapSink, VideoSink, FoxgloveLiveSink]
