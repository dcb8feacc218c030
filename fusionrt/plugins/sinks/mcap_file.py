"""An MCAP file that a killed or failed run leaves readable: small chunks, each on disk whole.

The ``mcap`` package's :class:`~mcap.writer.Writer` builds the records (zstd chunks of about
``chunk_size`` bytes with their CRCs, message indexes, the summary); it writes them into a
spool, and :meth:`McapFile.flush` (called once per frame) hands what the spool holds to a
:class:`~fusionrt.plugins.sinks.files.RecordFile` in one piece. So the file on disk always ends
at a whole record:

* killed (``SIGKILL``, power to the process cut): every chunk completed before the kill is
  there, and a stream reader (``mcap.stream_reader.StreamReader``, ``fusionrt mcap-recover``)
  reads them all;
* a write fails (``ENOSPC``, ``EFBIG``): the torn bytes are cut off, :meth:`close` ends the
  file with ``DataEnd`` + a ``Footer`` without summary + the magic (a complete MCAP without
  index, `MCAP spec <https://mcap.dev/spec>`_: a summary section is optional, ``summary_start``
  0 says there is none), and readers scan it linearly; where even those 50 bytes cannot be
  written, the file is left at its last whole chunk.

The foxglove-sdk writer (``foxglove.open_mcap``) did neither: it logs a failed write to stderr
and goes on, and it writes a chunk's length only when the chunk is done, so a killed run's last
chunk says it is 2**64 - 1 bytes long and no reader gets past it.
"""

from __future__ import annotations

from pathlib import Path

from mcap.data_stream import RecordBuilder
from mcap.records import DataEnd, Footer
from mcap.writer import LIBRARY_IDENTIFIER, MCAP0_MAGIC, CompressionType, Writer

import fusionrt
from fusionrt.plugins.sinks.files import RecordFile
from fusionrt.runtime.errors import SinkError

__all__ = ["McapFile", "unindexed_end"]


def unindexed_end() -> bytes:
    """``DataEnd`` (no data CRC), a ``Footer`` saying there is no summary, and the magic."""
    builder = RecordBuilder()
    DataEnd(data_section_crc=0).write(builder)
    Footer(summary_start=0, summary_offset_start=0, summary_crc=0).write(builder)
    return builder.end() + MCAP0_MAGIC


class _Spool:
    """Where the ``Writer`` writes: bytes wait here until :meth:`McapFile.flush` (whole
    records only), and ``tell`` counts the bytes already in the file."""

    def __init__(self, file: RecordFile) -> None:
        self.file = file
        self.pending = bytearray()

    def write(self, data: bytes) -> int:
        self.pending += data
        return len(data)

    def tell(self) -> int:
        return self.file.size + len(self.pending)


class McapFile:
    """An MCAP file for one sink (module docstring): register schemas and channels, add
    messages, :meth:`flush` after each frame, :meth:`close` at the end. Errors are
    :class:`SinkError` naming ``sink`` and the file."""

    def __init__(self, path: Path, sink: str, chunk_size: int) -> None:
        self.path = Path(path)
        self._file = RecordFile(self.path, sink)
        self._spool = _Spool(self._file)
        self._writer = Writer(
            self._spool,  # type: ignore[arg-type]  # the Writer needs write() and tell() only
            chunk_size=chunk_size,
            compression=CompressionType.ZSTD,
            enable_crcs=True,  # each chunk's CRC: a reader tells a damaged chunk from a good one
        )
        self._writer.start(library=f"fusionrt/{fusionrt.__version__} {LIBRARY_IDENTIFIER}")
        self.flush()

    def add_schema(self, name: str, encoding: str, data: bytes) -> int:
        """Register a schema; its id."""
        return self._writer.register_schema(name, encoding, data)

    def add_channel(self, topic: str, message_encoding: str, schema_id: int) -> int:
        """Register a channel; its id."""
        return self._writer.register_channel(topic, message_encoding, schema_id)

    def add_message(self, channel_id: int, log_time_ns: int, data: bytes) -> None:
        """Add a message (it reaches the file with its chunk)."""
        self._writer.add_message(channel_id, log_time_ns, data, publish_time=log_time_ns)

    def flush(self) -> None:
        """Write the completed chunks (and indexes) to the file in one piece."""
        pending = self._spool.pending
        if not pending and self._file.error is None:
            return
        self._spool.pending = bytearray()
        self._file.append(pending)

    def close(self) -> None:
        """Finish the file: summary and footer; after a failed write, the unindexed end.

        Raises the :class:`SinkError` of a write that fails here; a failure already raised by
        :meth:`flush` is not raised again (the file is left as readable as it can be).
        """
        if self._file.closed:
            return
        error: SinkError | None = None
        if self._file.error is None:
            try:
                self._writer.finish()
                self.flush()
            except SinkError as exc:
                error = exc
        if self._file.error is not None:
            self._file.seal(unindexed_end())
        self._file.close()
        if error is not None:
            raise error
