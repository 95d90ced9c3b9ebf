"""Signed notes (c2sp.org/signed-note@v1.0.0) with Ed25519 and cosignature/v1 keys.

A note is UTF-8 text ending in a newline, a blank line, then one or more lines
``— <key name> base64(key hash || signature)``. Parsing is strict; notes larger than
``MAX_NOTE_SIZE`` bytes or with more than ``MAX_SIGNATURES`` lines are refused before any
cryptography runs, so hostile inputs cost little.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import (
    BadKeyError,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    UnverifiedNoteError,
)

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04

MAX_NOTE_SIZE = 1 << 20  # bytes of UTF-8, text and signatures together
MAX_SIGNATURES = 100  # the Go reference's limit; the spec requires accepting at least 16

_SIG_PREFIX = "— "  # em dash U+2014, space
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")  # ASCII controls other than newline
_HASH_HEX = re.compile("[0-9a-fA-F]{8}")
_SPACE = re.compile(r"\s")  # str patterns: exactly the characters str.isspace() accepts (Py_UNICODE_ISSPACE)
Clock = Callable[[], int]  # returns POSIX seconds; injectable for tests
_COSIG_TIME_MAX = 1 << 63  # tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1

# Ed25519 curve constants, used to refuse weak public keys that OpenSSL accepts.
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_Y_ORDER8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
_SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y_ORDER8, _P - _Y_ORDER8})  # y of all points of order 1, 2, 4, 8


def key_hash(name: str, key: bytes) -> int:
    """The signed-note key ID: first four bytes of SHA-256(name || "\\n" || alg || public key), big-endian."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + key).digest()[:4], "big")


@dataclass(frozen=True)
class Signature:
    """One signature line; ``sig`` excludes the 4-byte key hash."""

    name: str
    key_hash: int
    sig: bytes


@dataclass(frozen=True)
class Note:
    """An opened note: its text, every signature line, and which of them verified or were unknown."""

    text: str
    sigs: tuple[Signature, ...]
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


class Verifier(Protocol):
    """Checks signatures by one key, identified by (name, key_hash)."""

    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> int: ...
    def verify(self, msg: bytes, sig: bytes) -> bool: ...


class Signer(Protocol):
    """Signs note text with one key, identified by (name, key_hash)."""

    @property
    def name(self) -> str: ...
    @property
    def key_hash(self) -> int: ...
    def sign(self, msg: bytes) -> bytes: ...


