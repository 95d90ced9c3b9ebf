"""Checkpoints: real sum.golang.org and witnessed CT checkpoints, strict parsing, the log-key rule."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import MAX_TREE_SIZE, Checkpoint, CheckpointSigner, open_checkpoint, sign_checkpoint
from ledger.errors import CheckpointError, InvalidSignatureError, MalformedNoteError, UnverifiedNoteError
from ledger.note import (
    CosignatureSigner,
    CosignatureVerifier,
    Ed25519Signer,
    Ed25519Verifier,
    add_signatures,
    cosignature_timestamp,
    open_note,
)
from tests.conftest import shared_path

ROOT = bytes(range(32))
ROOT64 = base64.b64encode(ROOT).decode()


def sumdb() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shared_path("data", "vectors", "sumdb-checkpoints.json").read_text())
    return data


# --- real sum.golang.org checkpoints -----------------------------------------------------------


def test_all_sumdb_checkpoints_verify_under_the_vkey() -> None:
    data = sumdb()
    verifier = Ed25519Verifier.from_vkey(data["vkey"])
    assert len(data["checkpoints"]) == 7
    for note in data["checkpoints"]:
        cp, opened = open_checkpoint(note, [verifier], log_name="sum.golang.org")
        assert cp.origin == "go.sum database tree"
        assert cp.body() == opened.text
        assert [s.name for s in opened.verified] == ["sum.golang.org"]


def test_the_unknown_key_signature_is_ignored() -> None:
    data = sumdb()
    verifier = Ed25519Verifier.from_vkey(data["vkey"])
    extra = [n for n in data["checkpoints"] if "test.example.com" in n]
    assert extra
    for note in extra:
        opened = open_note(note, [verifier])
        assert [s.name for s in opened.unverified] == ["test.example.com"]


def test_flipping_any_byte_of_any_sumdb_body_fails() -> None:
    data = sumdb()
    verifier = Ed25519Verifier.from_vkey(data["vkey"])
    for note in data["checkpoints"]:
        body_len = note.index("\n\n") + 1
        for i in range(body_len):
            flipped = note[:i] + chr(ord(note[i]) ^ 0x01) + note[i + 1 :]
            with pytest.raises((InvalidSignatureError, MalformedNoteError)):
                open_note(flipped, [verifier])


def test_sumdb_origin_differs_from_key_name_so_default_rule_refuses() -> None:
    """The log-key rule: by default the verified key's name must equal the origin line."""
    data = sumdb()
    with pytest.raises(UnverifiedNoteError, match="log key"):
        open_checkpoint(data["checkpoints"][0], [Ed25519Verifier.from_vkey(data["vkey"])])


# --- a real witnessed checkpoint (public test vector) -------------------------------------------
# From the tlog_scales test suite: a checkpoint of Google's arche2025h1 staging CT log with an
# RFC 6962 signature (type 0x05, unknown here), an Ed25519 log signature and four cosignature/v1
# signatures by public witnesses (keys as listed by the Witness Network).

ARCHE = (
    "arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n\n"
    "— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3ur"
    "bllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75"
    "MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    "— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXH"
    "AwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n"
    "— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5h"
    "NI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n"
    "— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5Xe"
    "U/zZ0WBxtqB0DrAWfBw==\n"
    "— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFu"
    "cgKi7lI7cUiOvKFYe/TmN9DAg==\n"
)
ARCHE_LOG = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
ARCHE_WITNESSES = [
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
]


def test_real_witness_cosignatures_verify() -> None:
    verifiers = [Ed25519Verifier.from_vkey(ARCHE_LOG), *map(CosignatureVerifier.from_vkey, ARCHE_WITNESSES)]
    cp, note = open_checkpoint(ARCHE, verifiers)
    assert (cp.origin, cp.size) == ("arche2025h1.staging.ct.transparency.dev", 1432088532)
    assert len(note.verified) == 5 and len(note.unverified) == 1
    assert {cosignature_timestamp(s.sig) for s in note.verified[1:]} == {1779573024}


def test_real_cosignature_fails_on_a_changed_body() -> None:
    tampered = ARCHE.replace("1432088532", "1432088533")
    with pytest.raises(InvalidSignatureError):
        open_note(tampered, [CosignatureVerifier.from_vkey(ARCHE_WITNESSES[2])])


def test_witnesses_alone_do_not_make_a_checkpoint_trusted() -> None:
    with pytest.raises(UnverifiedNoteError, match="log key"):
        open_checkpoint(ARCHE, [CosignatureVerifier.from_vkey(v) for v in ARCHE_WITNESSES])


# --- our own checkpoints -----------------------------------------------------------------------


