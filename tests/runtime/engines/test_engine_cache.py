"""The engine cache: every ingredient is in the key; damaged, foreign and stale files refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct

import pytest

from fusionrt import EngineError
from fusionrt.runtime.engines.cache import (
    MAGIC,
    BuildOptions,
    EngineCache,
    EngineIngredients,
    InvalidEngineFile,
    Platform,
    StaleEngineError,
    load_engine_file,
    read_engine_file,
    read_engine_header,
    write_engine_file,
)

ONNX = b"\x08\x07fake onnx bytes"
PAYLOAD = bytes(range(256)) * 64
ORIN = Platform("10.3.0", "12.6", "Orin", (8, 7))


def ingredients(**changes) -> EngineIngredients:
    base = EngineIngredients.for_onnx(ONNX, ORIN, BuildOptions())
    platform = dataclasses.replace(base.platform, **changes.pop("platform", {}))
    options = dataclasses.replace(base.options, **changes.pop("options", {}))
    return EngineIngredients(changes.pop("onnx_sha256", base.onnx_sha256), platform, options)


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": hashlib.sha256(ONNX + b"!").hexdigest()},
        {"platform": {"tensorrt_version": "10.7.0"}},
        {"platform": {"cuda_version": "12.8"}},
        {"platform": {"gpu_name": "NVIDIA H100 80GB HBM3"}},
        {"platform": {"compute_capability": (9, 0)}},
        {"options": {"precision": "fp16"}},
        {"options": {"workspace_mib": 2048}},
        {"options": {"strongly_typed": True}},
        {"options": {"builder_optimization_level": 5}},
        {"options": {"profiles": (("x", (1, 3), (1, 3), (4, 3)),)}},
    ],
    ids=lambda c: next(iter(c.get("platform", c.get("options", c)))),
)
def test_each_ingredient_changes_the_key(change):
    assert ingredients(**change).key() != ingredients().key()


def test_the_key_is_stable_and_int8_is_always_strongly_typed():
    assert ingredients().key() == ingredients().key()
    assert len(ingredients().key()) == 64
    assert BuildOptions(precision="int8").strongly_typed
    assert ingredients().to_dict() == EngineIngredients.from_dict(ingredients().to_dict()).to_dict()
    with pytest.raises(EngineError, match="precision"):
        BuildOptions(precision="int4")  # type: ignore[arg-type]


def test_an_engine_file_round_trips(tmp_path):
    path = write_engine_file(tmp_path / "m.engine", ingredients(), PAYLOAD, model_name="m")
    header, payload = read_engine_file(path)
    assert payload == PAYLOAD
    assert header.key == ingredients().key() and header.model_name == "m"
    assert load_engine_file(path, ingredients()) == PAYLOAD
    assert read_engine_header(path).payload_size == len(PAYLOAD)


@pytest.fixture
def engine_file(tmp_path):
    return write_engine_file(tmp_path / "m.engine", ingredients(), PAYLOAD, model_name="m")


def test_a_truncated_engine_is_rejected(engine_file):
    data = engine_file.read_bytes()
    engine_file.write_bytes(data[:-100])
    with pytest.raises(InvalidEngineFile, match=r"truncated: 16284 of 16384 payload bytes"):
        load_engine_file(engine_file, ingredients())
    engine_file.write_bytes(data[:30])
    with pytest.raises(InvalidEngineFile, match="truncated inside its header"):
        load_engine_file(engine_file, ingredients())


def test_a_corrupted_payload_is_rejected(engine_file):
    data = bytearray(engine_file.read_bytes())
    data[-1000] ^= 0xFF
    engine_file.write_bytes(bytes(data))
    with pytest.raises(InvalidEngineFile, match="SHA-256 does not match") as info:
        load_engine_file(engine_file, ingredients())
    assert str(engine_file) in str(info.value)


def test_a_corrupted_header_is_rejected(engine_file):
    data = engine_file.read_bytes()
    engine_file.write_bytes(data.replace(b'"gpu_name": "Orin"', b'"gpu_name": "Orim"'))
    with pytest.raises(InvalidEngineFile, match="key does not match its ingredients"):
        load_engine_file(engine_file, ingredients())
    engine_file.write_bytes(data.replace(b'"format": 1', b'"format": [}'))
    with pytest.raises(InvalidEngineFile, match="header is corrupted"):
        load_engine_file(engine_file, ingredients())
    engine_file.write_bytes(data + b"junk")
    with pytest.raises(InvalidEngineFile, match="4 trailing bytes"):
        load_engine_file(engine_file, ingredients())


def test_a_foreign_file_is_rejected(tmp_path):
    raw_plan = tmp_path / "model.plan"
    raw_plan.write_bytes(b"ftrt" + PAYLOAD)  # a bare TensorRT plan, no fusionrt header
    with pytest.raises(InvalidEngineFile, match="not a fusionrt engine file"):
        load_engine_file(raw_plan, ingredients())
    with pytest.raises(EngineError, match="engine file not found"):
        load_engine_file(tmp_path / "missing.engine", ingredients())


def test_a_stale_engine_is_refused_with_every_difference(engine_file):
    here = ingredients(
        platform={"tensorrt_version": "10.7.0", "gpu_name": "NVIDIA RTX 4090"},
        options={"precision": "fp16"},
    )
    with pytest.raises(StaleEngineError) as info:
        load_engine_file(engine_file, here)
    message = str(info.value)
    assert "TensorRT version: engine 10.3.0, needed 10.7.0" in message
    assert "GPU: engine Orin, needed NVIDIA RTX 4090" in message
    assert "build option precision: engine fp32, needed fp16" in message
    assert "ONNX" not in message  # only what differs


def test_a_changed_onnx_makes_the_engine_stale(engine_file):
    with pytest.raises(StaleEngineError, match=r"ONNX bytes \(sha256\)"):
        load_engine_file(engine_file, EngineIngredients.for_onnx(ONNX + b"x", ORIN))


def test_the_cache_builds_once_then_hits(tmp_path):
    cache = EngineCache(tmp_path)
    builds = []

    def build():
        builds.append(1)
        return PAYLOAD

    first = cache.get_or_build(ingredients(), build, model_name="bev")
    second = cache.get_or_build(ingredients(), build, model_name="bev")
    assert (first.status, second.status, len(builds)) == ("built", "hit", 1)
    assert second.payload == PAYLOAD and first.path == second.path
    assert first.path.name.startswith("bev-") and first.path.suffix == ".engine"
    forced = cache.get_or_build(ingredients(), build, model_name="bev", force=True)
    assert forced.status == "rebuilt" and len(builds) == 2


def test_the_cache_reports_stale_engines_and_builds_a_new_one(tmp_path):
    cache = EngineCache(tmp_path)
    old = cache.store(ingredients(platform={"tensorrt_version": "10.0.1"}), PAYLOAD, "bev")
    result = cache.get_or_build(ingredients(), lambda: PAYLOAD[::-1], model_name="bev")
    assert result.status == "rebuilt" and result.stale == (old,)
    assert "stale" in result.reason
    assert cache.lookup(ingredients(), "bev") == PAYLOAD[::-1]


def test_the_cache_refuses_a_damaged_entry_unless_told_to_rebuild(tmp_path):
    cache = EngineCache(tmp_path)
    path = cache.store(ingredients(), PAYLOAD, "bev")
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(InvalidEngineFile, match="truncated"):
        cache.get_or_build(ingredients(), lambda: PAYLOAD, model_name="bev")
    result = cache.get_or_build(
        ingredients(), lambda: PAYLOAD, model_name="bev", rebuild_invalid=True
    )
    assert result.status == "rebuilt" and "truncated" in result.reason
    assert cache.lookup(ingredients(), "bev") == PAYLOAD


def test_entries_list_headers_and_errors(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store(ingredients(), PAYLOAD, "good")
    (tmp_path / "bad.engine").write_bytes(MAGIC + b"\x05\x00\x00\x00{oops")
    entries = dict((p.name, h) for p, h in cache.entries())
    assert isinstance(entries["bad.engine"], InvalidEngineFile)
    assert (
        json.loads(json.dumps(entries[f"good-{ingredients().key()[:16]}.engine"].key))
        == ingredients().key()
    )
    assert cache.timing_cache_path(ORIN).name == f"timing-{ORIN.key()}.cache"


def _crafted(path, header: bytes, payload: bytes = b""):
    """An engine file with the right magic and a header of the attacker's choosing."""
    path.write_bytes(MAGIC + struct.pack("<I", len(header)) + header + payload)
    return path


