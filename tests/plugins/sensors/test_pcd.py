"""PCD reader: ascii / binary / binary_compressed, POINTS-exact reads, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pypcd4  # the cross-check's reader (dev extra): the tests below run, never skip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt import DecodeError
from fusionrt.plugins.sensors import pcd
from fusionrt.plugins.sensors.pcd import ENCODINGS, parse_header, read_pcd, write_pcd

RADAR_PCD = Path("nuscenes/samples/RADAR_BACK_LEFT") / (
    "n015-2018-07-25-16-15-50+0800__RADAR_BACK_LEFT__1532506682462345.pcd"
)
PCD_CODES = ["<f4", "<f8", "i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8"]


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype.names == b.dtype.names and all(
        np.array_equal(a[n], b[n], equal_nan=a[n].dtype.kind == "f") for n in a.dtype.names or ()
    )


def test_nuscenes_radar_pcd_reads_exactly_points_times_43_bytes(real_data: Path) -> None:
    path = real_data / RADAR_PCD
    data = path.read_bytes()
    header = parse_header(data)
    assert header.data == "binary"
    assert header.points == 125
    assert header.dtype.itemsize == 43
    assert header.data_offset == 370
    padding = len(data) - header.data_offset - 125 * 43
    assert padding == 3726  # zero padding after the records: must not be read as points
    assert not any(data[header.data_offset + 125 * 43 :])

    points = read_pcd(path)
    assert len(points) == 125
    assert points.dtype.names == (
        "x", "y", "z", "dyn_prop", "id", "rcs", "vx", "vy", "vx_comp", "vy_comp",
        "is_quality_valid", "ambig_state", "x_rms", "y_rms", "invalid_state", "pdh0",
        "vx_rms", "vy_rms",
    )  # fmt: skip
    assert points["x"].min() == pytest.approx(9.6, abs=0.05)
    assert points["x"].max() == pytest.approx(90.6, abs=0.05)
    assert points["y"].min() == pytest.approx(-21.9, abs=0.05)
    assert points["y"].max() == pytest.approx(40.5, abs=0.05)
    assert points["rcs"].min() == pytest.approx(-5.0)
    assert points["rcs"].max() == pytest.approx(19.5)
    assert np.all(points["z"] == 0)
    np.testing.assert_array_equal(np.sort(points["id"]), np.arange(125))
    keep = (
        (points["invalid_state"] == 0)
        & (points["dyn_prop"] >= 0) & (points["dyn_prop"] <= 6)
        & (points["ambig_state"] == 3)
    )  # fmt: skip
    assert int(keep.sum()) == 70


def test_binary_data_is_a_view_of_the_bytes(real_data: Path) -> None:
    data = (real_data / RADAR_PCD).read_bytes()
    points = read_pcd(data)
    assert np.shares_memory(points, np.frombuffer(data, np.uint8))


def test_padding_fields_are_skipped_and_counts_become_subarrays() -> None:
    body = np.zeros(2, [("x", "<f4"), ("_", "u1", (3,)), ("n", "<u2", (2,))])
    body["x"] = [1.0, 2.0]
    body["n"] = [[1, 2], [3, 4]]
    header = (
        b"VERSION .7\nFIELDS x _ n\nSIZE 4 1 2\nTYPE F U U\nCOUNT 1 3 2\nWIDTH 2\nHEIGHT 1\n"
        b"POINTS 2\nDATA binary\n"
    )
    points = read_pcd(header + body.tobytes())
    assert points.dtype.names == ("x", "n")
    assert points.dtype.itemsize == 11
    np.testing.assert_array_equal(points["n"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(points["x"], [1.0, 2.0])


@st.composite
def clouds(draw: st.DrawFn) -> np.ndarray:
    names = draw(
        st.lists(st.sampled_from(["x", "y", "z", "intensity", "ring", "rcs", "id", "t"]),
                 min_size=1, max_size=5, unique=True)
    )  # fmt: skip
    fields = []
    for name in names:
        code = draw(st.sampled_from(PCD_CODES))
        count = draw(st.integers(1, 3))
        fields.append((name, code, (count,)) if count > 1 else (name, code))
    dtype = np.dtype(fields)
    size = draw(st.integers(0, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    raw = np.random.default_rng(seed).integers(0, 256, size * dtype.itemsize, np.uint8)
    return np.frombuffer(raw.tobytes(), dtype).copy()  # any bit patterns: NaN, inf, extremes


@settings(max_examples=120, deadline=None)
@given(points=clouds(), encoding=st.sampled_from(ENCODINGS))
def test_read_inverts_write_for_every_encoding(points: np.ndarray, encoding: str) -> None:
    restored = read_pcd(write_pcd(points, encoding))
    assert restored.dtype == points.dtype
    if encoding == "ascii":  # through text: NaN payload bits are not kept, values are
        assert _equal(restored, points)
    else:
        assert restored.tobytes() == points.tobytes()


def test_binary_compressed_with_back_references() -> None:
    points = np.zeros(500, [("x", "<f4"), ("y", "<f4"), ("ring", "<u2")])
    points["x"] = np.arange(500) % 7  # repetitive: compresses with back references
    points["ring"] = np.arange(500) % 32
    data = write_pcd(points, "binary_compressed")
    assert len(data) < points.nbytes // 2
    assert _equal(read_pcd(data), points)


@settings(max_examples=200, deadline=None)
@given(
    raw=st.binary(max_size=5000) | st.builds(bytes, st.binary(max_size=40).map(lambda b: b * 50))
)
def test_lzf_compress_and_decompress_invert_each_other(raw: bytes) -> None:
    # incompressible bytes too: the compressor is given room for liblzf's worst case
    compressed = pcd.lzf_compress(raw)
    assert len(compressed) <= len(raw) + len(raw) // 32 + 1
    assert pcd.lzf_decompress(compressed, len(raw)) == raw


def test_pcd_files_written_by_pypcd4_read_the_same(tmp_path: Path) -> None:
    xyzi = np.random.default_rng(3).normal(size=(300, 4)).astype(np.float32)
    cloud = pypcd4.PointCloud.from_xyzi_points(xyzi)
    for encoding in ENCODINGS:
        path = tmp_path / f"cloud_{encoding}.pcd"
        cloud.save(path, encoding=pypcd4.Encoding(encoding))
        points = read_pcd(path)
        np.testing.assert_array_equal(
            np.stack([points[n] for n in ("x", "y", "z", "intensity")], axis=1), xyzi
        )
        ours = pypcd4.PointCloud.from_path(_write(tmp_path, points, encoding))
        np.testing.assert_array_equal(ours.numpy(("x", "y", "z", "intensity")), xyzi)


def _write(folder: Path, points: np.ndarray, encoding: str) -> Path:
    path = folder / f"ours_{encoding}.pcd"
    path.write_bytes(write_pcd(points, encoding))
    return path


def _cloud_bytes(encoding: str, count: int = 10) -> bytes:
    points = np.zeros(count, [("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    points["x"] = np.arange(count)
    return write_pcd(points, encoding)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_truncated_bodies_raise_decode_error_with_offset(encoding: str) -> None:
    data = _cloud_bytes(encoding)
    header = parse_header(data)
    for cut in (header.data_offset + 1, len(data) - 3):
        with pytest.raises(DecodeError, match=r"truncated|lacks") as info:
            read_pcd(data[:cut], sensor="radar", topic="/radar")
        assert isinstance(info.value.context["offset"], int)
        assert info.value.context["sensor"] == "radar"


def test_truncated_binary_names_the_first_incomplete_record() -> None:
    data = _cloud_bytes("binary")
    header = parse_header(data)
    with pytest.raises(DecodeError) as info:
        read_pcd(data[: header.data_offset + 12 * 4 + 5], path="cloud.pcd")
    assert info.value.context["offset"] == header.data_offset + 12 * 4
    assert info.value.context["path"] == "cloud.pcd"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.replace(b"DATA binary\n", b""), "DATA"),
        (lambda d: d.replace(b"DATA binary", b"DATA xml"), "not one of"),
        (lambda d: d.replace(b"SIZE 4 4 4", b"SIZE 4 4"), "lengths disagree"),
        (lambda d: d.replace(b"TYPE F F F", b"TYPE F F Q"), "unsupported TYPE"),
        (lambda d: d.replace(b"SIZE 4 4 4", b"SIZE 4 4 3"), "unsupported TYPE"),
        (lambda d: d.replace(b"FIELDS x y z", b"FIELDS x x z"), "twice"),
        (lambda d: d.replace(b"COUNT 1 1 1", b"COUNT 1 0 1"), "COUNT 0"),
        (lambda d: d.replace(b"WIDTH 10", b"WIDTH ten"), "not integers"),
        (lambda d: d.replace(b"POINTS 10", b"POINTS -1"), "negative"),
        (lambda d: d.replace(b"VERSION", b"COLOUR"), "unknown key"),
        (lambda d: b"\xff\xfe" + d, "not ASCII"),
    ],
)
def test_bad_headers_raise_decode_error(mutate: object, message: str) -> None:
    data = mutate(_cloud_bytes("binary"))  # type: ignore[operator]
    with pytest.raises(DecodeError, match=message):
        read_pcd(data)


def test_corrupt_compressed_data_raises_decode_error() -> None:
    data = bytearray(_cloud_bytes("binary_compressed", 200))
    header = parse_header(bytes(data))
    data[header.data_offset + 8] = 0xFF  # a back reference before the start of the output
    with pytest.raises(DecodeError, match="corrupt") as info:
        read_pcd(bytes(data))
    assert info.value.context["offset"] == header.data_offset + 8


def test_implausible_compressed_sizes_raise_before_allocating() -> None:
    data = bytearray(_cloud_bytes("binary_compressed", 4))
    header = parse_header(bytes(data))
    data = data[: header.data_offset]
    data = data.replace(b"POINTS 4", b"POINTS 100000000").replace(b"WIDTH 4", b"WIDTH 100000000")
    data += np.array([10, 100000000 * 12], "<u4").tobytes() + bytes(10)
    with pytest.raises(DecodeError, match="implausible"):
        read_pcd(bytes(data))


def test_ascii_with_a_non_number_raises_decode_error() -> None:
    data = _cloud_bytes("ascii").replace(b"\n3 0 0", b"\n3 zero 0")
    with pytest.raises(DecodeError, match="not float32"):
        read_pcd(data)


def test_missing_file_raises_decode_error(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="cannot read") as info:
        read_pcd(tmp_path / "missing.pcd")
    assert info.value.context["path"].endswith("missing.pcd")


def test_binaryscompressed_spelling_is_read_as_binary_compressed() -> None:
    data = _cloud_bytes("binary_compressed")  # the misspelling some writers use (pypcd4 too)
    points = read_pcd(data.replace(b"DATA binary_compressed", b"DATA binaryscompressed"))
    np.testing.assert_array_equal(points["x"], np.arange(10))


def test_empty_cloud() -> None:
    for encoding in ENCODINGS:
        points = read_pcd(_cloud_bytes(encoding, 0))
        assert points.shape == (0,)
        assert points.dtype.names == ("x", "y", "z")
