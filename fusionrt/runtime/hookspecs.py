"""The plugin contract: pluggy hook specifications of the project ``fusionrt``.

Three families of hooks, all on the control path (never per message):

* **Registration** hooks return component classes of one kind. Each class has a ``name``
  class attribute, unique within its kind across all plugins; a clash is a ``PluginError``.
* **Lifecycle** hooks run once around a pipeline run.
* **Observer** hooks report what happened during a run: a plugin watches the run without
  sitting on its hot path. They are called from the runtime's control thread, after the fact.

Built-in plugins implement these hooks exactly as third-party plugins do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fusionrt.runtime.messages import Detections, Frame

PROJECT_NAME = "fusionrt"
ENTRY_POINT_GROUP = "fusionrt"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- registration -------------------------------------------------------------------------


@hookspec
def fusionrt_sensors() -> Sequence[type]:
    """Return the sensor classes this plugin contributes.

    Called once when the registry loads. Each class subclasses
    :class:`fusionrt.runtime.sensor.Sensor` and has a ``name`` unique among sensors.
    """


@hookspec
def fusionrt_sources() -> Sequence[type]:
    """Return the source classes (recorded-drive readers, live inputs) this plugin contributes.

    Called once when the registry loads. Each class subclasses
    :class:`fusionrt.runtime.components.Source` and has a ``name`` unique among sources.

    A source of recordings also says which paths it reads: the class method
    ``can_open(path) -> bool`` (a cheap look at the path that never raises) and ``opens`` (the
    same in words, listed when no source can open a path). ``fusionrt run --source PATH``
    builds the one registered source whose ``can_open`` says yes as ``cls(path, topics=[...])``
    (``--source-kind NAME`` chooses one; two that both can is an error naming both). It may
    give the drive's rig, ego poses, topics (``recorded_topics``) and ground truth
    (``ground_truth(class_names, topic=None)``, a
    :class:`~fusionrt.runtime.truth.GroundTruthSource`).
    """


@hookspec
def fusionrt_sinks() -> Sequence[type]:
    """Return the sink classes (writers of detections and reports) this plugin contributes.

    Called once when the registry loads. Each class has a ``name`` unique among sinks.
    """


@hookspec
def fusionrt_models() -> Sequence[type]:
    """Return the model classes (geometry, inputs, weights, postprocess) this plugin contributes.

    Called once when the registry loads. Each class has a ``name`` unique among models.
    """


@hookspec
def fusionrt_backends() -> Sequence[type]:
    """Return the inference backend (engine) classes this plugin contributes.

    Called once when the registry loads. Each class has a ``name`` unique among backends.
    """


@hookspec
def fusionrt_fusers() -> Sequence[type]:
    """Return the fuser classes (decision-level fusion of several models) this plugin contributes.

    Called once when the registry loads. Each class subclasses
    :class:`fusionrt.runtime.components.Fuser` and has a ``name`` unique among fusers.
    """


# -- lifecycle ----------------------------------------------------------------------------


@hookspec
def fusionrt_configure(config: Any) -> None:
    """Called once before a run starts, with the validated pipeline configuration.

    A plugin may set up resources here (open a connection, start a logger). Raising aborts
    the run with a ``PluginError`` naming the plugin.
    """


@hookspec
def fusionrt_unconfigure(config: Any) -> None:
    """Called once after a run ends (normally, on error or on Ctrl-C), with the same config.

    Release what ``fusionrt_configure`` acquired. Errors are reported, not raised.
    """


# -- observers ----------------------------------------------------------------------------


@hookspec
def fusionrt_frame_done(frame: Frame, detections: Detections, timings_ms: dict[str, float]) -> None:
    """Called after a frame's detections reached the sinks.

    ``timings_ms`` maps stage names (``decode.camera``, ``infer``...) to milliseconds.
    Observers must not mutate ``frame`` or ``detections``.
    """


@hookspec
def fusionrt_sensor_fault(sensor: str, stamp_ns: int | None, reason: str, detail: str) -> None:
    """Called when a message of ``sensor`` was lost: undecodable, dropped by the synchroniser...

    ``reason`` is a short machine-readable word (``decode_error``, ``superseded``, ``too_old``,
    ``queue_overflow``, ``duplicate_stamp``, ``stamp_backwards``, ``plugin_raised``...);
    ``detail`` is the human-readable message. Called once per lost message.
    """


@hookspec
def fusionrt_sensor_stale(sensor: str, last_stamp_ns: int | None, now_ns: int) -> None:
    """Called when ``sensor`` has been silent for longer than its expected period × k.

    ``last_stamp_ns`` is the stamp of its last message (``None`` if it never sent one) and
    ``now_ns`` the virtual clock when staleness was detected. Called once per silence.
    """