def _valid_name(name: str) -> bool:
    """Key names are non-empty UTF-8 with no Unicode spaces, no '+' and no control characters."""
    if not name or "+" in name or _CONTROL.search(name) or _SPACE.search(name):
        return False
    try:
        name.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _b64decode(text: str) -> bytes | None:
    """Strict standard base64 (padding required, no stray bits), so each value has one encoding."""
    if not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _check_public_key(pub: bytes) -> None:
    """Refuse non-canonical, off-curve and small-order Ed25519 keys (OpenSSL accepts them)."""
    if len(pub) != 32:
        raise BadKeyError(f"Ed25519 public key must be 32 bytes, got {len(pub)}")
    y = int.from_bytes(pub, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise BadKeyError("non-canonical Ed25519 public key")
    if y in _SMALL_ORDER_Y:
        raise BadKeyError("small-order Ed25519 public key")
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    if pow(x2, (_P - 1) // 2, _P) != 1:
        raise BadKeyError("Ed25519 public key is not a point on the curve")


def _ed25519_verify(key: Ed25519PublicKey, msg: bytes, sig: bytes) -> bool:
    """Strict RFC 8032 verification: 64 bytes and canonical S < L, then OpenSSL."""
    if len(sig) != 64 or int.from_bytes(sig[32:], "little") >= _L:
        return False
    try:
        key.verify(sig, msg)
    except InvalidSignature:
        return False
    return True


def _split_key(text: str, what: str) -> tuple[str, int, bytes]:
    """Split ``name+hash+base64`` and check the syntax of each part (the hash is checked by callers)."""
    name, _, rest = text.partition("+")
    hash16, _, key64 = rest.partition("+")
    if not _valid_name(name):
        raise BadKeyError(f"{what}: bad key name")
    if not _HASH_HEX.fullmatch(hash16):
        raise BadKeyError(f"{what}: key hash must be 8 hex digits")
    key = _b64decode(key64)
    if not key:
        raise BadKeyError(f"{what}: key is not valid base64")
    return name, int(hash16, 16), key


def _parse_vkey(vkey: str, alg: int) -> tuple[str, bytes]:
    """Parse ``name+hash+base64(alg||pub)`` into (name, 32-byte public key)."""
    name, khash, key = _split_key(vkey, "vkey")
    if khash != key_hash(name, key):
        raise BadKeyError("vkey: key hash does not match the key")
    if key[0] != alg:
        raise BadKeyError(f"vkey: algorithm 0x{key[0]:02x}, expected 0x{alg:02x}")
    if len(key) != 33:
        raise BadKeyError(f"vkey: public key must be 32 bytes, got {len(key) - 1}")
    return name, key[1:]


def _parse_skey(skey: str, alg: int) -> tuple[str, Ed25519PrivateKey]:
    """Parse ``PRIVATE+KEY+name+hash+base64(alg||seed)``; the hash is checked against the public key."""
    if not skey.startswith("PRIVATE+KEY+"):
        raise BadKeyError("skey: missing PRIVATE+KEY+ prefix")
    name, khash, key = _split_key(skey.removeprefix("PRIVATE+KEY+"), "skey")
    if key[0] != alg:
        raise BadKeyError(f"skey: algorithm 0x{key[0]:02x}, expected 0x{alg:02x}")
    if len(key) != 33:
        raise BadKeyError(f"skey: seed must be 32 bytes, got {len(key) - 1}")
    private = Ed25519PrivateKey.from_private_bytes(key[1:])
    if khash != key_hash(name, bytes([alg]) + private.public_key().public_bytes_raw()):
        raise BadKeyError("skey: key hash does not match the key")
    return name, private


class _VerifierBase:
    """An Ed25519 public key with a name, for one signature type (``_ALG``)."""

    _ALG = ALG_ED25519
    __slots__ = ("_key", "_key_hash", "_name", "_pub")

    def __init__(self, name: str, public_key: bytes) -> None:
        if not _valid_name(name):
            raise BadKeyError(f"bad key name {name!r}")
        _check_public_key(public_key)
        self._name = name
        self._pub = public_key
        self._key = Ed25519PublicKey.from_public_bytes(public_key)
        self._key_hash = key_hash(name, bytes([self._ALG]) + public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """Build from a ``name+hash+base64`` verifier key; BadKeyError on any defect."""
        return cls(*_parse_vkey(vkey, cls._ALG))

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> int:
        return self._key_hash

    @property
    def vkey(self) -> str:
        """The verifier key in note form, ``name+hash+base64(alg||pub)``."""
        return f"{self._name}+{self._key_hash:08x}+{_b64(bytes([self._ALG]) + self._pub)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.vkey!r})"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """True if ``sig`` is this key's signature on ``msg``; the subclass defines the message."""
        raise NotImplementedError


class _SignerBase:
    """An Ed25519 private key with a name; never shows the key in repr."""

    _ALG = ALG_ED25519
    __slots__ = ("_key", "_key_hash", "_name", "_pub")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise BadKeyError(f"bad key name {name!r}")
        self._name = name
        self._key = private_key
        self._pub = private_key.public_key().public_bytes_raw()
        self._key_hash = key_hash(name, bytes([self._ALG]) + self._pub)

    @classmethod
    def generate(cls, name: str) -> Self:
        """A fresh random key named ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Self:
        """Load a ``PRIVATE+KEY+name+hash+base64`` signer key; BadKeyError on any defect."""
        return cls(*_parse_skey(skey, cls._ALG))

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_hash(self) -> int:
        return self._key_hash

    @property
    def skey(self) -> str:
        """The private signer key in note form; keep it secret."""
        seed = self._key.private_bytes_raw()
        return f"PRIVATE+KEY+{self._name}+{self._key_hash:08x}+{_b64(bytes([self._ALG]) + seed)}"

    @property
    def vkey(self) -> str:
        """The matching public verifier key."""
        return f"{self._name}+{self._key_hash:08x}+{_b64(bytes([self._ALG]) + self._pub)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, key_hash={self._key_hash:08x})"

    def sign(self, msg: bytes) -> bytes:
        """This key's signature on ``msg`` (without the key hash); the subclass defines the message."""
        raise NotImplementedError


class Ed25519Verifier(_VerifierBase):
    """Verifies plain Ed25519 note signatures (type 0x01)."""

    __slots__ = ()

    def verify(self, msg: bytes, sig: bytes) -> bool:
        return _ed25519_verify(self._key, msg, sig)


class Ed25519Signer(_SignerBase):
    """Makes plain Ed25519 note signatures (type 0x01)."""

    __slots__ = ()

    def sign(self, msg: bytes) -> bytes:
        return self._key.sign(msg)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._pub)


def _cosigned_message(timestamp: int, body: bytes) -> bytes:
    """The tlog-cosignature Ed25519 signed message: header, time line, then the checkpoint body."""
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def cosignature_timestamp(sig: bytes) -> int:
    """The POSIX time inside a cosignature/v1 signature (``Signature.sig``, key hash excluded)."""
    if len(sig) != 72:
        raise MalformedNoteError(f"cosignature/v1 signature must be 72 bytes, got {len(sig)}")
    timestamp = int.from_bytes(sig[:8], "big")
    if timestamp >= _COSIG_TIME_MAX:
        raise MalformedNoteError("cosignature/v1 timestamp exceeds 2^63 - 1")
    return timestamp


class CosignatureVerifier(_VerifierBase):
    """Verifies timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature, type 0x04).

    Future timestamps are not refused here; apply that policy with ``cosignature_timestamp``.
    """

    _ALG = ALG_COSIGNATURE_V1
    __slots__ = ()

    def verify(self, msg: bytes, sig: bytes) -> bool:
        try:
            timestamp = cosignature_timestamp(sig)
        except NoteError:
            return False
        return _ed25519_verify(self._key, _cosigned_message(timestamp, msg), sig[8:])


def _unix_now() -> int:
    return int(time.time())


class CosignatureSigner(_SignerBase):
    """Makes timestamped Ed25519 cosignatures (type 0x04); ``clock`` returns POSIX seconds."""

    _ALG = ALG_COSIGNATURE_V1
    __slots__ = ("_clock",)

    def __init__(self, name: str, private_key: Ed25519PrivateKey, clock: Clock = _unix_now) -> None:
        super().__init__(name, private_key)
        self._clock = clock

    @classmethod
    def generate(cls, name: str, clock: Clock = _unix_now) -> Self:
        """A fresh random cosigner key named ``name``."""
        return cls(name, Ed25519PrivateKey.generate(), clock)

    @classmethod
    def from_skey(cls, skey: str, clock: Clock = _unix_now) -> Self:
        """Load a cosigner ``PRIVATE+KEY+...`` key with algorithm byte 0x04."""
        return cls(*_parse_skey(skey, cls._ALG), clock)

    def sign(self, msg: bytes) -> bytes:
        timestamp = self._clock()
        if not 0 <= timestamp < _COSIG_TIME_MAX:
            raise NoteError(f"clock gave an impossible cosignature time {timestamp}")
        return timestamp.to_bytes(8, "big") + self._key.sign(_cosigned_message(timestamp, msg))

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._name, self._pub)


def _check_text(text: str, what: str) -> bytes:
    """Size cap, UTF-8 and control characters; returns the encoded bytes."""
    if len(text) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"{what} larger than {MAX_NOTE_SIZE} bytes")
    try:
        raw = text.encode()
    except UnicodeEncodeError:
        raise MalformedNoteError(f"{what} is not valid UTF-8") from None
    if len(raw) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"{what} larger than {MAX_NOTE_SIZE} bytes")
    if _CONTROL.search(text):
        raise MalformedNoteError(f"{what} contains a control character")
    return raw


