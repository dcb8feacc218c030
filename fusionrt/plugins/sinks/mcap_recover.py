"""``fusionrt mcap-recover IN OUT``: a partial MCAP (a killed or failed run's) rewritten whole.

IN is read front to back with the ``mcap`` package's stream reader, one top-level record at a
time; every message of every chunk that decompresses and passes its CRC, and every message
outside chunks, is written to OUT with its schema and channel (attachments and metadata too)
by the ``mcap`` writer, which adds the summary and indexes a seeking reader (Foxglove) needs.
A chunk that fails its CRC or does not decompress is skipped and counted; the first record
that is torn (where a killed run stopped) or unreadable ends the data, and so does ``DataEnd``
(the summary after it is rebuilt, not copied). IN must start with the MCAP magic, else the
command fails with a one-line :class:`~fusionrt.runtime.errors.DecodeError`. OUT is written
beside itself and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard
from mcap.exceptions import McapError
from mcap.records import Attachment, Channel, Chunk, DataEnd, Header, Message, Metadata, Schema
from mcap.stream_reader import StreamReader, breakup_chunk
from mcap.writer import MCAP0_MAGIC, Writer

import fusionrt
from fusionrt.runtime.errors import DecodeError, SinkError, SourceError
from fusionrt.runtime.text_table import format_table

__all__ = ["Recovery", "add_commands", "recover"]

#: what reading a torn or damaged record can raise: the mcap reader's own errors (``EndOfFile``,
#: ``RecordLengthLimitExceeded``), bad CRCs and text (``ValueError``), short fields
#: (``struct.error``), zstd's and lz4's (``RuntimeError``) errors
_DAMAGE = (McapError, ValueError, struct.error, zstandard.ZstdError, RuntimeError)


@dataclass
class Recovery:
    """What :func:`recover` kept and what it left out."""

    messages: Counter[str] = field(default_factory=Counter)  # per topic
    chunks: int = 0  # chunks whose messages were kept
    bad_chunks: list[int] = field(default_factory=list)  # offsets of chunks skipped
    orphans: int = 0  # messages on a channel IN never defined (its chunk was lost)
    attachments: int = 0
    metadata: int = 0
    read_bytes: int = 0  # IN up to the end of the last whole record read
    size: int = 0  # IN's size
    stopped: str | None = None  # why reading ended before DataEnd

    @property
    def complete(self) -> bool:
        """Whether IN's data section was whole (it reached ``DataEnd``)."""
        return self.stopped is None


class _Copier:
    """Writes IN's records into OUT's writer, renumbering schemas and channels."""

    def __init__(self, output: BinaryIO, recovery: Recovery) -> None:
        self.writer = Writer(output)
        self.recovery = recovery
        self.started = False
        self.schemas: dict[int, int] = {0: 0}  # IN's schema id -> OUT's (0: no schema)
        self.channels: dict[int, tuple[int, str]] = {}  # IN's channel id -> OUT's, topic

    def start(self, header: Header | None) -> None:
        if self.started:
            return
        profile, library = (header.profile, header.library) if header else ("", "")
        recovered = f"recovered by fusionrt/{fusionrt.__version__} mcap-recover"
        self.writer.start(profile, f"{library}; {recovered}" if library else recovered)
        self.started = True

    def copy(self, record: Any) -> None:
        self.start(None)
        if isinstance(record, Schema) and record.id not in self.schemas:
            self.schemas[record.id] = self.writer.register_schema(
                record.name, record.encoding, record.data
            )
        elif isinstance(record, Channel) and record.id not in self.channels:
            schema_id = self.schemas.get(record.schema_id)
            if schema_id is not None:
                channel_id = self.writer.register_channel(
                    record.topic, record.message_encoding, schema_id, record.metadata
                )
                self.channels[record.id] = (channel_id, record.topic)
        elif isinstance(record, Message):
            channel = self.channels.get(record.channel_id)
            if channel is None:
                self.recovery.orphans += 1
                return
            self.writer.add_message(
                channel[0], record.log_time, record.data, record.publish_time, record.sequence
            )
            self.recovery.messages[channel[1]] += 1
        elif isinstance(record, Attachment):
            self.writer.add_attachment(
                record.create_time, record.log_time, record.name, record.media_type, record.data
            )
            self.recovery.attachments += 1
        elif isinstance(record, Metadata):
            self.writer.add_metadata(record.name, record.metadata)
            self.recovery.metadata += 1


