"""The табель as CSV (long form, the contract's columns); the XLSX and PDF forms are in :mod:`.form`.

Each is byte-identical for the same database: rows are sorted, the CSV has fixed line endings, and the
workbook's and the PDF's document properties (creation time) are fixed. Money in the CSV is integer
tiyn (the rate × payable), never a float; the forms print tenge.

The CSV holds no formula, whatever a name in the roster says: every cell goes through
:func:`register.csvfile.text_cell` (a ``'`` before a formula character where a cell starts); the
workbook's rule is in :mod:`register.tabel.form`.
"""

from __future__ import annotations

import csv
import io
from typing import Final

from register.csvfile import text_cell
from register.tabel.status import Row, Tabel

COLUMNS: Final = (
    "kindergarten", "group", "child", "name", "date", "status",
    "first_in", "last_out", "method", "absence_reason", "flags", "payable",
)  # fmt: skip


def to_csv(t: Tabel) -> bytes:
    """UTF-8, ``\\n`` line endings, one row per child per day, in (group, child, date) order."""
    rows = [[str(cell) for cell in (
        r.kindergarten, r.group, r.child, r.name, r.date.isoformat(), r.status, r.first_in,
        r.last_out, r.method, r.absence_reason, r.flags, r.payable,
    )] for r in t.rows]  # fmt: skip
    return csv_bytes([list(COLUMNS), *rows])


def text_csv(doc: bytes) -> bytes:
    """A stored CSV (an approved табель) with every cell passed through :func:`text_cell`.

    The same bytes for a document :func:`to_csv` wrote; one stored before cells were made safe, or
    written into the database by hand, comes out without its formulas (and no longer matches its
    recorded digest, which is right: it is not the document that was approved).
    """
    text = doc.decode("utf-8", errors="replace")
    return csv_bytes(list(csv.reader(io.StringIO(text, newline=""))))


def csv_bytes(rows: list[list[str]]) -> bytes:
    """Every cell through :func:`text_cell`; a row with a CR in a cell is quoted in full (Python 3.11's
    writer quotes a field for the line terminator's characters only, and a bare CR would end the row)."""
    buf = io.StringIO(newline="")
    minimal = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        cells = [text_cell(cell) for cell in row]
        (quoted if any("\r" in cell for cell in cells) else minimal).writerow(cells)
    return buf.getvalue().encode("utf-8")


#: The mark in a day cell of the console's табель page (docs/tabel.md); a future day is blank.
MARKS: Final = {"present": "+", "absent": "н", "closed": "в", "not_enrolled": "-", "future": ""}


def _mark(r: Row) -> str:
    if r.status == "present" and not r.payable:
        return "+?"  # present, payment held by a flag
    if r.status == "absent" and r.absence_reason:
        return "н:" + r.absence_reason
    return MARKS[r.status]


def to_xlsx(t: Tabel) -> bytes:
    """The printed form in Russian (:func:`register.tabel.form.to_xlsx`; the console's download)."""
    from register.tabel.form import to_xlsx as form_xlsx  # noqa: PLC0415 - XlsxWriter only for the XLSX

    return form_xlsx(t)
