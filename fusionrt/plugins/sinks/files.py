"""Output files that fail loudly and keep only whole records.

A sink's file is written in *records* (a JSON line, the MCAP bytes of one frame, a PNG): each
:meth:`RecordFile.append` writes the whole record or, when the operating system refuses
(``ENOSPC``, ``EFBIG`` past ``RLIMIT_FSIZE``, ``EIO``), cuts the file back to the end of the
last whole record and raises :class:`~fusionrt.runtime.errors.SinkError` naming the sink, the
file and the cause. Once failed, the file refuses further records with the same error.

Written on a raw file descriptor by hand, not with Python's buffered files: a buffered file
keeps the bytes of a failed flush and writes them again when it is closed (tearing the file a
second time, or raising from ``close``), and it does not say where the last whole record ended.
``os.write`` may also write only part of a record before the error (a disk that fills up
mid-write); the loop below sees that and the cut removes it.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path

from fusionrt.runtime.errors import SinkError

__all__ = ["RecordFile", "sink_error", "write_whole_file"]


def sink_error(sink: str, path: Path, exc: OSError, action: str = "write") -> SinkError:
    """The one-line error of a sink that cannot ``action`` ``path``: names sink, file, cause."""
    cause = f"[Errno {exc.errno}] {exc.strerror}" if exc.strerror else str(exc)
    return SinkError(f"cannot {action} its output: {cause}", sink=sink, file=str(path))


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class RecordFile:
    """A file written record by record that never keeps part of a record (module docstring).

    ``size`` is the end of the last whole record. Not thread-safe: a sink writes from one
    thread.
    """

    def __init__(self, path: Path, sink: str) -> None:
        self.path, self.sink = Path(path), sink
        self.size = 0
        self.error: SinkError | None = None
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            # a device (/dev/full, a pipe) cannot be cut back: its records are only checked
            self._cuttable = stat.S_ISREG(os.fstat(self._fd).st_mode)
        except OSError as exc:
            raise sink_error(sink, self.path, exc, "open") from exc

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd is None

    def append(self, record: bytes | bytearray | memoryview) -> None:
        """Write ``record`` whole, or cut the file back to the last whole record and raise."""
        if self.error is not None:
            raise self.error
        if self._fd is None:
            raise SinkError("write after close", sink=self.sink, file=str(self.path))
        try:
            _write_all(self._fd, record)
        except OSError as exc:
            self.error = sink_error(self.sink, self.path, exc)
            self._cut()
            raise self.error from exc
        self.size += len(record)

    def seal(self, trailer: bytes) -> bool:
        """Append a format's closing record even after a failed :meth:`append`.

        The file ends at a whole record, so a trailer (an MCAP footer) still makes it valid.
        Returns whether it was written; if not, it is cut off again and the file stays as it was.
        """
        if self._fd is None:
            return False
        try:
            _write_all(self._fd, trailer)
        except OSError:
            self._cut()
            return False
        self.size += len(trailer)
        return True

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes (a format's own last whole record); best effort."""
        if size < self.size:
            self.size = size
            self._cut()

    def _cut(self) -> None:
        """Drop a partly written record: truncating needs no space, so it works on a full disk."""
        if self._fd is None or not self._cuttable:
            return
        try:
            os.ftruncate(self._fd, self.size)
            os.lseek(self._fd, self.size, os.SEEK_SET)
        except OSError:  # a file that cannot even be cut keeps the torn tail the error reported
            self._cuttable = False

    def close(self) -> None:
        """Close the descriptor (idempotent); a failed close is a :class:`SinkError`."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.close(fd)
        except OSError as exc:  # NFS and FUSE report deferred write errors here
            raise sink_error(self.sink, self.path, exc, "close") from exc


def write_whole_file(path: Path, data: bytes, sink: str) -> None:
    """Write ``path`` with ``data``; on failure remove the partial file and raise SinkError."""
    output = RecordFile(path, sink)
    try:
        output.append(data)
        output.close()
    except SinkError:
        with suppress(SinkError):  # the write's error is the one to report
            output.close()
        path.unlink(missing_ok=True)
        raise
