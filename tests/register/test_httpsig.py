"""ledger.httpsig: RFC 9421 signing and verification as the protocol uses it."""

from __future__ import annotations

import pytest

from ledger.httpsig import (
    ReplayCache,
    SignatureRejected,
    UnknownKeyId,
    keyid_of,
    sign_request,
    verify_request,
)
from ledger.note import Ed25519Signer, Ed25519Verifier

NOW = 1_700_000_000
SIGNER = Ed25519Signer.generate("reg.test/kgate/dev1")
KEYID = keyid_of(SIGNER.name, SIGNER.key_hash)


def _lookup(keyid: str) -> Ed25519Verifier | None:
    return SIGNER.verifier() if keyid == KEYID else None


def _verify(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: int = NOW,
    replay: ReplayCache | None = None,
) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    return verify_request(method, url, lower, body, _lookup, now=now, replay=replay or ReplayCache())


def test_sign_then_verify_with_host_header() -> None:
    hdrs = sign_request("POST", "https://reg.test:443/v1/push", {}, b"{}", SIGNER, now=NOW, nonce=bytes(16))
    assert hdrs["Content-Digest"].startswith("sha-256=:")
    assert hdrs["Signature-Input"].startswith(
        'sig1=("@method" "@path" "@authority" "content-digest");created='
    )
    assert f'keyid="{KEYID}"' in hdrs["Signature-Input"]
    assert _verify("POST", "/v1/push", {**hdrs, "Host": "reg.test"}, b"{}") == KEYID
    assert _verify("POST", "https://REG.test/v1/push", hdrs, b"{}") == KEYID


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h: h.pop("Signature"), "missing"),
        (lambda h: h.update({"Host": "evil.test"}), "does not verify"),
        (lambda h: h.update({"Content-Digest": "sha-256=:" + "A" * 43 + "=:"}), "Content-Digest"),
        (lambda h: h.update({"Signature-Input": h["Signature-Input"].replace("ed25519", "rsa")}), "one form"),
    ],
)
def test_tampering_is_rejected(change: object, reason: str) -> None:
    hdrs = sign_request("POST", "http://reg.test/v1/push", {}, b"{}", SIGNER, now=NOW)
    hdrs["Host"] = "reg.test"
    change(hdrs)  # type: ignore[operator]
    with pytest.raises(SignatureRejected, match=reason):
        _verify("POST", "/v1/push", hdrs, b"{}")


def test_time_window_replay_and_unknown_key() -> None:
    hdrs = {**sign_request("GET", "http://reg.test/v1/state", {}, b"", SIGNER, now=NOW), "Host": "reg.test"}
    with pytest.raises(SignatureRejected, match="expired"):
        _verify("GET", "/v1/state", hdrs, b"", now=NOW + 300)
    with pytest.raises(SignatureRejected, match="future"):
        _verify("GET", "/v1/state", hdrs, b"", now=NOW - 301)
    cache = ReplayCache()
    assert _verify("GET", "/v1/state", hdrs, b"", replay=cache) == KEYID
    with pytest.raises(SignatureRejected, match="replayed"):
        _verify("GET", "/v1/state", hdrs, b"", replay=cache)
    stranger = Ed25519Signer.generate("reg.test/kgate/dev9")
    other = {
        **sign_request("GET", "http://reg.test/v1/state", {}, b"", stranger, now=NOW),
        "Host": "reg.test",
    }
    with pytest.raises(UnknownKeyId):
        _verify("GET", "/v1/state", other, b"")
    with pytest.raises(SignatureRejected, match="components"):
        _verify("GET", "/v1/state", hdrs, b"body")  # a body the signature does not cover


def test_a_nonce_is_remembered_for_as_long_as_its_signature_is_valid() -> None:
    hdrs = {**sign_request("GET", "http://reg.test/v1/state", {}, b"", SIGNER, now=NOW), "Host": "reg.test"}
    cache = ReplayCache()
    assert _verify("GET", "/v1/state", hdrs, b"", replay=cache) == KEYID
    for later in (1, 2, 11, 60, 150, 299):  # the signature is still inside its window at each
        with pytest.raises(SignatureRejected, match="replayed"):
            _verify("GET", "/v1/state", hdrs, b"", now=NOW + later, replay=cache)
