"""Parent statements end to end: real ledgers ingested by a real register, then the offline verifier.

The fixture goes through the real path (open_ledger with a FakeClock, Register.ingest), on SQLite and
PostgreSQL; ``kgate register statement`` writes the files, ``kgate statement verify`` checks them, and
an independent verifier written here from hashlib + cryptography agrees on the untouched file.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kgate.cli import main
from ledger.clock import FakeClock
from ledger.keys import write_secret
from ledger.merkle import inclusion_proof
from ledger.note import CosignatureSigner, Ed25519Signer, add_signatures
from ledger.statement import month_bounds, sign_statement
from ledger.store import open_ledger
from register.ingest import Batch
from register.roster_csv import Person
from register.service import Register
from register.statement import _Reader
from register.store import open_store
from register.store.roster import import_roster

REG = "reg.test"
UTC = dt.UTC


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# (device, UTC time, kind, child): Almaty is UTC+5, so 18:59Z on Oct 31 is still October there.
EVENTS = [
    ("north", "2026-10-31T18:59:00", "in", "A"),  # Oct 31 23:59 local: not in November
    ("north", "2026-10-31T19:00:00", "in", "A"),  # Nov 1 00:00 local: in
    ("north", "2026-11-02T03:10:00", "in", "B"),
    ("north", "2026-11-02T03:11:00", "in", "A"),
    ("north", "2026-11-02T12:40:00", "out", "A"),
    ("south", "2026-11-03T03:05:00", "in", "A"),
    ("south", "2026-11-03T12:30:00", "out", "A"),
    ("north", "2026-11-30T19:00:00", "in", "A"),  # Dec 1 local: not in November
    ("north", "2026-12-31T18:30:00", "in", "A"),  # Dec 31 23:30 local: still December
    ("north", "2026-12-31T19:00:00", "in", "A"),  # Jan 1 2027 00:00 local: not in December
    ("other", "2026-11-03T03:05:00", "in", "A"),  # a child A of another kindergarten
]
NOVEMBER_A = 5


def _child(kid: str, name: str) -> Person:
    return Person(0, "child", kid, name, "Күншуақ", False, None, ())


@dataclass
class Built:
    db: str
    register_vkey: str
    cosigner: CosignatureSigner
    state: Path  # the register's key directory (cosigner.key), as `kgate register serve --state`


@pytest.fixture
def built(db_url: str, tmp_path: Path) -> Built:
    """Three device ledgers (two gates of K1, one of K2), each pushed in two batches via Register.ingest."""
    cosigner = CosignatureSigner.generate(REG)
    state = tmp_path / "state"
    state.mkdir()
    write_secret(state / "cosigner.key", cosigner.skey, "register key")
    with open_store(db_url) as store:
        import_roster(store, "K1", [_child("A", "Әлия Серікқызы"), _child("B", "Бекзат")], now_ms=0)
        import_roster(store, "K2", [_child("A", "Other A")], now_ms=0)
        register = Register(store, cosigner)
        for gate, place in (("north", "K1"), ("south", "K1"), ("other", "K2")):
            clock = FakeClock(0, synced=True)
            origin = f"{REG}/kgate/{gate}"
            key = tmp_path / f"{gate}.key"
            with open_ledger(tmp_path / f"{gate}.db", origin=origin, key_path=key, clock=clock) as ledger:
                device = store.add_device(ledger.vkey, kindergarten=place, gate=gate, now_ms=0)
                ledger.append("boot")
                pushed = 0
                for dev, when, kind, child in EVENTS:
                    if dev != gate:
                        continue
                    clock.time_ms = _ms(when)
                    ledger.append(kind, child=child, method="qr", evidence={"badge": "S" * 12})
                    if ledger.size == 3:  # a first push part-way: the statement must use the newest
                        register.ingest(device, _batch(ledger, pushed), evidence=b"")
                        pushed = ledger.size
                register.ingest(device, _batch(ledger, pushed), evidence=b"")
    return Built(db_url, cosigner.vkey, cosigner, state)


def _batch(ledger: Any, start: int) -> Batch:
    end = ledger.size
    return Batch(
        ledger.origin,
        start,
        tuple(ledger.entries(start, end)),
        ledger.checkpoint(),
        start,
        tuple(ledger.consistency_proof(start, end)),
    )


def _statement(built: Built, out: Path, capsys: pytest.CaptureFixture[str], month: str = "2026-11") -> Path:
    code = main(
        ["register", "statement", "--db", built.db, "--child", "A", "--month", month,
         "--kindergarten", "K1", "--out", str(out), "--state", str(built.state)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    return out / "statement.json"


def _verify(path: Path, vkey: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["statement", "verify", str(path), "--register-vkey", vkey])
    out = capsys.readouterr()
    return code, out.out + out.err


# -- an independent verifier: hashlib + cryptography, nothing of kgate -----------------------------------


def _vkey(vkey: str, alg: int) -> tuple[str, bytes, Ed25519PublicKey]:
    name, hash_hex, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == alg and len(raw) == 33
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert key_id.hex() == hash_hex
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def _rfc9162_root(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root reached from ``leaf`` by its audit path, by the RFC's recursive definition."""
    if size == 1:
        assert not proof
        return leaf
    k = 1 << ((size - 1).bit_length() - 1)  # the largest power of two smaller than size
    *inner, sibling = proof
    if index < k:
        return hashlib.sha256(b"\x01" + _rfc9162_root(index, k, leaf, inner) + sibling).digest()
    return hashlib.sha256(b"\x01" + sibling + _rfc9162_root(index - k, size - k, leaf, inner)).digest()


