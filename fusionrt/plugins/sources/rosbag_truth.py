"""Ground truth in a ROS 2 bag: the simulator's ``fusionrt_msgs/msg/ActorArray`` topic.

``fusionrt sim`` records every actor at each lidar sweep (``/ground_truth/actors``; the message
is defined in :mod:`fusionrt.plugins.ros_types`): box centre, size (length, width, height),
yaw, class and visibility in the ``ego`` frame of the header, stamped on the common clock.
:func:`bag_ground_truth` picks the topic (the pipeline's ``ground_truth.topic``, else the one
topic of that type) and returns it as streamed ground truth: the run hands it each record of
the topic as the replay reaches it, and :func:`decode_actors` turns the CDR bytes into boxes.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import ConfigError, DecodeError
from fusionrt.runtime.messages import RawRecord
from fusionrt.runtime.truth import GroundTruthBoxes, StreamedGroundTruth

__all__ = ["ACTOR_ARRAY_MSGTYPE", "SIM_CLASSES", "bag_ground_truth", "decode_actors"]

#: The ground-truth message type ``fusionrt sim`` records.
ACTOR_ARRAY_MSGTYPE = "fusionrt_msgs/msg/ActorArray"
#: Class of each ``class_id`` constant of ``fusionrt_msgs/msg/Actor`` (for an empty class_name).
SIM_CLASSES = ("car", "pedestrian", "cyclist")


def decode_actors(record: RawRecord, class_names: Sequence[str]) -> GroundTruthBoxes:
    """An ``ActorArray`` record as boxes; actors of classes outside ``class_names`` are left
    out. A ``DecodeError`` naming topic, file and offset when the bytes are not one."""
    try:
        msg: Any = typestore().deserialize_cdr(bytes(record.data), ACTOR_ARRAY_MSGTYPE)
    except Exception as exc:  # rosbags raises assorted errors on bad CDR
        raise DecodeError(
            f"not a {ACTOR_ARRAY_MSGTYPE}: {type(exc).__name__}: {exc}",
            topic=record.topic,
            path=record.path,
            offset=record.offset,
        ) from None
    stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    boxes, labels, visibility = [], [], []
    for actor in msg.actors:
        name = actor.class_name or (
            SIM_CLASSES[actor.class_id] if actor.class_id < len(SIM_CLASSES) else ""
        )
        if name not in class_names:
            continue
        c, s = actor.center, actor.size
        boxes.append([c.x, c.y, c.z, s.x, s.y, s.z, actor.yaw])
        labels.append(class_names.index(name))
        visibility.append(float(actor.visibility))
    return GroundTruthBoxes.from_lists(stamp, boxes, labels, visibility)


def bag_ground_truth(
    msgtypes: Mapping[str, str], class_names: Sequence[str], topic: str | None
) -> StreamedGroundTruth | None:
    """The bag's ground truth from its topics (``topic → msgtype``): ``topic`` if given (a
    ``ConfigError`` at ``ground_truth.topic`` when the bag lacks it or it is not ground
    truth), else the one ``ActorArray`` topic; ``None`` when there is none."""
    if topic is not None:
        if topic not in msgtypes:
            hint = difflib.get_close_matches(topic, sorted(msgtypes), n=1, cutoff=0.5)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"the bag has no topic {topic!r}{more}", key="ground_truth.topic")
        if msgtypes[topic] != ACTOR_ARRAY_MSGTYPE:
            raise ConfigError(
                f"topic {topic!r} holds {msgtypes[topic]}, not ground truth "
                f"({ACTOR_ARRAY_MSGTYPE})",
                key="ground_truth.topic",
            )
        chosen = [topic]
    else:
        chosen = sorted(t for t, msgtype in msgtypes.items() if msgtype == ACTOR_ARRAY_MSGTYPE)
        if len(chosen) > 1:
            raise ConfigError(
                f"the bag has several ground-truth topics ({', '.join(chosen)}); choose one "
                "with ground_truth.topic",
                key="ground_truth.topic",
            )
    if not chosen:
        return None
    return StreamedGroundTruth(chosen, partial(decode_actors, class_names=tuple(class_names)))
