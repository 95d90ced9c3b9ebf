"""The read-only "today" list for staff: who is absent, who is in, who has left, by group, every name.

Each group starts a column: its name, then "absent" (names), "in" (arrival time, name) and "left"
(in–out, name). A group too long for one column continues in the next column under its name and the
section's heading again; columns flow three to a page (:data:`COLUMNS_PER_PAGE`), so every child is
listed by name on some page and nothing is summed up as "… +5". Absent children come first: they are
what staff at the gate look for (who has not come, whom to call).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from terminal.i18n import t
from terminal.screen import theme
from terminal.screen.layout import Layout
from terminal.screen.state import TodayChild, TodayGroup, TodayList
from terminal.screen.text import RGB, FontPair, fit, line_height

COLUMNS_PER_PAGE = 3
#: The sections of a group, in order: (section, heading key, colour).
SECTIONS = (
    ("absent", "today.absent", theme.WARN),
    ("in", "today.in", theme.OK),
    ("left", "today.left", theme.TEXT_DIM),
)
CONTINUED = "…"  # before a group's name in a column that continues it


@dataclass(frozen=True)
class Row:
    """One line of a column: ``kind`` is ``group``, ``head``, ``child``, ``alert`` or ``none``."""

    kind: str
    text: str
    colour: RGB


Column = tuple[Row, ...]


def _entry(child: TodayChild, section: str) -> str:
    if section == "in" and child.time_in:
        return f"{child.time_in:%H:%M}  {child.name}"
    if section == "left" and child.time_in and child.time_out:
        return f"{child.time_in:%H:%M}–{child.time_out:%H:%M}  {child.name}"
    return child.name


def _members(group: TodayGroup, section: str) -> tuple[TodayChild, ...]:
    return {"absent": group.absent, "in": group.present, "left": group.left}[section]


class _Metrics:
    def __init__(self, lay: Layout, faces: FontPair) -> None:
        self.group = faces.get(lay.px(26), bold=True)
        self.head = faces.get(lay.px(19), bold=True)
        self.body = faces.get(lay.px(17))
        self.gap = lay.px(8)
        self.heights = {
            "group": line_height(self.group) + lay.px(4),
            "head": line_height(self.head),
            "child": line_height(self.body),
            "alert": line_height(self.body),
            "none": line_height(self.body),
        }

    def font(self, kind: str) -> ImageFont.FreeTypeFont:
        return {"group": self.group, "head": self.head}.get(kind, self.body)

    def above(self, rows: list[Row] | Column, n: int) -> int:
        """Space before row ``n``: a gap before a section heading that follows a section's lines."""
        gap = rows[n].kind == "head" and n > 0 and rows[n - 1].kind not in ("group", "head")
        return self.gap if gap else 0

    def height(self, rows: list[Row] | Column) -> int:
        return sum(self.above(rows, n) + self.heights[r.kind] for n, r in enumerate(rows))


def _body_box(lay: Layout, faces: FontPair) -> tuple[int, int]:
    """Width and height of the text area of one column."""
    m = lay.margin
    top = lay.status[3] + m + line_height(faces.get(lay.px(30), bold=True))
    top += line_height(faces.get(lay.px(20))) + m
    column = (lay.width - m * (COLUMNS_PER_PAGE + 1)) // COLUMNS_PER_PAGE
    return column - 2 * m, (lay.height - 2 * m) - (top + m)


