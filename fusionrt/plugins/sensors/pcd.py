"""PCD (Point Cloud Data, PCL) files to numpy structured arrays, and back.

Reads ``DATA ascii``, ``binary`` and ``binary_compressed`` (LZF, column-major). A ``binary``
body becomes a zero-copy view of the given bytes; exactly ``POINTS`` records are read after the
header, whatever follows them: nuScenes radar files carry zero padding after ``POINTS × 43``
bytes, and a reader that sizes the body from the file length gets garbage. Fields named ``_``
(PCL's padding) are skipped; ``COUNT > 1`` fields become sub-array fields. Multi-byte values
are little-endian, as PCL writes them.

Written here rather than taken from ``pypcd4`` (which reads the same files, and which the tests
use as a cross-check) because the runtime wants: no pydantic on the edge install, a zero-copy
view for ``binary`` data (pypcd4 copies through ``fp.read``), and a ``DecodeError`` naming the
byte offset for every truncated or inconsistent file, where pypcd4 raises ``ValueError`` /
``RuntimeError`` / pydantic errors. LZF is liblzf through ``python-neo-lzf`` (a core
dependency with wheels for every platform fusionrt supports, x86-64 and aarch64 included).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lzf
import numpy as np

from fusionrt.runtime.errors import DecodeError

ENCODINGS = ("ascii", "binary", "binary_compressed")
_TYPES = {("F", 4): "<f4", ("F", 8): "<f8"}
_TYPES.update({("I", n): f"<i{n}" for n in (1, 2, 4, 8)})
_TYPES.update({("U", n): f"<u{n}" for n in (1, 2, 4, 8)})
_MAX_HEADER_BYTES = 1 << 16
_PADDING_FIELD = "_"
_ENCODING_ALIASES = {"binaryscompressed": "binary_compressed"}  # a misspelling seen in files


@dataclass(frozen=True, slots=True)
class PcdHeader:
    """The parsed header; ``data_offset`` is where the body starts, ``dtype`` one packed record."""

    fields: tuple[str, ...]
    sizes: tuple[int, ...]
    types: tuple[str, ...]
    counts: tuple[int, ...]
    width: int
    height: int
    points: int
    viewpoint: tuple[float, ...]
    data: str
    data_offset: int
    dtype: np.dtype


def parse_header(buffer: bytes | memoryview, **where: Any) -> PcdHeader:
    """Parse a PCD header (up to and including its ``DATA`` line).

    ``where`` (``sensor``, ``topic``, ``path``) is context for ``DecodeError``.
    """
    values: dict[str, list[str]] = {}
    position = 0
    head = bytes(buffer[:_MAX_HEADER_BYTES])
    while True:
        end = head.find(b"\n", position)
        if end < 0:
            raise DecodeError(
                "PCD header ends before its DATA line (truncated or not a PCD file)",
                **where,
                offset=len(head),
            )
        try:
            line = head[position:end].decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise DecodeError("PCD header line is not ASCII", **where, offset=position) from exc
        line_offset, position = position, end + 1
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split()
        key = key.upper()
        values[key] = rest
        if key == "DATA":
            break
        if key not in {
            "VERSION",
            "FIELDS",
            "SIZE",
            "TYPE",
            "COUNT",
            "WIDTH",
            "HEIGHT",
            "VIEWPOINT",
            "POINTS",
        }:
            raise DecodeError(f"PCD header has unknown key {key!r}", **where, offset=line_offset)

    def ints(key: str, default: list[int] | None = None) -> list[int]:
        if key not in values:
            if default is None:
                raise DecodeError(f"PCD header lacks {key}", **where, offset=position)
            return default
        try:
            numbers = [int(v) for v in values[key]]
        except ValueError as exc:
            raise DecodeError(f"PCD {key} {values[key]} is not integers", **where) from exc
        if any(n < 0 for n in numbers):
            raise DecodeError(f"PCD {key} {numbers} has negative values", **where)
        return numbers

    fields = tuple(values.get("FIELDS", ()))
    if not fields:
        raise DecodeError("PCD header lacks FIELDS", **where, offset=position)
    sizes = tuple(ints("SIZE"))
    types = tuple(t.upper() for t in values.get("TYPE", ()))
    counts = tuple(ints("COUNT", [1] * len(fields)))
    if not len(fields) == len(sizes) == len(types) == len(counts):
        raise DecodeError(
            f"PCD FIELDS/SIZE/TYPE/COUNT lengths disagree: {len(fields)}, {len(sizes)}, "
            f"{len(types)}, {len(counts)}",
            **where,
            offset=position,
        )
    (width,) = ints("WIDTH")[:1] or [0]
    height = (ints("HEIGHT", [1])[:1] or [1])[0]
    points = (ints("POINTS", [width * height])[:1] or [0])[0]
    data = (values["DATA"][:1] or [""])[0].lower()
    data = _ENCODING_ALIASES.get(data, data)
    if data not in ENCODINGS:
        raise DecodeError(f"PCD DATA {data!r} is not one of {ENCODINGS}", **where, offset=position)
    try:
        viewpoint = tuple(
            float(v) for v in values.get("VIEWPOINT", ["0", "0", "0", "1", "0", "0", "0"])
        )
    except ValueError as exc:
        raise DecodeError(f"PCD VIEWPOINT {values['VIEWPOINT']} is not numbers", **where) from exc

    names, formats, offsets = [], [], []
    offset = 0
    for name, size, kind, count in zip(fields, sizes, types, counts, strict=True):
        code = _TYPES.get((kind, size))
        if code is None:
            raise DecodeError(
                f"PCD field {name!r} has unsupported TYPE {kind} SIZE {size}", **where
            )
        if count < 1:
            raise DecodeError(f"PCD field {name!r} has COUNT {count}", **where)
        if name != _PADDING_FIELD:
            if name in names:
                raise DecodeError(f"PCD field {name!r} appears twice", **where)
            names.append(name)
            formats.append(code if count == 1 else (code, (count,)))
            offsets.append(offset)
        offset += size * count
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": offset})
    if points and not dtype.itemsize:
        raise DecodeError(f"PCD has {points} points of 0 bytes", **where)
    return PcdHeader(
        fields, sizes, types, counts, width, height, points, viewpoint, data, position, dtype
    )


def read_pcd(source: str | Path | bytes | bytearray | memoryview, **where: Any) -> np.ndarray:
    """Read a PCD file (path) or PCD bytes into a 1-D structured array of ``POINTS`` points.

    ``binary`` data is returned as a read-only view of the bytes; ascii and binary_compressed
    data as a new array of the same dtype. Raises ``DecodeError`` naming the byte offset.
    """
    if isinstance(source, str | Path):
        where.setdefault("path", str(source))
        try:
            buffer = memoryview(Path(source).read_bytes())
        except OSError as exc:
            raise DecodeError(f"cannot read PCD file: {exc}", **where) from exc
    else:
        buffer = memoryview(source).cast("B")
    header = parse_header(buffer, **where)
    body = buffer[header.data_offset :]
    if header.data == "binary":
        return _read_binary(body, header, **where)
    if header.data == "binary_compressed":
        return _read_compressed(body, header, **where)
    return _read_ascii(body, header, **where)


def _read_binary(body: memoryview, header: PcdHeader, **where: Any) -> np.ndarray:
    need = header.points * header.dtype.itemsize
    if len(body) < need:
        whole = len(body) // header.dtype.itemsize
        raise DecodeError(
            f"PCD binary body holds {len(body)} bytes, {header.points} points × "
            f"{header.dtype.itemsize} bytes need {need} (truncated after point {whole})",
            **where,
            offset=header.data_offset + whole * header.dtype.itemsize,
        )
    return np.frombuffer(body, dtype=header.dtype, count=header.points)


def _read_compressed(body: memoryview, header: PcdHeader, **where: Any) -> np.ndarray:
    if len(body) < 8:
        raise DecodeError(
            "PCD binary_compressed body lacks its two size words",
            **where,
            offset=header.data_offset + len(body),
        )
    compressed_size, uncompressed_size = (int(v) for v in np.frombuffer(body, "<u4", 2))
    need = header.points * header.dtype.itemsize
    if uncompressed_size != need:
        raise DecodeError(
            f"PCD binary_compressed uncompressed size {uncompressed_size} != POINTS × point "
            f"size = {header.points} × {header.dtype.itemsize}",
            **where,
            offset=header.data_offset + 4,
        )
    if uncompressed_size > 256 * compressed_size + 64:  # LZF cannot expand 3 bytes past 264
        raise DecodeError(
            f"PCD binary_compressed sizes are implausible: {compressed_size} bytes cannot hold "
            f"{uncompressed_size}",
            **where,
            offset=header.data_offset,
        )
    if len(body) - 8 < compressed_size:
        raise DecodeError(
            f"PCD binary_compressed body holds {len(body) - 8} of {compressed_size} compressed "
            "bytes (truncated)",
            **where,
            offset=header.data_offset + len(body),
        )
    try:
        raw = lzf_decompress(bytes(body[8 : 8 + compressed_size]), uncompressed_size)
    except ValueError as exc:
        raise DecodeError(
            f"PCD binary_compressed data is corrupt: {exc}", **where, offset=header.data_offset + 8
        ) from exc
    points = np.zeros(header.points, header.dtype)
    offset = 0
    names = iter(header.dtype.names or ())
    for field, size, count in zip(header.fields, header.sizes, header.counts, strict=True):
        nbytes = header.points * size * count
        if field != _PADDING_FIELD:
            name = next(names)
            column = np.frombuffer(raw, header.dtype[name], header.points, offset)
            points[name] = column
        offset += nbytes
    return points


def _read_ascii(body: memoryview, header: PcdHeader, **where: Any) -> np.ndarray:
    columns = sum(header.counts)
    text = bytes(body).decode("ascii", errors="replace")
    tokens = text.split()
    need = header.points * columns
    if len(tokens) < need:
        raise DecodeError(
            f"PCD ascii body has {len(tokens)} values, {header.points} points × {columns} need "
            f"{need} (truncated)",
            **where,
            offset=header.data_offset + len(body),
        )
    # numpy parses the text of each column straight into the field's type: integers stay exact
    table = np.array(tokens[:need], dtype=str).reshape(header.points, columns)
    points = np.zeros(header.points, header.dtype)
    column = 0
    names = iter(header.dtype.names or ())
    for field, count in zip(header.fields, header.counts, strict=True):
        if field != _PADDING_FIELD:
            name = next(names)
            target = points.dtype[name].base
            try:
                values = table[:, column : column + count].astype(target)
            except (ValueError, OverflowError) as exc:
                raise DecodeError(
                    f"PCD ascii field {name!r} holds a value that is not {target}: {exc}",
                    **where,
                    offset=header.data_offset,
                ) from exc
            points[name] = values.reshape(points[name].shape)
        column += count
    return points


def write_pcd(
    points: np.ndarray, data: str = "binary", viewpoint: tuple[float, ...] = (0, 0, 0, 1, 0, 0, 0)
) -> bytes:
    """Serialize a 1-D structured array as PCD v0.7 bytes (``ascii``, ``binary`` or
    ``binary_compressed``); the inverse of :func:`read_pcd`. Fields must be int/uint/float."""
    if data not in ENCODINGS:
        raise ValueError(f"data must be one of {ENCODINGS}, got {data!r}")
    if points.dtype.names is None or points.ndim != 1:
        raise ValueError("expected a 1-D structured array")
    sizes, types, counts = [], [], []
    for name in points.dtype.names:
        field_dtype = points.dtype[name]
        base, shape = field_dtype.subdtype or (field_dtype, ())
        kind = {"f": "F", "i": "I", "u": "U"}.get(base.kind)
        if kind is None or (kind, base.itemsize) not in _TYPES:
            raise ValueError(f"field {name!r} has dtype {field_dtype}, not a PCD type")
        sizes.append(base.itemsize)
        types.append(kind)
        counts.append(int(np.prod(shape)) if shape else 1)
    names = list(points.dtype.names)
    packed_dtype = np.dtype(
        [
            (n, _TYPES[(t, s)], (c,)) if c > 1 else (n, _TYPES[(t, s)])
            for n, s, t, c in zip(names, sizes, types, counts, strict=True)
        ]
    )
    packed = np.zeros(len(points), packed_dtype)
    for name in names:
        packed[name] = points[name]
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
        f"FIELDS {' '.join(names)}\nSIZE {' '.join(map(str, sizes))}\n"
        f"TYPE {' '.join(types)}\nCOUNT {' '.join(map(str, counts))}\n"
        f"WIDTH {len(points)}\nHEIGHT 1\nVIEWPOINT {' '.join(f'{v:g}' for v in viewpoint)}\n"
        f"POINTS {len(points)}\nDATA {data}\n"
    ).encode("ascii")
    if data == "binary":
        return header + packed.tobytes()
    if data == "binary_compressed":
        raw = b"".join(np.ascontiguousarray(packed[name]).tobytes() for name in names)
        compressed = lzf_compress(raw)
        sizes_word = np.array([len(compressed), len(raw)], "<u4").tobytes()
        return header + sizes_word + compressed
    out = io.StringIO()
    formats = []
    for kind, size, count in zip(types, sizes, counts, strict=True):
        fmt = ("%.9g" if size == 4 else "%.17g") if kind == "F" else "%d"
        formats += [fmt] * count
    if len(points):
        table = np.column_stack([packed[n].reshape(len(points), -1).astype(object) for n in names])
        np.savetxt(out, table, fmt=formats)
    return header + out.getvalue().encode("ascii")


def lzf_decompress(data: bytes, size: int) -> bytes:
    """Decompress an LZF stream into exactly ``size`` bytes (ValueError if it is corrupt)."""
    if not size:
        return b""
    out = lzf.decompress(data, size)  # None when the output would exceed size
    if out is None or len(out) != size:
        raise ValueError(f"LZF stream decompresses to {len(out or b'')} bytes, not {size}")
    return bytes(out)


def lzf_compress(raw: bytes) -> bytes:
    """The LZF stream of ``raw``.

    Given room for liblzf's worst case (a literal-run byte per 32 input bytes), ``compress``
    always returns a stream, even for incompressible data.
    """
    if not raw:
        return b""
    return bytes(lzf.compress(raw, len(raw) + len(raw) // 32 + 1))
