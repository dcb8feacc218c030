"""A deterministic, download-free tokenizer for log lines and V2X notes.

Text is normalised (Unicode NFKC, case-folded, the Unicode minus sign read as ``-``) and split
into tokens, left to right:

* **numbers** — ASCII decimal numbers with optional sign, fraction and exponent (``50``,
  ``-3.5``, ``.5``, ``1e3``) become the special id :data:`NUM_ID`, and their value goes into
  the parallel ``numbers`` array at the same position (clamped to ``±number_clip``); digits
  glued to letters that follow are split off (``50m`` → ``NUM(50)``, ``m``);
* **words** — runs of letters and digits that do not start as a number (``fog``, ``v2x``,
  ``lane``). A word of at most ``whole_word_chars`` characters is one piece; a longer one is
  cut into pieces of ``piece_chars`` characters, the continuation pieces prefixed ``##``
  (``construction`` → ``construc``, ``##tion``);
* **punctuation and Latin-1 symbols** (``,`` ``.`` ``%`` ``°`` ``/``) are one piece each;
  any other symbol (emoji, box drawing, private use) is :data:`UNK_ID`.

Each piece is hashed into the vocabulary with CRC-32 of its UTF-8 bytes (stable across
processes and machines, unlike Python's salted ``hash``):
``id = RESERVED_IDS + crc32(piece) mod (vocab_size − RESERVED_IDS)``.

Several lines are encoded newest first, separated by :data:`SEP_ID`, and the sequence is cut or
padded (:data:`PAD_ID`, mask 0) to exactly ``length`` tokens, so the newest line always
survives truncation. ``"fog advisory, visibility 50 m"`` reads as
``fog advisory , visibility NUM m`` with ``50.0`` in ``numbers`` at the ``NUM`` position.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

PAD_ID = 0
UNK_ID = 1
NUM_ID = 2
SEP_ID = 3
#: Ids below this are special; hashed pieces use ``RESERVED_IDS … vocab_size − 1``.
RESERVED_IDS = 8
SPECIAL_TOKENS: dict[int, str] = {
    PAD_ID: "[PAD]",
    UNK_ID: "[UNK]",
    NUM_ID: "[NUM]",
    SEP_ID: "[SEP]",
}

_TOKEN = re.compile(
    r"(?P<num>(?:(?<![^\W_])[-+])?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:e[-+]?[0-9]+)?)"
    r"|(?P<word>[^\W_]+)"
    r"|(?P<other>[^\w\s]|_)"
)
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-"})
_LATIN1_MAX = 0xFF


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` is ``"word"``, ``"num"``, ``"punct"`` or ``"unk"``."""

    kind: str
    piece: str
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class TokenizedText:
    """Fixed-length model inputs: ``ids`` int64, ``mask`` float32 (1 = token), ``numbers``
    float32 (the value of each ``NUM_ID`` token, 0 elsewhere)."""

    ids: np.ndarray
    mask: np.ndarray
    numbers: np.ndarray


class HashingTokenizer:
    """Lower-case word pieces hashed into ``vocab_size`` ids, numbers kept as values.

    ``length`` is the fixed output length. See the module docstring for the rules.
    """

    def __init__(
        self,
        vocab_size: int = 4096,
        length: int = 32,
        *,
        whole_word_chars: int = 12,
        piece_chars: int = 8,
        number_clip: float = 1e9,
    ) -> None:
        if vocab_size < RESERVED_IDS + 8:
            raise ValueError(f"vocab_size must be at least {RESERVED_IDS + 8}, got {vocab_size}")
        if length < 1 or piece_chars < 1 or whole_word_chars < piece_chars:
            raise ValueError("length and piece_chars must be >= 1, whole_word_chars >= piece_chars")
        self.vocab_size = int(vocab_size)
        self.length = int(length)
        self.whole_word_chars = int(whole_word_chars)
        self.piece_chars = int(piece_chars)
        self.number_clip = float(number_clip)

    # -- pieces -------------------------------------------------------------------------

    @staticmethod
    def normalise(text: str) -> str:
        """NFKC, case-folded, Unicode minus signs as ``-``."""
        return unicodedata.normalize("NFKC", text).translate(_MINUS_SIGNS).casefold()

    def tokens(self, text: str) -> Iterator[Token]:
        """The tokens of one text, left to right (lazy: stop iterating when you have enough)."""
        for match in _TOKEN.finditer(self.normalise(text)):
            kind = match.lastgroup
            piece = match.group()
            if kind == "num":
                value = float(piece)
                value = min(max(value, -self.number_clip), self.number_clip)
                yield Token("num", piece, value)
            elif kind == "word":
                if len(piece) <= self.whole_word_chars:
                    yield Token("word", piece)
                else:
                    step = self.piece_chars
                    yield Token("word", piece[:step])
                    for start in range(step, len(piece), step):
                        yield Token("word", "##" + piece[start : start + step])
            elif ord(piece) <= _LATIN1_MAX or unicodedata.category(piece).startswith("P"):
                yield Token("punct", piece)
            else:
                yield Token("unk", piece)

    def piece_id(self, piece: str) -> int:
        """The vocabulary id of a word or punctuation piece (CRC-32 hash)."""
        span = self.vocab_size - RESERVED_IDS
        return RESERVED_IDS + zlib.crc32(piece.encode("utf-8", "surrogatepass")) % span

    def token_id(self, token: Token) -> int:
        """The id of a token: ``NUM_ID``, ``UNK_ID`` or its piece's hash."""
        if token.kind == "num":
            return NUM_ID
        if token.kind == "unk":
            return UNK_ID
        return self.piece_id(token.piece)

    # -- encoding -----------------------------------------------------------------------

    def encode(self, text: str | Sequence[str]) -> TokenizedText:
        """One text, or several lines given newest first, as fixed-length arrays."""
        lines: Iterable[str] = [text] if isinstance(text, str) else text
        ids = np.zeros(self.length, np.int64)
        numbers = np.zeros(self.length, np.float32)
        count = 0
        for index, line in enumerate(lines):
            if count >= self.length:
                break
            if index > 0:
                ids[count] = SEP_ID
                count += 1
            for token in self.tokens(line):
                if count >= self.length:
                    break
                ids[count] = self.token_id(token)
                if token.kind == "num":
                    numbers[count] = token.value
                count += 1
        mask = np.zeros(self.length, np.float32)
        mask[:count] = 1.0
        return TokenizedText(ids=ids, mask=mask, numbers=numbers)

    def describe(self, ids: np.ndarray, pieces: Iterable[str] = ()) -> list[str]:
        """Readable names of ``ids``: special tokens by name, known ``pieces`` by text."""
        known = {self.piece_id(p): p for p in pieces}
        return [SPECIAL_TOKENS.get(int(i)) or known.get(int(i), f"#{int(i)}") for i in ids]


__all__ = [
    "NUM_ID",
    "PAD_ID",
    "RESERVED_IDS",
    "SEP_ID",
    "SPECIAL_TOKENS",
    "UNK_ID",
    "HashingTokenizer",
    "Token",
    "TokenizedText",
]
