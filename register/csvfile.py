"""The register's CSV imports (rosters, guardians' contacts) read one way: UTF-8, a header of known
columns, and every error naming the line and column, before anything is stored."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: What makes a spreadsheet read a cell as a formula when it comes first (OWASP, "CSV Injection").
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
# A cell start: the text's start, or a character a spreadsheet may split cells or rows at (`,` `;` tab
# in the locales that use them as the list separator, CR/LF) -- followed by spaces or quotes it drops.
_CELL_START = re.compile(r"(^|[,;\t\r\n])(?=[ \"]*[=+\-@\t\r])")


def starts_formula(text: str) -> bool:
    """Whether ``text`` begins with a character that starts a spreadsheet formula."""
    return text.startswith(FORMULA_START)


def text_cell(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet reads as text, not as a formula (the OWASP prefix rule).

    A ``'`` goes before a formula character at the start, and also after a ``,`` ``;`` tab, CR or LF
    inside the cell, where a spreadsheet that splits at that character (Excel in a locale whose list
    separator is ``;``) would start a new cell. Other text is returned as it is, so the rule is
    idempotent (a ``'`` is not a formula character).
    """
    return _CELL_START.sub(r"\1'", text)


@dataclass(frozen=True)
class CsvTable:
    """The header's column names (lower case) and the non-blank rows as (line, column → cell)."""

    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]

    def where(self, line: int, column: str) -> str:
        """``line 4, column 3 (name)``: how every error points at a cell."""
        return f"line {line}, column {self.columns.index(column) + 1} ({column})"


def read_csv(
    raw: bytes,
    *,
    what: str,
    known: Sequence[str],
    required: Sequence[str],
    max_bytes: int,
    max_rows: int,
    error: type[Exception],
) -> CsvTable:
    """Parse ``raw`` as a CSV of ``known`` columns (``required`` among them); ``error`` names the line."""
    if len(raw) > max_bytes:
        raise error(f"{what} of {len(raw)} bytes is larger than {max_bytes}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"line {line}: not UTF-8 (save the file as CSV UTF-8)") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise error("line 1: empty file (expected a header: " + ",".join(known) + ")")
        cols = [h.strip().lower() for h in header]
        for i, name in enumerate(cols, 1):
            if name not in known:
                raise error(f"line 1, column {i}: unknown column {name!r} (known: {', '.join(known)})")
            if cols.index(name) != i - 1:
                raise error(f"line 1, column {i}: column {name!r} appears twice")
        for name in required:
            if name not in cols:
                raise error(f"line 1: missing column {name!r}")
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(cols):
                raise error(f"line {reader.line_num}: {len(row)} fields, the header has {len(cols)}")
            if len(rows) >= max_rows:
                raise error(f"line {reader.line_num}: more than {max_rows} rows")
            rows.append((reader.line_num, dict(zip(cols, row, strict=True))))
    except csv.Error as exc:
        raise error(f"line {reader.line_num}: not valid CSV: {exc}") from None
    return CsvTable(cols, rows)
