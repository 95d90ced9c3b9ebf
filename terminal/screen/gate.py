"""GateScreen: renders a :class:`ScreenState` into a full-screen Pillow image, fast enough per frame.

Static layers (background, idle panel), cards, the status bar and the alert strip are cached; a
frame costs one background copy, the preview scale and a few pastes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from terminal.decide import Direction
from terminal.i18n import CATALOGUES, LANGUAGES, check_lang, t
from terminal.screen import theme
from terminal.screen.card import render_card
from terminal.screen.config import FONT_BOLD, FONT_REGULAR, ScreenConfig
from terminal.screen.fonts import check_coverage, find_font
from terminal.screen.layout import Layout, box_size, layout
from terminal.screen.preview import draw_face_guide, draw_guide, frame_to_image
from terminal.screen.state import IDLE_PROMPTS, ResultCard, ScreenState, StatusInfo, TodayList
from terminal.screen.status import render_alerts, render_status
from terminal.screen.text import FontPair, draw_lines, fit, line_height
from terminal.screen.today import render_today, today_pages

# Everything the screen may draw besides catalogue text: digits, time and card symbols.
EXTRA_GLYPHS = "0123456789:–—…·«»✓✗⚠%/+-() v"


def _cached(fn: Callable[..., Image.Image], size: int = 32) -> Callable[..., Image.Image]:
    return lru_cache(maxsize=size)(fn)


class GateScreen:
    """The gate screen. ``GateScreen(ScreenConfig()).render(ScreenState(...))`` → a 1024×600 RGB image.

    Raises :class:`FontNotFoundError` if no DejaVu Sans is installed and :class:`GlyphMissingError`
    if the font cannot draw every message in kk, ru and en.
    """

    def __init__(self, config: ScreenConfig | None = None) -> None:
        self.config = config = config or ScreenConfig()
        dirs = config.search_dirs()
        self.faces = FontPair(find_font(FONT_REGULAR, dirs), find_font(FONT_BOLD, dirs))
        text = [EXTRA_GLYPHS, *(m for catalogue in CATALOGUES.values() for m in catalogue.values())]
        check_coverage(self.faces.regular, text)
        check_coverage(self.faces.bold, text)
        self.layout: Layout = layout(config.width, config.height)
        self._background = self._draw_background()
        self._card = _cached(self._draw_card)
        self._idle = _cached(self._draw_idle)
        self._status = _cached(self._draw_status, 8)
        self._alerts = _cached(self._draw_alerts, 8)

    @property
    def size(self) -> tuple[int, int]:
        return self.config.size

    def render(self, state: ScreenState) -> Image.Image:
        """The full screen for ``state``; the result is a fresh image the caller may keep."""
        lay = self.layout
        lang = check_lang(state.lang)
        image = self._background.copy()
        x0, y0, x1, y1 = lay.preview
        draw = ImageDraw.Draw(image)
        if not state.status.camera_ok:
            self._draw_no_camera(draw, lang)
        elif state.preview is not None:
            image.paste(
                frame_to_image(state.preview, (x1 - x0, y1 - y0), mirror=self.config.mirror_preview), (x0, y0)
            )
        if self.config.framing_guide and state.status.camera_ok:
            if state.face_mode:  # where the face should be, and a caption saying so
                draw_face_guide(draw, lay, self.faces, t("prompt.face_guide", lang))
            else:
                draw_guide(draw, lay)
        if state.card:
            panel = self._card(state.card)
        else:  # while the gate cannot record, do not invite anyone to show a badge
            prompt = IDLE_PROMPTS.get(state.mode, "prompt.show_badge")
            if state.status.alerts:
                prompt = "prompt.paused"
            panel = self._idle(lang, state.selected_direction, prompt)
        image.paste(panel, lay.panel[:2])
        image.paste(self._status(_to_minute(state.status), lang), lay.status[:2])
        alerts = state.status.alerts
        if alerts:
            image.paste(self._alerts(alerts, lang), lay.footer[:2])
        return image

    def render_array(self, state: ScreenState) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """:meth:`render` as an H×W×3 uint8 array."""
        return np.asarray(self.render(state))

    def render_today(
        self, today: TodayList, lang: str | None = None, status: StatusInfo | None = None, page: int = 0
    ) -> Image.Image:
        """Page ``page`` (modulo :meth:`today_page_count`) of the staff "today" list (read-only)."""
        code = check_lang(lang or self.config.lang)
        bar = self._status(_to_minute(status or StatusInfo()), code)
        return render_today(today, code, self.layout, self.faces, status_bar=bar, page=page)

    def today_page_count(self, today: TodayList, lang: str | None = None) -> int:
        """How many pages the "today" list takes on this screen (every child by name on one of them)."""
        code = check_lang(lang or self.config.lang)
        return len(today_pages(today, code, self.layout, self.faces))

    def _draw_background(self) -> Image.Image:
        image = Image.new("RGB", self.size, theme.BACKGROUND)
        draw = ImageDraw.Draw(image)
        x0, y0, x1, y1 = self.layout.preview
        border = self.layout.px(3)
        draw.rectangle((x0 - border, y0 - border, x1 + border - 1, y1 + border - 1), fill=theme.PANEL)
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=theme.BACKGROUND)
        return image

    def _draw_no_camera(self, draw: ImageDraw.ImageDraw, lang: str) -> None:
        lay = self.layout
        x0, y0, x1, y1 = lay.preview
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=theme.NO_CAMERA)
        font, lines = fit(
            self.faces,
            t("error.camera_lost", lang),
            (x1 - x0) * 0.85,
            lay.px(40),
            min_size=lay.px(20),
            bold=True,
            max_lines=2,
        )
        symbol = self.faces.get(lay.px(80), bold=True)
        height = line_height(symbol) + round(line_height(font) * 1.05) * len(lines)
        top = (y0 + y1 - height) // 2
        draw.text(((x0 + x1) // 2, top), "⚠", font=symbol, fill=theme.WARN, anchor="ma")
        draw_lines(
            draw, (x0, top + line_height(symbol)), font, lines, theme.TEXT, align="center", width=x1 - x0
        )

    def _draw_card(self, card: ResultCard) -> Image.Image:
        return render_card(card, box_size(self.layout.panel), self.layout, self.faces)

    def _draw_idle(
        self, lang: str, direction: Direction | None, prompt: str = "prompt.show_badge"
    ) -> Image.Image:
        """The waiting panel: the prompt in the UI language, then the other two; the button mode."""
        lay = self.layout
        size = box_size(lay.panel)
        image = Image.new("RGB", size, theme.BACKGROUND)
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius=lay.px(22), fill=theme.PANEL)
        pad = lay.px(26)
        inner = size[0] - 2 * pad
        y = pad
        if direction is not None:
            band = lay.px(64)
            draw.rounded_rectangle((0, 0, size[0] - 1, band), radius=lay.px(22), fill=theme.WARN)
            draw.rectangle((0, band // 2, size[0] - 1, band), fill=theme.WARN)
            label = t(f"prompt.mode_{direction.value}", lang)
            font, lines = fit(self.faces, label, inner, lay.px(34), min_size=lay.px(18), bold=True)
            draw.text((size[0] // 2, band // 2), lines[0], font=font, fill=theme.DARK_TEXT, anchor="mm")
            y = band + pad
        others = [code for code in LANGUAGES if code != lang]
        font, lines = fit(
            self.faces,
            t(prompt, lang),
            inner,
            lay.px(46),
            min_size=lay.px(24),
            bold=True,
            max_lines=3,
        )
        y += draw_lines(draw, (pad, y), font, lines, theme.TEXT) + lay.px(20)
        for code in others:
            font, lines = fit(
                self.faces, t(prompt, code), inner, lay.px(28), min_size=lay.px(16), max_lines=2
            )
            y += draw_lines(draw, (pad, y), font, lines, theme.TEXT_DIM) + lay.px(10)
        if self.config.device_label:
            small = self.faces.get(lay.px(16))
            draw.text(
                (pad, size[1] - pad), self.config.device_label, font=small, fill=theme.TEXT_DIM, anchor="ld"
            )
        return image

    def _draw_status(self, status: StatusInfo, lang: str) -> Image.Image:
        return render_status(status, lang, self.layout, self.faces, self.config.device_label)

    def _draw_alerts(self, keys: tuple[str, ...], lang: str) -> Image.Image:
        return render_alerts(keys, lang, self.layout, self.faces)


def _to_minute(status: StatusInfo) -> StatusInfo:
    """The status with seconds dropped, so the cached bar is redrawn once a minute, not every frame."""
    if status.clock is None or (status.clock.second == 0 and status.clock.microsecond == 0):
        return status
    return dataclasses.replace(status, clock=status.clock.replace(second=0, microsecond=0))
