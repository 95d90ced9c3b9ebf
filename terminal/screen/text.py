"""Text drawing helpers: cached fonts, shrink-to-fit, word wrap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import ImageDraw, ImageFont

from terminal.screen import fonts as _fonts

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class FontPair:
    """Regular and bold faces of one family; sizes are loaded once and cached."""

    regular: Path
    bold: Path

    def get(self, size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
        return _fonts.load(self.bold if bold else self.regular, max(6, size))


def wrap(font: ImageFont.FreeTypeFont, text: str, width: float) -> list[str]:
    """Greedy word wrap; a word longer than ``width`` stays on its own line."""
    lines: list[str] = []
    current = ""
    for word in (w for w in text.split(" ") if w):  # not str.split(): keep no-break spaces
        candidate = f"{current} {word}" if current else word
        if current and font.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines or [""]


def fit(
    faces: FontPair,
    text: str,
    width: float,
    size: int,
    *,
    min_size: int,
    bold: bool = False,
    max_lines: int = 1,
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font (``size`` down to ``min_size``) at which ``text`` fits in ``max_lines`` lines."""
    step = max(1, size // 24)
    # One line at up to 30 % smaller reads better than two lines at full size.
    for lines_allowed, smallest in ((1, max(min_size, size * 7 // 10)), (max_lines, min_size)):
        for s in range(size, smallest - 1, -step):
            font = faces.get(s, bold=bold)
            lines = wrap(font, text, width)
            if len(lines) <= lines_allowed and all(font.getlength(line) <= width for line in lines):
                return font, lines
    font = faces.get(min_size, bold=bold)
    all_lines = wrap(font, text, width)
    lines = all_lines[:max_lines]
    if len(all_lines) > max_lines or font.getlength(lines[-1]) > width:
        last = lines[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return font, lines


def line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return int(ascent + descent)


def draw_lines(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    font: ImageFont.FreeTypeFont,
    lines: list[str],
    fill: RGB,
    *,
    align: str = "left",
    width: float = 0,
    spacing: float = 1.05,
) -> int:
    """Draw ``lines`` from ``xy`` (top-left, or top-centre of ``width`` if centred); returns height used."""
    x, y = xy
    step = round(line_height(font) * spacing)
    for i, line in enumerate(lines):
        lx = x + (width - font.getlength(line)) / 2 if align == "center" else x
        if align == "right":
            lx = x + width - font.getlength(line)
        draw.text((lx, y + i * step), line, font=font, fill=fill)
    return step * len(lines)
