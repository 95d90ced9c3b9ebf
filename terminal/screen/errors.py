"""Errors of the gate screen."""

from kgate.errors import KgateError, UsageError


class ScreenError(KgateError):
    """Base class of gate-screen errors."""


class ScreenConfigError(ScreenError, UsageError):
    """A ``[screen]`` setting is wrong; the message names the key."""


class FontNotFoundError(ScreenError, FileNotFoundError):
    """No usable font file in the search list (install fonts-dejavu-core)."""


class GlyphMissingError(ScreenError, LookupError):
    """The font lacks glyphs the gate needs (e.g. Kazakh ә ғ қ ң ө ұ ү һ і); names them."""
