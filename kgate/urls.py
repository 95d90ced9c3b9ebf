"""The one rule for the base URLs kgate talks to: ``https``, or plain ``http`` only to loopback.

Shared by the sync agent (the register's URL) and the tile client (a device's pull URL), so it lives in
the base package that every layer may import.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from kgate.errors import UsageError


def check_url(url: str, what: str) -> str:
    """Normalise a base URL (no trailing slash); ``what`` names it in the error ("register URL", …)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{what} {url!r} must be http(s)://HOST[:PORT][/PREFIX]")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(f"{what} {url!r}: plain http is allowed only to loopback; use https")
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
