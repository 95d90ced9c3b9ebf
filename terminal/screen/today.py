"""The read-only "today" list for staff: who is in, who has left, who is absent, by group."""

from __future__ import annotations

from PIL import Image, ImageDraw

from terminal.i18n import t
from terminal.screen import theme
from terminal.screen.layout import Layout
from terminal.screen.state import TodayChild, TodayGroup, TodayList
from terminal.screen.text import FontPair, fit, line_height

GROUPS_PER_PAGE = 3


def _entry(child: TodayChild, section: str) -> str:
    if section == "in" and child.time_in:
        return f"{child.time_in:%H:%M}  {child.name}"
    if section == "left" and child.time_in and child.time_out:
        return f"{child.time_in:%H:%M}–{child.time_out:%H:%M}  {child.name}"
    return child.name


def render_today(
    today: TodayList, lang: str, lay: Layout, faces: FontPair, *, status_bar: Image.Image, page: int = 0
) -> Image.Image:
    """Draw one page (``GROUPS_PER_PAGE`` groups side by side) of today's list under the status bar."""
    image = Image.new("RGB", (lay.width, lay.height), theme.BACKGROUND)
    image.paste(status_bar, lay.status[:2])
    draw = ImageDraw.Draw(image)
    m = lay.margin
    y = lay.status[3] + m
    groups = today.groups
    pages = max(1, -(-len(groups) // GROUPS_PER_PAGE))
    page = page % pages
    title = t("today.title", lang, date=f"{today.date:%d.%m.%Y}") + f"  ·  {t('today.readonly', lang)}"
    if pages > 1:
        title += f"  ·  {page + 1}/{pages}"
    title_font = faces.get(lay.px(30), bold=True)
    draw.text((m, y), title, font=title_font, fill=theme.TEXT)
    y += line_height(title_font)
    kids = [c for g in groups for c in g.children]
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
    shown = groups[page * GROUPS_PER_PAGE : (page + 1) * GROUPS_PER_PAGE]
    column = (lay.width - m * (GROUPS_PER_PAGE + 1)) // GROUPS_PER_PAGE
    for i, group in enumerate(shown):
        x0 = m + i * (column + m)
        draw.rounded_rectangle((x0, y, x0 + column, lay.height - m), radius=lay.px(12), fill=theme.PANEL)
        _draw_group(draw, group, lang, lay, faces, box=(x0 + m, y + m, x0 + column - m, lay.height - 2 * m))
    return image


def _draw_group(
    draw: ImageDraw.ImageDraw,
    group: TodayGroup,
    lang: str,
    lay: Layout,
    faces: FontPair,
    *,
    box: tuple[int, int, int, int],
) -> None:
    x0, y, x1, bottom = box
    width = x1 - x0
    font, lines = fit(faces, group.name, width, lay.px(26), min_size=lay.px(16), bold=True)
    draw.text((x0, y), lines[0], font=font, fill=theme.TEXT)
    y += line_height(font) + lay.px(4)
    head = faces.get(lay.px(19), bold=True)
    body = faces.get(lay.px(17))
    row = line_height(body)
    sections = (
        ("in", "today.in", group.present, theme.OK),
        ("left", "today.left", group.left, theme.TEXT_DIM),
        ("absent", "today.absent", group.absent, theme.WARN),
    )
    for section, key, children, colour in sections:
        if y + line_height(head) > bottom:
            return
        draw.text((x0, y), f"{t(key, lang)} ({len(children)})", font=head, fill=colour)
        y += line_height(head)
        if not children:
            draw.text((x0, y), t("today.none", lang), font=body, fill=theme.TEXT_DIM)
            y += row
        for n, child in enumerate(children):
            if y + 2 * row > bottom and n < len(children) - 1:
                draw.text((x0, y), f"… +{len(children) - n}", font=body, fill=theme.TEXT_DIM)
                y += row
                break
            flagged = child.alert is not None
            line = f"⚠ {_entry(child, section)}" if flagged else _entry(child, section)
            _, text = fit(faces, line, width, lay.px(17), min_size=lay.px(17))
            draw.text((x0, y), text[0], font=body, fill=theme.BAD if flagged else theme.TEXT)
            y += row
            if child.alert is not None and y + row <= bottom:  # the reason, under the name
                indent = lay.px(18)
                font, text = fit(faces, t(child.alert, lang), width - indent, lay.px(17), min_size=lay.px(14))
                draw.text((x0 + indent, y), text[0], font=font, fill=theme.BAD)
                y += row
        y += lay.px(8)
