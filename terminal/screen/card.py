"""The big result card: green accepted, red refused, amber error; in the card's own language."""

from __future__ import annotations

from PIL import Image, ImageDraw

from terminal.i18n import check_lang, t
from terminal.screen import theme
from terminal.screen.layout import Layout
from terminal.screen.state import CardKind, ResultCard
from terminal.screen.text import FontPair, draw_lines, fit, line_height

_DEFAULT_KEY = {CardKind.REFUSED: "refused.unknown_badge", CardKind.ERROR: "error.not_recorded"}
_HINT_KEY = {CardKind.REFUSED: "refused.hint", CardKind.ERROR: "error.hint"}


def render_card(card: ResultCard, size: tuple[int, int], lay: Layout, faces: FontPair) -> Image.Image:
    """Draw ``card`` into a new image of ``size`` (the panel); cached by the caller."""
    lang = check_lang(card.lang)
    width, height = size
    image = Image.new("RGB", size, theme.BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=lay.px(22), fill=theme.CARD_FILL[card.kind])
    ink = theme.CARD_TEXT[card.kind]
    pad = lay.px(26)
    inner = width - 2 * pad
    x, y = pad, pad

    group = t("card.group", lang, group=card.group) if card.group else None
    blocks: list[tuple[str | None, int, int, bool, int]]  # text, size, smallest size, bold, lines
    if card.kind is CardKind.ACCEPTED:
        greeting = t("greeting", lang, name=card.name) if card.name else None
        note = t(card.message_key, lang) if card.message_key else None
        blocks = [(greeting, 52, 28, True, 2), (group, 30, 20, False, 1), (note, 34, 22, True, 2)]
    else:  # the reason first; a refused child is named, not greeted
        symbol_font = faces.get(lay.px(64), bold=True)
        draw.text((x, y), theme.CARD_SYMBOL[card.kind], font=symbol_font, fill=ink)
        y += line_height(symbol_font) + lay.px(6)
        reason = t(card.message_key or _DEFAULT_KEY[card.kind], lang)
        blocks = [(reason, 52, 28, True, 3), (card.name, 34, 22, True, 2), (group, 30, 20, False, 1)]
    for text, points, smallest, bold, max_lines in blocks:
        if text:
            font, lines = fit(
                faces, text, inner, lay.px(points), min_size=lay.px(smallest), bold=bold, max_lines=max_lines
            )
            y += draw_lines(draw, (x, y), font, lines, ink) + lay.px(6)

    bottom = height - pad
    if card.kind is CardKind.ACCEPTED:
        if card.direction is not None and card.message_key is None:
            text = f"{theme.CARD_SYMBOL[card.kind]} {t(f'direction.{card.direction.value}', lang)}"
            font, lines = fit(faces, text, inner, lay.px(60), min_size=lay.px(30), bold=True)
            bottom -= line_height(font)
            draw_lines(draw, (x, bottom), font, lines, ink)
        if card.time is not None:
            font = faces.get(lay.px(132), bold=True)
            bottom -= line_height(font) - lay.px(8)
            draw.text((x - lay.px(4), bottom), card.time.strftime("%H:%M"), font=font, fill=ink)
    else:
        font, lines = fit(
            faces, t(_HINT_KEY[card.kind], lang), inner, lay.px(30), min_size=lay.px(18), max_lines=2
        )
        top = bottom - round(line_height(font) * 1.05) * len(lines)
        draw_lines(draw, (x, top), font, lines, ink)
        if card.time is not None:
            small = faces.get(lay.px(30), bold=True)
            draw.text((width - pad, pad), card.time.strftime("%H:%M"), font=small, fill=ink, anchor="ra")
    return image
