"""What the HTTP channels share: one requests session, a timeout on every call, TLS against a CA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from register.notify.errors import PermanentFailure, TemporaryFailure

TIMEOUT = (5.0, 15.0)  # connect, read (seconds)


def post(session: requests.Session, url: str, what: str, *, ca: Path | None, **kw: Any) -> requests.Response:
    """POST with a timeout, no redirects; transport errors are :class:`TemporaryFailure`.

    The error never includes the URL (a Telegram URL holds the bot token), only ``what``.
    """
    try:
        return session.post(
            url, timeout=TIMEOUT, allow_redirects=False, verify=True if ca is None else str(ca), **kw
        )
    except requests.RequestException as exc:
        raise TemporaryFailure(f"{what}: {type(exc).__name__}") from None


def check_status(resp: requests.Response, what: str) -> None:
    """2xx passes; 408/429/5xx are retried later; any other status is permanent."""
    if 200 <= resp.status_code < 300:
        return
    detail = f"{what}: HTTP {resp.status_code} {resp.text[:200]!r}"
    if resp.status_code in (408, 429) or resp.status_code >= 500:
        raise TemporaryFailure(detail)
    raise PermanentFailure(detail)
