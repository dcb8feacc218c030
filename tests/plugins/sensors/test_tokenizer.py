"""The hashing tokenizer: rules, stability, and property tests (determinism, fixed length)."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusionrt.plugins.sensors.text import NUM_ID, PAD_ID, SEP_ID, UNK_ID, HashingTokenizer
from fusionrt.plugins.sensors.tokenizer import RESERVED_IDS


def _pieces(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.piece) for t in HashingTokenizer().tokens(text)]


def test_fog_advisory_keeps_the_number_and_its_unit() -> None:
    tokenizer = HashingTokenizer(vocab_size=4096, length=12)
    encoded = tokenizer.encode("Fog advisory, visibility 50 m")
    ids = encoded.ids.tolist()
    assert ids[:6] == [tokenizer.piece_id(p) for p in ("fog", "advisory", ",", "visibility")] + [
        NUM_ID,
        tokenizer.piece_id("m"),
    ]
    assert ids[6:] == [PAD_ID] * 6
    assert encoded.numbers[4] == 50.0 and np.count_nonzero(encoded.numbers) == 1
    assert encoded.mask.tolist() == [1.0] * 6 + [0.0] * 6
    assert encoded.ids.dtype == np.int64 and encoded.mask.dtype == np.float32
    assert encoded.numbers.dtype == np.float32


def test_splitting_rules() -> None:
    assert _pieces("Road-Works: −3.5°C, 50m v2x") == [
        ("word", "road"),
        ("punct", "-"),
        ("word", "works"),
        ("punct", ":"),
        ("num", "-3.5"),
        ("punct", "°"),
        ("word", "c"),
        ("punct", ","),
        ("num", "50"),
        ("word", "m"),
        ("word", "v2x"),
    ]
    assert _pieces("reconstruction") == [("word", "reconstr"), ("word", "##uction")]
    assert _pieces("🚧 1e3 .5") == [("unk", "🚧"), ("num", "1e3"), ("num", ".5")]
    values = [t.value for t in HashingTokenizer(number_clip=1e6).tokens("1e3 -2 1e99 -1e999")]
    assert values == [1000.0, -2.0, 1e6, -1e6]


def test_ids_are_crc32_hashes_stable_across_processes() -> None:
    tokenizer = HashingTokenizer(vocab_size=4096)
    assert tokenizer.piece_id("fog") == RESERVED_IDS + zlib.crc32(b"fog") % (4096 - RESERVED_IDS)
    code = (
        "from fusionrt.plugins.sensors.text import HashingTokenizer;"
        "print(HashingTokenizer().encode('lane closed ahead, 300 m').ids.tolist())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str(tokenizer.encode("lane closed ahead, 300 m").ids.tolist())


def test_lines_are_newest_first_with_separators_and_truncated() -> None:
    tokenizer = HashingTokenizer(length=6)
    encoded = tokenizer.encode(["fog ahead", "old note here"])
    assert encoded.ids.tolist()[:3] == [
        tokenizer.piece_id("fog"),
        tokenizer.piece_id("ahead"),
        SEP_ID,
    ]
    assert encoded.mask.sum() == 6  # cut to the fixed length
    assert tokenizer.encode([]).mask.sum() == 0
    assert tokenizer.encode("").ids.tolist() == [PAD_ID] * 6


def test_bad_construction() -> None:
    with pytest.raises(ValueError):
        HashingTokenizer(vocab_size=4)
    with pytest.raises(ValueError):
        HashingTokenizer(length=0)


@settings(max_examples=300)
@given(st.text(), st.integers(16, 50_000), st.integers(1, 64))
def test_any_unicode_encodes_deterministically_to_the_fixed_length(
    text: str, vocab: int, length: int
) -> None:
    tokenizer = HashingTokenizer(vocab_size=vocab, length=length)
    first, second = (
        tokenizer.encode(text),
        HashingTokenizer(vocab_size=vocab, length=length).encode(text),
    )
    for a, b in (
        (first.ids, second.ids),
        (first.mask, second.mask),
        (first.numbers, second.numbers),
    ):
        np.testing.assert_array_equal(a, b)
    assert first.ids.shape == first.mask.shape == first.numbers.shape == (length,)
    assert np.all((first.ids >= 0) & (first.ids < vocab))
    assert np.all(np.isfinite(first.numbers))
    real = int(first.mask.sum())
    assert np.all(first.mask[:real] == 1) and np.all(first.mask[real:] == 0)
    assert np.all(first.ids[real:] == PAD_ID) and np.all(first.ids[:real] != PAD_ID)
    assert np.all(first.numbers[first.ids != NUM_ID] == 0)


@given(st.lists(st.text(max_size=40), max_size=6), st.integers(1, 40))
def test_several_lines_never_crash_and_keep_the_length(lines: list[str], length: int) -> None:
    encoded = HashingTokenizer(length=length).encode(lines)
    assert encoded.ids.shape == (length,)
    assert set(encoded.ids.tolist()) <= set(range(4096))


@given(st.floats(allow_nan=False, allow_infinity=False, width=32).map(abs))
def test_numbers_keep_their_value(value: float) -> None:
    text = f"visibility {value!r} m"
    (number,) = [t for t in HashingTokenizer(number_clip=1e39).tokens(text) if t.kind == "num"]
    assert number.value == pytest.approx(float(repr(value)))


def test_unknown_symbols_use_the_unk_id() -> None:
    assert HashingTokenizer().encode("☃").ids[0] == UNK_ID
