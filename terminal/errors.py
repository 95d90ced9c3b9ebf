"""Errors of the gate terminal: bad badges, scanning failures.

Every class subclasses :class:`TerminalError` (and so :class:`KgateError`) and, where one fits, the
closest builtin, so callers can catch either.
"""

from __future__ import annotations

from kgate.errors import KgateError


class TerminalError(KgateError):
    """Base class of the gate terminal's errors."""


class BadgeError(TerminalError, ValueError):
    """A scanned badge payload is refused; the gate shows a red "badge not valid" card."""


class OversizedBadge(BadgeError):
    """The payload is longer than any badge could be; refused before any other work."""


class MalformedBadge(BadgeError):
    """The payload is not a kgate badge: wrong prefix, length, character set or encoding."""


class UnsupportedBadgeVersion(BadgeError):
    """The payload looks like a kgate badge of a format version this terminal does not know."""


class BadgeCheckFailed(BadgeError):
    """The check character does not match the serial: a misread, a typo or a forgery."""


class ScanError(TerminalError, RuntimeError):
    """The frame pipeline could not run (e.g. a decoder library is missing)."""
