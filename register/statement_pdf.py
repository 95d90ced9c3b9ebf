"""The printed side of a parent statement: one A4 page with the child's month, day by day.

Each day of the month is one row (first check-in, last check-out, local time, how); the header names
the register that signed the statement and when; the QR code holds ``sha256:<hex>`` of
``statement.json``, so the paper names exactly one file, which the parent (or anyone) verifies with
``kgate statement verify``. Text in DejaVu Sans (every Kazakh and Russian letter).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import segno

from register.badges import _fonts

if TYPE_CHECKING:
    from register.statement import Statement

QR_MODULE_MM = 0.9
ROW_MM = 6.2
_WEEKDAYS = ("Дс/Пн", "Сс/Вт", "Ср/Ср", "Бс/Чт", "Жм/Пт", "Сн/Сб", "Жк/Вс")


def _days(statement: Statement) -> dict[dt.date, dict[str, Any]]:
    """Per local date: first ``in``, last ``out``, the methods used, the number of entries."""
    v = statement.verified
    tz = ZoneInfo(v.timezone)
    days: dict[dt.date, dict[str, Any]] = defaultdict(lambda: {"in": None, "out": None, "how": set(), "n": 0})
    for proven in v.entries:
        e = proven.entry
        local = dt.datetime.fromtimestamp(e.time_ms / 1000, tz)
        day = days[local.date()]
        day["n"] += 1
        if e.method:
            day["how"].add(e.method)
        if e.kind == "in" and (day["in"] is None or local < day["in"]):
            day["in"] = local
        if e.kind == "out" and (day["out"] is None or local > day["out"]):
            day["out"] = local
    return days


def _qr(pdf: Any, text: str, x: float, y: float) -> float:
    """Draw ``text`` as a QR code at (x, y), quiet zone included; returns its side in mm."""
    matrix = segno.make(text, error="m", micro=False).matrix
    pdf.set_fill_color(0, 0, 0)
    for row, bits in enumerate(matrix):
        for col, dark in enumerate(bits):
            if dark:
                pdf.rect(
                    x + (col + 4) * QR_MODULE_MM,
                    y + (row + 4) * QR_MODULE_MM,
                    QR_MODULE_MM,
                    QR_MODULE_MM,
                    "F",
                )
    return (len(matrix) + 8) * QR_MODULE_MM


def render_statement(statement: Statement) -> bytes:
    """The one-page PDF of ``statement`` as bytes."""
    from fpdf import FPDF  # noqa: PLC0415 - only printing needs it

    v = statement.verified
    year, month = int(v.month[:4]), int(v.month[5:])
    days = _days(statement)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(15, 12, 15)
    pdf.set_title(f"kgate statement {v.child} {v.month}")
    pdf.set_creator("kgate register statement")
    _fonts(pdf)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.cell(0, 8, f"{statement.name} · {v.month}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 5, f"{v.kindergarten} · {v.child} · {v.timezone}", new_x="LMARGIN", new_y="NEXT")
    signed = dt.datetime.fromtimestamp(v.signed_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    register = statement.verified_with.split("+", 1)[0]
    pdf.cell(0, 5, f"Тіркелім қол қойды / Подписано реестром / Signed by the register {register}: {signed}",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.cell(0, 5, "Келу табелі / Табель посещения / Attendance statement", new_x="LMARGIN", new_y="NEXT")
    side = _qr(pdf, f"sha256:{statement.sha256}", 210 - 15 - 34, 6)
    pdf.set_y(max(40.0, 6 + side + 2))
    widths = (30, 22, 30, 30, 40, 18)
    heads = ("Күні / Дата", "", "Келді / Пришёл", "Кетті / Ушёл", "Қалай / Как", "#")
    pdf.set_font("DejaVu", "B", 8.5)
    for w, h in zip(widths, heads, strict=True):
        pdf.cell(w, ROW_MM, h, border="B")
    pdf.ln(ROW_MM)
    pdf.set_font("DejaVu", "", 8.5)
    present = 0
    for day in range(1, calendar.monthrange(year, month)[1] + 1):
        date = dt.date(year, month, day)
        info = days.get(date)
        weekend = date.weekday() >= 5
        pdf.set_fill_color(238, 238, 238)
        cells = [date.isoformat(), _WEEKDAYS[date.weekday()], "—", "—", "", ""]
        if info is not None:
            present += info["in"] is not None
            cells[2] = info["in"].strftime("%H:%M") if info["in"] else "—"
            cells[3] = info["out"].strftime("%H:%M") if info["out"] else "—"
            cells[4] = ", ".join(sorted(info["how"]))
            cells[5] = str(info["n"])
        for w, text in zip(widths, cells, strict=True):
            pdf.cell(w, ROW_MM, text, border="B", fill=weekend)
        pdf.ln(ROW_MM)
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 9)
    pdf.cell(
        0, 5, f"Келген күндер / Дней с приходом / Days checked in: {present}", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("DejaVu", "", 7)
    pdf.multi_cell(
        0,
        3.4,
        "QR: SHA-256 of statement.json. Check it offline: kgate statement verify statement.json "
        "--register-vkey register.vkey. If your child was not there on a day marked here, report it.\n"
        f"sha256:{statement.sha256}",
    )
    return bytes(pdf.output())
