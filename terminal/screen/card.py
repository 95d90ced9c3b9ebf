"""The big result card: green accepted, red refused, amber error; in the card's own language.

:func:`card_text` is every word the card shows, in order (what the tests read); :func:`render_card`
draws exactly those words.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from terminal.decide import Direction
from terminal.i18n import check_lang, t
from terminal.screen import theme
from terminal.screen.layout import Layout
from terminal.screen.state import CardKind, ResultCard
from terminal.screen.text import FontPair, draw_lines, fit, line_height

_DEFAULT_KEY = {CardKind.REFUSED: "refused.unknown_badge", CardKind.ERROR: "error.not_recorded"}
_HINT_KEY = {CardKind.REFUSED: "refused.hint", CardKind.ERROR: "error.hint"}


@dataclass(frozen=True)
class CardText:
    """The words of one card, top to bottom.

    ``headline``: the greeting (check-in) or farewell (check-out), or the refusal's reason;
    ``lines``: who (child, group, adult) or a note such as "already checked in"; ``footer``: the
    direction of an accepted card, or the "ask staff" hint of a refused one.
    """

    headline: str | None
    lines: tuple[str, ...]
    footer: str | None

    def all(self) -> tuple[str, ...]:
        """Every text on the card, in reading order."""
        return tuple(x for x in (self.headline, *self.lines, self.footer) if x)


def card_text(card: ResultCard) -> CardText:
    """The words ``card`` shows in its language (``card.lang``)."""
    lang = check_lang(card.lang)
    group = t("card.group", lang, group=card.group) if card.group else None
    if card.kind is CardKind.ACCEPTED:
        words = "farewell" if card.direction is Direction.OUT else "greeting"
        headline = t(words, lang, name=card.name) if card.name else None
        note = t(card.message_key, lang) if card.message_key else None
        footer = None
        if card.direction is not None and card.message_key is None:
            footer = f"{theme.CARD_SYMBOL[card.kind]} {t(f'direction.{card.direction.value}', lang)}"
        return CardText(headline, tuple(x for x in (group, note) if x), footer)
    # refused or error: the reason first; a refused child is named, not greeted
    key = card.message_key or _DEFAULT_KEY[card.kind]
    reason = t(key, lang)
    who: list[str | None]
    if key.startswith("pickup."):  # two people at the gate: "Child: …", group, "Adult: …"
        child = t("card.child", lang, name=card.name) if card.name else None
        adult = t("card.guardian", lang, name=card.guardian) if card.guardian else None
        who = [child, group, adult]
    else:
        who = [card.name, group]
    return CardText(reason, tuple(x for x in who if x), t(_HINT_KEY[card.kind], lang))


def render_card(card: ResultCard, size: tuple[int, int], lay: Layout, faces: FontPair) -> Image.Image:
    """Draw ``card`` into a new image of ``size`` (the panel); cached by the caller."""
    text = card_text(card)
    width, height = size
    image = Image.new("RGB", size, theme.BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=lay.px(22), fill=theme.CARD_FILL[card.kind])
    ink = theme.CARD_TEXT[card.kind]
    pad = lay.px(26)
    inner = width - 2 * pad
    x, y = pad, pad
    group = t("card.group", card.lang, group=card.group) if card.group else None

    blocks: list[tuple[str, int, int, bool, int]]  # text, size, smallest size, bold, lines
    if card.kind is CardKind.ACCEPTED:
        blocks = [(text.headline, 52, 28, True, 2)] if text.headline else []
        blocks += [_style(line, group, (34, 22, True, 2)) for line in text.lines]
    else:
        symbol_font = faces.get(lay.px(64), bold=True)
        draw.text((x, y), theme.CARD_SYMBOL[card.kind], font=symbol_font, fill=ink)
        y += line_height(symbol_font) + lay.px(6)
        blocks = [(text.headline or "", 52, 28, True, 3)]
        blocks += [_style(line, group, (34, 22, True, 2)) for line in text.lines]
    for line, points, smallest, bold, max_lines in blocks:
        font, lines = fit(
            faces, line, inner, lay.px(points), min_size=lay.px(smallest), bold=bold, max_lines=max_lines
        )
        y += draw_lines(draw, (x, y), font, lines, ink) + lay.px(6)

    bottom = height - pad
    if card.kind is CardKind.ACCEPTED:
        if text.footer is not None:
            font, lines = fit(faces, text.footer, inner, lay.px(60), min_size=lay.px(30), bold=True)
            bottom -= line_height(font)
            draw_lines(draw, (x, bottom), font, lines, ink)
        if card.time is not None:
            font = faces.get(lay.px(132), bold=True)
            bottom -= line_height(font) - lay.px(8)
            draw.text((x - lay.px(4), bottom), card.time.strftime("%H:%M"), font=font, fill=ink)
    else:
        font, lines = fit(faces, text.footer or "", inner, lay.px(30), min_size=lay.px(18), max_lines=2)
        top = bottom - round(line_height(font) * 1.05) * len(lines)
        if top >= y:  # who is who matters more than "ask staff" when long names fill the card
            draw_lines(draw, (x, top), font, lines, ink)
        if card.time is not None:
            small = faces.get(lay.px(30), bold=True)
            draw.text((width - pad, pad), card.time.strftime("%H:%M"), font=small, fill=ink, anchor="ra")
    return image


def _style(
    line: str, group: str | None, other: tuple[int, int, bool, int]
) -> tuple[str, int, int, bool, int]:
    """The group in regular type on one line; a name or a note as ``other`` (size, smallest, bold, lines)."""
    return (line, 30, 20, False, 1) if line == group else (line, *other)
