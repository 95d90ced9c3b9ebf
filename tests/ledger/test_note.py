"""Signed notes: the Go reference vectors, Ed25519 edge cases, cosignatures and fuzzing."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import open_checkpoint
from ledger.errors import (
    BadKeyError,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    UnverifiedNoteError,
)
from ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_NOTE_SIZE,
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    Signature,
    add_signatures,
    cosignature_timestamp,
    key_hash,
    open_note,
    parse_note,
    sign_note,
    verify_note,
)
from tests.conftest import shared_path

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
ERRORS = {
    "error: no verifiable signatures": UnverifiedNoteError,
    "error: invalid signature": InvalidSignatureError,
    "error: malformed": MalformedNoteError,
}


def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shared_path("data", "vectors", "signed-note.json").read_text())
    return data


def vkey_for(name: str, alg: int, pub: bytes) -> str:
    """A vkey with a correct hash for arbitrary (possibly hostile) key bytes."""
    key = bytes([alg]) + pub
    return f"{name}+{key_hash(name, key):08x}+{base64.b64encode(key).decode()}"


def sig_line(name: str, khash: int, sig: bytes) -> str:
    return f"— {name} {base64.b64encode(khash.to_bytes(4, 'big') + sig).decode()}\n"


# --- the Go reference vectors -------------------------------------------------------------------


def test_signing_with_peter_skey_gives_the_go_note_byte_for_byte() -> None:
    data = vectors()
    case = next(c for c in data["cases"] if "signed_note" in c)
    signer = Ed25519Signer.from_skey(data["keys"]["peter_skey"])
    assert signer.vkey == data["keys"]["peter_vkey"]
    assert signer.skey == data["keys"]["peter_skey"]
    assert sign_note(case["text"], signer) == case["signed_note"]


def case_names() -> list[str]:
    """Case names for parametrising; collection must not fail when the shared data is absent."""
    try:
        return [c["name"] for c in vectors()["cases"] if "note" in c]
    except pytest.skip.Exception:
        return ["shared-data-absent"]


@pytest.mark.parametrize("name", case_names())
def test_vector_cases_open_exactly_as_expected(name: str) -> None:
    data = vectors()
    case = next(c for c in data["cases"] if c["name"] == name)
    verifiers = [Ed25519Verifier.from_vkey(data["keys"][k]) for k in case["verifiers"]]
    if case["expect"] == "ok":
        note = open_note(case["note"], verifiers)
        assert [s.name for s in note.verified] == case["verified"]
        assert [s.name for s in note.unverified] == case["unverified"]
        assert note.text == TEXT
    else:
        with pytest.raises(ERRORS[case["expect"]]):
            open_note(case["note"], verifiers)


def test_every_bad_vkey_is_refused() -> None:
    bad = vectors()["bad_vkeys"]
    assert bad
    for vkey in bad:
        with pytest.raises(BadKeyError):
            Ed25519Verifier.from_vkey(vkey)


# --- keys ---------------------------------------------------------------------------------------


def test_generated_keys_round_trip_through_skey_and_vkey() -> None:
    signer = Ed25519Signer.generate("example.com/log")
    again = Ed25519Signer.from_skey(signer.skey)
    assert again.vkey == signer.vkey == signer.verifier().vkey
    assert Ed25519Verifier.from_vkey(signer.vkey).key_hash == signer.key_hash
    assert signer.key_hash == key_hash("example.com/log", base64.b64decode(signer.vkey.split("+", 2)[2]))


def test_repr_of_signers_hides_key_material() -> None:
    for signer in (Ed25519Signer.generate("a.example"), CosignatureSigner.generate("w.example")):
        secret = signer.skey.split("+", 4)[4]
        text = repr(signer) + str(signer)
        assert secret not in text and "PRIVATE" not in text
        assert "a.example" in text or "w.example" in text


@pytest.mark.parametrize(
    "name", ["", "two words", "a+b", "tab\tname", "nbsp\u00a0name", "em\u2003space", "nul\x00"]
)
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(BadKeyError):
        Ed25519Signer.generate(name)
    pub = Ed25519Signer.generate("ok").verifier().vkey.split("+", 2)[2]
    with pytest.raises(BadKeyError):
        Ed25519Verifier.from_vkey(f"{name}+00000000+{pub}")


def test_vkey_with_wrong_hash_unknown_algorithm_or_wrong_length_is_refused() -> None:
    good = Ed25519Signer.generate("k.example").verifier()
    pub = base64.b64decode(good.vkey.split("+", 2)[2])[1:]
    wrong_hash = good.vkey.replace(f"+{good.key_hash:08x}+", f"+{good.key_hash ^ 1:08x}+")
    refused = [
        wrong_hash,
        vkey_for("k.example", 0x02, pub),  # unknown algorithm byte, correct hash
        vkey_for("k.example", ALG_COSIGNATURE_V1, pub),  # a cosigner key is not a note key
        vkey_for("k.example", ALG_ED25519, pub[:31]),
        vkey_for("k.example", ALG_ED25519, pub + b"\x00"),
        "k.example+0000000g+" + good.vkey.split("+", 2)[2],
        "k.example+" + good.vkey.split("+", 2)[2],
        "k.example+00000000+",
        good.vkey + "=",
        good.vkey.replace("+", "+ ", 1),
    ]
    for vkey in refused:
        with pytest.raises(BadKeyError):
            Ed25519Verifier.from_vkey(vkey)
    with pytest.raises(BadKeyError):
        CosignatureVerifier.from_vkey(good.vkey)  # and a note key is not a cosigner key


def test_skey_defects_are_refused() -> None:
    signer = Ed25519Signer.generate("s.example")
    prefix, key64 = signer.skey[:-45], signer.skey[-44:]  # base64 of 33 bytes is 44 characters
    seed = base64.b64decode(key64)[1:]
    for skey in (
        signer.skey.removeprefix("PRIVATE+"),
        prefix.replace(f"{signer.key_hash:08x}", f"{signer.key_hash ^ 1:08x}") + "+" + key64,
        prefix + "+" + base64.b64encode(b"\x01" + seed[:31]).decode(),
        prefix + "+" + base64.b64encode(b"\x07" + seed).decode(),
        prefix + "+" + key64 + "!",
    ):
        with pytest.raises(BadKeyError):
            Ed25519Signer.from_skey(skey)
    with pytest.raises(BadKeyError):
        CosignatureSigner.from_skey(signer.skey)


def small_order_encodings() -> list[bytes]:
    order8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
    ys = [0, 1, P - 1, int.from_bytes(order8, "little"), P - int.from_bytes(order8, "little")]
    return [y.to_bytes(32, "little") for y in ys] + [(P - 1 + (1 << 255)).to_bytes(32, "little")]


def test_small_order_table_is_right() -> None:
    """y of an order-8 point satisfies d*y^4 + 2*y^2 - 1 = 0 (doubling it lands on y = 0)."""
    y = int.from_bytes(small_order_encodings()[3], "little")
    assert (D * y**4 + 2 * y * y - 1) % P == 0


@pytest.mark.parametrize("pub", small_order_encodings())
def test_small_order_public_keys_are_refused(pub: bytes) -> None:
    with pytest.raises(BadKeyError, match="small-order"):
        Ed25519Verifier.from_vkey(vkey_for("weak", ALG_ED25519, pub))
    with pytest.raises(BadKeyError, match="small-order"):
        CosignatureVerifier.from_vkey(vkey_for("weak", ALG_COSIGNATURE_V1, pub))


def test_identity_key_is_refused() -> None:
    """With A = identity, (R = identity, S = 0) satisfies the verification equation for every
    message, and OpenSSL 3.x/4.x accepts it; only the key check stands in the way."""
    identity = (1).to_bytes(32, "little")
    with pytest.raises(BadKeyError):
        Ed25519Verifier.from_vkey(vkey_for("weak", ALG_ED25519, identity))


def test_non_canonical_and_off_curve_public_keys_are_refused() -> None:
    for y in (P, P + 2, 2**255 - 1):
        with pytest.raises(BadKeyError, match="non-canonical"):
            Ed25519Verifier.from_vkey(vkey_for("nc", ALG_ED25519, y.to_bytes(32, "little")))
    y = next(
        y for y in range(2, 100) if pow((y * y - 1) * pow(D * y * y + 1, -1, P) % P, (P - 1) // 2, P) != 1
    )
    with pytest.raises(BadKeyError, match="not a point"):
        Ed25519Verifier.from_vkey(vkey_for("off", ALG_ED25519, y.to_bytes(32, "little")))


# --- Ed25519 signatures ---------------------------------------------------------------------------


def test_signature_with_s_plus_l_is_refused() -> None:
    signer = Ed25519Signer.generate("m.example")
    verifier = signer.verifier()
    sig = signer.sign(b"msg\n")
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + L).to_bytes(32, "little")
    assert verifier.verify(b"msg\n", sig)
    assert not verifier.verify(b"msg\n", malleated)
    note = "msg\n\n" + sig_line("m.example", signer.key_hash, malleated)
    with pytest.raises(InvalidSignatureError):
        open_note(note, [verifier])


def test_openssl_itself_rejects_s_plus_l() -> None:
    """Recorded for the report: the explicit S < L check is defence in depth, not the only guard."""
    signer = Ed25519Signer.generate("m.example")
    sig = signer.sign(b"x")
    malleated = sig[:32] + (int.from_bytes(sig[32:], "little") + L).to_bytes(32, "little")
    pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(signer.vkey.split("+", 2)[2])[1:])
    with pytest.raises(InvalidSignature):
        pub.verify(malleated, b"x")


@pytest.mark.parametrize("length", [0, 1, 63, 65, 128])
def test_wrong_length_signatures_are_refused(length: int) -> None:
    signer = Ed25519Signer.generate("m.example")
    sig = (signer.sign(b"msg\n") * 3)[:length]
    assert not signer.verifier().verify(b"msg\n", sig)
    note = "msg\n\n" + sig_line("m.example", signer.key_hash, sig)
    with pytest.raises(MalformedNoteError if length == 0 else InvalidSignatureError):
        open_note(note, [signer.verifier()])


def test_signature_with_known_name_but_other_hash_is_ignored_not_failed() -> None:
    signer = Ed25519Signer.generate("m.example")
    other = Ed25519Signer.generate("m.example")  # same name, different key: different hash
    note = sign_note("msg\n", signer, other)
    opened = open_note(note, [signer.verifier()])
    assert [s.key_hash for s in opened.verified] == [signer.key_hash]
    assert [s.key_hash for s in opened.unverified] == [other.key_hash]
    assert len(opened.sigs) == 2


def test_every_signature_by_a_known_key_must_verify() -> None:
    """Stricter than Go, which skips a second line by the same key: the spec says MUST verify."""
    signer = Ed25519Signer.generate("m.example")
    note = sign_note("msg\n", signer) + sig_line("m.example", signer.key_hash, bytes(64))
    with pytest.raises(InvalidSignatureError):
        open_note(note, [signer.verifier()])
    doubled = sign_note("msg\n", signer)
    doubled += doubled.split("\n\n", 1)[1]
    assert len(open_note(doubled, [signer.verifier()]).verified) == 1


def test_two_verifiers_with_the_same_identity_are_a_configuration_error() -> None:
    signer = Ed25519Signer.generate("m.example")
    with pytest.raises(BadKeyError):
        open_note(sign_note("msg\n", signer), [signer.verifier(), signer.verifier()])


# --- note syntax -------------------------------------------------------------------------------

GOOD_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
    "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
MALFORMED = {
    "space in name": TEXT + "\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p=\n",
    "plus in name": TEXT + "\n" + GOOD_SIG.replace("PeterNeumann", "Peter+Neumann"),
    "empty name": TEXT + "\n" + GOOD_SIG.replace("PeterNeumann", ""),
    "no signature": TEXT + "\n— PeterNeumann\n",
    "empty signature": TEXT + "\n— PeterNeumann \n",
    "short signature": TEXT + "\n— PeterNeumann " + base64.b64encode(b"1234").decode() + "\n",
    "bad base64": TEXT + "\n— PeterNeumann x08go/ZJku!!==\n",
    "unpadded base64": TEXT + "\n" + GOOD_SIG.replace("=\n", "\n"),
    "non-canonical base64": TEXT + "\n" + GOOD_SIG.replace("AM=", "AN="),
    "hyphen not em dash": TEXT + "\n" + GOOD_SIG.replace("—", "-"),
    "two spaces": TEXT + "\n" + GOOD_SIG.replace("— ", "—  "),
    "trailing garbage": TEXT + "\n" + GOOD_SIG + "garbage\n",
    "blank line after signatures": TEXT + "\n" + GOOD_SIG + "\n",
    "carriage return": TEXT.replace("\n", "\r\n", 1) + "\n" + GOOD_SIG,
    "tab": "a\tb\n\n" + GOOD_SIG,
    "lone surrogate": "a\ud800\n\n" + GOOD_SIG,
    "101 signatures": TEXT + "\n" + GOOD_SIG * 101,
    "no blank line": TEXT + GOOD_SIG,
    "empty": "",
    "oversized": "a" * MAX_NOTE_SIZE + "\n\n" + GOOD_SIG,
    "oversized in bytes": "й" * (MAX_NOTE_SIZE // 2) + "\n\n" + GOOD_SIG,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_notes_are_refused(case: str) -> None:
    with pytest.raises(MalformedNoteError):
        parse_note(MALFORMED[case])


def test_one_hundred_signatures_are_accepted() -> None:
    text, sigs = parse_note(TEXT + "\n" + GOOD_SIG * 100)
    assert text == TEXT and len(sigs) == 100
    assert sigs[0] == Signature("PeterNeumann", 0xC74F20A3, sigs[0].sig)


def test_text_may_contain_blank_lines_and_signature_lookalikes() -> None:
    signer = Ed25519Signer.generate("m.example")
    text = "first\n\n— not a signature AAAA\n\nlast\n"
    note = open_note(sign_note(text, signer), [signer.verifier()])
    assert note.text == text


@pytest.mark.parametrize("text", ["", "no newline", "ctl\x07\n", "a" * MAX_NOTE_SIZE + "\n", "\ud800\n"])
def test_sign_note_refuses_bad_text(text: str) -> None:
    with pytest.raises(MalformedNoteError):
        sign_note(text, Ed25519Signer.generate("m.example"))


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(NoteError):
        sign_note("text\n")


def test_add_signatures_appends_without_touching_existing_lines() -> None:
    log = Ed25519Signer.generate("log.example")
    witness = CosignatureSigner.generate("witness.example", clock=lambda: 1_700_000_000)
    note = sign_note("log.example\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", log)
    cosigned = add_signatures(note, witness)
    assert cosigned.startswith(note)
    opened = open_note(cosigned, [log.verifier(), witness.verifier()])
    assert [s.name for s in opened.verified] == ["log.example", "witness.example"]
    with pytest.raises(MalformedNoteError):
        add_signatures(note + "junk\n", witness)
    with pytest.raises(MalformedNoteError):
        add_signatures(sign_note("t\n", *[log] * 100), witness)


# --- cosignatures ------------------------------------------------------------------------------

BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_cosignature_round_trip_with_injected_clock() -> None:
    witness = CosignatureSigner.generate("w.example", clock=lambda: 1679315147)
    verifier = CosignatureVerifier.from_vkey(witness.vkey)
    assert witness.vkey == witness.verifier().vkey
    assert base64.b64decode(witness.vkey.split("+", 2)[2])[0] == ALG_COSIGNATURE_V1
    note = open_note(sign_note(BODY, witness), [verifier])
    (sig,) = note.verified
    assert len(sig.sig) == 72
    assert cosignature_timestamp(sig.sig) == 1679315147
    assert CosignatureSigner.from_skey(witness.skey).vkey == witness.vkey


def test_cosignature_signs_the_documented_message() -> None:
    witness = CosignatureSigner.generate("w.example", clock=lambda: 1679315147)
    sig = witness.sign(BODY.encode())
    plain = base64.b64decode(witness.vkey.split("+", 2)[2])[1:]
    message = b"cosignature/v1\ntime 1679315147\n" + BODY.encode()
    Ed25519PublicKey.from_public_bytes(plain).verify(sig[8:], message)
    assert sig[:8] == (1679315147).to_bytes(8, "big")


def test_cosignature_with_wrong_timestamp_or_body_fails() -> None:
    witness = CosignatureSigner.generate("w.example", clock=lambda: 1679315147)
    verifier = witness.verifier()
    sig = witness.sign(BODY.encode())
    assert verifier.verify(BODY.encode(), sig)
    assert not verifier.verify(BODY.encode(), (1679315148).to_bytes(8, "big") + sig[8:])
    assert not verifier.verify(BODY.replace("20852163", "20852164").encode(), sig)
    assert not verifier.verify(BODY.encode(), (1 << 63).to_bytes(8, "big") + sig[8:])
    assert not verifier.verify(BODY.encode(), sig[8:])
    note = sign_note(BODY, witness).replace("20852163", "20852164")
    with pytest.raises(InvalidSignatureError):
        open_note(note, [verifier])


def test_cosignature_and_note_keys_are_not_interchangeable() -> None:
    witness = CosignatureSigner.generate("w.example", clock=lambda: 1)
    as_plain = Ed25519Verifier(witness.name, base64.b64decode(witness.vkey.split("+", 2)[2])[1:])
    assert as_plain.key_hash != witness.key_hash
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note(BODY, witness), [as_plain])


@pytest.mark.parametrize("bad", [-1, 1 << 63])
def test_cosigner_refuses_impossible_clock(bad: int) -> None:
    with pytest.raises(NoteError):
        CosignatureSigner.generate("w.example", clock=lambda: bad).sign(BODY.encode())


def test_cosignature_timestamp_matches_transparency_dev_vector() -> None:
    """From transparency-dev/formats note_cosigv1_test.go (TestCosignatureTimestamp)."""
    raw = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(raw[4:]) == 1727964367
    plain = base64.b64decode(
        "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY="
    )
    with pytest.raises(MalformedNoteError):
        cosignature_timestamp(plain[4:])


# --- properties ---------------------------------------------------------------------------------

NAME_CHARS = st.characters(codec="utf-8", min_codepoint=0x21, exclude_characters="+").filter(
    lambda c: not c.isspace()
)
TEXT_CHARS = st.characters(codec="utf-8", min_codepoint=0x20) | st.just("\n")
SIGNER = Ed25519Signer.generate("fuzz.example")


@settings(max_examples=60, deadline=None)
@given(name=st.text(NAME_CHARS, min_size=1, max_size=30), text=st.text(TEXT_CHARS, max_size=200))
def test_sign_then_open_round_trips(name: str, text: str) -> None:
    signer = Ed25519Signer.generate(name)
    body = text + "\n"
    note = sign_note(body, signer)
    opened = open_note(note, [Ed25519Verifier.from_vkey(signer.vkey)])
    assert opened.text == body
    assert opened.verified == (Signature(name, signer.key_hash, signer.sign(body.encode())),)
    assert parse_note(note) == (body, opened.sigs)


VALID_NOTE = sign_note("origin\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", SIGNER)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_note_errors(text: str) -> None:
    with contextlib.suppress(NoteError):
        open_note(text, [SIGNER.verifier()])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(VALID_NOTE) - 1), st.integers(0, 2), st.characters())
def test_mutated_notes_never_verify_and_only_raise_note_errors(pos: int, op: int, char: str) -> None:
    mutated = [
        VALID_NOTE[:pos] + char + VALID_NOTE[pos + 1 :],
        VALID_NOTE[:pos] + char + VALID_NOTE[pos:],
        VALID_NOTE[:pos] + VALID_NOTE[pos + 1 :],
    ][op]
    if mutated == VALID_NOTE:
        return
    try:
        opened = open_note(mutated, [SIGNER.verifier()])
    except NoteError:
        return
    # Only a change that leaves text and signature bytes identical may still verify.
    assert opened.text == parse_note(VALID_NOTE)[0]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_vkeys_only_raise_bad_key_error(vkey: str) -> None:
    for cls in (Ed25519Verifier, CosignatureVerifier):
        with contextlib.suppress(BadKeyError):
            cls.from_vkey(vkey)
    with contextlib.suppress(BadKeyError):
        Ed25519Signer.from_skey("PRIVATE+KEY+" + vkey)


def test_a_signature_line_must_match_the_key_name_not_only_the_key_hash() -> None:
    """A witness's valid signature relabelled with the log's name must not count as the log's."""
    witness = Ed25519Signer.generate("witness.example")
    body = "reg.example/kgate/dev1\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"
    note = sign_note(body, witness)
    relabelled = note.replace("— witness.example ", "— reg.example/kgate/dev1 ")
    assert relabelled != note
    with pytest.raises(UnverifiedNoteError):
        open_note(relabelled, [witness.verifier()])
    with pytest.raises(NoteError):
        open_checkpoint(relabelled, [witness.verifier()])
    # Both keys known: the relabelled line is the log key's name with the witness's hash, so unknown.
    log = Ed25519Signer.generate("reg.example/kgate/dev1")
    with pytest.raises(UnverifiedNoteError):
        open_note(relabelled, [witness.verifier(), log.verifier()])


def test_cosigning_an_opened_note_appends_what_cosigning_the_text_appends() -> None:
    """``add_signatures(note, opened=open_note(note))`` skips the parse and writes the same bytes."""
    log = Ed25519Signer.generate("example.com/log")
    witness = CosignatureSigner.generate("witness.example", clock=lambda: 1_790_000_000)
    note = sign_note("example.com/log\n16\n" + base64.b64encode(bytes(32)).decode() + "\n", log)
    opened = open_note(note, [log.verifier()])
    assert add_signatures(note, witness, opened=opened) == add_signatures(note, witness)
    other = sign_note("example.com/log\n17\n" + base64.b64encode(bytes(32)).decode() + "\n", log)
    with pytest.raises(MalformedNoteError, match="not this note"):
        add_signatures(other, witness, opened=opened)


def test_verify_note_is_open_note_after_parse_note() -> None:
    log = Ed25519Signer.generate("example.com/log")
    note = sign_note("hello\n", log)
    assert verify_note(*parse_note(note), [log.verifier()]) == open_note(note, [log.verifier()])
    with pytest.raises(InvalidSignatureError):
        verify_note("hullo\n", parse_note(note)[1], [log.verifier()])
