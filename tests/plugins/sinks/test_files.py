"""RecordFile: whole records or a SinkError, under a real file-size limit and a real full disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sink_support import file_size_limit

from fusionrt.plugins.sinks.files import RecordFile
from fusionrt.runtime.errors import SinkError

# Run under RLIMIT_FSIZE = 2500 bytes: two 1000-byte records fit, the third is cut by the
# kernel after 500 bytes (a short write, then EFBIG).
CHILD = """
import sys
from pathlib import Path
from fusionrt.plugins.sinks.files import RecordFile, write_whole_file
from fusionrt.runtime.errors import SinkError

out = RecordFile(Path(sys.argv[1]), "test")
written = 0
try:
    for _ in range(5):
        out.append(b"r" * 999 + b"\\n")
        written += 1
except SinkError as exc:
    print(exc)
try:
    out.append(b"again\\n")
except SinkError as exc:
    print("refused:", exc)
print(written, out.size, out.seal(b"END\\n"), out.size)
out.close()
try:
    write_whole_file(Path(sys.argv[2]), b"p" * 3000, "test")
except SinkError as exc:
    print(exc)
"""


def test_a_record_cut_by_the_size_limit_is_removed_whole_and_reported(tmp_path):
    records, whole = tmp_path / "records.txt", tmp_path / "whole.png"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(records), str(whole)],
        preexec_fn=file_size_limit(2500),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    error, refused, counts, whole_error = done.stdout.splitlines()
    assert error == (
        f"cannot write its output: [Errno 27] File too large [sink='test', file='{records}']"
    )
    assert refused == f"refused: {error}"  # a failed file takes no record after the gap
    assert counts == "2 2000 True 2004"  # the torn third record is gone; a trailer still fits
    assert records.read_bytes() == (b"r" * 999 + b"\n") * 2 + b"END\n"
    assert "[Errno 27] File too large" in whole_error and not whole.exists()  # no partial file


def test_a_full_device_is_a_sink_error_naming_the_sink_and_the_file():
    out = RecordFile(Path("/dev/full"), "jsonl")
    with pytest.raises(SinkError) as raised:
        out.append(b"{}\n")
    out.close()
    assert str(raised.value) == (
        "cannot write its output: [Errno 28] No space left on device "
        "[sink='jsonl', file='/dev/full']"
    )


def test_a_file_that_cannot_be_opened_is_a_sink_error(tmp_path):
    with pytest.raises(SinkError, match=r"cannot open its output: \[Errno 2\]"):
        RecordFile(tmp_path / "missing" / "out.jsonl", "jsonl")
