"""RFC 8058 one-click unsubscribe: a signed token per email, and the unsubscription it allows.

Each email carries ``List-Unsubscribe: <{parent-url}/parent/unsubscribe?t=TOKEN>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. ``TOKEN`` is ``KEY.MAC``: the outbox row's key
and HMAC-SHA256 over it under a key kept in the register's ``meta`` table (made once, shared by the
dispatcher and the console). A POST with a valid token records ``(kindergarten, guardian, channel,
address)`` in ``notify_unsubscribed``, without login; a repeat changes nothing; a bad token writes
nothing. Later entries are not queued for that address, and its rows still pending are cancelled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final

from register.notify.outbox import CANCELLED, PENDING
from register.store.base import Store

PATH: Final = "/parent/unsubscribe?t="  # register/notify/report_web.py serves /console/parent/unsubscribe
_META_KEY: Final = "notify_unsubscribe_key"
_TOKEN = re.compile(r"([0-9a-f]{32})\.([A-Za-z0-9_-]{43})")


def unsubscribe_key(store: Store) -> bytes:
    """The signing key: made once (the first writer wins, also between processes), then read."""
    fresh = secrets.token_urlsafe(32)
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (_META_KEY, fresh)
        )
        row = sql.one("SELECT value FROM meta WHERE key = ?", (_META_KEY,))
    return str(row[0]).encode()


def _mac(key: bytes, outbox_key: str) -> str:
    digest = hmac.new(key, b"kgate-unsubscribe\n" + outbox_key.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(key: bytes, outbox_key: str) -> str:
    """The token of one email (its outbox key, signed)."""
    return f"{outbox_key}.{_mac(key, outbox_key)}"


def unsubscribe_url(parent_url: str, key: bytes, outbox_key: str) -> str:
    return parent_url.rstrip("/") + PATH + make_token(key, outbox_key)


def unsubscribe(store: Store, token: str, *, now_ms: int) -> tuple[str, str] | None:
    """Unsubscribe the email address the token was made for; ``(kindergarten, address)``, or None for a
    bad token (nothing written). Idempotent: a second call finds the row and changes nothing."""
    m = _TOKEN.fullmatch(token)
    if m is None:
        return None
    key = unsubscribe_key(store)
    if not hmac.compare_digest(m.group(2), _mac(key, m.group(1))):
        return None
    with store._tx(write=True) as sql:
        row = sql.one(
            "SELECT d.kindergarten, n.guardian, n.channel, n.address FROM notify_outbox n "
            "JOIN devices d ON d.id = n.device_id WHERE n.key = ? AND n.channel = 'email' LIMIT 1",
            (m.group(1),),
        )
        if row is None:
            return None
        k, guardian, channel, address = (str(v) for v in row)
        sql.run(
            "INSERT INTO notify_unsubscribed (kindergarten, guardian, channel, address, unsubscribed_ms) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kindergarten, guardian, channel, address) DO NOTHING",
            (k, guardian, channel, address, now_ms),
        )
        sql.run(
            "UPDATE notify_outbox SET state = ?, last_error = ? WHERE state = ? AND guardian = ? "
            "AND channel = ? AND address = ? "
            "AND device_id IN (SELECT id FROM devices WHERE kindergarten = ?)",
            (CANCELLED, "unsubscribed", PENDING, guardian, channel, address, k),
        )
    return k, address
