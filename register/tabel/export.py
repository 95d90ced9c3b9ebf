"""The табель as CSV (long form, the contract's columns) and as XLSX in the paper layout.

Both are byte-identical for the same database: rows are sorted, the CSV has fixed line endings, and the
workbook's document properties (creation time) are fixed. Money is integer tiyn, never a float.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from typing import Final

from register.tabel.status import Row, Tabel

COLUMNS: Final = (
    "kindergarten", "group", "child", "name", "date", "status",
    "first_in", "last_out", "method", "absence_reason", "flags", "payable",
)  # fmt: skip

#: The mark in a day cell of the paper табель (docs/tabel.md).
MARKS: Final = {"present": "+", "absent": "н", "closed": "в", "not_enrolled": "-"}
_FIXED_TIME: Final = dt.datetime(2000, 1, 1)


def to_csv(t: Tabel) -> bytes:
    """UTF-8, ``\\n`` line endings, one row per child per day, in (group, child, date) order."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in t.rows:
        writer.writerow([
            r.kindergarten, r.group, r.child, r.name, r.date.isoformat(), r.status, r.first_in,
            r.last_out, r.method, r.absence_reason, r.flags, r.payable,
        ])  # fmt: skip
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
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    book.set_properties({"created": _FIXED_TIME, "title": f"Табель {t.kindergarten} {t.month}"})
    bold = book.add_format({"bold": True})
    groups: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for r in t.rows:
        groups[r.group][r.child].append(r)
    used: set[str] = set()
    for group in sorted(groups):
        sheet = book.add_worksheet(_sheet_name(group or "(no group)", used))
        children = groups[group]
        days = sorted({r.date for rows in children.values() for r in rows})
        sheet.write_row(0, 0, [f"{t.kindergarten}", f"{group}", t.month, "rate_tiyn", t.rate_tiyn], bold)
        header = ["child", "name", *[str(d.day) for d in days], "present", "payable", "amount_tiyn"]
        sheet.write_row(2, 0, header, bold)
        row = 3
        total_present = total_payable = 0
        for child in sorted(children):
            rows = {r.date: r for r in children[child]}
            present = sum(r.status == "present" for r in rows.values())
            payable = sum(r.payable for r in rows.values())
            total_present += present
            total_payable += payable
            marks = [_mark(rows[d]) if d in rows else "" for d in days]
            sheet.write_row(row, 0, [child, rows[days[0]].name, *marks])
            sheet.write_row(row, 2 + len(days), [present, payable, payable * t.rate_tiyn])
            row += 1
        per_day = [sum(children[c][i].status == "present" for c in children) for i in range(len(days))]
        sheet.write_row(row, 0, ["total", "", *per_day], bold)
        sheet.write_row(row, 2 + len(days), [total_present, total_payable, total_payable * t.rate_tiyn], bold)
        sheet.set_column(1, 1, 28)
    book.close()
    return out.getvalue()


def _sheet_name(group: str, used: set[str]) -> str:
    """Excel's sheet name rules: ≤ 31 characters, none of ``[]:*?/\\``, unique (case-insensitive)."""
    base = "".join("_" if c in "[]:*?/\\" else c for c in group)[:31] or "_"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name