def _valid_header(**changes) -> dict:
    header = {
        "format": 1,
        "key": ingredients().key(),
        "ingredients": ingredients().to_dict(),
        "payload_size": len(PAYLOAD),
        "payload_sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    return {**header, **changes}


DEEP = 200_000  # deeper than Python's recursion limit, well inside the 1 MiB header bound

HOSTILE_HEADERS = {
    "a JSON list": b"[1, 2, 3]",
    "null": b"null",
    "a string": b'"format"',
    "a number": b"1",
    "deep nesting": b"[" * DEEP + b"]" * DEEP,
    "deep nesting in an object": b'{"format": 1, "key": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "ingredients a list": json.dumps(_valid_header(ingredients=[1])).encode(),
    "platform null": json.dumps(
        _valid_header(ingredients={**ingredients().to_dict(), "platform": None})
    ).encode(),
    "payload size infinite": json.dumps(_valid_header(payload_size=123456789))
    .encode()
    .replace(b"123456789", b"1e999"),
    "payload size a string": json.dumps(_valid_header(payload_size="16384")).encode(),
    "payload size negative": json.dumps(_valid_header(payload_size=-1)).encode(),
    "key a number": json.dumps(_valid_header(key=7)).encode(),
    "not UTF-8": b'{"format": 1, "key": "\xff"}',
}


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_a_crafted_header_is_an_invalid_engine_file_naming_it(tmp_path, header):
    path = _crafted(tmp_path / "crafted.engine", header, PAYLOAD)
    for read in (read_engine_header, read_engine_file):
        with pytest.raises(InvalidEngineFile) as info:
            read(path)
        assert info.value.context == {"file": str(path)}
        assert len(str(info.value)) < 400


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_one_crafted_file_does_not_break_the_cache(tmp_path, header):
    cache = EngineCache(tmp_path)
    good = cache.store(ingredients(), PAYLOAD, "bev")
    _crafted(tmp_path / "bev-0000000000000000.engine", header, PAYLOAD)
    result = cache.get_or_build(ingredients(), lambda: b"rebuilt", model_name="bev")
    assert (result.status, result.path, result.payload) == ("hit", good, PAYLOAD)
    other = ingredients(options={"precision": "fp16"})
    built = cache.get_or_build(other, lambda: b"fp16", model_name="bev")
    assert built.status == "rebuilt" and built.stale == (good,)
    listed = dict(cache.entries())
    assert isinstance(listed[tmp_path / "bev-0000000000000000.engine"], InvalidEngineFile)


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_a_crafted_file_under_the_entry_name_follows_the_rebuild_policy(tmp_path, header):
    cache = EngineCache(tmp_path)
    _crafted(cache.path_for(ingredients(), "bev"), header, PAYLOAD)
    with pytest.raises(InvalidEngineFile):
        cache.get_or_build(ingredients(), lambda: PAYLOAD, model_name="bev")
    result = cache.get_or_build(
        ingredients(), lambda: PAYLOAD, model_name="bev", rebuild_invalid=True
    )
    assert result.status == "rebuilt" and cache.lookup(ingredients(), "bev") == PAYLOAD


def test_an_unreadable_entry_is_listed_as_an_error(tmp_path):
    cache = EngineCache(tmp_path)
    (tmp_path / "folder.engine").mkdir()
    ((path, error),) = cache.entries()
    assert path.name == "folder.engine" and isinstance(error, InvalidEngineFile)
    assert cache.get_or_build(ingredients(), lambda: PAYLOAD, model_name="bev").status == "built"


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from fusionrt.runtime.engines.cache import default_cache_dir

    monkeypatch.setenv("FUSIONRT_ENGINE_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("FUSIONRT_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "fusionrt" / "engines"
