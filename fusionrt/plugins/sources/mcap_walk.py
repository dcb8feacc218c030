"""An MCAP file's data section walked record by record: what is really there, and where.

The walk reads record heads, chunk heads and nothing else, so it costs a seek per record
however large the chunks. It finds every chunk record with the message index records that
follow it, every message record outside a chunk and every schema and channel record. Bytes
that are not a record (a zero-filled block after power loss, an overwritten stretch) end the
record chain; the walk resumes at the next record it can trust:

* with a summary, at the next offset the chunk index knows (a chunk or a message index
  record) that holds a plausible record; a chunk the index places inside the skipped bytes
  is returned as damaged (``head`` ``None``) with its entry;
* without one (a file cut short), at the next plausible chunk or message index record found
  by searching the bytes: a chunk head whose fields add up to its record length, a message
  index whose array fills its record. Random bytes pass either check with a probability
  below 2^-32.

A record running past the end of a file without a summary is where the file was cut.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from mcap.records import ChunkIndex

from fusionrt.plugins.sources.mcap_format import (
    MAGIC,
    OP_CHANNEL,
    OP_CHUNK,
    OP_DATA_END,
    OP_FOOTER,
    OP_MESSAGE,
    OP_MESSAGE_INDEX,
    OP_NAMES,
    OP_SCHEMA,
    RECORD_HEAD,
    ChunkHead,
    read_chunk_head,
)

__all__ = ["Damage", "FoundChunk", "Walk", "walk"]

#: Bytes read at a time when searching for the next record after damage.
_SEARCH_BLOCK = 1 << 20
#: The records a walk can resume at without a summary: they can be checked for plausibility.
_RESYNC_OPCODES = re.compile(rb"[\x06\x07]")  # OP_CHUNK, OP_MESSAGE_INDEX


@dataclass(slots=True)
class FoundChunk:
    """A chunk record and the message index records after it."""

    offset: int
    length: int  # of the whole record
    head: ChunkHead | None  # None: damaged, the chunk index says a chunk starts here
    entry: ChunkIndex | None = None  # the chunk index entry naming this offset, if any
    indexes: list[tuple[int, int]] = field(default_factory=list)  # (offset, body length)
    index_complete: bool = True  # False: damage follows, or the chunk index lists others


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that are not records, skipped by the walk, where the chunk index places no chunk
    (where it does, the walk returns a damaged :class:`FoundChunk` instead)."""

    start: int
    stop: int


@dataclass(slots=True)
class Walk:
    """What the data section holds, in file order."""

    chunks: list[FoundChunk] = field(default_factory=list)
    loose: list[tuple[int, int]] = field(default_factory=list)  # message records: offset, length
    definitions: list[tuple[int, int, int]] = field(default_factory=list)  # opcode, offset, length
    damage: list[Damage] = field(default_factory=list)
    cut: tuple[int, str] | None = None  # where and how the file ends early


def _plausible_opcode(opcode: int) -> bool:
    """Defined opcodes (0x01-0x0F) and private ones (0x80-0xFF); 0x00 and the rest never are."""
    return 0x01 <= opcode <= 0x0F or opcode >= 0x80


