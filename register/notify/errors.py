"""Exceptions of the notification package, under the register's tree; retryable vs permanent is a type."""

from __future__ import annotations

from register.errors import RateLimited, RegisterError


class NotifyError(RegisterError):
    """Base class of notification errors."""


class ContactsImportError(NotifyError, ValueError):
    """A contacts CSV is invalid; the message names the line and column. Nothing was changed."""


class NotifyConfigError(NotifyError, ValueError):
    """A dispatcher option (channel address, secret file, URL) is wrong."""


class ChannelError(NotifyError):
    """A channel could not deliver one message; ``retryable`` says whether to try again later."""

    retryable = True


class TemporaryFailure(ChannelError, ConnectionError):
    """Network down, timeout, server busy (SMTP 4xx, HTTP 429/5xx): retry with backoff."""


class PermanentFailure(ChannelError, ValueError):
    """The service refused the message for good (SMTP 5xx, HTTP 4xx): straight to the dead letters."""

    retryable = False


class TooManyReports(RateLimited):
    """A parent reported more days of one month than a month allows (429 until the next month)."""

    code = "too_many_reports"
