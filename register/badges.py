"""Printable badge sheets: A4 PDFs of ID-1 cards (85.6 × 54 mm) with cut marks, for children and guardians.

Each card has the QR badge (``terminal.badge.badge_qr``: version 1-M, 21 × 21 modules) drawn as vector
modules of :data:`MODULE_MM` with a 4-module quiet zone, the holder's name in DejaVu Sans (embedded, so
Kazakh and Russian letters print anywhere), the group or role, and the serial for typing. Guardian cards
carry a thick orange frame and a "ҚАМҚОРШЫ · ОПЕКУН · GUARDIAN" band, so staff tell them apart at a
glance. The size arithmetic (≥ 4 camera pixels per module at 30 cm) is in docs/badges.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from register.errors import ConfigError, UnknownPerson
from terminal.badge import badge_qr

FONT_DIR: Final = Path("/usr/share/fonts/truetype/dejavu")
MODULE_MM: Final = 1.5  # 21 modules → 31.5 mm symbol (docs/badges.md)
QUIET_MODULES: Final = 4
CARD_W: Final = 85.6
CARD_H: Final = 54.0
COLS, ROWS, GUTTER = 2, 4, 6.0
MARK_LEN, MARK_GAP = 3.0, 0.8
GUARDIAN_BAND: Final = "ҚАМҚОРШЫ · ОПЕКУН · GUARDIAN"
ORANGE: Final = (230, 110, 0)


@dataclass(frozen=True)
class Card:
    """One badge to print: its serial, whose it is, and the line under the name."""

    serial: str
    kind: str  # child | guardian
    holder: str
    name: str
    subtitle: str


def cards_from_roster(
    document: bytes, *, group: str | None = None, child: str | None = None, guardian: str | None = None
) -> list[Card]:
    """The active (not revoked) badges of a roster document, filtered; children first, by group and name.

    ``group`` selects that group's children and the guardians who pick one of them up; ``child`` or
    ``guardian`` selects one person. No filter: everyone.
    """
    doc: dict[str, Any] = json.loads(document)
    children = {c["id"]: c for c in doc["children"]}
    guardians = {g["id"]: g for g in doc["guardians"]}
    names = {c["id"]: c["name"] for c in doc["children"]}
    want_children = set(children)
    want_guardians = set(guardians)
    if group is not None:
        want_children = {i for i, c in children.items() if c["group"] == group}
        want_guardians = {i for i, g in guardians.items() if want_children & set(g["children"])}
        if not want_children:
            raise UnknownPerson(f"--group {group!r}: no child in this group")
    if child is not None or guardian is not None:
        want_children = {child} & set(children)
        want_guardians = {guardian} & set(guardians)
        if (child is not None and not want_children) or (guardian is not None and not want_guardians):
            raise UnknownPerson(
                f"no {'child' if child is not None else 'guardian'} {child or guardian!r} in the roster"
            )
    cards: list[Card] = []
    for badge in doc["badges"]:
        if badge["revoked"]:
            continue
        if "child" in badge and badge["child"] in want_children:
            c = children[badge["child"]]
            cards.append(Card(badge["serial"], "child", c["id"], c["name"], c["group"]))
        elif "guardian" in badge and badge["guardian"] in want_guardians:
            g = guardians[badge["guardian"]]
            kids = ", ".join(names[k] for k in g["children"])
            cards.append(Card(badge["serial"], "guardian", g["id"], g["name"], kids))
    cards.sort(key=lambda c: (c.kind != "child", c.subtitle if c.kind == "child" else "", c.name, c.holder))
    return cards


def _fonts(pdf: Any) -> None:
    for style, file in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf")):
        path = FONT_DIR / file
        if not path.is_file():
            raise ConfigError(f"font {path} is missing: apt-get install fonts-dejavu-core")
        pdf.add_font("DejaVu", style, str(path))
    mono = FONT_DIR / "DejaVuSansMono.ttf"
    if not mono.is_file():
        raise ConfigError(f"font {mono} is missing: apt-get install fonts-dejavu-core")
    pdf.add_font("DejaVuMono", "", str(mono))


def _qr(pdf: Any, serial: str, x: float, y: float) -> None:
    """The symbol's dark modules as filled rectangles, one per horizontal run (no seams between modules)."""
    pdf.set_fill_color(0, 0, 0)
    for row, bits in enumerate(badge_qr(serial).matrix):
        col = 0
        while col < len(bits):
            if bits[col]:
                start = col
                while col < len(bits) and bits[col]:
                    col += 1
                pdf.rect(
                    x + start * MODULE_MM,
                    y + row * MODULE_MM,
                    (col - start) * MODULE_MM,
                    MODULE_MM,
                    style="F",
                )
            else:
                col += 1