class _Walker:
    def __init__(self, f: BinaryIO, size: int, limit: int, entries: list[ChunkIndex]) -> None:
        self.f, self.size, self.limit = f, size, limit
        self.summarised = bool(entries) or limit < size
        self.entries: Mapping[int, ChunkIndex] = {e.chunk_start_offset: e for e in entries}
        self.known = sorted(
            set(self.entries) | {o for e in entries for o in e.message_index_offsets.values()}
        )
        self.out = Walk()

    def head(self, pos: int) -> tuple[int, int] | None:
        self.f.seek(pos)
        data = self.f.read(RECORD_HEAD.size)
        return RECORD_HEAD.unpack(data) if len(data) == RECORD_HEAD.size else None

    def valid(self, pos: int, opcode: int, length: int) -> bool:
        """Whether the record head at ``pos`` can be trusted."""
        end = pos + RECORD_HEAD.size + length
        if not _plausible_opcode(opcode) or end > self.limit:
            return False
        if opcode == OP_CHUNK:
            return read_chunk_head(self.f, pos, length) is not None
        if opcode == OP_MESSAGE_INDEX:
            self.f.seek(pos + RECORD_HEAD.size)
            body = self.f.read(6) if length >= 6 else b""
            return len(body) == 6 and struct.unpack_from("<I", body, 2)[0] == length - 6
        return True

    def run(self) -> Walk:
        pos = len(MAGIC)
        chunk: FoundChunk | None = None
        while pos < self.limit:
            head = self.head(pos)
            if head is None:
                self.out.cut = (pos, f"the file ends at byte {self.size} without the footer")
                break
            opcode, length = head
            if opcode in (OP_FOOTER, OP_DATA_END):
                break
            end = pos + RECORD_HEAD.size + length
            if not self.valid(pos, opcode, length):
                if chunk is not None:
                    chunk.index_complete = False  # damage may have taken some of its index
                chunk = None
                if not self.summarised and end > self.size and _plausible_opcode(opcode):
                    what = OP_NAMES.get(opcode, f"opcode 0x{opcode:02x}")
                    self.out.cut = (
                        pos,
                        f"the file ends at byte {self.size}, inside a {what} record of "
                        f"{length} bytes starting at byte {pos}",
                    )
                    break
                resume, chunk = self.skip(pos)
                if resume is None:
                    break
                pos = resume
                continue
            if opcode == OP_MESSAGE_INDEX and chunk is not None:
                chunk.indexes.append((pos, length))
            elif opcode == OP_CHUNK:
                chunk = FoundChunk(pos, end - pos, read_chunk_head(self.f, pos, length))
                chunk.entry = self.entries.get(pos)
                self.out.chunks.append(chunk)
            else:
                chunk = None
                if opcode in (OP_SCHEMA, OP_CHANNEL):
                    self.out.definitions.append((opcode, pos, length))
                elif opcode == OP_MESSAGE:
                    self.out.loose.append((pos, length))
            pos = end
        else:
            if not self.summarised:
                self.out.cut = (pos, f"the file ends at byte {self.size} without the footer")
        for found in self.out.chunks:
            if found.entry is not None:
                listed = set(found.entry.message_index_offsets.values())
                found.index_complete &= listed == {o for o, _ in found.indexes}
        return self.out

    def skip(self, pos: int) -> tuple[int | None, FoundChunk | None]:
        """Skip the damage at ``pos``: where to resume, and the damaged chunk (if the index
        places one there) whose message index records may follow."""
        if self.summarised:
            i = bisect.bisect_right(self.known, pos)
            resume = next((q for q in self.known[i:] if self._valid_at(q)), None)
        else:
            resume = self._search(pos + 1)
        stop = self.limit if resume is None else resume
        inside = [e for offset, e in sorted(self.entries.items()) if pos <= offset < stop]
        if inside:
            for entry in inside:
                self.out.chunks.append(
                    FoundChunk(entry.chunk_start_offset, entry.chunk_length, None, entry)
                )
            damaged = self.out.chunks[-1]
            if pos < inside[0].chunk_start_offset:
                self.out.damage.append(Damage(pos, inside[0].chunk_start_offset))
            return resume, damaged
        if self.summarised:
            self.out.damage.append(Damage(pos, stop))
            return resume, None
        # No summary: message index records right after the damage tell what it held.
        damaged = FoundChunk(pos, stop - pos, None)
        self.out.chunks.append(damaged)
        if resume is None:
            self.out.cut = (
                pos,
                f"from byte {pos} to its end ({self.size}) the file holds no MCAP record",
            )
        return resume, damaged

    def _valid_at(self, pos: int) -> bool:
        head = self.head(pos)
        return head is not None and self.valid(pos, *head)

    def _search(self, start: int) -> int | None:
        """The next offset at or after ``start`` holding a plausible chunk or message index."""
        f, block = self.f, start
        while block < self.size:
            f.seek(block)
            data = f.read(_SEARCH_BLOCK + RECORD_HEAD.size)
            for match in _RESYNC_OPCODES.finditer(data, 0, _SEARCH_BLOCK):
                i = match.start()
                if i + RECORD_HEAD.size <= len(data):
                    opcode, length = RECORD_HEAD.unpack_from(data, i)
                    if self.valid(block + i, opcode, length):
                        return block + i
            block += _SEARCH_BLOCK
        return None


def walk(f: BinaryIO, size: int, summary_start: int | None, entries: list[ChunkIndex]) -> Walk:
    """Walk the data section of the MCAP file ``f`` (``size`` bytes).

    ``summary_start``: where the footer says the summary starts (it bounds the data section;
    ``None`` or 0: no summary, the data section runs to the end of the file); ``entries``:
    the summary's chunk index (it locates the records after damage).
    """
    limit = summary_start if summary_start else size
    return _Walker(f, size, limit, entries).run()
