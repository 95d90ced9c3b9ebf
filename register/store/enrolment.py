"""Device registry writes inside one transaction: insert (origin rules, one live device per gate),
enrolment tokens and challenges, revocations. Functions take the transaction's :class:`Sql`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.httpsig import keyid_of
from ledger.note import CosignatureVerifier, Ed25519Verifier
from register.errors import ConfigError, GateTaken, UnknownDevice
from register.origins import check_origin
from register.store.base import _DEVICE_COLS, Device, Sql, _device

META_COSIGNER = "cosigner_vkey"  # the same meta row register.service records


def register_name(sql: Sql) -> str | None:
    """The register's name (its cosigner key's name) once a register has run on this database."""
    row = sql.one("SELECT value FROM meta WHERE key = ?", (META_COSIGNER,))
    if row is None:
        return None
    return CosignatureVerifier.from_vkey(str(row[0])).name


def check_place(kindergarten: str, gate: str) -> None:
    for what, value in (("kindergarten", kindergarten), ("gate", gate)):
        if not value.strip() or len(value) > 200 or not value.isprintable():
            raise ConfigError(f"{what} must be non-empty printable text of at most 200 characters")


def live_device_at(sql: Sql, kindergarten: str, gate: str) -> Device | None:
    row = sql.one(
        f"SELECT {_DEVICE_COLS} FROM devices WHERE kindergarten = ? AND gate = ? AND NOT disabled",  # noqa: S608
        (kindergarten, gate),
    )
    return None if row is None else _device(row)


def device_where(sql: Sql, column: str, value: object) -> Device | None:
    assert column in ("id", "origin", "keyid")
    row = sql.one(f"SELECT {_DEVICE_COLS} FROM devices WHERE {column} = ?", (value,))  # noqa: S608
    return None if row is None else _device(row)


def insert_device(
    sql: Sql, verifier: Ed25519Verifier, *, kindergarten: str, gate: str, now_ms: int, prefix: str | None
) -> Device:
    """Add a device after the origin and one-live-device-per-gate rules (``prefix``: the register name)."""
    check_place(kindergarten, gate)
    check_origin(verifier.name, prefix or register_name(sql))
    live = live_device_at(sql, kindergarten, gate)
    if live is not None:
        raise GateTaken(
            f"{kindergarten} / {gate} already has the device {live.origin}: revoke it first, "
            "or enrol the new one with a token made with --replaces"
        )
    keyid = keyid_of(verifier.name, verifier.key_hash)
    sql.run(
        "INSERT INTO devices (origin, keyid, vkey, kindergarten, gate, added_ms) VALUES (?, ?, ?, ?, ?, ?)",
        (verifier.name, keyid, verifier.vkey, kindergarten, gate, now_ms),
    )
    device = device_where(sql, "keyid", keyid)
    assert device is not None
    return device


@dataclass(frozen=True)
class Revocation:
    """Who revoked a device, when and why, and the device that replaced it (if any)."""

    origin: str
    time_ms: int
    revoked_by: str
    reason: str
    replaced_by: str | None


def revoke_device(
    sql: Sql, origin: str, *, reason: str, by: str, now_ms: int, replaced_by: int | None = None
) -> Device:
    """Disable the device (its pushes get 403 from now on) and record who/when/why; its log stays."""
    device = device_where(sql, "origin", origin)
    if device is None:
        raise UnknownDevice(f"no enrolled device has the origin {origin!r}")
    if device.disabled:
        raise ConfigError(f"device {origin} is already revoked")
    if not reason.strip() or not reason.isprintable() or len(reason) > 500:
        raise ConfigError("--reason must be printable text of at most 500 characters")
    sql.run("UPDATE devices SET disabled = TRUE WHERE id = ?", (device.id,))
    sql.run(
        "INSERT INTO revocations (device_id, time_ms, revoked_by, reason, replaced_by) "
        "VALUES (?, ?, ?, ?, ?)",
        (device.id, now_ms, by, reason, replaced_by),
    )
    return device


def revocations(sql: Sql) -> list[Revocation]:
    rows = sql.all(
        "SELECT d.origin, r.time_ms, r.revoked_by, r.reason, n.origin FROM revocations r "
        "JOIN devices d ON d.id = r.device_id LEFT JOIN devices n ON n.id = r.replaced_by ORDER BY r.id"
    )
    return [Revocation(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows]


@dataclass(frozen=True)
class Token:
    """A stored enrolment token (its hash only): where it enrols, until when, and whether it was used."""

    token_hash: str
    kindergarten: str
    gate: str
    replaces: str | None
    expires_ms: int
    used_ms: int | None
    device_id: int | None


def put_token(sql: Sql, token: Token, now_ms: int) -> None:
    sql.run(
        "INSERT INTO enrol_tokens (token_hash, kindergarten, gate, replaces, created_ms, expires_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token.token_hash, token.kindergarten, token.gate, token.replaces, now_ms, token.expires_ms),
    )


def get_token(sql: Sql, token_hash: str) -> Token | None:
    row: Any = sql.one(
        "SELECT token_hash, kindergarten, gate, replaces, expires_ms, used_ms, device_id "
        "FROM enrol_tokens WHERE token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    return Token(
        row[0], row[1], row[2], row[3], int(row[4]), None if row[5] is None else int(row[5]),
        None if row[6] is None else int(row[6]),
    )  # fmt: skip


def use_token(sql: Sql, token_hash: str, device_id: int, now_ms: int) -> bool:
    """Mark the token used by ``device_id``; False if another enrolment used it first."""
    row = sql.one(
        "UPDATE enrol_tokens SET used_ms = ?, device_id = ? WHERE token_hash = ? AND used_ms IS NULL "
        "RETURNING token_hash",
        (now_ms, device_id, token_hash),
    )
    return row is not None


def put_challenge(
    sql: Sql, challenge: str, token_hash: str, origin: str, *, expires_ms: int, now_ms: int
) -> None:
    sql.run("DELETE FROM enrol_challenges WHERE expires_ms < ?", (now_ms,))
    sql.run(
        "INSERT INTO enrol_challenges (challenge, token_hash, origin, expires_ms) VALUES (?, ?, ?, ?)",
        (challenge, token_hash, origin, expires_ms),
    )


def take_challenge(sql: Sql, challenge: str, token_hash: str, now_ms: int) -> str | None:
    """The origin the challenge was issued for, deleting it (single use); None if unknown or expired."""
    row = sql.one(
        "SELECT origin, expires_ms FROM enrol_challenges WHERE challenge = ? AND token_hash = ?",
        (challenge, token_hash),
    )
    if row is None:
        return None
    sql.run("DELETE FROM enrol_challenges WHERE challenge = ?", (challenge,))
    return None if int(row[1]) < now_ms else str(row[0])


def taken_device_ids(sql: Sql, prefix: str) -> set[str]:
    """Device ids already used under ``prefix`` (revoked ones included: an origin is never reused)."""
    rows = sql.all("SELECT origin FROM devices WHERE origin LIKE ?", (prefix + "/kgate/%",))
    return {str(r[0]).rpartition("/")[2] for r in rows}
