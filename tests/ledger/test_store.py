"""The SQLite ledger: durable settings, keys on disk, bad input refused with nothing written."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kgate.cli import main
from ledger.clock import FakeClock
from ledger.entry import decode_entry
from ledger.errors import CorruptLedger, DiskFull, EntryError, KeyFileError, LedgerError, StorageError
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.store import RETAIN_EVERY, open_ledger, open_reader

ORIGIN = "reg.example/kgate/test-1"


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "dev" / "ledger.db"


def make(path: Path, n: int) -> None:
    with open_ledger(path, origin=ORIGIN, clock=FakeClock(1_790_000_000_000)) as ledger:
        for i in range(n):
            ledger.append("in", child=f"C{i}", method="qr", evidence={"badge": f"B{i}"})


def test_pragmas_are_durable(ledger_path: Path) -> None:
    make(ledger_path, 1)
    conn = sqlite3.connect(ledger_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with open_ledger(ledger_path) as ledger:
        conn = ledger._conn
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_key_is_generated_on_first_use_with_mode_0600(ledger_path: Path) -> None:
    make(ledger_path, 3)
    key = ledger_path.with_name("device.key")
    st = key.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert key.read_text().startswith(f"PRIVATE+KEY+{ORIGIN}+")


def test_entries_are_exact_bytes_with_proofs(ledger_path: Path) -> None:
    make(ledger_path, 37)
    with open_reader(ledger_path) as reader:
        assert reader.size == 37
        data = reader.entries(0, 37)
        assert [decode_entry(d).index for d in data] == list(range(37))
        root = reader.tree_hash(37)
        for i in (0, 5, 36):
            verify_inclusion(leaf_hash(data[i]), i, 37, reader.inclusion_proof(i, 37), root)
        verify_consistency(16, 37, reader.tree_hash(16), root, reader.consistency_proof(16, 37))
        assert reader.checkpoint_at(RETAIN_EVERY) is not None
        assert reader.checkpoint_at(37) == reader.checkpoint()
        assert reader.checkpoint_at(17) is None


def test_reopen_continues_the_same_tree(ledger_path: Path) -> None:
    make(ledger_path, 5)
    with open_ledger(ledger_path, clock=FakeClock(1_790_000_100_000)) as ledger:
        appended = ledger.append("out", child="C1", method="qr")
        assert appended.index == 5 and ledger.size == 6
    assert main(["verify", str(ledger_path)]) == 0


def test_invalid_event_writes_nothing(ledger_path: Path) -> None:
    make(ledger_path, 2)
    with open_ledger(ledger_path) as ledger:
        with pytest.raises(EntryError):
            ledger.append("in", child="C1")  # no method
        with pytest.raises(EntryError):
            ledger.append("in", child="bad id; DROP TABLE entries", method="qr")
        assert ledger.size == 2
        assert ledger.append("out", child="C1", method="qr").index == 2


def test_disk_full_is_reported_and_nothing_half_written(ledger_path: Path) -> None:
    make(ledger_path, 3)
    with open_ledger(ledger_path) as ledger:
        pages = ledger._conn.execute("PRAGMA page_count").fetchone()[0]
        ledger._conn.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(DiskFull):
            for i in range(500):
                ledger.append("in", child=f"X{i}", method="qr", evidence={"pad": "x" * 200})
        reached = ledger.size
        ledger._conn.execute("PRAGMA max_page_count=1073741823")  # space freed: appending recovers
        assert ledger.append("out", child="C1", method="qr").index == reached
    assert main(["verify", str(ledger_path)]) == 0


def test_loose_key_mode_refuses_to_start_and_writes_nothing(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make(ledger_path, 2)
    key = ledger_path.with_name("device.key")
    key.chmod(0o644)
    before = ledger_path.read_bytes()
    with pytest.raises(KeyFileError, match="mode 0644; it must be 0600"):
        open_ledger(ledger_path)
    assert ledger_path.read_bytes() == before


def test_key_of_another_owner_is_refused(ledger_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    make(ledger_path, 1)
    key = ledger_path.with_name("device.key")
    os.chown(key, 4242, -1)
    with pytest.raises(KeyFileError, match="owned by uid 4242"):
        open_ledger(ledger_path)


def test_missing_or_wrong_key_is_refused(ledger_path: Path, tmp_path: Path) -> None:
    make(ledger_path, 1)
    key = ledger_path.with_name("device.key")
    key.rename(tmp_path / "moved.key")
    with pytest.raises(KeyFileError):
        open_ledger(ledger_path, key_path=tmp_path / "missing" / "device.key", origin=None)
    # A different key with the right name is not the ledger's key.
    other = tmp_path / "other" / "ledger.db"
    make(other, 1)
    with pytest.raises(LedgerError, match="not the key this ledger was created with"):
        open_ledger(ledger_path, key_path=other.with_name("device.key"))


def test_new_ledger_with_bad_key_creates_no_database(tmp_path: Path) -> None:
    key = tmp_path / "device.key"
    key.write_text("garbage\n")
    key.chmod(0o600)
    db = tmp_path / "ledger.db"
    with pytest.raises(KeyFileError, match="not a valid signed-note private key"):
        open_ledger(db, key_path=key, origin=ORIGIN)
    assert not db.exists()


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    db.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(StorageError):
        open_ledger(db)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE x (y)")
    conn.close()
    with pytest.raises(CorruptLedger, match="not a kgate ledger"):
        open_ledger(other)


def test_cli_prints_checkpoint_that_verifies_under_cli_vkey(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An independent, minimal C2SP signed-note verifier (not ledger.note) accepts our output."""
    make(ledger_path, 20)
    assert main(["ledger", "vkey", str(ledger_path)]) == 0
    vkey = capsys.readouterr().out.strip()
    assert main(["ledger", "checkpoint", str(ledger_path)]) == 0
    note = capsys.readouterr().out

    name, hash_hex, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64)
    assert key[0] == 0x01 and len(key) == 33
    assert hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() == hash_hex
    text, sigs = note.split("\n\n", 1)
    text += "\n"
    origin, size, root_b64 = text.splitlines()
    assert origin == name and int(size) == 20 and len(base64.b64decode(root_b64)) == 32
    line = sigs.rstrip("\n")
    assert line.startswith(f"\u2014 {name} ")
    blob = base64.b64decode(line.split(" ")[2])
    assert blob[:4].hex() == hash_hex
    Ed25519PublicKey.from_public_bytes(key[1:]).verify(blob[4:], text.encode())


