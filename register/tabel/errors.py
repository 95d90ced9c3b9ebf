"""Errors of the табель commands (one line for the user, exit 2 like other register usage errors)."""

from __future__ import annotations

from register.errors import RegisterError


class TabelError(RegisterError, ValueError):
    """A табель, calendar, absence, flag or approval request is invalid; nothing was changed."""


class NotFound(TabelError, LookupError):
    """No such flag, month or kindergarten data."""
