"""The табель as CSV (long form, the contract's columns) and as XLSX in the paper layout.

Both are byte-identical for the same database: rows are sorted, the CSV has fixed line endings, and the
workbook's document properties (creation time) are fixed. Money is integer tiyn, never a float.

Neither holds a formula, whatever a name in the roster says: every CSV cell goes through
:func:`register.csvfile.text_cell` (a ``'`` before a formula character where a cell starts), and every
text cell of the workbook is written with ``write_string`` (a shared string is never evaluated), those
that begin with a formula character with Excel's quote prefix too, so editing the cell keeps it text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from register.csvfile import starts_formula, text_cell
from register.tabel.status import Row, Tabel

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

COLUMNS: Final = (
    "kindergarten", "group", "child", "name", "date", "status",
    "first_in", "last_out", "method", "absence_reason", "flags", "payable",
)  # fmt: skip

#: The mark in a day cell of the paper табель (docs/tabel.md).
MARKS: Final = {"present": "+", "absent": "н", "closed": "в", "not_enrolled": "-"}
_FIXED_TIME: Final = dt.datetime(2000, 1, 1)


def to_csv(t: Tabel) -> bytes:
    """UTF-8, ``\\n`` line endings, one row per child per day, in (group, child, date) order."""
    rows = [[str(cell) for cell in (
        r.kindergarten, r.group, r.child, r.name, r.date.isoformat(), r.status, r.first_in,
        r.last_out, r.method, r.absence_reason, r.flags, r.payable,
    )] for r in t.rows]  # fmt: skip
    return _csv_bytes([list(COLUMNS), *rows])


def text_csv(doc: bytes) -> bytes:
    """A stored CSV (an approved табель) with every cell passed through :func:`text_cell`.

    The same bytes for a document :func:`to_csv` wrote; one stored before cells were made safe, or
    written into the database by hand, comes out without its formulas (and no longer matches its
    recorded digest, which is right: it is not the document that was approved).
    """
    text = doc.decode("utf-8", errors="replace")
    return _csv_bytes(list(csv.reader(io.StringIO(text, newline=""))))


def _csv_bytes(rows: list[list[str]]) -> bytes:
    """Every cell through :func:`text_cell`; a row with a CR in a cell is quoted in full (Python 3.11's
    writer quotes a field for the line terminator's characters only, and a bare CR would end the row)."""
    buf = io.StringIO(newline="")
    minimal = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [text_cell(cell) for cell in row]
        (quoted if any("\r" in cell for cell in cells) else minimal).writerow(cells)
    return buf.getvalue().encode("utf-8")


def _mark(r: Row) -> str:
    if r.status == "present" and not r.payable:
        return "+?"  # present, payment held by a flag
    if r.status == "absent" and r.absence_reason:
        return "н:" + r.absence_reason
    return MARKS[r.status]


def to_xlsx(t: Tabel) -> bytes:
    """One sheet per group: children × days with a mark each, totals per child and for the group."""
    import xlsxwriter  # noqa: PLC0415 - only the XLSX export needs it

    out = io.BytesIO()
    # Nothing is guessed from a string's look (formulas, URLs, numbers); each cell says what it is.
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    book = xlsxwriter.Workbook(out, options)
    book.set_properties({"created": _FIXED_TIME, "title": f"Табель {t.kindergarten} {t.month}"})
    bold = book.add_format({"bold": True})
    plain = _Cells(book.add_format({"quote_prefix": True}))
    heading = _Cells(book.add_format({"bold": True, "quote_prefix": True}), bold)
    groups: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for r in t.rows:
        groups[r.group][r.child].append(r)
    used: set[str] = set()
    for group in sorted(groups):
        sheet = book.add_worksheet(_sheet_name(group or "(no group)", used))
        children = groups[group]
        days = sorted({r.date for rows in children.values() for r in rows})
        heading.write(sheet, 0, 0, [t.kindergarten, group, t.month, "rate_tiyn", t.rate_tiyn])
        header = ["child", "name", *[str(d.day) for d in days], "present", "payable", "amount_tiyn"]
        heading.write(sheet, 2, 0, header)
        row = 3
        total_present = total_payable = 0
        for child in sorted(children):
            rows = {r.date: r for r in children[child]}
            present = sum(r.status == "present" for r in rows.values())
            payable = sum(r.payable for r in rows.values())
            total_present += present
            total_payable += payable
            marks = [_mark(rows[d]) if d in rows else "" for d in days]
            plain.write(sheet, row, 0, [child, rows[days[0]].name, *marks])
            plain.write(sheet, row, 2 + len(days), [present, payable, payable * t.rate_tiyn])
            row += 1
        per_day = [sum(children[c][i].status == "present" for c in children) for i in range(len(days))]
        heading.write(sheet, row, 0, ["total", "", *per_day])
        heading.write(sheet, row, 2 + len(days), [total_present, total_payable, total_payable * t.rate_tiyn])
        sheet.set_column(1, 1, 28)
    book.close()
    return out.getvalue()


class _Cells:
    """Writes a row of cells with one look: text with ``write_string``, numbers with ``write_number``."""

    def __init__(self, quoted: Format, normal: Format | None = None) -> None:
        self._quoted, self._normal = quoted, normal

    def write(self, sheet: Worksheet, row: int, col: int, cells: Sequence[str | int]) -> None:
        for i, cell in enumerate(cells):
            if cell == "":
                sheet.write_blank(row, col + i, None, self._normal)
            elif isinstance(cell, str):
                look = self._quoted if starts_formula(cell) else self._normal
                sheet.write_string(row, col + i, cell, look)
            else:
                sheet.write_number(row, col + i, cell, self._normal)


def _sheet_name(group: str, used: set[str]) -> str:
    """Excel's sheet name rules: ≤ 31 characters, none of ``[]:*?/\\``, unique (case-insensitive)."""
    base = "".join("_" if c in "[]:*?/\\" else c for c in group)[:31] or "_"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name
