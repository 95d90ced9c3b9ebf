"""Console users, roles and scopes, the append-only audit trail, and login with throttling and lockout.

Roles (docs/console.md): a ``director`` sees one kindergarten (scope = its name), a ``district``
official every kindergarten of one district (scope = the district, see :mod:`register.kindergartens`),
an ``auditor`` everything, read-only (no scope). Passwords are stored only as Argon2id hashes.

Throttling is stored in ``login_throttle`` (it survives restarts) per subject — ``user:<name>`` and
``addr:<client address>`` — so neither guessing one user's password from many addresses nor many
users' passwords from one address gets far: after ``max_failures`` consecutive failures the subject is
locked for ``lockout_s``; while locked, attempts are refused without checking the password.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from register.errors import BadCredentials, ConfigError, LockedOut, UnknownUser
from register.kindergartens import in_district
from register.store.base import Sql, Store

ROLES: Final = ("director", "district", "auditor")
LANGUAGES: Final = ("kk", "ru", "en")
MIN_PASSWORD: Final = 10
MAX_PASSWORD: Final = 1024
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

_hasher = PasswordHasher()  # Argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
_DUMMY_HASH = _hasher.hash("not a password: keeps unknown users as slow as known ones")


@dataclass(frozen=True)
class LoginPolicy:
    """Failures allowed per user and per address before a lock, and how long the lock lasts."""

    max_failures: int = 5
    address_max_failures: int = 20
    lockout_s: int = 15 * 60


DEFAULT_POLICY: Final = LoginPolicy()


@dataclass(frozen=True)
class User:
    """A console user: role and scope decide what they may see; ``language`` picks the page language."""

    id: int
    name: str
    role: str
    scope: str | None
    language: str
    disabled: bool
    created_ms: int

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id"}


@dataclass(frozen=True)
class AuditRow:
    """One recorded action: who, when (UTC ms), what, with details and the client address."""

    id: int
    time_ms: int
    actor: str
    action: str
    detail: str
    address: str | None


_USER_COLS = "id, name, role, scope, language, disabled, created_ms"


def _user(row: Any) -> User:
    return User(int(row[0]), row[1], row[2], row[3], row[4], bool(row[5]), int(row[6]))


def _audit(sql: Sql, actor: str, action: str, detail: str, *, address: str | None, now_ms: int) -> None:
    sql.run(
        "INSERT INTO audit (time_ms, actor, action, detail, address) VALUES (?, ?, ?, ?, ?)",
        (now_ms, actor, action, detail, address),
    )


def record(
    store: Store, actor: str, action: str, detail: str = "", *, now_ms: int, address: str | None = None
) -> None:
    """Append one action to the audit trail (the table refuses UPDATE and DELETE)."""
    with store._tx(write=True) as sql:
        _audit(sql, actor, action, detail, address=address, now_ms=now_ms)


def audit_log(store: Store, *, limit: int = 1000) -> list[AuditRow]:
    """The newest ``limit`` audit rows, oldest first."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT id, time_ms, actor, action, detail, address FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        )
    return [AuditRow(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in reversed(rows)]


def check_password(password: str) -> str:
    """``password`` if it is long enough for a console account; ConfigError otherwise."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ConfigError(f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if not password.isprintable():
        raise ConfigError("the password must not contain control characters")
    return password


def _check_role(role: str, scope: str | None) -> None:
    if role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "auditor" and scope is not None:
        raise ConfigError("an auditor sees everything: give no --scope")
    if role != "auditor" and (scope is None or not scope.strip() or not scope.isprintable()):
        raise ConfigError(
            f"a {role} needs --scope ({'a kindergarten' if role == 'director' else 'a district'})"
        )


def add_user(
    store: Store,
    name: str,
    role: str,
    scope: str | None,
    password: str,
    *,
    now_ms: int,
    language: str = "ru",
    actor: str = "cli",
) -> User:
    """Create a console user (recorded in the audit trail); ConfigError for a bad name, role or password."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"user name {name!r} must match {_NAME.pattern}")
    _check_role(role, scope)
    if language not in LANGUAGES:
        raise ConfigError(f"--language must be one of {', '.join(LANGUAGES)}")
    pw_hash = _hasher.hash(check_password(password))
    try:
        with store._tx(write=True) as sql:
            row = sql.one(
                "INSERT INTO users (name, role, scope, pw_hash, language, created_ms) "  # noqa: S608
                f"VALUES (?, ?, ?, ?, ?, ?) RETURNING {_USER_COLS}",
                (name, role, scope, pw_hash, language, now_ms),
            )
            _audit(
                sql,
                actor,
                "user add",
                f"{name} role={role} scope={scope or '*'}",
                address=None,
                now_ms=now_ms,
            )
    except store.integrity_errors:
        raise ConfigError(f"a user named {name!r} exists already") from None
    return _user(row)


def disable_user(store: Store, name: str, *, now_ms: int, actor: str = "cli") -> User:
    """Disable ``name``: it can no longer log in, and its sessions end (the row stays for the audit)."""
    with store._tx(write=True) as sql:
        row = sql.one(
            f"UPDATE users SET disabled = TRUE WHERE name = ? RETURNING {_USER_COLS}",  # noqa: S608
            (name,),
        )
        if row is None:
            raise UnknownUser(f"no console user {name!r}")
        _audit(sql, actor, "user disable", name, address=None, now_ms=now_ms)
    return _user(row)


def users(store: Store) -> list[User]:
    with store._tx(write=False) as sql:
        return [_user(r) for r in sql.all(f"SELECT {_USER_COLS} FROM users ORDER BY name")]  # noqa: S608


def user_by_id(store: Store, user_id: int) -> User | None:
    with store._tx(write=False) as sql:
        row = sql.one(f"SELECT {_USER_COLS} FROM users WHERE id = ?", (user_id,))  # noqa: S608
    return None if row is None else _user(row)


# -- throttling -------------------------------------------------------------------------------------------


def _locked_until(sql: Sql, subject: str, now_ms: int, policy: LoginPolicy) -> tuple[int, int]:
    """``(failures that still count, locked until ms or 0)`` for ``subject``."""
    row = sql.one(
        "SELECT failures, last_ms, locked_until_ms FROM login_throttle WHERE subject = ?", (subject,)
    )
    if row is None:
        return 0, 0
    failures, last_ms, locked = int(row[0]), int(row[1]), int(row[2])
    if locked > now_ms:
        return failures, locked
    if locked or last_ms <= now_ms - policy.lockout_s * 1000:  # a lock that ended, or old failures
        return 0, 0
    return failures, 0


def _fail(sql: Sql, subject: str, limit: int, now_ms: int, policy: LoginPolicy) -> None:
    failures, _ = _locked_until(sql, subject, now_ms, policy)
    failures += 1
    locked = now_ms + policy.lockout_s * 1000 if failures >= limit else 0
    sql.run(
        "INSERT INTO login_throttle (subject, failures, last_ms, locked_until_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, last_ms = excluded.last_ms, "
        "locked_until_ms = excluded.locked_until_ms",
        (subject, failures, now_ms, locked),
    )


def throttled(
    store: Store,
    subjects: list[tuple[str, int]],
    check: Callable[[Sql], bool],
    *,
    what: str,
    now_ms: int,
    address: str | None,
    policy: LoginPolicy,
) -> None:
    """Refuse while any subject is locked, else run ``check`` (a read transaction, no lock held).

    ``subjects`` are ``(subject, failures allowed)``, the first one the credential's owner (cleared on
    success); a failure counts against every subject. Every attempt goes into the audit trail.
    """
    with store._tx(write=False) as sql:
        locks = [_locked_until(sql, subject, now_ms, policy)[1] for subject, _ in subjects]
    if any(locks):
        wait = max(1, (max(locks) - now_ms + 999) // 1000)
        record(store, subjects[0][0], f"{what} refused", "locked out", now_ms=now_ms, address=address)
        raise LockedOut(f"too many failed attempts: try again in {wait} s", retry_after=wait)
    with store._tx(write=False) as sql:
        ok = check(sql)
    with store._tx(write=True) as sql:
        if ok:
            sql.run("DELETE FROM login_throttle WHERE subject = ?", (subjects[0][0],))
        else:
            for subject, limit in subjects:
                _fail(sql, subject, limit, now_ms, policy)
        _audit(sql, subjects[0][0], what if ok else f"{what} failed", "", address=address, now_ms=now_ms)
    if not ok:
        raise BadCredentials("wrong name, password or code")


def login(
    store: Store,
    name: str,
    password: str,
    *,
    address: str,
    now_ms: int,
    policy: LoginPolicy = DEFAULT_POLICY,
) -> User:
    """The user ``name`` if ``password`` is theirs and neither they nor ``address`` is locked out.

    Raises :class:`LockedOut` (with ``retry_after``) or :class:`BadCredentials` (unknown user, wrong
    password, disabled user: one message). Every attempt is in the audit trail.
    """
    found: list[User] = []

    def check(sql: Sql) -> bool:
        row = sql.one(f"SELECT {_USER_COLS}, pw_hash FROM users WHERE name = ?", (name,))  # noqa: S608
        pw_hash = _DUMMY_HASH if row is None else str(row[7])
        try:
            _hasher.verify(pw_hash, password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if row is None or bool(row[5]):
            return False
        found.append(_user(row))
        return True

    subjects = [(f"user:{name[:64]}", policy.max_failures), (f"addr:{address}", policy.address_max_failures)]
    throttled(store, subjects, check, what="login", now_ms=now_ms, address=address, policy=policy)
    return found[0]


def visible_kindergartens(store: Store, user: User) -> set[str] | None:
    """The kindergartens ``user`` may see (None: all of them, for an auditor)."""
    if user.role == "auditor":
        return None
    if user.role == "director":
        return {user.scope or ""}
    return set(in_district(store, user.scope or ""))


def may_see(store: Store, user: User, kindergarten: str) -> bool:
    """Whether ``user``'s role and scope cover ``kindergarten`` (disabled users see nothing)."""
    if user.disabled:
        return False
    visible = visible_kindergartens(store, user)
    return visible is None or kindergarten in visible