def today_columns(today: TodayList, lang: str, lay: Layout, faces: FontPair) -> list[Column]:
    """Every group's rows, cut into columns that fit the screen (a group's first column first)."""
    metrics = _Metrics(lay, faces)
    _, budget = _body_box(lay, faces)
    columns: list[Column] = []
    for group in today.groups:
        title = Row("group", group.name, theme.TEXT)
        current: list[Row] = [title]
        for section, key, colour in SECTIONS:
            children = _members(group, section)
            head = Row("head", f"{t(key, lang)} ({len(children)})", colour)
            items: list[list[Row]] = (
                [[Row("none", t("today.none", lang), theme.TEXT_DIM)]] if not children else []
            )
            for child in children:
                if child.alert is not None:
                    line = Row("child", f"⚠ {_entry(child, section)}", theme.BAD)
                    items.append([line, Row("alert", t(child.alert, lang), theme.BAD)])
                else:
                    items.append([Row("child", _entry(child, section), theme.TEXT)])
            first = items[0] if items else []
            if metrics.height([*current, head, *first]) > budget and len(current) > 1:
                columns.append(tuple(current))  # the heading never ends a column
                current = [Row("group", f"{CONTINUED} {group.name}", theme.TEXT)]
            current.append(head)
            for item in items:
                if metrics.height([*current, *item]) > budget:
                    columns.append(tuple(current))
                    current = [Row("group", f"{CONTINUED} {group.name}", theme.TEXT), head, *item]
                else:
                    current.extend(item)
        columns.append(tuple(current))
    return columns


def today_pages(today: TodayList, lang: str, lay: Layout, faces: FontPair) -> list[tuple[Column, ...]]:
    """The columns, :data:`COLUMNS_PER_PAGE` to a page (at least one page, maybe empty)."""
    columns = today_columns(today, lang, lay, faces)
    pages = [tuple(columns[i : i + COLUMNS_PER_PAGE]) for i in range(0, len(columns), COLUMNS_PER_PAGE)]
    return pages or [()]


def render_today(
    today: TodayList, lang: str, lay: Layout, faces: FontPair, *, status_bar: Image.Image, page: int = 0
) -> Image.Image:
    """Draw page ``page`` (modulo the page count) of today's list under the status bar."""
    image = Image.new("RGB", (lay.width, lay.height), theme.BACKGROUND)
    image.paste(status_bar, lay.status[:2])
    draw = ImageDraw.Draw(image)
    m = lay.margin
    y = lay.status[3] + m
    pages = today_pages(today, lang, lay, faces)
    page = page % len(pages)
    title = t("today.title", lang, date=f"{today.date:%d.%m.%Y}") + f"  ·  {t('today.readonly', lang)}"
    if len(pages) > 1:
        title += f"  ·  {page + 1}/{len(pages)}"
    title_font = faces.get(lay.px(30), bold=True)
    draw.text((m, y), title, font=title_font, fill=theme.TEXT)
    y += line_height(title_font)
    kids = [c for g in today.groups for c in g.children]
    every = TodayGroup("", tuple(kids))
    summary = t(
        "today.summary",
        lang,
        total=len(kids),
        present=len(every.present),
        left=len(every.left),
        absent=len(every.absent),
    )
    small = faces.get(lay.px(20))
    draw.text((m, y), summary, font=small, fill=theme.TEXT_DIM)
    y += line_height(small) + m
    column = (lay.width - m * (COLUMNS_PER_PAGE + 1)) // COLUMNS_PER_PAGE
    width, _ = _body_box(lay, faces)
    metrics = _Metrics(lay, faces)
    for i, rows in enumerate(pages[page]):
        x0 = m + i * (column + m)
        draw.rounded_rectangle((x0, y, x0 + column, lay.height - m), radius=lay.px(12), fill=theme.PANEL)
        _draw_column(draw, rows, metrics=metrics, faces=faces, lay=lay, origin=(x0 + m, y + m), width=width)
    return image


def _draw_column(
    draw: ImageDraw.ImageDraw,
    rows: Column,
    *,
    metrics: _Metrics,
    faces: FontPair,
    lay: Layout,
    origin: tuple[int, int],
    width: int,
) -> None:
    x, y = origin
    for n, row in enumerate(rows):
        y += metrics.above(rows, n)
        font = metrics.font(row.kind)
        indent = lay.px(18) if row.kind == "alert" else 0
        if row.kind in ("group", "child", "alert"):  # a long name shrinks a little before "…"
            size = int(font.size)
            smallest = round(size * 0.8)
            font, lines = fit(
                faces, row.text, width - indent, size, min_size=smallest, bold=row.kind == "group"
            )
            text = lines[0]
        else:
            text = row.text
        draw.text((x + indent, y), text, font=font, fill=row.colour)
        y += metrics.heights[row.kind]
