"""Plain-text tables for the command line: one formatter for every listing and report."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, numbers_right: bool = False
) -> str:
    """Columns padded to their widest cell, a dashed rule under the header.

    Cells are left-aligned; with ``numbers_right`` every column after the first is
    right-aligned (tables of figures). Trailing blanks are trimmed.
    """
    widths = [len(cell) for cell in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(row: Sequence[str]) -> str:
        cells = (
            cell.rjust(w) if numbers_right and i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
