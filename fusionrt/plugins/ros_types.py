"""The ROS 2 message types fusionrt reads and writes, in one rosbags typestore.

rosbags ships the standard ROS 2 Humble definitions; message packages outside that set that
fusionrt needs (``can_msgs`` for CAN frames, as defined by ros-industrial's ``ros_canopen``) are
registered here from their ``.msg`` text, so bags written by fusionrt carry the real definitions
and any ROS 2 tool can read them. The message packages fusionrt publishes live
(``vision_msgs``, ``autoware_perception_msgs``) ship as ``.msg`` files with their licence in
``fusionrt/plugins/ros2/interfaces``. Build the typestore once per process: :func:`typestore`
caches.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

#: ``can_msgs/msg/Frame`` exactly as ros_canopen defines it.
CAN_FRAME_MSG = """\
std_msgs/Header header
uint32 id
bool is_rtr
bool is_extended
bool is_error
uint8 dlc
uint8[8] data
"""

#: ``fusionrt_msgs/msg/Actor``: one ground-truth object of a synthetic drive (``fusionrt.sim``).
#: Box centre, yaw and velocity are in the frame of the enclosing array's header (``ego``:
#: x forward, y left, z up); ``size`` is length (x), width (y), height (z) in metres;
#: ``velocity`` is over ground (m/s); ``visibility`` is the fraction of the box's sample points
#: seen unoccluded from the top lidar (0..1); ``num_lidar_points`` counts the sweep's returns
#: from the box.
ACTOR_MSG = """\
uint8 CLASS_CAR=0
uint8 CLASS_PEDESTRIAN=1
uint8 CLASS_CYCLIST=2
uint32 track_id
uint8 class_id
string class_name
geometry_msgs/Point center
geometry_msgs/Vector3 size
float64 yaw
geometry_msgs/Vector3 velocity
float32 visibility
uint32 num_lidar_points
"""

#: ``fusionrt_msgs/msg/ActorArray``: every actor at one stamp (common clock).
ACTOR_ARRAY_MSG = """\
std_msgs/Header header
fusionrt_msgs/Actor[] actors
"""

EXTRA_MESSAGE_DEFINITIONS: dict[str, str] = {
    "can_msgs/msg/Frame": CAN_FRAME_MSG,
    "fusionrt_msgs/msg/Actor": ACTOR_MSG,
    "fusionrt_msgs/msg/ActorArray": ACTOR_ARRAY_MSG,
}


#: The shipped ``<package>/msg/<Type>.msg`` files (upstream and licence in its ``NOTICE``).
INTERFACES_DIR = Path(__file__).parent / "ros2" / "interfaces"


def shipped_definitions() -> dict[str, str]:
    """``{msgtype: .msg text}`` of every definition in :data:`INTERFACES_DIR`."""
    return {
        f"{path.parent.parent.name}/msg/{path.stem}": path.read_text(encoding="utf-8")
        for path in sorted(INTERFACES_DIR.glob("*/msg/*.msg"))
    }


@cache
def typestore() -> Typestore:
    """ROS 2 Humble types plus the extra and shipped definitions fusionrt uses."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    for name, text in {**EXTRA_MESSAGE_DEFINITIONS, **shipped_definitions()}.items():
        store.register(get_types_from_msg(text, name))
    return store
