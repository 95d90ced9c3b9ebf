"""Exceptions of the sync agent: retry-later vs. stop is a type, not a string.

``RetryableError`` (transport failures, 5xx, 429) makes the daemon back off and try again;
``FatalError`` (the register refused us, an equivocation, a bad cosignature) stops pushing and is
recorded in the state directory for an operator. Each class also subclasses the closest builtin.
"""

from __future__ import annotations

from kgate.errors import KgateError


class SyncError(KgateError):
    """Base class of sync-agent errors."""


class RetryableError(SyncError):
    """Try again later (after backoff); nothing is wrong with the log."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransportError(RetryableError, ConnectionError):
    """No HTTP answer: connection refused or reset, DNS, TLS handshake, timeout."""


class ServerError(RetryableError):
    """The register answered 5xx (busy, restarting, broken): retry later."""


class RateLimited(RetryableError):
    """The register answered 429; ``retry_after`` (seconds) says when to try again."""


class FatalError(SyncError):
    """Do not retry automatically: an operator must look (recorded as the state's alarm)."""

    exit_code = 3


class RejectedError(FatalError, PermissionError):
    """The register refused the request (4xx other than 409 gap and 429): ``status`` says which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class EquivocationError(FatalError):
    """The register holds different bytes or an inconsistent checkpoint for this log: alarm."""

    exit_code = 4


class BadResponseError(FatalError, ValueError):
    """The register's answer does not verify (cosignature, checkpoint body, size) or is malformed."""


class HaltedError(FatalError):
    """A previous fatal error halted pushing; ``kgate sync clear-alarm`` resumes after investigation."""


class GapError(SyncError, LookupError):
    """409 gap: the register holds fewer entries than we assumed; ``size`` is what it has."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class StateError(SyncError, OSError):
    """The state directory cannot be read or written, or belongs to another log."""
