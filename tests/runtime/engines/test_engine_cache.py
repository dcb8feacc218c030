"""The engine cache: every ingredient is in the key; damaged, foreign and stale files refused."""

from __future__ import annotations

import dataclasses
import hashlib
import json

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


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from fusionrt.runtime.engines.cache import default_cache_dir

    monkeypatch.setenv("FUSIONRT_ENGINE_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("FUSIONRT_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "fusionrt" / "engines"
