"""Per-child parent access codes: printed once for the parent, stored only as a SHA-256 hash.

A code is 16 characters of Crockford base32 (80 random bits) in four groups, ``K7Q2-…``. With that much
entropy a fast hash is enough (a guess costs the same as guessing a random 80-bit key) and lets the
register find the code by its hash. Guessing is throttled per client address (an IPv6 address's /64)
with the console's exponential locks (:func:`register.users.throttled`), allowing
``address_max_failures`` wrong codes before the first lock: a carrier-NAT address shared by many
parents takes as many wrong codes as an address guessing users, and a correct code only refunds its
own charge (it never wipes the address's count). Text that cannot be a code (not 16 Crockford
characters) is refused before anything is counted or written.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from register.errors import BadCredentials, UnknownPerson
from register.store.base import Store
from register.users import DEFAULT_POLICY, LoginPolicy, address_key, record, throttled

_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_GROUPS: Final = 4
_GROUP_LEN: Final = 4


@dataclass(frozen=True)
class ParentAccess:
    """What a valid code opens: one child of one kindergarten."""

    kindergarten: str
    child: str


def normalise(code: str) -> str:
    """Upper case, separators dropped, the letters Crockford reads as digits mapped (O→0, I/L→1)."""
    text = code.strip().upper().replace("-", "").replace(" ", "")
    return text.translate(str.maketrans("OIL", "011"))


def code_hash(code: str) -> str:
    return hashlib.sha256(b"kgate parent code\n" + normalise(code).encode()).hexdigest()


def create_parent_code(
    store: Store, kindergarten: str, child: str, *, now_ms: int, actor: str = "cli"
) -> str:
    """A new code for ``child`` (who must be on ``kindergarten``'s roster); returned once, never stored."""
    with store._tx(write=False) as sql:
        if (
            sql.one("SELECT 1 FROM roster_children WHERE kindergarten = ? AND id = ?", (kindergarten, child))
            is None
        ):
            raise UnknownPerson(f"no child {child!r} in the roster of {kindergarten}")
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LEN))
    code = "-".join(raw[i : i + _GROUP_LEN] for i in range(0, len(raw), _GROUP_LEN))
    with store._tx(write=True) as sql:
        sql.run(
            "INSERT INTO parent_codes (code_hash, kindergarten, child, created_ms) VALUES (?, ?, ?, ?)",
            (code_hash(code), kindergarten, child, now_ms),
        )
    record(store, actor, "parent-code create", f"{kindergarten}/{child}", now_ms=now_ms)
    return code


def revoke_parent_codes(
    store: Store, kindergarten: str, child: str, *, now_ms: int, actor: str = "cli"
) -> int:
    """Revoke every code of ``child``; returns how many were live."""
    with store._tx(write=True) as sql:
        n = sql.one(
            "SELECT count(*) FROM parent_codes WHERE kindergarten = ? AND child = ? AND NOT revoked",
            (kindergarten, child),
        )[0]
        sql.run(
            "UPDATE parent_codes SET revoked = TRUE WHERE kindergarten = ? AND child = ?",
            (kindergarten, child),
        )
    record(store, actor, "parent-code revoke", f"{kindergarten}/{child}", now_ms=now_ms)
    return int(n)


def verify_parent_code(
    store: Store,
    code: str,
    *,
    address: str,
    now_ms: int,
    policy: LoginPolicy = DEFAULT_POLICY,
    known: tuple[str, str] | None = None,
) -> ParentAccess:
    """The child a live ``code`` opens; BadCredentials or LockedOut otherwise.

    Throttled per client address, or — when the browser shows that a code of ``known`` (kindergarten,
    child) was entered on it before (the console's signed ``kgate_parent`` cookie) — per that child at
    this address, so a parent who used the console before is not locked out by others behind the same
    carrier-NAT address. A correct code only refunds its own charge in both cases.
    """
    found: list[ParentAccess] = []
    typed = normalise(code[:64])
    if len(typed) != _GROUPS * _GROUP_LEN or any(c not in _ALPHABET for c in typed):
        raise BadCredentials("wrong name, password or code")  # cannot be a code: nothing counted
    digest = code_hash(typed)

    def check() -> bool:
        with store._tx(write=False) as sql:
            row = sql.one(
                "SELECT kindergarten, child FROM parent_codes WHERE code_hash = ? AND NOT revoked", (digest,)
            )
        if row is not None:
            found.append(ParentAccess(str(row[0]), str(row[1])))
        return row is not None

    where = address_key(address)
    if known is None:
        subject = (f"code-addr:{where}", policy.address_max_failures)
    else:
        subject = (f"code:{known[0][:100]}/{known[1][:100]}@{where}", policy.max_failures)
    throttled(
        store,
        [subject],
        check,
        what="parent code",
        actor=f"code-addr:{address}",
        now_ms=now_ms,
        address=address,
        policy=policy,
        owner=False,
    )
    return found[0]
