"""Stateless CSRF tokens for the anonymous forms (login, parent code): nothing is stored per visitor.

A visitor without a session gets a random value in the ``kgate_anon`` cookie; the form carries
``EXPIRY.MAC`` with MAC = HMAC-SHA256(key, value ‖ EXPIRY) under the console's key, kept in the
register's ``meta`` table so that it survives restarts and is shared by every process. A POST passes only
with an unexpired token made for the cookie it arrives with (double submit, signed): a cross-site
page can neither read the cookie nor make a token for it. A ``console_sessions`` row is written only
once someone logs in or enters a valid parent code (docs/console.md, "Sessions and CSRF").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

from register.store.base import Store

ANON_COOKIE: Final = "kgate_anon"
TOKEN_TTL_S: Final = 3600
_META_KEY: Final = "console_csrf_key"
_NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")
_TOKEN = re.compile(r"(\d{1,12})\.([A-Za-z0-9_-]{43})")


def console_key(store: Store) -> bytes:
    """The console's CSRF key: made once (the first writer wins, also between processes), then read."""
    fresh = secrets.token_urlsafe(32)
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (_META_KEY, fresh)
        )
        row = sql.one("SELECT value FROM meta WHERE key = ?", (_META_KEY,))
    return str(row[0]).encode()


def new_nonce() -> str:
    """The random value of a new ``kgate_anon`` cookie."""
    return secrets.token_urlsafe(16)


def valid_nonce(value: str | None) -> bool:
    return value is not None and _NONCE.fullmatch(value) is not None


def _mac(key: bytes, nonce: str, expires_s: int) -> str:
    digest = hmac.new(key, f"anon-csrf\n{nonce}\n{expires_s}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(key: bytes, nonce: str, *, now_s: int) -> str:
    """A token for the forms of the visitor whose cookie holds ``nonce``, valid TOKEN_TTL_S seconds."""
    expires = now_s + TOKEN_TTL_S
    return f"{expires}.{_mac(key, nonce, expires)}"


def token_ok(key: bytes, nonce: str | None, token: str | None, *, now_s: int) -> bool:
    """Whether ``token`` was made here for ``nonce`` and is unexpired (MAC compared in constant time)."""
    if nonce is None or not valid_nonce(nonce) or token is None:
        return False
    match = _TOKEN.fullmatch(token)
    if match is None or int(match[1]) <= now_s:
        return False
    return hmac.compare_digest(_mac(key, nonce, int(match[1])).encode(), match[2].encode())


# -- a parent's browser ------------------------------------------------------------------------------------

PARENT_COOKIE: Final = "kgate_parent"
PARENT_TTL_S: Final = 365 * 86400
_PARENT = re.compile(r"(\d{1,12})\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})")


def _parent_mac(key: bytes, ident: str, expires_s: int) -> str:
    digest = hmac.new(key, f"parent-device\n{ident}\n{expires_s}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def parent_device(key: bytes, kindergarten: str, child: str, *, now_s: int) -> str:
    """The ``kgate_parent`` cookie of a browser where a valid code of ``child`` was entered (signed)."""
    ident = base64.urlsafe_b64encode(f"{kindergarten}\n{child}".encode()).rstrip(b"=").decode()
    expires = now_s + PARENT_TTL_S
    return f"{expires}.{ident}.{_parent_mac(key, ident, expires)}"


def parent_device_ok(key: bytes, value: str | None, *, now_s: int) -> tuple[str, str] | None:
    """The (kindergarten, child) a ``kgate_parent`` cookie made here names, if unexpired; else None."""
    match = _PARENT.fullmatch(value or "")
    if match is None or int(match[1]) <= now_s:
        return None
    if not hmac.compare_digest(_parent_mac(key, match[2], int(match[1])).encode(), match[3].encode()):
        return None
    kindergarten, _, child = (
        base64.urlsafe_b64decode(match[2] + "=" * (-len(match[2]) % 4)).decode().partition("\n")
    )
    return kindergarten, child
