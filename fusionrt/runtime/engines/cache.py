"""The TensorRT engine cache: keys, the engine file format, staleness and corruption checks.

A serialized TensorRT engine is only valid for the exact ONNX bytes, TensorRT version, CUDA
version and GPU (name and compute capability) it was built on, and for the precision and build
options it was built with. Those are its *ingredients*; the cache key is the SHA-256 of their
canonical JSON. Pure Python: nothing here imports TensorRT, so every rule is tested anywhere.

Engine file format (one file, header first, so nothing is handed to TensorRT unchecked)::

    b"FUSIONRT-ENGINE\\n"          magic (16 bytes)
    uint32 little-endian           header length N
    N bytes of UTF-8 JSON          {"format": 1, "key", "ingredients", "payload_size",
                                    "payload_sha256", "model_name", "created_utc", "fusionrt"}
    payload_size bytes             the serialized TensorRT engine (the plan)

Reading checks, in order: magic (else *foreign*: not a fusionrt engine file), header, size
(else *truncated*), SHA-256 (else *corrupted*), then the ingredients against what this machine
and this ONNX file need (else *stale*: the message lists every ingredient that differs).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fusionrt.runtime.errors import EngineError, brief

MAGIC = b"FUSIONRT-ENGINE\n"
FORMAT_VERSION = 1
_LENGTH = struct.Struct("<I")
_MAX_HEADER_BYTES = 1 << 20

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


class InvalidEngineFile(EngineError):
    """An engine file is foreign, truncated or corrupted: it must never reach TensorRT."""


class StaleEngineError(EngineError):
    """An engine file is intact but was built for other ingredients (TensorRT, GPU, ONNX...)."""


@dataclass(frozen=True)
class Platform:
    """What an engine is bound to on the machine: TensorRT, CUDA and the GPU."""

    tensorrt_version: str
    cuda_version: str
    gpu_name: str
    compute_capability: tuple[int, int]

    def key(self) -> str:
        """Short hash of the platform (names the timing cache, which is per platform)."""
        return _sha256_json(asdict(self))[:16]


@dataclass(frozen=True)
class BuildOptions:
    """Everything given to the TensorRT builder that changes the engine it builds.

    ``strongly_typed`` is forced on for ``int8`` (Q/DQ networks are built strongly typed; the
    implicit INT8 calibrators are gone from TensorRT 11). ``profiles`` lists optimisation
    profiles as ``((input, min, opt, max), ...)``; fusionrt's static-shape networks need none,
    but the key covers them so that a dynamic-shape build can never alias a static one.
    """

    precision: Precision = "fp32"
    workspace_mib: int = 1024
    strongly_typed: bool = False
    builder_optimization_level: int = 3
    profiles: tuple[tuple[Any, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EngineError(f"unknown precision {self.precision!r} (one of {PRECISIONS})")
        if self.precision == "int8" and not self.strongly_typed:
            object.__setattr__(self, "strongly_typed", True)
        if self.workspace_mib <= 0:
            raise EngineError("workspace_mib must be positive", workspace_mib=self.workspace_mib)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "workspace_mib": self.workspace_mib,
            "strongly_typed": self.strongly_typed,
            "builder_optimization_level": self.builder_optimization_level,
            "profiles": [list(p) for p in self.profiles],
        }


@dataclass(frozen=True)
class EngineIngredients:
    """The ONNX bytes' hash, the platform and the build options: what the key is made of."""

    onnx_sha256: str
    platform: Platform
    options: BuildOptions = field(default_factory=BuildOptions)

    @classmethod
    def for_onnx(
        cls, onnx_bytes: bytes, platform: Platform, options: BuildOptions | None = None
    ) -> EngineIngredients:
        return cls(hashlib.sha256(onnx_bytes).hexdigest(), platform, options or BuildOptions())

    def to_dict(self) -> dict[str, Any]:
        platform = asdict(self.platform)
        platform["compute_capability"] = list(self.platform.compute_capability)
        return {
            "onnx_sha256": self.onnx_sha256,
            "platform": platform,
            "options": self.options.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineIngredients:
        platform = dict(data["platform"])
        platform["compute_capability"] = tuple(platform["compute_capability"])
        options = dict(data["options"])
        options["profiles"] = tuple(tuple(p) for p in options.get("profiles", ()))
        return cls(data["onnx_sha256"], Platform(**platform), BuildOptions(**options))

    def key(self) -> str:
        """The cache key: SHA-256 (hex) of the canonical JSON of every ingredient."""
        return _sha256_json(self.to_dict())

    def differences(self, other: EngineIngredients) -> list[str]:
        """Human-readable list of what differs, ``self`` being the engine's, ``other`` here."""
        labels = {
            "onnx_sha256": "ONNX bytes (sha256)",
            "platform.tensorrt_version": "TensorRT version",
            "platform.cuda_version": "CUDA version",
            "platform.gpu_name": "GPU",
            "platform.compute_capability": "compute capability",
        }
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        diffs = []
        for name in sorted(set(mine) | set(theirs)):
            if mine.get(name) != theirs.get(name):
                label = labels.get(name, name.replace("options.", "build option "))
                diffs.append(
                    f"{label}: engine {_show(mine.get(name))}, needed {_show(theirs.get(name))}"
                )
        return diffs


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = json.dumps(value, sort_keys=True)
    return flat


def _show(value: str | None) -> str:
    return "(none)" if value is None else str(json.loads(value))


def _sha256_json(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the engine file ------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineHeader:
    """The header of an engine file (everything but the payload)."""

    key: str
    ingredients: EngineIngredients
    payload_size: int
    payload_sha256: str
    model_name: str = ""
    created_utc: str = ""
    fusionrt: str = ""


def write_engine_file(
    path: str | Path, ingredients: EngineIngredients, payload: bytes, *, model_name: str = ""
) -> Path:
    """Write ``payload`` with its header to ``path`` atomically (temp file + rename)."""
    from fusionrt import __version__  # noqa: PLC0415  (avoid a cycle at import time)

    path = Path(path)
    header = {
        "format": FORMAT_VERSION,
        "key": ingredients.key(),
        "ingredients": ingredients.to_dict(),
        "payload_size": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "model_name": model_name,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fusionrt": __version__,
    }
    blob = json.dumps(header, sort_keys=True).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(MAGIC)
            handle.write(_LENGTH.pack(len(blob)))
            handle.write(blob)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_engine_header(path: str | Path) -> EngineHeader:
    """Read and check the header only (cheap; for listings). ``InvalidEngineFile`` if bad."""
    header, _ = _read(Path(path), with_payload=False)
    return header


def read_engine_file(path: str | Path) -> tuple[EngineHeader, bytes]:
    """Header and payload, after the magic, size and SHA-256 checks (``InvalidEngineFile``)."""
    header, payload = _read(Path(path), with_payload=True)
    assert payload is not None
    return header, payload


def _read(path: Path, *, with_payload: bool) -> tuple[EngineHeader, bytes | None]:
    where = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise EngineError("engine file not found", file=where) from None
    except OSError as exc:  # a folder named *.engine, no permission
        raise InvalidEngineFile(f"cannot read: {exc.strerror or exc}", file=where) from None
    with handle:
        magic = handle.read(len(MAGIC))
        if magic != MAGIC:
            raise InvalidEngineFile(
                "not a fusionrt engine file (foreign or raw TensorRT plan: no fusionrt header); "
                "rebuild it with `fusionrt build-engine`",
                file=where,
            )
        length_bytes = handle.read(_LENGTH.size)
        if len(length_bytes) != _LENGTH.size:
            raise InvalidEngineFile("engine file truncated inside its header", file=where)
        (length,) = _LENGTH.unpack(length_bytes)
        if length > _MAX_HEADER_BYTES:
            raise InvalidEngineFile(
                f"engine file header length {length} is implausible (corrupted)", file=where
            )
        blob = handle.read(length)
        if len(blob) != length:
            raise InvalidEngineFile("engine file truncated inside its header", file=where)
        header = _parse_header(blob, where)
        offset = len(MAGIC) + _LENGTH.size + length
        size = path.stat().st_size - offset
        if size < header.payload_size:
            raise InvalidEngineFile(
                f"engine file truncated: {size} of {header.payload_size} payload bytes",
                file=where,
            )
        if size > header.payload_size:
            raise InvalidEngineFile(
                f"engine file has {size - header.payload_size} trailing bytes (corrupted)",
                file=where,
            )
        if not with_payload:
            return header, None
        payload = handle.read(header.payload_size)
    if hashlib.sha256(payload).hexdigest() != header.payload_sha256:
        raise InvalidEngineFile(
            "engine file corrupted: payload SHA-256 does not match its header", file=where
        )
    return header, payload


def _parse_header(blob: bytes, where: str) -> EngineHeader:
    """The header JSON of ``where``, checked field by field: the file may have been crafted
    (a list or ``null`` instead of an object, nesting deeper than Python recurses, numbers
    that are not integers); anything but a well-formed header is ``InvalidEngineFile``."""
    try:
        data = json.loads(blob.decode("utf-8"))
    except RecursionError:
        raise InvalidEngineFile(
            "engine file header nests too deep (corrupted)", file=where
        ) from None
    except ValueError as exc:  # not UTF-8, not JSON
        raise InvalidEngineFile(f"engine file header is corrupted ({exc})", file=where) from None
    if not isinstance(data, dict):
        raise InvalidEngineFile(
            f"engine file header is corrupted (a JSON {type(data).__name__}, not an object)",
            file=where,
        )
    if data.get("format") != FORMAT_VERSION:
        raise InvalidEngineFile(
            f"engine file format {brief(data.get('format'))} is not {FORMAT_VERSION} "
            "(written by another fusionrt version); rebuild it",
            file=where,
        )
    required = {"key": str, "payload_sha256": str, "payload_size": int, "ingredients": dict}
    optional = ("model_name", "created_utc", "fusionrt")
    wrong = [name for name, kind in required.items() if not isinstance(data.get(name), kind)]
    wrong += [name for name in optional if not isinstance(data.get(name, ""), str)]
    size = data.get("payload_size")
    if isinstance(size, bool) or (isinstance(size, int) and size < 0):
        wrong.append("payload_size")  # a JSON true is an int to Python
    if wrong:
        raise InvalidEngineFile(
            f"engine file header is corrupted (bad or missing {', '.join(wrong)})", file=where
        )
    try:
        ingredients = EngineIngredients.from_dict(data["ingredients"])
        matches = data["key"] == ingredients.key()
    except (ValueError, KeyError, TypeError, RecursionError, EngineError) as exc:
        raise InvalidEngineFile(
            f"engine file header is corrupted (ingredients: {type(exc).__name__})", file=where
        ) from None
    if not matches:
        raise InvalidEngineFile(
            "engine file header is corrupted (its key does not match its ingredients)",
            file=where,
        )
    return EngineHeader(
        key=data["key"],
        ingredients=ingredients,
        payload_size=data["payload_size"],
        payload_sha256=data["payload_sha256"],
        model_name=data.get("model_name", ""),
        created_utc=data.get("created_utc", ""),
        fusionrt=data.get("fusionrt", ""),
    )


def load_engine_file(path: str | Path, expected: EngineIngredients) -> bytes:
    """The payload of ``path``, refusing a foreign, damaged or stale file before any use.

    ``StaleEngineError`` lists every ingredient that differs (TensorRT version, GPU, ONNX...).
    """
    header, payload = read_engine_file(path)
    if header.key != expected.key():
        diffs = header.ingredients.differences(expected)
        raise StaleEngineError(
            "engine is stale or foreign: built for other ingredients; "
            "rebuild it with `fusionrt build-engine` (" + "; ".join(diffs) + ")",
            file=str(path),
        )
    return payload


# -- the cache directory --------------------------------------------------------------------

CacheStatus = Literal["hit", "built", "rebuilt"]


@dataclass(frozen=True)
class CacheResult:
    """What :meth:`EngineCache.get_or_build` did and where the engine lies."""

    payload: bytes
    path: Path
    status: CacheStatus
    stale: tuple[Path, ...] = ()
    reason: str = ""


def default_cache_dir() -> Path:
    """``$FUSIONRT_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/fusionrt/engines`` (~/.cache/...)."""
    explicit = os.environ.get("FUSIONRT_ENGINE_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fusionrt" / "engines"


class EngineCache:
    """A directory of engine files named ``<model>-<key[:16]>.engine``, plus timing caches."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def path_for(self, ingredients: EngineIngredients, model_name: str = "model") -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name) or "model"
        return self.directory / f"{safe}-{ingredients.key()[:16]}.engine"

    def timing_cache_path(self, platform: Platform) -> Path:
        """The timing cache for ``platform`` (TensorRT's timings are per GPU and version)."""
        return self.directory / f"timing-{platform.key()}.cache"

    def entries(self) -> list[tuple[Path, EngineHeader | EngineError]]:
        """Every engine file with its header, or the error that makes it unusable."""
        found: list[tuple[Path, EngineHeader | EngineError]] = []
        for path in sorted(self.directory.glob("*.engine")):
            try:
                found.append((path, read_engine_header(path)))
            except EngineError as exc:
                found.append((path, exc))
        return found

    def stale_for(self, ingredients: EngineIngredients, model_name: str) -> list[Path]:
        """Engine files of the same model name built for other ingredients."""
        current = self.path_for(ingredients, model_name)
        stale = []
        for path, header in self.entries():
            if path == current or not isinstance(header, EngineHeader):
                continue
            if header.model_name == model_name and header.key != ingredients.key():
                stale.append(path)
        return stale

    def lookup(self, ingredients: EngineIngredients, model_name: str = "model") -> bytes | None:
        """The cached payload, ``None`` if absent; ``EngineError`` if the file is unusable."""
        path = self.path_for(ingredients, model_name)
        if not path.exists():
            return None
        return load_engine_file(path, ingredients)

    def store(
        self, ingredients: EngineIngredients, payload: bytes, model_name: str = "model"
    ) -> Path:
        return write_engine_file(
            self.path_for(ingredients, model_name), ingredients, payload, model_name=model_name
        )

    def get_or_build(
        self,
        ingredients: EngineIngredients,
        build: Callable[[], bytes],
        *,
        model_name: str = "model",
        force: bool = False,
        rebuild_invalid: bool = False,
    ) -> CacheResult:
        """The cached engine, or a fresh build stored for next time.

        A damaged file under the right name raises ``InvalidEngineFile`` unless
        ``rebuild_invalid`` (then it is rebuilt and replaced). Engines of the same model built
        for other ingredients are reported in ``stale`` (and left for ``fusionrt`` to prune).
        """
        path = self.path_for(ingredients, model_name)
        stale = tuple(self.stale_for(ingredients, model_name))
        reason = ""
        if not force:
            try:
                payload = self.lookup(ingredients, model_name)
            except EngineError as exc:
                if not rebuild_invalid:
                    raise
                payload, reason = None, str(exc)
            if payload is not None:
                return CacheResult(payload, path, "hit", stale)
        elif path.exists():
            reason = "forced rebuild"
        if not reason and stale:
            reason = f"{len(stale)} engine(s) of {model_name!r} are stale for this machine"
        payload = build()
        self.store(ingredients, payload, model_name)
        return CacheResult(payload, path, "rebuilt" if reason else "built", stale, reason)
