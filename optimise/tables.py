"""Plain-text tables for terminal summaries."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table's lines: the header, a rule, the rows, each column padded to its widest cell."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, ["-" * w for w in widths], *rows]
    ]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    for line in format_table(header, rows):
        print(line)
