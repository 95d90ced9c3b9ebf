"""HTTP Message Signatures (RFC 9421) with Ed25519, as kgate's devices and register use them.

Covered components: ``"@method" "@path" "@authority"`` and, when there is a body, ``"content-digest"``
(RFC 9530, ``sha-256``, over the body bytes as sent, i.e. after any Content-Encoding). Parameters:
``created``, ``expires`` (at most ``created + 300``), ``nonce`` (128 random bits, base64), ``alg="ed25519"``
and ``keyid`` = the signer's note key name + ``+`` + 8-hex key hash. One signature per request, label
``sig1``. The verifier accepts only the canonical serialisation it would produce itself, so there is
exactly one signature base per request; replays are caught by :class:`ReplayCache`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger.errors import LedgerError
from ledger.note import Ed25519Signer, Ed25519Verifier

__all__ = [
    "MAX_LIFETIME",
    "NonceBudgetExceeded",
    "ReplayCache",
    "SignatureRejected",
    "SignedHeaders",
    "UnknownKeyId",
    "check_body",
    "content_digest",
    "keyid_of",
    "sign_request",
    "verify_headers",
    "verify_request",
]

LABEL = "sig1"
MAX_LIFETIME = 300  # seconds between created and expires, and the default clock skew allowed
_COMPONENTS = ('"@method"', '"@path"', '"@authority"')
_DIGEST_COMPONENT = '"content-digest"'
_DEFAULT_PORTS = {"http": 80, "https": 443}
_INPUT = re.compile(
    r"sig1=\((?P<components>[^()]*)\);created=(?P<created>[0-9]{1,15});expires=(?P<expires>[0-9]{1,15});"
    r'nonce="(?P<nonce>[A-Za-z0-9+/=]{1,64})";alg="ed25519";keyid="(?P<keyid>[^"\\\x00-\x1f\x7f]{1,300})"'
)
_SIGNATURE = re.compile(r"sig1=:(?P<sig>[A-Za-z0-9+/=]{1,200}):")
_DIGEST = re.compile(r"sha-256=:(?P<digest>[A-Za-z0-9+/=]{44}):")


class SignatureRejected(LedgerError, PermissionError):
    """A request signature is missing, malformed, expired, replayed or wrong; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownKeyId(SignatureRejected):
    """The request is well formed but signed by a key the verifier does not know (or has disabled)."""


def keyid_of(name: str, key_hash: int) -> str:
    """The keyid for a note key: ``name+8hex``."""
    return f"{name}+{key_hash:08x}"


def content_digest(body: bytes) -> str:
    """The RFC 9530 Content-Digest field value for ``body`` (sha-256)."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def _authority(host: str, scheme: str | None) -> str:
    """Lower-cased host[:port], without the scheme's default port (RFC 9421 2.2.3)."""
    host = host.strip().lower()
    if scheme is not None:
        name, sep, port = host.rpartition(":")
        if sep and "]" not in port and port.isdigit() and int(port) == _DEFAULT_PORTS.get(scheme):
            host = name
    return host


def _params(components: tuple[str, ...], created: int, expires: int, nonce: str, keyid: str) -> str:
    return (
        f"({' '.join(components)});created={created};expires={expires};"
        f'nonce="{nonce}";alg="ed25519";keyid="{keyid}"'
    )


def _base(method: str, path: str, authority: str, digest: str | None, params: str) -> bytes:
    lines = [f'"@method": {method.upper()}', f'"@path": {path}', f'"@authority": {authority}']
    if digest is not None:
        lines.append(f'"content-digest": {digest}')
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines).encode()


def _b64(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    signer: Ed25519Signer,
    *,
    now: int,
    nonce: bytes | None = None,
    lifetime: int = MAX_LIFETIME,
) -> dict[str, str]:
    """The headers to add to a request (``Content-Digest`` when ``body``, ``Signature-Input``, ``Signature``).

    ``url`` is the full URL the request goes to; ``headers`` is accepted for symmetry and ignored (only
    derived components are covered). ``nonce`` defaults to 16 random bytes.
    """
    del headers
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime must be in 1..{MAX_LIFETIME} seconds")
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"sign_request needs an absolute URL, got {url!r}")
    nonce_text = base64.b64encode(nonce if nonce is not None else os.urandom(16)).decode()
    keyid = keyid_of(signer.name, signer.key_hash)
    out: dict[str, str] = {}
    digest = None
    components: tuple[str, ...] = _COMPONENTS
    if body:
        digest = content_digest(body)
        out["Content-Digest"] = digest
        components = (*_COMPONENTS, _DIGEST_COMPONENT)
    params = _params(components, now, now + lifetime, nonce_text, keyid)
    base = _base(method, parts.path or "/", _authority(parts.netloc, parts.scheme), digest, params)
    signature = base64.b64encode(signer.sign(base)).decode()
    out["Signature-Input"] = f"{LABEL}={params}"
    out["Signature"] = f"{LABEL}=:{signature}:"
    return out