def independent_verify(doc: dict[str, Any], register_vkey: str) -> int:
    """Verify a statement from the specs alone; returns the number of entries proved."""
    reg_name, reg_id, reg_key = _vkey(register_vkey, 0x04)
    # the register's statement note: a cosignature/v1-style signature over "kgate-statement/v2\n" + JSON
    signed: str = doc["signed"]
    split = signed.rindex("\n\n")
    body, (line,) = signed[: split + 1], signed[split + 2 :].splitlines()
    name, b64 = line.removeprefix("— ").split(" ")
    raw = base64.b64decode(b64)
    assert name == reg_name and raw[:4] == reg_id
    reg_key.verify(raw[12:], b"cosignature/v1\ntime %d\n" % int.from_bytes(raw[4:12], "big") + body.encode())
    header, commit_line = body.splitlines()
    assert header == "kgate-statement/v2"
    commit = json.loads(commit_line)
    for label in ("kindergarten", "month", "timezone", "child"):
        assert commit[label] == doc[label], label
    assert [c["origin"] for c in commit["logs"]] == [log["origin"] for log in doc["logs"]]
    for c, log in zip(commit["logs"], doc["logs"], strict=True):
        assert c["device_vkey"] == log["device_vkey"]
        assert c["checkpoint"]["sha256"] == hashlib.sha256(log["checkpoint"].encode()).hexdigest()
        assert c["entries"] == [
            [e["index"], hashlib.sha256(b"\x00" + base64.b64decode(e["data"])).hexdigest()]
            for e in log["entries"]
        ]
    proved = 0
    for log in doc["logs"]:
        dev_name, dev_id, dev_key = _vkey(log["device_vkey"], 0x01)
        note: str = log["checkpoint"]
        split = note.rindex("\n\n")
        body, sigs = note[: split + 1], note[split + 2 :].splitlines()
        origin, size_text, root_b64 = body.splitlines()[:3]
        assert origin == dev_name == log["origin"]
        size, root = int(size_text), base64.b64decode(root_b64)
        found = {"device": False, "register": False}
        for line in sigs:
            name, b64 = line.removeprefix("— ").split(" ")
            raw = base64.b64decode(b64)
            if name == reg_name and raw[:4] == reg_id:
                stamp = int.from_bytes(raw[4:12], "big")
                reg_key.verify(raw[12:], b"cosignature/v1\ntime %d\n" % stamp + body.encode())
                found["register"] = True
            elif name == dev_name and raw[:4] == dev_id:
                dev_key.verify(raw[4:], body.encode())
                found["device"] = True
        assert all(found.values()), found
        for item in log["entries"]:
            data = base64.b64decode(item["data"])
            assert data.startswith(b"kgate/entry/v1\n")
            obj = cbor2.loads(data[15:])
            assert cbor2.dumps(obj, canonical=True) == data[15:]
            assert obj["i"] == item["index"] and obj["c"] == doc["child"]
            leaf = hashlib.sha256(b"\x00" + data).digest()
            proof = [base64.b64decode(p) for p in item["proof"]]
            assert _rfc9162_root(item["index"], size, leaf, proof) == root
            proved += 1
    return proved


