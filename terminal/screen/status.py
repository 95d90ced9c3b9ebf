"""The status bar (clock, roster, unsent entries, disk) and the alert strip for error states."""

from __future__ import annotations

from PIL import Image, ImageDraw

from terminal.i18n import t
from terminal.screen import theme
from terminal.screen.layout import Layout, box_size
from terminal.screen.state import StatusInfo
from terminal.screen.text import FontPair, fit

RGB = tuple[int, int, int]


def status_segments(status: StatusInfo, lang: str) -> tuple[list[tuple[str, RGB]], list[tuple[str, RGB]]]:
    """Left and right text segments with their colours; the cache key of the bar."""
    left: list[tuple[str, RGB]] = []
    clock = status.clock.strftime("%H:%M") if status.clock else "--:--"
    if status.clock_synced:
        left += [(clock, theme.TEXT), ("✓", theme.OK)]
    else:
        left += [(clock, theme.WARN), ("⚠", theme.WARN)]  # the alert strip says it in words
    if status.roster_version is None:
        left.append((t("status.no_roster", lang), theme.WARN))
    elif status.roster_stale:
        left.append((t("status.roster_stale", lang, version=status.roster_version), theme.WARN))
    else:
        left.append((t("status.roster", lang, version=status.roster_version), theme.TEXT_DIM))
    pending_colour = theme.TEXT_DIM if status.pending_sync < 100 else theme.WARN
    left.append((t("status.pending", lang, count=status.pending_sync), pending_colour))
    right: list[tuple[str, RGB]] = []
    if status.disk_free_percent is not None or status.disk_full:
        percent = round(status.disk_free_percent or 0)
        colour = theme.BAD if status.disk_full else theme.WARN if percent < 10 else theme.TEXT_DIM
        right.append((t("status.disk_free", lang, percent=percent), colour))
    return left, right


def render_status(
    status: StatusInfo, lang: str, lay: Layout, faces: FontPair, label: str = ""
) -> Image.Image:
    size = box_size(lay.status)
    image = Image.new("RGB", size, theme.STATUS_BAR)
    draw = ImageDraw.Draw(image)
    mid = size[1] // 2
    gap = lay.px(22)
    left, right = status_segments(status, lang)
    if label:
        right.insert(0, (label, theme.TEXT_DIM))
    for points in range(22, 13, -1):  # shrink until every segment fits
        font, bold = faces.get(lay.px(points)), faces.get(lay.px(points + 2), bold=True)
        widths = [(bold if i == 0 else font).getlength(text) for i, (text, _) in enumerate(left + right)]
        if sum(widths) + gap * (len(widths) - 1) + 2 * lay.margin <= size[0]:
            break
    x = float(lay.margin)
    for i, (text, colour) in enumerate(left):
        face = bold if i == 0 else font
        draw.text((x, mid), text, font=face, fill=colour, anchor="lm")
        x += face.getlength(text) + (lay.px(8) if i == 0 else gap)
    xr = float(size[0] - lay.margin)
    for text, colour in reversed(right):
        draw.text((xr, mid), text, font=font, fill=colour, anchor="rm")
        xr -= font.getlength(text) + gap
    return image


def render_alerts(keys: tuple[str, ...], lang: str, lay: Layout, faces: FontPair) -> Image.Image:
    """An amber strip naming every active error state, visible with or without a card."""
    width, height = box_size(lay.footer)
    image = Image.new("RGB", (width, height), theme.ALERT)
    draw = ImageDraw.Draw(image)
    text = "⚠ " + " · ".join(t(key, lang) for key in keys)
    hint = t("error.hint", lang)
    hint_font = faces.get(lay.px(20))
    hint_w = hint_font.getlength(hint)
    room = width - 3 * lay.margin - hint_w
    font, lines = fit(faces, text, room, lay.px(28), min_size=lay.px(16), bold=True)
    draw.text((lay.margin, height // 2), lines[0], font=font, fill=theme.DARK_TEXT, anchor="lm")
    draw.text((width - lay.margin, height // 2), hint, font=hint_font, fill=theme.DARK_TEXT, anchor="rm")
    return image