class NonceBudgetExceeded(SignatureRejected):
    """A key has more live nonces than its share of the replay cache: the client must slow down."""


class ReplayCache:
    """Nonces seen within the signature window, per keyid; thread-safe, bounded in total and per key.

    The per-key cap keeps one busy (or hostile but enrolled) client from crowding out everyone else's
    nonces; a key at its cap is refused (:class:`NonceBudgetExceeded`) rather than a nonce forgotten early.
    """

    def __init__(
        self, window_s: int = MAX_LIFETIME, max_entries: int = 1_000_000, per_key: int = 20_000
    ) -> None:
        self._window = window_s
        self._max = max_entries
        self._per_key = per_key
        self._seen: dict[str, dict[str, int]] = {}  # keyid -> nonce -> forget after this time
        self._total = 0
        self._lock = threading.Lock()
        self._next_prune = 0

    def _prune(self, now: int) -> None:
        kept: dict[str, dict[str, int]] = {}
        for keyid, nonces in self._seen.items():
            live = {n: t for n, t in nonces.items() if t > now}
            if live:
                kept[keyid] = live
        self._seen = kept
        self._total = sum(len(n) for n in kept.values())
        self._next_prune = now + 10

    def contains(self, keyid: str, nonce: str, now: int) -> bool:
        """True if (keyid, nonce) is remembered and not yet expired (a cheap check before the body)."""
        with self._lock:
            forget = self._seen.get(keyid, {}).get(nonce)
            return forget is not None and forget > now

    def seen(self, keyid: str, nonce: str, created: int, now: int) -> bool:
        """True if (keyid, nonce) was already presented; otherwise remember it and return False.

        Raises :class:`NonceBudgetExceeded` when the cache, or this key's share of it, is full of live
        nonces.
        """
        with self._lock:
            mine = self._seen.get(keyid)
            if now >= self._next_prune or self._total >= self._max or (mine and len(mine) >= self._per_key):
                self._prune(now)
                mine = self._seen.get(keyid)
            if mine is not None and nonce in mine:
                return True
            if self._total >= self._max:
                raise NonceBudgetExceeded("replay cache full: too many signed requests, retry later")
            if mine is not None and len(mine) >= self._per_key:
                raise NonceBudgetExceeded(
                    f"more than {self._per_key} signed requests from this key within {2 * self._window} s"
                )
            self._seen.setdefault(keyid, {})[nonce] = max(created, now) + 2 * self._window
            self._total += 1
            return False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.title())
    return value


@dataclass(frozen=True)
class SignedHeaders:
    """A request whose signature over its headers verified; the body is still to be checked."""

    keyid: str
    nonce: str
    created: int
    digest: str | None  # the signed Content-Digest the body must match; None: the body must be empty