# -- tests -----------------------------------------------------------------------------------------------


def test_statement_is_written_and_verifies(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _statement(built, tmp_path / "out", capsys)
    doc = json.loads(path.read_bytes())
    assert doc["format"] == "kgate-statement" and doc["version"] == 2
    assert doc["timezone"] == "Asia/Almaty" and doc["kindergarten"] == "K1"
    assert sorted(log["origin"] for log in doc["logs"]) == [f"{REG}/kgate/north", f"{REG}/kgate/south"]
    assert sum(len(log["entries"]) for log in doc["logs"]) == NOVEMBER_A
    code, out = _verify(path, built.register_vkey, capsys)
    assert code == 0, out
    assert "valid: 5 entries of child A in 2026-11 (K1, Asia/Almaty), as the register signed them on " in out
    vkey_file = tmp_path / "out" / "register.vkey"  # written beside the statement
    assert vkey_file.read_text() == built.register_vkey + "\n"
    assert _verify(path, str(vkey_file), capsys)[0] == 0
    assert independent_verify(doc, built.register_vkey) == NOVEMBER_A
    pdf = (tmp_path / "out" / "statement.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Count 1" in pdf  # one page
    assert (
        _qr_in_pdf(tmp_path / "out" / "statement.pdf")
        == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    )


def _qr_in_pdf(pdf: Path) -> str:
    """The text of the QR code on the PDF's page, read back by the gate's own decoder from a raster."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-singlefile", str(pdf), str(pdf.with_suffix(""))],
        check=True,
        timeout=60,
    )
    import zxingcpp
    from PIL import Image

    codes = zxingcpp.read_barcodes(Image.open(pdf.with_suffix(".png")))
    assert len(codes) == 1
    return str(codes[0].text)


def test_statement_uses_the_newest_cosigned_checkpoint(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(_statement(built, tmp_path / "out", capsys).read_bytes())
    with open_store(built.db, readonly=True) as store:
        sizes = {d.origin: d.size for d in store.devices()}
    for log in doc["logs"]:
        assert int(log["checkpoint"].split("\n")[1]) == sizes[log["origin"]]


def _tampered(path: Path, edit: Any) -> Path:
    doc = json.loads(path.read_bytes())
    edit(doc)
    out = path.with_name("tampered.json")
    out.write_text(json.dumps(doc))
    return out


def _flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _flip_sig(note: str, name_prefix: str) -> str:
    lines = note.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("— " + name_prefix):
            head, b64 = line.rsplit(" ", 1)
            lines[i] = f"{head} {_flip(b64, 20)}"
            return "\n".join(lines)
    raise AssertionError(f"no signature by {name_prefix}")


def _other_device_key(doc: dict[str, Any]) -> None:
    doc["logs"][0]["device_vkey"] = Ed25519Signer.generate(doc["logs"][0]["origin"]).vkey


def _renamed_device_key(doc: dict[str, Any]) -> None:
    doc["logs"][0]["device_vkey"] = Ed25519Signer.generate(f"{REG}/kgate/impostor").vkey


TAMPERING = {
    "entry byte": (
        lambda d: d["logs"][0]["entries"][1].update(data=_flip(d["logs"][0]["entries"][1]["data"], -3)),
        "entry 1",
    ),
    "proof hash": (
        lambda d: d["logs"][1]["entries"][0]["proof"].__setitem__(
            0, _flip(d["logs"][1]["entries"][0]["proof"][0], 5)
        ),
        "inclusion proof",
    ),
    "device signature": (
        lambda d: d["logs"][0].update(checkpoint=_flip_sig(d["logs"][0]["checkpoint"], f"{REG}/kgate/")),
        "device's signature",
    ),
    "cosignature": (
        lambda d: d["logs"][0].update(checkpoint=_flip_sig(d["logs"][0]["checkpoint"], f"{REG} ")),
        "register's cosignature",
    ),
    "device key not cosigned": (_other_device_key, "no signature by the statement's device key"),
    "device key of another origin": (_renamed_device_key, "not the checkpoint origin"),
    "index": (
        lambda d: d["logs"][0]["entries"][0].update(index=d["logs"][0]["entries"][0]["index"] + 1),
        "own index",
    ),
    "dropped cosignature": (
        lambda d: d["logs"][0].update(
            checkpoint="\n".join(
                ln for ln in d["logs"][0]["checkpoint"].split("\n") if not ln.startswith(f"— {REG} ")
            )
        ),
        "no cosignature",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_statement_is_invalid_and_says_what(
    case: str, built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _statement(built, tmp_path / "out", capsys)
    edit, expect = TAMPERING[case]
    code, out = _verify(_tampered(path, edit), built.register_vkey, capsys)
    assert code == 1, out
    assert expect in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_another_registers_key_is_invalid(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _statement(built, tmp_path / "out", capsys)
    impostor = CosignatureSigner.generate(REG)  # same name, another key
    other = impostor.vkey
    code, out = _verify(path, other, capsys)
    assert code == 1 and "register key" in out
    doc = json.loads(path.read_bytes())
    doc["register_vkey"] = other  # claiming the other key does not help: nothing is signed by it
    forged = path.with_name("forged.json")
    forged.write_text(json.dumps(doc))
    code, out = _verify(forged, other, capsys)
    assert code == 1 and "the statement note carries no signature by the register key" in out
    # re-signing the statement note with it does not help either: the checkpoints are not cosigned by it
    del doc["signed"]
    forged.write_text(json.dumps(sign_statement(doc, impostor)))
    code, out = _verify(forged, other, capsys)
    assert code == 1 and "no cosignature by the register key" in out


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage\xff",
        b"[]",
        b'{"format": "kgate-statement", "version": 1}',
        b'{"format": "x"}',
        b'{"format": "kgate-statement", "version": 2}',
    ],
)
def test_unreadable_statement_exits_2(
    content: bytes, built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out = _verify(path, built.register_vkey, capsys)
    assert code == 2 and out.startswith("kgate: error:") and "Traceback" not in out


def test_too_big_and_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vkey = CosignatureSigner.generate(REG).vkey
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(17 * 1024 * 1024)
    assert _verify(big, vkey, capsys)[0] == 2
    assert _verify(tmp_path / "missing.json", vkey, capsys)[0] == 2
    assert _verify(big, "not-a-key", capsys)[0] == 2


def test_statement_of_an_unknown_child_is_one_line(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "register",
            "statement",
            "--db",
            built.db,
            "--child",
            "nobody",
            "--month",
            "2026-11",
            "--out",
            str(tmp_path),
            "--state",
            str(built.state),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "no child 'nobody'" in err
    assert not (tmp_path / "statement.json").exists()
    code = main(
        [
            "register",
            "statement",
            "--db",
            built.db,
            "--child",
            "A",
            "--month",
            "2026-11",
            "--out",
            str(tmp_path),
            "--state",
            str(built.state),
        ]
    )
    assert code != 0 and "several rosters" in capsys.readouterr().err
    # without the register's key no statement can be signed: one line, nothing written
    empty = tmp_path / "no-keys"
    empty.mkdir()
    args = ["register", "statement", "--db", built.db, "--child", "A", "--month", "2026-11",
            "--kindergarten", "K1", "--out", str(tmp_path), "--state", str(empty)]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"kgate: error: no register cosigner key {empty / 'cosigner.key'}: "
                                        "--state must be the register's key directory"]  # fmt: skip
    assert not (tmp_path / "statement.json").exists()


def test_kindergarten_time_zone_moves_the_month(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The табель's zone cuts the month: in UTC, Oct 31 19:00Z is October and Nov 30 19:00Z November."""
    set_tz = ["register", "calendar", "set", "--kindergarten", "K1", "--tz", "UTC", "--db", built.db]
    assert main(set_tz) == 0, capsys.readouterr().err
    doc = json.loads(_statement(built, tmp_path / "utc", capsys).read_bytes())
    assert doc["timezone"] == "UTC"
    times = sorted(
        cbor2.loads(base64.b64decode(e["data"])[15:])["t"] for log in doc["logs"] for e in log["entries"]
    )
    assert times[0] == _ms("2026-11-02T03:11:00") and times[-1] == _ms("2026-11-30T19:00:00")


# -- the register's signed statement note binds what the statement says ---------------------------------


def _log(doc: dict[str, Any], gate: str) -> dict[str, Any]:
    return next(log for log in doc["logs"] if log["origin"] == f"{REG}/kgate/{gate}")


def _older_checkpoint(built: Built) -> Any:
    """Swap north's checkpoint for its older cosigned one (size 3, the first push), with proofs made
    honestly against it for the entries it covers: everything checks except the register's statement."""
    with open_store(built.db, readonly=True) as store:
        device = next(d for d in store.devices() if d.gate == "north")
        old = min(store.checkpoints(device.id), key=lambda c: c.size)
        reader = _Reader(store, device)
        proofs = {
            i: [base64.b64encode(h).decode() for h in inclusion_proof(i, old.size, reader)]
            for i in range(old.size)
        }
    assert old.size == 3

    def edit(doc: dict[str, Any]) -> None:
        log = _log(doc, "north")
        log["checkpoint"] = old.cosigned
        log["entries"] = [dict(e, proof=proofs[e["index"]]) for e in log["entries"] if e["index"] < old.size]
        assert log["entries"]  # Nov 1 00:00 local (index 2) is still there, proved against size 3

    return edit


def _second_device_key(doc: dict[str, Any]) -> None:
    """Another key of the same name signs the cosigned checkpoint too, and the file names it."""
    log = _log(doc, "north")
    other = Ed25519Signer.generate(log["origin"])
    log["checkpoint"] = add_signatures(log["checkpoint"], other)
    log["device_vkey"] = other.vkey


BINDING = {
    "kindergarten label": (lambda d: d.update(kindergarten="K2"), "kindergarten 'K2' is not the 'K1'"),
    "month label": (lambda d: d.update(month="2026-10"), "month '2026-10' is not the '2026-11'"),
    "timezone label": (lambda d: d.update(timezone="UTC"), "timezone 'UTC' is not the 'Asia/Almaty'"),
    "child label": (lambda d: d.update(child="B"), "child 'B' is not the 'A'"),
    "dropped entry": (
        lambda d: _log(d, "north")["entries"].pop(1),
        "the entries differ from the 3 the register signed; missing index 4",
    ),
    "dropped log": (
        lambda d: d["logs"].remove(_log(d, "south")),
        f"not the ones the register signed (missing {REG}/kgate/south)",
    ),
    "device key the register did not name": (_second_device_key, "does not name this device key"),
    "statement note signature": (
        lambda d: d.update(signed=_flip_sig(d["signed"], f"{REG} ")),
        "register's signature on the statement note does not verify",
    ),
    "statement note of another body": (
        lambda d: d.update(signed=d["signed"].replace('"month":"2026-11"', '"month":"2026-10"')),
        "register's signature on the statement note does not verify",
    ),
    "statement note dropped": (lambda d: d.update(signed="x\n"), "is not a signed note"),
}


@pytest.mark.parametrize("case", [*sorted(BINDING), "older checkpoint"])
def test_what_the_statement_says_is_signed_by_the_register(
    case: str, built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each change keeps every entry's own proof and signatures valid; only the statement note says no."""
    path = _statement(built, tmp_path / "out", capsys)
    if case == "older checkpoint":
        edit, expect = (
            _older_checkpoint(built),
            "checkpoint (size 3) is not the one the register signed the statement with (size 9)",
        )
    else:
        edit, expect = BINDING[case]
    code, out = _verify(_tampered(path, edit), built.register_vkey, capsys)
    assert code == 1, out
    assert expect in out and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1


def test_a_statement_without_the_register_signature_is_refused(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _statement(built, tmp_path / "out", capsys)
    code, out = _verify(_tampered(path, lambda d: d.pop("signed")), built.register_vkey, capsys)
    assert code == 2 and "lacks the field 'signed'" in out
    code, out = _verify(_tampered(path, lambda d: d.update(version=1)), built.register_vkey, capsys)
    assert code == 2 and "version 1 statements carry no register signature" in out


def test_december_ends_at_new_year_local(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """December's statement holds Dec 31 23:30 local and not Jan 1 00:00 (the month's end is Jan 1)."""
    doc = json.loads(_statement(built, tmp_path / "dec", capsys, month="2026-12").read_bytes())
    times = sorted(
        cbor2.loads(base64.b64decode(e["data"])[15:])["t"] for log in doc["logs"] for e in log["entries"]
    )
    assert times == [_ms("2026-11-30T19:00:00"), _ms("2026-12-31T18:30:00")]
    almaty = ZoneInfo("Asia/Almaty")
    assert month_bounds("2026-12", almaty) == (
        _ms("2026-11-30T19:00:00"), _ms("2026-12-31T19:00:00")
    )  # fmt: skip
    assert month_bounds("2026-12", UTC)[1] == _ms("2027-01-01T00:00:00")
