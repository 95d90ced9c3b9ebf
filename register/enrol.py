"""Device enrolment with one-time tokens, and revocation: the register decides which devices count.

A token (160 random bits from :mod:`secrets`; only its SHA-256 is stored) names the kindergarten and gate
it enrols, expires, and is used once. The device asks for a challenge with the token; the register
answers with a fresh challenge and the origin it assigns; the device makes (or loads) its key named with
that origin and signs :func:`ledger.enrolment.proof_message` (token hash + challenge + vkey + origin,
domain-separated); the register checks the signature and stores the device — all in one transaction,
so a refusal stores nothing. The same key enrolling again gets the same identity back (a no-op).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ledger.enrolment import TOKEN_PREFIX, proof_message
from ledger.errors import BadKeyError
from ledger.httpsig import keyid_of
from ledger.note import Ed25519Verifier
from register.errors import BadToken, ConfigError, DuplicateDevice, EnrolmentRefused, UnknownDevice
from register.origins import MIDDLE, assign_device_id
from register.store import Store
from register.store.base import Device
from register.store.enrolment import (
    Revocation,
    Token,
    check_place,
    device_where,
    get_token,
    insert_device,
    put_challenge,
    put_token,
    revocations,
    revoke_device,
    take_challenge,
    taken_device_ids,
    use_token,
)

TOKEN_BYTES: Final = 20  # 160 bits
CHALLENGE_TTL_MS: Final = 5 * 60 * 1000
MAX_TOKEN_TTL_S: Final = 30 * 86400
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``30m``, ``24h`` or ``7d``."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"--expires {text!r}: expected a number and s, m, h or d (e.g. 24h)")
    seconds = int(match[1]) * _UNITS[match[2]]
    if seconds > MAX_TOKEN_TTL_S:
        raise ConfigError(f"--expires {text!r}: at most {MAX_TOKEN_TTL_S // 86400} days")
    return seconds


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What an enrolled device learns: its origin and place, and the register it reports to."""

    origin: str
    kindergarten: str
    gate: str
    register_name: str
    cosigner_vkey: str
    replaced: str | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Enrolment:
    """Tokens, challenges, enrolment and revocation over ``store`` for the register named ``name``."""

    def __init__(
        self,
        store: Store,
        name: str = "",
        cosigner_vkey: str = "",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``name`` and ``cosigner_vkey`` are needed only to serve :meth:`challenge` and :meth:`enrol`."""
        self.store = store
        self.name = name
        self.cosigner_vkey = cosigner_vkey
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def create_token(
        self, kindergarten: str, gate: str, *, expires_s: int = 86400, replaces: str | None = None
    ) -> str:
        """A new one-time token for (kindergarten, gate); printed once, only its hash is kept."""
        check_place(kindergarten, gate)
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        now = self._now_ms()
        with self.store._tx(write=True) as sql:
            if replaces is not None:
                old = device_where(sql, "origin", replaces)
                if old is None:
                    raise UnknownDevice(f"--replaces {replaces!r}: no enrolled device has this origin")
                if old.disabled:
                    raise ConfigError(f"--replaces {replaces}: that device is already revoked")
            put_token(
                sql,
                Token(token_hash(token), kindergarten, gate, replaces, now + expires_s * 1000, None, None),
                now,
            )
        return token

    def challenge(self, token: str, vkey: str | None) -> dict[str, Any]:
        """A fresh challenge and the origin the register will assign (the key's own, if enrolled)."""
        now = self._now_ms()
        digest = token_hash(token)
        with self.store._tx(write=True) as sql:
            tok = self._token(sql, digest)
            known = self._known_key_device(sql, vkey)
            if known is None or (tok.used_ms is not None and known.id != tok.device_id):
                self._usable(tok, now)  # a used token gets no new challenge, but for the key it enrolled
            origin = None if known is None else known.origin
            if origin is None:
                prefix = self.name + MIDDLE
                origin = prefix + assign_device_id(
                    tok.kindergarten, tok.gate, taken_device_ids(sql, self.name)
                )
            challenge = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            put_challenge(sql, challenge, digest, origin, expires_ms=now + CHALLENGE_TTL_MS, now_ms=now)
        return {
            "challenge": challenge,
            "origin": origin,
            "register_name": self.name,
            "expires_ms": now + CHALLENGE_TTL_MS,
        }

    def enrol(self, token: str, challenge: str, vkey: str, signature: str) -> Identity:
        """Check the proof of possession and store the device (or return its identity if enrolled)."""
        now = self._now_ms()
        digest = token_hash(token)
        try:
            with self.store._tx(write=True) as sql:
                tok = self._token(sql, digest)
                origin = take_challenge(sql, challenge, digest, now)
                if origin is None:
                    raise EnrolmentRefused("unknown or expired challenge: ask for a new one")
                verifier = _verifier(vkey)
                if verifier.name != origin:
                    raise EnrolmentRefused(
                        f"the key is named {verifier.name!r}, but the register assigned {origin!r}"
                    )
                try:
                    sig = base64.b64decode(signature, validate=True)
                except (binascii.Error, ValueError):
                    raise EnrolmentRefused("signature is not base64") from None
                if not verifier.verify(
                    proof_message(self.name, origin, digest, challenge, verifier.vkey), sig
                ):
                    raise EnrolmentRefused(
                        "the signature does not prove possession of the key; nothing stored"
                    )
                known = device_where(sql, "keyid", keyid_of(verifier.name, verifier.key_hash))
                if known is not None and not known.disabled:
                    return self._identity(known.origin, known.kindergarten, known.gate, None)
                self._usable(tok, now)
                old = None
                if tok.replaces is not None:
                    old = revoke_device(
                        sql, tok.replaces, reason=f"replaced by {origin}", by="enrolment", now_ms=now
                    )
                device = insert_device(
                    sql, verifier, kindergarten=tok.kindergarten, gate=tok.gate, now_ms=now, prefix=self.name
                )
                if old is not None:
                    sql.run("UPDATE revocations SET replaced_by = ? WHERE device_id = ?", (device.id, old.id))
                if not use_token(sql, digest, device.id, now):
                    raise EnrolmentRefused("enrolment token already used")
                return self._identity(device.origin, device.kindergarten, device.gate, tok.replaces)
        except (ConfigError, UnknownDevice) as exc:
            raise EnrolmentRefused(f"refused: {exc}") from None
        except self.store.integrity_errors:
            raise EnrolmentRefused(f"refused: {origin} or its gate was enrolled meanwhile; retry") from None
        except DuplicateDevice as exc:
            raise EnrolmentRefused(f"refused: {exc}") from None

    def revoke(self, origin: str, *, reason: str, by: str) -> None:
        """Revoke a device: its pushes get 403 from now on; its stored log stays and still verifies."""
        with self.store._tx(write=True) as sql:
            revoke_device(sql, origin, reason=reason, by=by, now_ms=self._now_ms())

    def device_with_key(self, vkey: str) -> Device | None:
        """The enrolled device (live or revoked) whose stored key is exactly ``vkey``, or None."""
        verifier = _verifier(vkey)
        with self.store._tx(write=False) as sql:
            device = device_where(sql, "keyid", keyid_of(verifier.name, verifier.key_hash))
        return device if device is not None and device.vkey == verifier.vkey else None

    def revoke_key(self, vkey: str, *, reason: str, by: str) -> Device:
        """Revoke the device whose stored key is ``vkey`` (the one that proved it holds that key)."""
        verifier = _verifier(vkey)
        with self.store._tx(write=True) as sql:
            device = device_where(sql, "keyid", keyid_of(verifier.name, verifier.key_hash))
            if device is None or device.vkey != verifier.vkey:
                raise UnknownDevice(f"no enrolled device has the key {verifier.name}+{verifier.key_hash:08x}")
            return revoke_device(sql, device.origin, reason=reason, by=by, now_ms=self._now_ms())

    def revocations(self) -> list[Revocation]:
        with self.store._tx(write=False) as sql:
            return revocations(sql)

    def _identity(self, origin: str, kindergarten: str, gate: str, replaced: str | None) -> Identity:
        return Identity(origin, kindergarten, gate, self.name, self.cosigner_vkey, replaced)

    @staticmethod
    def _token(sql: Any, digest: str) -> Token:
        tok = get_token(sql, digest)
        if tok is None:
            raise BadToken("unknown enrolment token (mistyped, or made by another register)")
        return tok

    @staticmethod
    def _usable(tok: Token, now_ms: int) -> None:
        if tok.used_ms is not None:
            raise EnrolmentRefused("enrolment token already used; ask the register for a new one")
        if now_ms > tok.expires_ms:
            raise EnrolmentRefused("enrolment token expired; ask the register for a new one")

    @staticmethod
    def _known_key_device(sql: Any, vkey: str | None) -> Device | None:
        """The enrolled, live device with this key (re-enrolment), else None."""
        if vkey is None:
            return None
        verifier = _verifier(vkey)
        device = device_where(sql, "keyid", keyid_of(verifier.name, verifier.key_hash))
        if device is None:
            return None
        if device.disabled:
            raise EnrolmentRefused(f"this key belongs to the revoked device {device.origin}; make a new key")
        return device


def _verifier(vkey: str) -> Ed25519Verifier:
    try:
        return Ed25519Verifier.from_vkey(vkey)
    except BadKeyError as exc:
        raise EnrolmentRefused(f"vkey is not an Ed25519 note verifier key: {exc}") from None