def _cut_marks(pdf: Any, x: float, y: float) -> None:
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.15)
    for cx in (x, x + CARD_W):
        for cy in (y, y + CARD_H):
            dx = -1 if cx == x else 1
            dy = -1 if cy == y else 1
            pdf.line(cx + dx * MARK_GAP, cy, cx + dx * (MARK_GAP + MARK_LEN), cy)
            pdf.line(cx, cy + dy * MARK_GAP, cx, cy + dy * (MARK_GAP + MARK_LEN))


def _fit(pdf: Any, text: str, width: float, size: float, lines: int) -> float:
    """The largest font size ≤ ``size`` at which ``text`` wraps into at most ``lines`` lines of ``width``."""
    while size > 4:
        pdf.set_font_size(size)
        if all(pdf.get_string_width(w) <= width - 1 for w in text.split()):
            wrapped = pdf.multi_cell(width, size * 0.42, text, dry_run=True, output="LINES")
            if len(wrapped) <= lines:
                return size
        size -= 0.5
    return size


def _card(pdf: Any, card: Card, x: float, y: float, kindergarten: str) -> None:
    _cut_marks(pdf, x, y)
    qr_size = 21 * MODULE_MM
    qx, qy = x + 8.5, y + (CARD_H - qr_size) / 2
    if card.kind == "guardian":
        pdf.set_draw_color(*ORANGE)
        pdf.set_line_width(1.2)
        pdf.rect(x + 1.5, y + 1.5, CARD_W - 3, CARD_H - 3)
    else:
        pdf.set_draw_color(150, 150, 150)
        pdf.set_line_width(0.2)
        pdf.rect(x, y, CARD_W, CARD_H)
    _qr(pdf, card.serial, qx, qy)
    tx = qx + qr_size + QUIET_MODULES * MODULE_MM * 0.7
    tw = x + CARD_W - 4 - tx
    ty = y + 6
    if card.kind == "guardian":
        pdf.set_fill_color(*ORANGE)
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("DejaVu", "B", 5.5)
        _fit(pdf, GUARDIAN_BAND, tw - 1, 5.5, 1)
        pdf.set_xy(tx, ty)
        pdf.cell(tw, 4, GUARDIAN_BAND, align="C", fill=True)
        ty += 6
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("DejaVu", "B", 13)
    size = _fit(pdf, card.name, tw, 13, 3)
    pdf.set_xy(tx, ty)
    pdf.multi_cell(tw, size * 0.42, card.name, align="L")
    pdf.set_font("DejaVu", "", 8)
    sub_size = _fit(pdf, card.subtitle, tw, 8, 3)
    pdf.set_xy(tx, pdf.get_y() + 1.5)
    pdf.multi_cell(tw, sub_size * 0.42, card.subtitle, align="L")
    pdf.set_font("DejaVu", "", 5.5)
    _fit(pdf, kindergarten, tw, 5.5, 1)
    pdf.set_xy(tx, y + CARD_H - 11)
    pdf.cell(tw, 3, kindergarten)
    pdf.set_font("DejaVuMono", "", 6.5)
    pdf.set_xy(tx, y + CARD_H - 7.5)
    spaced = " ".join(card.serial[i : i + 4] for i in range(0, len(card.serial), 4))
    pdf.cell(tw, 3, spaced)


def render_sheets(cards: list[Card], kindergarten: str, out: Path) -> int:
    """Write the cards to ``out`` (A4, 8 per page, cut marks); returns the number of pages."""
    from fpdf import FPDF  # noqa: PLC0415 - only badge printing needs it

    if not cards:
        raise UnknownPerson("no active badge to print")
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_title(f"kgate badges: {kindergarten}")
    pdf.set_creator("kgate register badge print")
    _fonts(pdf)
    x0 = (210 - (COLS * CARD_W + (COLS - 1) * GUTTER)) / 2
    y0 = (297 - (ROWS * CARD_H + (ROWS - 1) * GUTTER)) / 2
    per_page = COLS * ROWS
    for i, card in enumerate(cards):
        if i % per_page == 0:
            pdf.add_page()
        slot = i % per_page
        col, row = slot % COLS, slot // COLS
        _card(pdf, card, x0 + col * (CARD_W + GUTTER), y0 + row * (CARD_H + GUTTER), kindergarten)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pdf.output(str(tmp))
    tmp.replace(out)
    return int(pdf.page)
