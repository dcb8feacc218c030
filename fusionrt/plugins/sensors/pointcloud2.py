"""``sensor_msgs/msg/PointCloud2`` (ROS 2, CDR) to a numpy structured array, and back.

Decoding reads the CDR envelope with rosbags (fusionrt's one typestore,
:func:`fusionrt.plugins.ros_types.typestore`) and describes the point bytes with one
numpy structured dtype (``names``/``formats``/``offsets``/``itemsize = point_step``), so the
returned points are a **view** of the message bytes: no copy, any field layout, ``is_bigendian``
honoured through the dtype's byte order, ``point_step`` padding skipped by the offsets. Only an
organized cloud whose rows are padded (``row_step > width·point_step``) is copied once, to drop
the row padding.

Every size in the message is checked before numpy sees it; a bad one raises
:class:`~fusionrt.DecodeError` whose ``offset`` is the byte offset in the serialized message
(CDR encapsulation header included) where the problem lies. Callers pass the message's
``sensor``, ``topic``, ``path`` and ``record_offset`` (where the record sits in its file) as
keyword context; they are named in the error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusionrt.plugins.ros_decode import as_buffer, deserialize, header_stamp_ns, offset_in
from fusionrt.plugins.ros_types import typestore
from fusionrt.runtime.errors import DecodeError

MSGTYPE = "sensor_msgs/msg/PointCloud2"

#: ``sensor_msgs/msg/PointField`` datatype constants → numpy type codes (byte order added later).
POINTFIELD_DTYPES: dict[int, str] = {
    1: "i1",  # INT8
    2: "u1",  # UINT8
    3: "i2",  # INT16
    4: "u2",  # UINT16
    5: "i4",  # INT32
    6: "u4",  # UINT32
    7: "f4",  # FLOAT32
    8: "f8",  # FLOAT64
}
_DATATYPE_OF_CODE = {code: datatype for datatype, code in POINTFIELD_DTYPES.items()}


@dataclass(frozen=True, slots=True)
class PointCloud2:
    """A decoded PointCloud2: ``points`` is 1-D (``height·width`` points, row-major)."""

    points: np.ndarray
    stamp_ns: int
    frame_id: str
    height: int
    width: int
    point_step: int
    row_step: int
    is_bigendian: bool
    is_dense: bool
    data_offset: int | None  # byte offset of the point data in the serialized message


def pointfield_dtype(
    fields: list[tuple[str, int, int, int]], point_step: int, is_bigendian: bool, **where: Any
) -> np.dtype:
    """The structured dtype of ``(name, offset, datatype, count)`` fields in ``point_step`` bytes.

    Raises ``DecodeError`` (with ``where`` as context) for an unknown datatype, a count below 1,
    an empty or repeated name, or a field that does not fit inside ``point_step``.
    """
    order = ">" if is_bigendian else "<"
    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    for name, offset, datatype, count in fields:
        code = POINTFIELD_DTYPES.get(datatype)
        if code is None:
            raise DecodeError(
                f"PointCloud2 field {name!r} has unknown datatype {datatype} "
                f"(known: {sorted(POINTFIELD_DTYPES)})",
                **where,
            )
        if not name or name in names:
            raise DecodeError(f"PointCloud2 field name {name!r} is empty or repeated", **where)
        if count < 1:
            raise DecodeError(f"PointCloud2 field {name!r} has count {count} (< 1)", **where)
        size = int(code[1]) * count
        if offset < 0 or offset + size > point_step:
            raise DecodeError(
                f"PointCloud2 field {name!r} (offset {offset}, {size} bytes) does not fit in "
                f"point_step {point_step}",
                **where,
            )
        names.append(name)
        formats.append(order + code if count == 1 else (order + code, (count,)))
        offsets.append(offset)
    try:
        return np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
        )
    except (ValueError, TypeError) as exc:  # e.g. an itemsize numpy cannot represent
        raise DecodeError(f"PointCloud2 fields cannot form a numpy dtype: {exc}", **where) from exc


def decode_pointcloud2(data: bytes | bytearray | memoryview, **where: Any) -> PointCloud2:
    """Decode CDR bytes of a ``sensor_msgs/msg/PointCloud2`` into a structured-array view.

    ``where`` (``sensor``, ``topic``, ``path``, ``record_offset``) is context for errors.
    """
    buffer = as_buffer(data)
    msg: Any = deserialize(buffer, MSGTYPE, **where)
    point_data: np.ndarray = msg.data
    data_offset = offset_in(point_data, buffer)
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    fields = [(f.name, int(f.offset), int(f.datatype), int(f.count)) for f in msg.fields]
    dtype = pointfield_dtype(fields, point_step, bool(msg.is_bigendian), **where)
    count = height * width
    if count and point_step <= 0:
        raise DecodeError(f"PointCloud2 has {count} points but point_step {point_step}", **where)
    if row_step < width * point_step:
        raise DecodeError(
            f"PointCloud2 row_step {row_step} is smaller than width × point_step "
            f"= {width} × {point_step}",
            **where,
        )
    expected = row_step * height
    if point_data.size != expected:
        at = None if data_offset is None else data_offset + min(point_data.size, expected)
        raise DecodeError(
            f"PointCloud2 data holds {point_data.size} bytes, expected row_step × height = "
            f"{row_step} × {height} = {expected} (truncated message or wrong point_step)",
            **where,
            offset=at,
        )
    if count == 0:
        points = np.zeros(0, dtype=dtype)
    elif row_step == width * point_step:
        points = np.frombuffer(point_data, dtype=dtype, count=count)
    else:  # organized cloud with padded rows: one byte copy drops the row padding
        rows = point_data.reshape(height, row_step)[:, : width * point_step]
        points = np.frombuffer(np.ascontiguousarray(rows), dtype=dtype, count=count)
    return PointCloud2(
        points=points,
        stamp_ns=header_stamp_ns(msg.header, **where),
        frame_id=str(msg.header.frame_id),
        height=height,
        width=width,
        point_step=point_step,
        row_step=row_step,
        is_bigendian=bool(msg.is_bigendian),
        is_dense=bool(msg.is_dense),
        data_offset=data_offset,
    )


def _field_byte_order(dtype: np.dtype) -> str:
    """'<', '>' or '|' (single-byte) for one non-structured dtype."""
    order = dtype.byteorder
    if order == "=":
        return "<" if sys.byteorder == "little" else ">"
    return order


def encode_pointcloud2(
    points: np.ndarray,
    frame_id: str,
    stamp_ns: int,
    *,
    row_step: int | None = None,
    is_dense: bool | None = None,
) -> bytes:
    """Serialize a structured array as CDR bytes of a ``sensor_msgs/msg/PointCloud2``.

    ``points`` is 1-D (an unorganized cloud, ``height = 1``) or 2-D ``(height, width)``.
    The dtype's fields (any of int8…uint32, float32, float64, optionally fixed-size sub-arrays)
    become PointFields at their offsets; ``point_step`` is the dtype's itemsize, so padding is
    kept; all multi-byte fields must share one byte order, which sets ``is_bigendian``.
    ``row_step`` defaults to ``width · point_step``; a larger value pads each row with zeros.
    ``is_dense`` defaults to "no float field holds NaN or inf".
    """
    if points.dtype.names is None or points.ndim not in (1, 2):
        raise ValueError(f"expected a 1-D or 2-D structured array, got {points.dtype!r}")
    if stamp_ns < 0:
        raise ValueError(f"stamp_ns must be >= 0, got {stamp_ns}")
    store = typestore()
    point_field = store.types["sensor_msgs/msg/PointField"]
    fields = []
    orders = set()
    for name in points.dtype.names:
        field_dtype, offset = points.dtype.fields[name][:2]  # type: ignore[index]
        base, shape = field_dtype.subdtype or (field_dtype, ())
        code = f"{base.kind}{base.itemsize}"
        if code not in _DATATYPE_OF_CODE or base.kind not in "iuf":
            raise ValueError(f"field {name!r} has dtype {field_dtype}, not a PointField datatype")
        if base.itemsize > 1:
            orders.add(_field_byte_order(base))
        count = int(np.prod(shape)) if shape else 1
        fields.append(
            point_field(name=name, offset=offset, datatype=_DATATYPE_OF_CODE[code], count=count)
        )
    if len(orders) > 1:
        raise ValueError("fields mix little- and big-endian byte orders")
    is_bigendian = orders == {">"}
    height, width = (1, points.shape[0]) if points.ndim == 1 else points.shape
    point_step = points.dtype.itemsize
    row_bytes = width * point_step
    row_step = row_bytes if row_step is None else row_step
    if row_step < row_bytes:
        raise ValueError(f"row_step {row_step} < width × point_step = {row_bytes}")
    body = np.zeros((height, row_step), np.uint8)
    body[:, :row_bytes] = np.ascontiguousarray(points).view(np.uint8).reshape(height, row_bytes)
    if is_dense is None:
        is_dense = all(
            bool(np.isfinite(points[name]).all())
            for name in points.dtype.names
            if points.dtype[name].base.kind == "f"
        )
    header = store.types["std_msgs/msg/Header"]
    time = store.types["builtin_interfaces/msg/Time"]
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    message = store.types[MSGTYPE](
        header=header(stamp=time(sec=sec, nanosec=nanosec), frame_id=frame_id),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=is_bigendian,
        point_step=point_step,
        row_step=row_step,
        data=body.reshape(-1),
        is_dense=bool(is_dense),
    )
    return bytes(store.serialize_cdr(message, MSGTYPE))
