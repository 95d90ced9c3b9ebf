"""Exceptions of the register package: one tree under :class:`RegisterError`, each also the closest builtin.

The HTTP layer maps :class:`ApiError` subclasses to status codes; retryable conditions (``StoreBusy``,
``StoreUnavailable``) become 503 so that agents retry later.
"""

from __future__ import annotations

from kgate.errors import KgateError


class RegisterError(KgateError):
    """Base class of register errors."""


class ConfigError(RegisterError, ValueError):
    """A command-line value or database URL is wrong."""


class StoreError(RegisterError, OSError):
    """The register database cannot be opened, read or written."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database server is unreachable or busy; retry later."""


class UnknownDevice(RegisterError, LookupError):
    """No enrolled device matches."""


class DuplicateDevice(RegisterError, ValueError):
    """A device with this origin or key is already enrolled."""


class ApiError(RegisterError):
    """An answer to a bad request: HTTP ``status``, a short ``code`` and a human ``detail``."""

    status = 400
    code = "malformed"

    def __init__(self, detail: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class Malformed(ApiError, ValueError):
    """The request body is not what the protocol says (400)."""


class Unauthenticated(ApiError, PermissionError):
    """Missing, bad, expired or replayed request signature (401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(ApiError, PermissionError):
    """Unknown or disabled device, or a request about another device's log (403)."""

    status = 403
    code = "forbidden"


class Conflict(ApiError, ValueError):
    """The batch conflicts with the stored log (409)."""

    status = 409


class Equivocation(Conflict):
    """Same index with different bytes, or a checkpoint inconsistent with the stored log (409, alarm)."""

    code = "equivocation"

    def __init__(self, detail: str, *, index: int | None = None) -> None:
        super().__init__(detail, extra={} if index is None else {"index": index})
        self.index = index


class Gap(Conflict):
    """The batch starts beyond what the register holds (409, with the stored size)."""

    code = "gap"

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail, extra={"size": size})
        self.size = size


class TooLarge(ApiError, ValueError):
    """Body, decompressed body or batch over the limit (413)."""

    status = 413
    code = "too_large"


class Unverifiable(ApiError, ValueError):
    """The batch does not verify: bad checkpoint signature, entry, index or root (422)."""

    status = 422
    code = "unverifiable"


class RateLimited(ApiError, RuntimeError):
    """Too many requests from this device (429, Retry-After)."""

    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ApiError, ConnectionError):
    """The register cannot serve now; retry later (503)."""

    status = 503
    code = "unavailable"


class RequestTimeout(ApiError, TimeoutError):
    """The body did not arrive within the deadline (408; the connection is closed)."""

    status = 408
    code = "timeout"


class ClientGone(ApiError, ConnectionError):
    """The client closed the connection before its body was complete (nobody reads the answer)."""

    code = "disconnected"


class BadOrigin(ConfigError):
    """A device origin breaks the register's pattern or prefix (look-alikes, uppercase, another register)."""


class GateTaken(DuplicateDevice):
    """The (kindergarten, gate) already has a device that is not revoked."""


class EnrolmentRefused(ApiError, PermissionError):
    """An enrolment token or proof of possession was refused (403); nothing was stored."""

    status = 403
    code = "enrolment_refused"


class BadToken(EnrolmentRefused):
    """The enrolment token is unknown (401)."""

    status = 401
    code = "bad_token"


class RosterImportError(RegisterError, ValueError):
    """A roster CSV is invalid; the message names the line and column. Nothing was changed."""


class UnknownPerson(RegisterError, LookupError):
    """No child or guardian with this id in the kindergarten's roster."""


class BadCredentials(Unauthenticated):
    """Console login or parent code refused: wrong name, password or code, or a disabled user (401).

    One message for all of them, so a guess learns nothing about which part was wrong.
    """


class LockedOut(RateLimited):
    """Too many failed logins for this user or from this address: refused until the lock ends (429)."""

    code = "locked_out"


class UnknownUser(RegisterError, LookupError):
    """No console user of that name."""
