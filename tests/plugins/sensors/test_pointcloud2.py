"""PointCloud2 CDR decoding: any layout as a zero-copy structured view, every size validated."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt import DecodeError
from fusionrt.plugins.ros_types import typestore
from fusionrt.plugins.sensors.pointcloud2 import (
    MSGTYPE,
    POINTFIELD_DTYPES,
    decode_pointcloud2,
    encode_pointcloud2,
)

WHERE = {"sensor": "lidar_top", "topic": "/lidar/points", "path": "drive.mcap"}


def _same_points(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal dtype and, field by field, equal bytes (NaN payloads included)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return all(
        np.ascontiguousarray(a[name]).tobytes() == np.ascontiguousarray(b[name]).tobytes()
        for name in a.dtype.names or ()
    )


@st.composite
def layouts(draw: st.DrawFn) -> tuple[np.dtype, int, int]:
    """A random PointField layout: names, types, counts, gaps, trailing padding, byte order."""
    names = draw(
        st.lists(
            st.sampled_from(["x", "y", "z", "intensity", "ring", "time", "t", "rcs", "vx"]),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    order = draw(st.sampled_from("<>"))
    formats, offsets = [], []
    offset = 0
    for _ in names:
        code = draw(st.sampled_from(sorted(POINTFIELD_DTYPES.values())))
        count = draw(st.integers(1, 3))
        offset += draw(st.integers(0, 5))  # gap before the field (unaligned too)
        formats.append(order + code if count == 1 else (order + code, (count,)))
        offsets.append(offset)
        offset += int(code[1]) * count
    itemsize = offset + draw(st.integers(0, 7))  # point_step padding
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})
    height = draw(st.integers(1, 3))
    width = draw(st.integers(0, 12))
    return dtype, height, width


@settings(max_examples=150, deadline=None)
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1), row_pad=st.integers(0, 9))
def test_decode_inverts_encode_for_any_layout(
    layout: tuple[np.dtype, int, int], seed: int, row_pad: int
) -> None:
    dtype, height, width = layout
    raw = np.random.default_rng(seed).integers(0, 256, height * width * dtype.itemsize, np.uint8)
    points = np.frombuffer(raw.tobytes(), dtype).reshape(height, width)  # any bits, NaN too
    row_step = width * dtype.itemsize + (row_pad if width else 0)
    data = encode_pointcloud2(points, "velodyne", 1_234_567_890_123, row_step=row_step)

    cloud = decode_pointcloud2(data, **WHERE)

    assert cloud.points.dtype == dtype
    assert cloud.points.dtype.itemsize == dtype.itemsize  # point_step padding kept
    assert _same_points(cloud.points, points.reshape(-1))
    assert (cloud.height, cloud.width, cloud.row_step) == (height, width, row_step)
    assert cloud.is_bigendian == any(dtype[name].base.byteorder == ">" for name in dtype.names)
    assert cloud.stamp_ns == 1_234_567_890_123
    assert cloud.frame_id == "velodyne"
    if row_pad == 0 and width:  # contiguous rows: a view of the message bytes, no copy
        assert np.shares_memory(cloud.points, np.frombuffer(data, np.uint8))


def test_decoded_points_are_a_read_only_view_of_the_message_bytes() -> None:
    points = np.zeros(1000, [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
    points["x"] = np.arange(1000)
    data = encode_pointcloud2(points, "lidar", 5)
    cloud = decode_pointcloud2(data)
    assert np.shares_memory(cloud.points, np.frombuffer(data, np.uint8))
    assert not cloud.points.flags.writeable
    assert cloud.data_offset is not None
    assert data[cloud.data_offset : cloud.data_offset + 4] == np.float32(0).tobytes()
    np.testing.assert_array_equal(cloud.points["x"], np.arange(1000))


def test_big_endian_values_decode_to_the_right_numbers() -> None:
    points = np.zeros(3, [("x", ">f4"), ("y", ">f8"), ("ring", ">u2"), ("i8", "i1")])
    points["x"] = [1.5, -2.25, 3e8]
    points["y"] = [0.1, 0.2, -0.3]
    points["ring"] = [1, 300, 65535]
    points["i8"] = [-128, 0, 127]
    cloud = decode_pointcloud2(encode_pointcloud2(points, "radar", 0))
    assert cloud.is_bigendian
    np.testing.assert_array_equal(cloud.points["x"], [1.5, -2.25, 3e8])
    np.testing.assert_array_equal(cloud.points["y"], [0.1, 0.2, -0.3])
    np.testing.assert_array_equal(cloud.points["ring"], [1, 300, 65535])
    np.testing.assert_array_equal(cloud.points["i8"], [-128, 0, 127])


def test_empty_cloud_decodes_to_an_empty_array_with_the_fields() -> None:
    points = np.zeros(0, [("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    cloud = decode_pointcloud2(encode_pointcloud2(points, "lidar", 7))
    assert cloud.points.shape == (0,)
    assert cloud.points.dtype.names == ("x", "y", "z")
    assert cloud.stamp_ns == 7


def _raw_message(**overrides: object) -> bytes:
    """A PointCloud2 serialized field by field, so that tests can make any size wrong."""
    store = typestore()
    field = store.types["sensor_msgs/msg/PointField"]
    header = store.types["std_msgs/msg/Header"]
    time = store.types["builtin_interfaces/msg/Time"]
    values: dict[str, object] = {
        "header": header(stamp=time(sec=1, nanosec=2), frame_id="lidar"),
        "height": 1,
        "width": 4,
        "fields": [
            field(name="x", offset=0, datatype=7, count=1),
            field(name="y", offset=4, datatype=7, count=1),
            field(name="z", offset=8, datatype=7, count=1),
            field(name="intensity", offset=12, datatype=7, count=1),
        ],
        "is_bigendian": False,
        "point_step": 16,
        "row_step": 64,
        "data": np.zeros(64, np.uint8),
        "is_dense": True,
    }
    values.update(overrides)
    return bytes(store.serialize_cdr(store.types[MSGTYPE](**values), MSGTYPE))


def _field(name: str, offset: int, datatype: int = 7, count: int = 1) -> object:
    return typestore().types["sensor_msgs/msg/PointField"](
        name=name, offset=offset, datatype=datatype, count=count
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"point_step": 12}, "does not fit in point_step 12"),  # wrong point_step
        ({"point_step": 20}, "row_step 64 is smaller than width × point_step"),
        ({"row_step": 80}, "expected row_step × height"),  # data shorter than declared
        ({"data": np.zeros(60, np.uint8)}, "data holds 60 bytes"),
        ({"data": np.zeros(70, np.uint8)}, "data holds 70 bytes"),
        ({"height": 2}, "expected row_step × height"),
        ({"fields": [_field("x", 0, datatype=9)]}, "unknown datatype 9"),
        ({"fields": [_field("x", 0), _field("x", 4)]}, "empty or repeated"),
        ({"fields": [_field("x", 0, count=0)]}, "count 0"),
        ({"fields": [_field("x", 14)]}, "does not fit in point_step 16"),
        ({"fields": [_field("x", 0, datatype=8, count=3)]}, "does not fit"),
        ({"point_step": 0, "row_step": 0}, "does not fit in point_step 0"),
    ],
)
def test_inconsistent_sizes_raise_decode_error_naming_where(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        decode_pointcloud2(_raw_message(**overrides), **WHERE)
    text = str(info.value)
    assert "sensor='lidar_top'" in text
    assert "topic='/lidar/points'" in text
    assert "path='drive.mcap'" in text


def test_data_size_error_names_the_byte_offset() -> None:
    data = _raw_message(data=np.zeros(60, np.uint8))
    with pytest.raises(DecodeError) as info:
        decode_pointcloud2(data, **WHERE)
    offset = info.value.context["offset"]
    assert offset == len(data) - 1  # the end of the 60 data bytes, before is_dense


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 10, 40, 100, -1, -2, -17])
def test_truncated_messages_raise_decode_error_with_an_offset(cut: int) -> None:
    points = np.zeros(8, [("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    data = encode_pointcloud2(points, "lidar", 1)
    with pytest.raises(DecodeError) as info:
        decode_pointcloud2(data[:cut], **WHERE)
    assert isinstance(info.value.context.get("offset"), int)
    assert info.value.context["sensor"] == "lidar_top"
    assert info.value.context["topic"] == "/lidar/points"


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_any_bytes_after_a_valid_cdr_header_decode_or_raise_decode_error(body: bytes) -> None:
    try:
        cloud = decode_pointcloud2(b"\x00\x01\x00\x00" + body, **WHERE)
    except DecodeError:
        return
    assert cloud.points.ndim == 1


def test_bytearray_and_memoryview_inputs_decode_alike() -> None:
    points = np.zeros(4, [("x", "<f4"), ("ring", "<u2")])
    points["x"] = [1, 2, 3, 4]
    data = encode_pointcloud2(points, "lidar", 3)
    for buffer in (data, bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(decode_pointcloud2(buffer).points["x"], [1, 2, 3, 4])


def test_encode_rejects_what_pointcloud2_cannot_hold() -> None:
    with pytest.raises(ValueError, match="structured"):
        encode_pointcloud2(np.zeros((3, 3), np.float32), "lidar", 0)
    with pytest.raises(ValueError, match="not a PointField datatype"):
        encode_pointcloud2(np.zeros(3, [("x", "<i8")]), "lidar", 0)
    with pytest.raises(ValueError, match="byte orders"):
        encode_pointcloud2(np.zeros(3, [("x", "<f4"), ("y", ">f4")]), "lidar", 0)
    with pytest.raises(ValueError, match="stamp_ns"):
        encode_pointcloud2(np.zeros(3, [("x", "<f4")]), "lidar", -1)


def test_is_dense_reflects_non_finite_values() -> None:
    points = np.zeros(3, [("x", "<f4"), ("ring", "<u2")])
    assert decode_pointcloud2(encode_pointcloud2(points, "l", 0)).is_dense
    points["x"][1] = np.nan
    assert not decode_pointcloud2(encode_pointcloud2(points, "l", 0)).is_dense