def test_two_writers_on_one_file_each_continue_the_stored_log(ledger_path: Path) -> None:
    """A second writer's appends are noticed by the first (its insert finds the log longer than its
    tree and reloads), so neither overwrites nor skips an index and the file verifies."""
    clock = FakeClock(1_790_000_000_000)
    with open_ledger(ledger_path, origin=ORIGIN, clock=clock) as first:
        first.append("boot")
        with open_ledger(ledger_path, clock=clock) as second:
            for i in range(1, 40):
                writer = second if i % 3 == 0 or i % 7 == 0 else first
                assert writer.append("in", child=f"C{i}", method="qr").index == i
        assert first.append("note", reason="after the second writer closed").index == 40
    assert main(["verify", str(ledger_path)]) == 0


def test_a_writer_whose_file_was_swapped_for_a_shorter_copy_continues_the_stored_log(
    ledger_path: Path, tmp_path: Path
) -> None:
    """The file behind a running writer rolled back (restored from a copy): no gap is written."""
    clock = FakeClock(1_790_000_000_000)
    make(ledger_path, 5)
    copy = tmp_path / "copy.db"
    src = sqlite3.connect(ledger_path)
    src.execute("VACUUM INTO ?", (str(copy),))
    src.close()
    with open_ledger(ledger_path, clock=clock) as writer:
        for _ in range(4):
            writer.append("boot")
        restore = sqlite3.connect(ledger_path)
        back = sqlite3.connect(copy)
        back.backup(restore)
        back.close()
        restore.close()
        assert writer.append("boot").index == 5
    assert main(["verify", str(ledger_path)]) == 0
