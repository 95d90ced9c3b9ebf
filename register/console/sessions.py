"""Server-side console sessions: a random id in a cookie, only its SHA-256 in ``console_sessions``.

A session is a user's or a parent's (one child, after a valid access code); visitors without one use
the stateless tokens of :mod:`register.console.csrf`, so no row exists before a login or code. Logging
in or entering a code always makes a new id, replacing any session the visitor had (no fixation).
Every session has its own CSRF token, compared in constant time on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from register.store.base import Store

USER_TTL_MS: Final = 8 * 3600 * 1000
PARENT_TTL_MS: Final = 3600 * 1000
ANON_TTL_MS: Final = 3600 * 1000


@dataclass(frozen=True)
class Session:
    """A live session: who (a user id, a parent's child, or nobody yet) and its CSRF token."""

    id: str
    user_id: int | None
    parent_kindergarten: str | None
    parent_child: str | None
    csrf: str
    expires_ms: int

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf.encode(), token.encode())


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(
    store: Store,
    *,
    now_ms: int,
    user_id: int | None = None,
    parent: tuple[str, str] | None = None,
    replaces: str | None = None,
) -> Session:
    """A new session (ending ``replaces`` in the same transaction)."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    ttl = USER_TTL_MS if user_id is not None else PARENT_TTL_MS if parent else ANON_TTL_MS
    kindergarten, child = parent or (None, None)
    with store._tx(write=True) as sql:
        if replaces is not None:
            sql.run("DELETE FROM console_sessions WHERE id_hash = ?", (_hash(replaces),))
        sql.run("DELETE FROM console_sessions WHERE expires_ms <= ?", (now_ms,))
        sql.run(
            "INSERT INTO console_sessions "
            "(id_hash, user_id, parent_kindergarten, parent_child, csrf, created_ms, expires_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_hash(sid), user_id, kindergarten, child, csrf, now_ms, now_ms + ttl),
        )
    return Session(sid, user_id, kindergarten, child, csrf, now_ms + ttl)


def get_session(store: Store, session_id: str | None, *, now_ms: int) -> Session | None:
    """The live session with this id, or None (unknown, expired, or its user disabled)."""
    if not session_id or len(session_id) > 100:
        return None
    with store._tx(write=False) as sql:
        row = sql.one(
            "SELECT s.user_id, s.parent_kindergarten, s.parent_child, s.csrf, s.expires_ms "
            "FROM console_sessions s LEFT JOIN users u ON u.id = s.user_id "
            "WHERE s.id_hash = ? AND s.expires_ms > ? AND (u.id IS NULL OR NOT u.disabled)",
            (_hash(session_id), now_ms),
        )
    if row is None:
        return None
    return Session(session_id, None if row[0] is None else int(row[0]), row[1], row[2], row[3], int(row[4]))


def end_session(store: Store, session_id: str) -> None:
    with store._tx(write=True) as sql:
        sql.run("DELETE FROM console_sessions WHERE id_hash = ?", (_hash(session_id),))
