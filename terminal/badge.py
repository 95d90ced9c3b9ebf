"""The badge payload: what a child's QR badge encodes, and the strict parser the gate runs on every scan.

Format v1 (20 characters, all in the QR *alphanumeric* set so the symbol fits version 1-M, 21x21
modules): ``KG`` + version digit ``1`` + 16-character serial (80 random bits, RFC 4648 base32 without
padding) + one check character (Luhn mod 32 over the serial). See ``docs/badges.md`` for the reasons.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from terminal.errors import (
    BadgeCheckFailed,
    MalformedBadge,
    OversizedBadge,
    UnsupportedBadgeVersion,
)

if TYPE_CHECKING:
    import segno

#: Refuse anything longer than this before looking at a single byte (a QR code can carry 2,953).
MAX_PAYLOAD_BYTES = 64
#: Magic prefix of every kgate badge; the character after it is the format version.
PREFIX = "KG"
VERSION = 1
SERIAL_BITS = 80
SERIAL_CHARS = SERIAL_BITS // 5
PAYLOAD_CHARS = len(PREFIX) + 1 + SERIAL_CHARS + 1

#: RFC 4648 base32: no 0, 1, 8 or 9, so O/0, I/1 and B/8 cannot be confused on a printed card.
SERIAL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SERIAL_INDEX = {ord(c): i for i, c in enumerate(SERIAL_ALPHABET)}
#: The QR alphanumeric-mode character set (ISO/IEC 18004 table 5).
QR_ALPHANUMERIC = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


@dataclass(frozen=True)
class BadgePayload:
    """A parsed, checked badge: the format version and the serial the roster knows the child by."""

    version: int
    serial: str

    @property
    def text(self) -> str:
        """The exact characters printed into the QR symbol."""
        return encode_badge(self.serial)

    @property
    def serial_bytes(self) -> bytes:
        """The 10 random bytes behind the serial."""
        return base64.b32decode(self.serial)


def new_serial() -> str:
    """A fresh, unguessable badge serial: 80 bits from :mod:`secrets`, base32 without padding."""
    return serial_from_bytes(secrets.token_bytes(SERIAL_BITS // 8))


def serial_from_bytes(raw: bytes) -> str:
    """The serial for 10 given bytes (tests and synthetic photos; real badges use :func:`new_serial`)."""
    if len(raw) != SERIAL_BITS // 8:
        raise MalformedBadge(f"a serial is made of {SERIAL_BITS // 8} bytes, got {len(raw)}")
    return base64.b32encode(raw).decode("ascii")


def check_char(serial: str) -> str:
    """Luhn mod 32 check character: catches every single-character error and adjacent swaps."""
    total = 0
    factor = 2
    for char in reversed(serial):
        addend = factor * SERIAL_ALPHABET.index(char)
        total += addend // 32 + addend % 32
        factor = 3 - factor
    return SERIAL_ALPHABET[(32 - total % 32) % 32]


def encode_badge(serial: str) -> str:
    """The QR payload for a serial, e.g. ``KG1MFRGGZDFMZTWQ2LKX``."""
    if len(serial) != SERIAL_CHARS:
        raise MalformedBadge(f"a serial has {SERIAL_CHARS} characters, got {len(serial)}")
    _check_serial_chars(serial.encode("ascii", "replace"))
    return f"{PREFIX}{VERSION}{serial}{check_char(serial)}"


def parse_badge(data: bytes) -> BadgePayload:
    """Parse the exact bytes of a scanned QR code, refusing anything that is not a valid v1 badge.

    Raises only :class:`~terminal.errors.BadgeError` subclasses. Messages never echo the payload,
    which may be hostile.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedBadge("a badge payload is bytes")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise OversizedBadge(f"badge payload of {len(data)} bytes (at most {MAX_PAYLOAD_BYTES})")
    raw = bytes(data)
    if not raw:
        raise MalformedBadge("empty badge payload")
    if any(b not in QR_ALPHANUMERIC for b in raw):
        raise MalformedBadge(
            "badge payload has characters outside A-Z 0-9 (lowercase, control, non-ASCII or symbols)"
        )
    if not raw.startswith(PREFIX.encode()) or len(raw) < len(PREFIX) + 1:
        raise MalformedBadge("not a kgate badge (no KG prefix)")
    version_char = raw[len(PREFIX)]
    if version_char != ord(str(VERSION)):
        raise UnsupportedBadgeVersion(f"badge format version {chr(version_char)!r} is not supported")
    if len(raw) != PAYLOAD_CHARS:
        raise MalformedBadge(f"a v1 badge has {PAYLOAD_CHARS} characters, this one {len(raw)}")
    body = raw[len(PREFIX) + 1 :]
    _check_serial_chars(body)
    serial = body[:SERIAL_CHARS].decode("ascii")
    if check_char(serial) != chr(body[SERIAL_CHARS]):
        raise BadgeCheckFailed("badge check character does not match: misread or forged")
    return BadgePayload(version=VERSION, serial=serial)


def badge_qr(serial: str) -> segno.QRCode:
    """The QR symbol for a badge: alphanumeric mode, error level M, version 1 (needs ``segno``)."""
    import segno  # noqa: PLC0415 - only badge printing needs it, not the gate

    qr = segno.make_qr(encode_badge(serial), mode="alphanumeric", error="m", boost_error=False)
    if qr.version != 1:  # pragma: no cover - guarded by PAYLOAD_CHARS
        raise MalformedBadge(f"badge payload needs QR version {qr.version}, expected 1")
    return qr


def _check_serial_chars(body: bytes) -> None:
    if any(b not in _SERIAL_INDEX for b in body):
        raise MalformedBadge("badge serial has characters outside base32 A-Z 2-7 (confusable 0/1/8/9?)")