def _parse_sig_line(line: str) -> Signature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError("signature line does not start with '— '")
    name, _, b64 = line.removeprefix(_SIG_PREFIX).partition(" ")
    if not _valid_name(name):
        raise MalformedNoteError(f"bad key name in signature line {name!r}")
    raw = _b64decode(b64)
    if raw is None or len(raw) < 5:
        raise MalformedNoteError(f"bad signature encoding for {name!r}")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def parse_note(note: str) -> tuple[str, tuple[Signature, ...]]:
    """Split a signed note into its text and signatures, refusing any deviation from the spec."""
    _check_text(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedNoteError("no signatures after the blank line")
    if not block.endswith("\n"):
        raise MalformedNoteError("missing final newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    return text, tuple(_parse_sig_line(line) for line in lines)


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        ident = (v.name, v.key_hash)
        if ident in known:
            raise BadKeyError(f"two verifiers share the key {v.name}+{v.key_hash:08x}")
        known[ident] = v
    return known


def open_note(note: str, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify a note.

    Signatures by unknown keys are kept as ``unverified`` and ignored; every signature by a known
    key must verify (InvalidSignatureError otherwise); at least one must (UnverifiedNoteError).
    """
    text, sigs = parse_note(note)
    return verify_note(text, sigs, verifiers)


def verify_note(text: str, sigs: tuple[Signature, ...], verifiers: Iterable[Verifier]) -> Note:
    """:func:`open_note` for a note :func:`parse_note` already split (a caller that looked at the
    signature lines first, e.g. to count them, does not parse the note twice)."""
    known = _index(verifiers)
    msg = text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in sigs:
        verifier = known.get((sig.name, sig.key_hash))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not verifier.verify(msg, sig.sig):
            raise InvalidSignatureError(f"invalid signature by {sig.name}+{sig.key_hash:08x}")
        if sig not in verified:
            verified.append(sig)
    if not verified:
        raise UnverifiedNoteError("no verifiable signatures")
    return Note(text, sigs, tuple(verified), tuple(unverified))


def _sig_lines(text: str, signers: tuple[Signer, ...]) -> str:
    msg = text.encode()
    lines = []
    for signer in signers:
        if not _valid_name(signer.name):
            raise BadKeyError(f"bad signer name {signer.name!r}")
        raw = signer.key_hash.to_bytes(4, "big") + signer.sign(msg)
        lines.append(f"{_SIG_PREFIX}{signer.name} {_b64(raw)}\n")
    return "".join(lines)


def _checked(note: str, count: int) -> str:
    if count > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    if len(note.encode()) > MAX_NOTE_SIZE:
        raise MalformedNoteError(f"signed note larger than {MAX_NOTE_SIZE} bytes")
    return note


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` (non-empty, ending in a newline) with each signer, in order."""
    _check_text(text, "note text")
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    if not signers:
        raise NoteError("sign_note needs at least one signer")
    return _checked(text + "\n" + _sig_lines(text, signers), len(signers))


def add_signatures(note: str, *signers: Signer, opened: Note | None = None) -> str:
    """Append signature lines (e.g. a cosignature) to a signed note, keeping the existing ones byte for byte.

    This does not verify the existing signatures: open the note first. ``opened``, the :class:`Note`
    that :func:`open_note` returned for this very ``note``, saves parsing it again.
    """
    if opened is None:
        text, sigs = parse_note(note)
    else:
        text, sigs = opened.text, opened.sigs
        if not note.startswith(text + "\n"):
            raise MalformedNoteError("the opened note is not this note")
    return _checked(note + _sig_lines(text, signers), len(sigs) + len(signers))