def test_sign_cosign_open_round_trip() -> None:
    log = Ed25519Signer.generate("register.example/kgate/dev-1")
    witness = CosignatureSigner.generate("register.example/witness", clock=lambda: 1_700_000_000)
    cp = Checkpoint("register.example/kgate/dev-1", 5, ROOT, ("ext line",))
    note = add_signatures(sign_checkpoint(cp, log), witness)
    got, opened = open_checkpoint(note, [log.verifier(), witness.verifier()])
    assert got == cp
    assert [s.name for s in opened.verified] == [log.name, witness.name]


def test_checkpoint_signed_by_a_key_not_named_like_the_origin_is_refused() -> None:
    other = Ed25519Signer.generate("someone.else")
    note = sign_checkpoint(Checkpoint("register.example/kgate/dev-1", 0, ROOT), other)
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [other.verifier()])


def test_body_layout() -> None:
    assert Checkpoint("o", 0, ROOT).body() == f"o\n0\n{ROOT64}\n"
    assert Checkpoint("o", 12, ROOT, ("a", "b")).body() == f"o\n12\n{ROOT64}\na\nb\n"


BAD_BODIES = {
    "empty origin": f"\n1\n{ROOT64}\n",
    "control char in origin": f"o\x01\n1\n{ROOT64}\n",
    "leading zero": f"o\n01\n{ROOT64}\n",
    "plus sign": f"o\n+1\n{ROOT64}\n",
    "minus sign": f"o\n-1\n{ROOT64}\n",
    "space in size": f"o\n 1\n{ROOT64}\n",
    "underscore in size": f"o\n1_000\n{ROOT64}\n",
    "non-ASCII digit": f"o\n\u0661\n{ROOT64}\n",
    "size too big": f"o\n{MAX_TREE_SIZE + 1}\n{ROOT64}\n",
    "huge size": "o\n" + "9" * 5000 + f"\n{ROOT64}\n",
    "empty size": f"o\n\n{ROOT64}\n",
    "short root": f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n",
    "long root": f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n",
    "unpadded root": f"o\n1\n{ROOT64.rstrip('=')}\n",
    "non-canonical root": f"o\n1\n{ROOT64[:-2]}B=\n",
    "url-safe root": "o\n1\n" + base64.urlsafe_b64encode(bytes([0xFB]) * 32).decode() + "\n",
    "non-ASCII root": f"o\n1\n{ROOT64[:-1]}\u00e9\n",
    "empty extension": f"o\n1\n{ROOT64}\n\n",
    "empty middle extension": f"o\n1\n{ROOT64}\na\n\nb\n",
    "missing final newline": f"o\n1\n{ROOT64}",
    "two lines": "o\n1\n",
    "empty": "",
    "tab in extension": f"o\n1\n{ROOT64}\na\tb\n",
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_bodies_are_refused(case: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(BAD_BODIES[case])


def test_size_bounds() -> None:
    assert Checkpoint.parse(f"o\n{MAX_TREE_SIZE}\n{ROOT64}\n").size == MAX_TREE_SIZE
    assert Checkpoint.parse(f"o\n0\n{ROOT64}\n").size == 0


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        ("o", -1, ROOT),
        ("o", True, ROOT),
        ("o", MAX_TREE_SIZE + 1, ROOT),
        ("o", 1, ROOT[:31]),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
        ("o\ud800", 1, ROOT),
    ],
)
def test_invalid_checkpoints_cannot_be_built(args: tuple[Any, ...]) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint(*args)


LINE = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(LINE, st.integers(0, MAX_TREE_SIZE), st.binary(min_size=32, max_size=32), st.lists(LINE, max_size=4))
def test_parse_of_body_is_identity(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.parse(cp.body()) == cp


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_checkpoint_error(text: str) -> None:
    try:
        cp = Checkpoint.parse(text)
    except CheckpointError:
        return
    assert cp.body() == text


@settings(max_examples=200)
@given(st.integers(0, MAX_TREE_SIZE), st.binary(min_size=32, max_size=32))
def test_a_checkpoint_signer_writes_what_sign_checkpoint_writes(size: int, root: bytes) -> None:
    signer = Ed25519Signer.generate("example.com/log-7")
    fast = CheckpointSigner("example.com/log-7", signer)
    assert fast.sign(size, root) == sign_checkpoint(Checkpoint("example.com/log-7", size, root), signer)


def test_a_checkpoint_signer_refuses_what_sign_checkpoint_refuses() -> None:
    signer = Ed25519Signer.generate("example.com/log-7")
    fast = CheckpointSigner("example.com/log-7", signer)
    for size, root in ((-1, bytes(32)), (MAX_TREE_SIZE + 1, bytes(32)), (True, bytes(32)), (5, bytes(31))):
        with pytest.raises(CheckpointError):
            fast.sign(size, root)
    with pytest.raises(CheckpointError):
        CheckpointSigner("bad\norigin", signer)