def verify_headers(
    method: str,
    url_or_path: str,
    headers: Mapping[str, str],
    lookup: Callable[[str], Ed25519Verifier | None],
    *,
    now: int,
    replay: ReplayCache,
    max_skew: int = MAX_LIFETIME,
    authorities: Collection[str] | None = None,
) -> SignedHeaders:
    """Check a request's signature before reading its body; raise :class:`SignatureRejected` saying why.

    ``url_or_path`` is either the absolute URL (its authority is used) or the path, in which case the
    authority comes from the ``Host`` header; with ``authorities``, it must be one of them. ``headers``
    must be case-insensitive or lower-case. ``lookup(keyid)`` returns the verifier for a known key or
    None (:class:`UnknownKeyId`). A nonce already seen is refused here; it is remembered only by
    :func:`check_body`, once the body matches, so a mangled body does not burn a good signature.
    """
    parts = urlsplit(url_or_path)
    if parts.netloc:
        authority = _authority(parts.netloc, parts.scheme)
    else:
        host = _header(headers, "host")
        if not host:
            raise SignatureRejected("no Host header to cover @authority")
        authority = _authority(host, None)
    if authorities is not None and authority not in authorities:
        raise SignatureRejected(f"signed @authority {authority[:100]!r} is not this register")
    path = parts.path or "/"
    sig_input = _header(headers, "signature-input")
    sig_header = _header(headers, "signature")
    if sig_input is None or sig_header is None:
        raise SignatureRejected("missing Signature-Input or Signature header")
    m = _INPUT.fullmatch(sig_input.strip())
    if m is None:
        raise SignatureRejected("Signature-Input is not the one form kgate accepts (label sig1, ed25519)")
    s = _SIGNATURE.fullmatch(sig_header.strip())
    if s is None:
        raise SignatureRejected("Signature is not sig1=:base64:")
    components = tuple(m["components"].split(" ")) if m["components"] else ()
    if components not in (_COMPONENTS, (*_COMPONENTS, _DIGEST_COMPONENT)):
        raise SignatureRejected(f"covered components must be ({' '.join(_COMPONENTS)} [{_DIGEST_COMPONENT}])")
    created, expires, nonce, keyid = int(m["created"]), int(m["expires"]), m["nonce"], m["keyid"]
    raw_nonce = _b64(nonce)
    if raw_nonce is None or len(raw_nonce) < 16:
        raise SignatureRejected("nonce must be base64 of at least 16 bytes")
    if not created < expires <= created + MAX_LIFETIME:
        raise SignatureRejected(f"expires must be after created and at most {MAX_LIFETIME} s later")
    if created > now + max_skew:
        raise SignatureRejected("signature created in the future")
    if created < now - max_skew:
        raise SignatureRejected("signature created too long ago")
    if now >= expires:
        raise SignatureRejected("signature expired")
    digest = None
    if _DIGEST_COMPONENT in components:
        digest_header = _header(headers, "content-digest")
        if digest_header is None:
            raise SignatureRejected("missing Content-Digest")
        if _DIGEST.fullmatch(digest_header.strip()) is None:
            raise SignatureRejected("Content-Digest must be sha-256=:base64:")
        digest = digest_header.strip()
    sig = _b64(s["sig"])
    if sig is None:
        raise SignatureRejected("signature is not canonical base64")
    verifier = lookup(keyid)
    if verifier is None:
        raise UnknownKeyId(f"unknown keyid {keyid!r}")
    if keyid_of(verifier.name, verifier.key_hash) != keyid:
        raise UnknownKeyId(f"keyid {keyid!r} does not name the key it maps to")
    params = _params(components, created, expires, nonce, keyid)
    if not verifier.verify(_base(method, path, authority, digest, params), sig):
        raise SignatureRejected("signature does not verify")
    if replay.contains(keyid, nonce, now):
        raise SignatureRejected("replayed request (nonce already seen)")
    return SignedHeaders(keyid, nonce, created, digest)


def check_body(signed: SignedHeaders, body: bytes, *, now: int, replay: ReplayCache) -> str:
    """Check the body against the signed Content-Digest, then remember the nonce; returns the keyid."""
    if signed.digest is None:
        if body:
            raise SignatureRejected(
                f"covered components must be ({' '.join((*_COMPONENTS, _DIGEST_COMPONENT))}) with a body"
            )
    elif signed.digest != content_digest(body):
        raise SignatureRejected("Content-Digest does not match the body")
    if replay.seen(signed.keyid, signed.nonce, signed.created, now):
        raise SignatureRejected("replayed request (nonce already seen)")
    return signed.keyid


def verify_request(
    method: str,
    url_or_path: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup: Callable[[str], Ed25519Verifier | None],
    *,
    now: int,
    replay: ReplayCache,
    max_skew: int = MAX_LIFETIME,
    authorities: Collection[str] | None = None,
) -> str:
    """:func:`verify_headers` then :func:`check_body` for a request already read whole; returns the keyid."""
    digest_header = _header(headers, "content-digest")
    if body and digest_header is not None and digest_header.strip() != content_digest(body):
        raise SignatureRejected("Content-Digest does not match the body")  # the precise reason, first
    signed = verify_headers(
        method, url_or_path, headers, lookup, now=now, replay=replay, max_skew=max_skew,
        authorities=authorities,
    )  # fmt: skip
    return check_body(signed, body, now=now, replay=replay)
