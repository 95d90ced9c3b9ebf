"""Gate messages in Kazakh, Russian and English.

Catalogues are plain Python dicts (``kk.py``, ``ru.py``, ``en.py``): typed, importable without a
compile step, and checked by a test that every key exists in every language with the same
placeholders. ``translate("greeting", "kk", name="Аружан")`` → ``"Сәлем, Аружан!"``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final, Literal, TypeGuard, get_args

from kgate.errors import KgateError
from terminal.i18n import en, kk, ru

Lang = Literal["kk", "ru", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = get_args(Lang)
DEFAULT_LANG: Final[Lang] = "kk"

CATALOGUES: Final[Mapping[Lang, Mapping[str, str]]] = {
    "kk": kk.MESSAGES,
    "ru": ru.MESSAGES,
    "en": en.MESSAGES,
}


class I18nError(KgateError, LookupError):
    """A language or message key that the catalogues do not have."""


class UnknownLanguageError(I18nError):
    """The language code is not one of :data:`LANGUAGES`."""


class UnknownMessageError(I18nError, KeyError):
    """The message key is not in the catalogue."""


def is_lang(code: str) -> TypeGuard[Lang]:
    """True if ``code`` is a supported language code."""
    return code in LANGUAGES


def check_lang(code: str) -> Lang:
    """Return ``code`` as a :data:`Lang`, or raise :class:`UnknownLanguageError` naming it."""
    if is_lang(code):
        return code
    raise UnknownLanguageError(f"unknown language {code!r}; expected one of {', '.join(LANGUAGES)}")


def placeholders(text: str) -> frozenset[str]:
    """The ``{name}`` fields a message expects."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


def translate(key: str, lang: str, /, **params: object) -> str:
    """The message ``key`` in ``lang`` with ``params`` filled in.

    Raises :class:`UnknownLanguageError`, :class:`UnknownMessageError`, or :class:`UnknownMessageError`
    naming the placeholder when a parameter is missing.
    """
    catalogue = CATALOGUES[check_lang(lang)]
    try:
        text = catalogue[key]
    except KeyError:
        raise UnknownMessageError(f"no message {key!r} in language {lang!r}") from None
    if not params and not placeholders(text):
        return text
    try:
        return text.format(**params)
    except KeyError as exc:
        raise UnknownMessageError(f"message {key!r} needs parameter {exc.args[0]!r}") from None


t = translate

__all__ = [
    "CATALOGUES",
    "DEFAULT_LANG",
    "LANGUAGES",
    "I18nError",
    "Lang",
    "UnknownLanguageError",
    "UnknownMessageError",
    "check_lang",
    "is_lang",
    "placeholders",
    "t",
    "translate",
]