def _torn(source: BinaryIO, offset: int, size: int) -> bool:
    """Whether the record at ``offset`` runs past the end of the file (MCAP spec, "Records":
    an opcode byte and a little-endian uint64 length of the content that follows)."""
    source.seek(offset)
    header = source.read(9)
    return len(header) < 9 or offset + 9 + int.from_bytes(header[1:], "little") > size


def _copy_records(source: BinaryIO, copier: _Copier, recovery: Recovery) -> None:
    """Copy IN's data section record by record until ``DataEnd`` or the first bad record."""
    # a record longer than the file is torn: the limit keeps a wild length from being allocated
    records = StreamReader(source, emit_chunks=True, record_size_limit=recovery.size).records
    while True:
        offset = source.tell()
        try:
            record = next(records)
        except StopIteration:  # only after a footer, which comes after DataEnd
            return
        except _DAMAGE as exc:
            if offset == recovery.size:
                recovery.stopped = f"it ends at byte {offset} without DataEnd"
            elif _torn(source, offset, recovery.size):
                recovery.stopped = f"the record at byte {offset} is cut short"
            else:
                recovery.stopped = f"unreadable record at byte {offset}: {exc}"
            return
        recovery.read_bytes = source.tell()
        if isinstance(record, Header):
            copier.start(record)
        elif isinstance(record, DataEnd):
            return
        elif isinstance(record, Chunk):
            try:
                inner = breakup_chunk(record, validate_crc=True)
            except _DAMAGE:
                recovery.bad_chunks.append(offset)
                continue
            recovery.chunks += 1
            for item in inner:
                copier.copy(item)
        else:
            copier.copy(record)


def recover(source: Path, target: Path) -> Recovery:
    """Rewrite the MCAP ``source`` (partial or whole) as a complete, indexed ``target``."""
    source, target = Path(source), Path(target)
    if target.exists() and source.exists() and target.samefile(source):
        raise SourceError("OUT must be another file than IN", file=str(source))
    recovery = Recovery()
    try:
        stream = source.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", file=str(source)) from exc
    partial = target.with_name(f".{target.name}.partial")
    with stream:
        recovery.size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        if stream.read(len(MCAP0_MAGIC)) != MCAP0_MAGIC:
            raise DecodeError(
                "not an MCAP file (it does not start with the MCAP magic)",
                file=str(source),
                offset=0,
            )
        stream.seek(0)
        try:
            with partial.open("wb") as output:
                copier = _Copier(output, recovery)
                _copy_records(stream, copier, recovery)
                copier.start(None)
                copier.writer.finish()
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise SinkError(
                f"cannot write the recovered MCAP: [Errno {exc.errno}] {exc.strerror}",
                file=str(target),
            ) from exc
    return recovery


def format_recovery(recovery: Recovery, source: Path, target: Path) -> str:
    """What the command prints: the counts per topic, then what was left out and why."""
    total = sum(recovery.messages.values())
    lines = [f"recovered {total} messages from {recovery.chunks} chunks of {source} into {target}"]
    if total:
        rows = [[topic, str(n)] for topic, n in sorted(recovery.messages.items())]
        lines.append(format_table(("topic", "messages"), rows, numbers_right=True))
    if recovery.complete:
        lines.append(f"{source}: the data section is whole ({recovery.size} bytes)")
    else:
        lines.append(
            f"{source}: read {recovery.read_bytes} of {recovery.size} bytes; {recovery.stopped}"
        )
    if recovery.bad_chunks:
        where = ", ".join(str(offset) for offset in recovery.bad_chunks)
        lines.append(f"skipped {len(recovery.bad_chunks)} damaged chunks (at bytes {where})")
    if recovery.orphans:
        lines.append(f"skipped {recovery.orphans} messages on channels never defined")
    if recovery.attachments or recovery.metadata:
        lines.append(f"kept {recovery.attachments} attachments, {recovery.metadata} metadata")
    return "\n".join(lines)


def _mcap_recover(args: argparse.Namespace) -> int:
    recovery = recover(args.input, args.output)
    print(format_recovery(recovery, args.input, args.output))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fusionrt mcap-recover``."""
    command = subparsers.add_parser(
        "mcap-recover",
        help="rewrite a partial MCAP (a killed or failed run's) as a complete, indexed one",
        description=(
            "Read IN up to its last whole record, keep every message of every intact chunk "
            "and write them, indexed, to OUT; print the counts and what was left out."
        ),
    )
    command.add_argument("input", type=Path, metavar="IN", help="the partial MCAP file")
    command.add_argument("output", type=Path, metavar="OUT", help="the MCAP file to write")
    command.set_defaults(func=_mcap_recover)
