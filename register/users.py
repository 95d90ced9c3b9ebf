"""Console users, roles and scopes, the append-only audit trail, and login with throttling and lockout.

Roles (docs/console.md): a ``director`` sees one kindergarten (scope = its name), a ``district``
official every kindergarten of one district (scope = the district, see :mod:`register.kindergartens`),
an ``auditor`` everything, read-only (no scope). Passwords are stored only as Argon2id hashes.

Throttling (:func:`throttled`) is stored in ``login_throttle`` (it survives restarts) per subject: the
pair ``user:<name>@<address>`` and the address ``addr:<address>`` (an IPv6 address counts as its /64).
``max_failures`` failures of a pair, or ``address_max_failures`` of an address, lock that subject for
``lockout_s``, and every further failure doubles the lock (up to ``max_lockout_s``); failures are
forgotten after ``forget_s`` without one. Nothing counts per user alone, so an attacker elsewhere can
never lock a user out of an address that has not failed. An attempt is charged as a failure in the same
transaction that checks the locks, before the password is checked, and refunded when it succeeds: N
concurrent guesses check the password at most ``max_failures`` times.
"""

from __future__ import annotations

import ipaddress
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
    """Failures allowed per (user, address) and per address before a lock, and how long locks last.

    The first lock lasts ``lockout_s``; each failure after it (one attempt is let through when a lock
    ends) doubles it, up to ``max_lockout_s``. Failures are forgotten ``forget_s`` after the last one.
    """

    max_failures: int = 5
    address_max_failures: int = 20
    lockout_s: int = 60
    max_lockout_s: int = 24 * 3600
    forget_s: int = 24 * 3600

    def lock_s(self, failures: int, limit: int) -> int:
        """How long ``failures`` failures of a subject allowed ``limit`` lock it (0: not locked)."""
        if failures < limit:
            return 0
        return int(min(self.max_lockout_s, self.lockout_s * 2 ** min(failures - limit, 40)))


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


def address_key(address: str) -> str:
    """The throttling key of a client address: itself, an IPv6 address's /64, an IPv4-mapped one as IPv4."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _charge(sql: Sql, subjects: list[tuple[str, int]], now_ms: int, policy: LoginPolicy) -> int:
    """Seconds to wait if a subject is locked (nothing charged); else 0, this attempt counted as a failure.

    Each subject's row is created if missing and then locked by a no-op UPDATE (PostgreSQL row lock;
    SQLite's BEGIN IMMEDIATE already serialises writers), always in the given order, so concurrent
    attempts queue here and each sees the previous one's charge.
    """
    rows: list[tuple[int, int, int]] = []
    for subject, _ in subjects:
        sql.run(
            "INSERT INTO login_throttle (subject, failures, last_ms, locked_until_ms) VALUES (?, 0, ?, 0) "
            "ON CONFLICT (subject) DO NOTHING",
            (subject, now_ms),
        )
        row = sql.one(
            "UPDATE login_throttle SET failures = failures WHERE subject = ? "
            "RETURNING failures, last_ms, locked_until_ms",
            (subject,),
        )
        rows.append((int(row[0]), int(row[1]), int(row[2])))
    locked = max(until for _, _, until in rows)
    if locked > now_ms:
        return max(1, (locked - now_ms + 999) // 1000)
    for (subject, limit), (before, last_ms, _) in zip(subjects, rows, strict=True):
        forgotten = last_ms <= now_ms - policy.forget_s * 1000  # a quiet day: old failures are forgotten
        failures = (0 if forgotten else before) + 1
        lock = policy.lock_s(failures, limit)
        sql.run(
            "UPDATE login_throttle SET failures = ?, last_ms = ?, locked_until_ms = ? WHERE subject = ?",
            (failures, now_ms, now_ms + lock * 1000 if lock else 0, subject),
        )
    return 0


def _refund(sql: Sql, subjects: list[tuple[str, int]], *, owner: bool) -> None:
    """A successful attempt: with ``owner`` the first subject (the owner's pair) is cleared; the others
    get this attempt's charge back (and a lock it set, if the count falls below the limit again)."""
    if owner:
        sql.run("DELETE FROM login_throttle WHERE subject = ?", (subjects[0][0],))
    for subject, limit in subjects[1:] if owner else subjects:
        sql.run(
            "UPDATE login_throttle SET failures = failures - 1, locked_until_ms = CASE WHEN failures - 1 < ? "
            "THEN 0 ELSE locked_until_ms END WHERE subject = ? AND failures > 0",
            (limit, subject),
        )


def throttled(
    store: Store,
    subjects: list[tuple[str, int]],
    check: Callable[[], bool],
    *,
    what: str,
    actor: str,
    now_ms: int,
    address: str | None,
    policy: LoginPolicy,
    owner: bool = True,
) -> None:
    """Refuse while any subject is locked, else charge a failure to each and run ``check``.

    ``subjects`` are ``(subject, failures allowed)``; with ``owner`` the first one is the credential's
    owner at this address (cleared on success), the others (all of them without ``owner``) get the
    charge back on success. The lock check and the charge are one write transaction, and ``check`` (the
    slow password check, no transaction held) runs only after it committed: concurrent attempts cannot
    pass the limit. Every attempt goes into the audit trail under ``actor``.
    """
    with store._tx(write=True) as sql:
        wait = _charge(sql, subjects, now_ms, policy)
        if wait:
            _audit(sql, actor, f"{what} refused", "locked out", address=address, now_ms=now_ms)
    if wait:
        raise LockedOut(f"too many failed attempts: try again in {wait} s", retry_after=wait)
    ok = check()
    with store._tx(write=True) as sql:
        if ok:
            _refund(sql, subjects, owner=owner)
        _audit(sql, actor, what if ok else f"{what} failed", "", address=address, now_ms=now_ms)
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
    """The user ``name`` if ``password`` is theirs and neither they at ``address`` nor ``address`` is locked.

    Raises :class:`LockedOut` (with ``retry_after``) or :class:`BadCredentials` (unknown user, wrong
    password, disabled user: one message). Every attempt is in the audit trail.
    """
    found: list[User] = []
    if not _NAME.fullmatch(name) or not password:  # no user can match: nothing to check or write
        raise BadCredentials("wrong name, password or code")

    def check() -> bool:
        with store._tx(write=False) as sql:
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

    where = address_key(address)
    subjects = [
        (f"user:{name[:64]}@{where}", policy.max_failures),
        (f"addr:{where}", policy.address_max_failures),
    ]
    throttled(
        store, subjects, check, what="login", actor=f"user:{name[:64]}", now_ms=now_ms, address=address,
        policy=policy,
    )  # fmt: skip
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
