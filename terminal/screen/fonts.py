"""Find the gate font by a search list, cache sizes, and prove it has every glyph we draw.

Glyph coverage is checked by rendering: a character the font lacks is drawn as the ``.notdef``
box ("tofu"), identical to the box drawn for a code point no font has. fontTools is not needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from terminal.screen.errors import FontNotFoundError, GlyphMissingError

# Plane 16 private use: assigned to nothing, so every font draws its .notdef glyph for it.
_NOT_A_GLYPH = "\U0010fffd"
_PROBE_SIZE = 32
KAZAKH_LETTERS = "ӘәҒғҚқҢңӨөҰұҮүҺһІі"


def find_font(names: Iterable[str], dirs: Iterable[Path]) -> Path:
    """The first ``dir/name`` that exists and FreeType can open; :class:`FontNotFoundError` otherwise."""
    names, dirs = tuple(names), tuple(dirs)
    for directory in dirs:
        for name in names:
            path = directory / name
            if path.is_file():
                try:
                    ImageFont.truetype(str(path), _PROBE_SIZE)
                except OSError:
                    continue
                return path
    searched = ", ".join(str(d) for d in dirs)
    raise FontNotFoundError(
        f"no usable font {' or '.join(names)} in {searched}; "
        "install it (apt install fonts-dejavu-core) or set $KGATE_FONT_DIR"
    )


@lru_cache(maxsize=64)
def load(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """The font at ``path`` in pixel ``size``, cached: loading costs far more than drawing."""
    return ImageFont.truetype(str(path), size)


def _mask(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


@lru_cache(maxsize=8)
def _tofu(path: Path) -> tuple[tuple[int, int], bytes]:
    return _mask(load(path, _PROBE_SIZE), _NOT_A_GLYPH)


def has_glyph(path: Path, char: str) -> bool:
    """True if the font draws ``char`` as a real glyph (not empty, not the .notdef box)."""
    if char.isspace():
        return True
    size, pixels = _mask(load(path, _PROBE_SIZE), char)
    if size[0] == 0 or size[1] == 0 or not any(pixels):
        return False
    return (size, pixels) != _tofu(path)


def missing_glyphs(path: Path, text: Iterable[str]) -> str:
    """The characters of ``text`` (deduplicated, sorted) the font cannot draw."""
    return "".join(sorted({c for chunk in text for c in chunk if not has_glyph(path, c)}))


def check_coverage(path: Path, text: Iterable[str]) -> None:
    """Raise :class:`GlyphMissingError` naming every character of ``text`` the font lacks."""
    missing = missing_glyphs(path, text)
    if missing:
        listed = " ".join(f"{c} (U+{ord(c):04X})" for c in missing)
        raise GlyphMissingError(f"font {path} has no glyph for: {listed}")
