"""Text that reaches a person: the gate screen, the staff табель, a terminal. Refused if it can hide or move.

Control characters (ESC starts terminal escape sequences, BEL rings), bidi and other format
characters (U+202E turns "Ivan" into a mirror of itself, zero-width characters make two names look
alike), lone surrogates, private-use and unassigned code points are refused; every assigned letter,
mark, digit, punctuation and space character passes (Kazakh ә ғ қ ң ө ұ ү һ і included).
"""

from __future__ import annotations

import unicodedata

from kgate.errors import UsageError


class UnsafeText(UsageError):
    """Text for the screen holds a character that could hide, reorder or control what is shown."""


#: Unicode general categories refused, and how the message describes them.
REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format (bidi or zero-width) character",
    "Cs": "a lone surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def unsafe_character(value: str) -> tuple[int, str] | None:
    """The index and description of the first character :func:`check_display_text` refuses, or None."""
    for index, char in enumerate(value):
        kind = REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            return index, kind
    return None


def check_display_text(value: str, where: str) -> str:
    """``value`` unchanged, or :class:`UnsafeText` naming ``where`` and the code point (``U+001B``)."""
    found = unsafe_character(value)
    if found is not None:
        index, kind = found
        raise UnsafeText(
            f"{where}: U+{ord(value[index]):04X} at position {index} is {kind}, "
            "not allowed in text shown on the gate screen"
        )
    return value


__all__ = ["REFUSED_CATEGORIES", "UnsafeText", "check_display_text", "unsafe_character"]
