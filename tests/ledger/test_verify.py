"""Tampering with a ledger is detected and the first bad entry is named (`kgate verify`)."""

from __future__ import annotations

import base64
import shutil
import sqlite3
from pathlib import Path

import pytest

from kgate.cli import main
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.clock import FakeClock
from ledger.keys import load_key
from ledger.note import Ed25519Signer
from ledger.store import hash_id, open_ledger
from tests.conftest import SMALL_LEDGER_ORIGIN


@pytest.fixture
def ledger_copy(small_ledger: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ledger.db"
    shutil.copy(small_ledger, target)
    shutil.copy(small_ledger.with_name("device.key"), tmp_path / "device.key")
    return target


def run_verify(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["verify", str(path), *extra])
    err = capsys.readouterr().err
    return code, err


def sql(path: Path, statement: str, params: tuple[object, ...] = ()) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(statement, params)
    conn.close()


def entry(path: Path, index: int) -> bytes:
    conn = sqlite3.connect(path)
    (data,) = conn.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
    conn.close()
    return bytes(data)


def test_untouched_ledger_verifies(small_ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(small_ledger)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "ok: reg.example/kgate/fixture: 100 entries, 7 signed checkpoints verified\n"


@pytest.mark.parametrize("index", [0, 7, 41])
def test_one_changed_byte_is_named(ledger_copy: Path, capsys: pytest.CaptureFixture[str], index: int) -> None:
    data = bytearray(entry(ledger_copy, index))
    data[-3] ^= 0x01
    sql(ledger_copy, "UPDATE entries SET data = ? WHERE idx = ?", (bytes(data), index))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert f"entry {index}:" in err


def test_changed_byte_in_the_raw_file_is_named(ledger_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = entry(ledger_copy, 23)
    raw = bytearray(ledger_copy.read_bytes())
    at = raw.find(target)
    assert at > 0 and raw.count(target) == 1
    raw[at + len(target) - 2] ^= 0x20  # inside the entry's CBOR, below SQLite's page structure
    ledger_copy.write_bytes(bytes(raw))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert "entry 23:" in err


def test_changed_entry_with_rewritten_leaf_hash_is_still_named(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.merkle import leaf_hash

    data = bytearray(entry(ledger_copy, 50))
    data[-1] ^= 0x02
    sql(ledger_copy, "UPDATE entries SET data = ? WHERE idx = ?", (bytes(data), 50))
    sql(ledger_copy, "UPDATE hashes SET hash = ? WHERE id = ?", (leaf_hash(bytes(data)), hash_id(0, 50)))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert "entry 50:" in err


def test_deleted_entry_is_named(ledger_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql(ledger_copy, "DELETE FROM entries WHERE idx = 12")
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert "entry 12: is missing" in err


def test_swapped_entries_are_named(ledger_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = entry(ledger_copy, 30), entry(ledger_copy, 31)
    sql(ledger_copy, "UPDATE entries SET data = ? WHERE idx = 30", (b,))
    sql(ledger_copy, "UPDATE entries SET data = ? WHERE idx = 31", (a,))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert "entry 30:" in err


def test_tail_truncated_below_a_stored_checkpoint(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The attacker removes the tail and its tree hashes but cannot remove what was signed.
    sql(ledger_copy, "DELETE FROM entries WHERE idx >= 20")
    sql(ledger_copy, "DELETE FROM hashes WHERE (id & ((1 << 56) - 1)) << (id >> 56) >= 20")
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert "entry 20: is missing" in err


def test_rollback_to_an_older_copy_is_caught_with_a_newer_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "dev" / "ledger.db"
    clock = FakeClock(1_790_000_000_000)
    with open_ledger(db, origin="reg.example/kgate/rollback", clock=clock) as ledger:
        for i in range(10):
            ledger.append("in", child=f"C{i}", method="qr")
    old = tmp_path / "old.db"
    shutil.copy(db, old)  # the closed ledger is checkpointed into the main file
    with open_ledger(db, clock=clock) as ledger:
        for i in range(10, 25):
            ledger.append("in", child=f"C{i}", method="qr")
        newer = ledger.checkpoint()
    (tmp_path / "newer.cp").write_text(newer)
    shutil.copy(old, db)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)

    code, err = run_verify(db, capsys)
    assert code == 0, "an old copy alone is internally consistent"
    code, err = run_verify(db, capsys, "--checkpoint", str(tmp_path / "newer.cp"))
    assert code == 1
    assert "entry 10: is missing" in err and "rolled back" in err


def test_presented_checkpoint_from_another_history_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FakeClock(1_790_000_000_000)
    db = tmp_path / "a" / "ledger.db"
    with open_ledger(db, origin="reg.example/kgate/fork", clock=clock) as ledger:
        for i in range(5):
            ledger.append("in", child=f"C{i}", method="qr")
        key = ledger.path.with_name("device.key")
    fork = tmp_path / "b" / "ledger.db"
    fork.parent.mkdir()
    shutil.copy(key, fork.with_name("device.key"))
    with open_ledger(fork, origin="reg.example/kgate/fork", clock=clock) as other:
        for i in range(5):
            other.append("out", child=f"C{i}", method="qr")
        (tmp_path / "fork.cp").write_text(other.checkpoint())
    code, err = run_verify(db, capsys, "--checkpoint", str(tmp_path / "fork.cp"))
    assert code == 1
    assert "disagrees with the presented checkpoint" in err


def test_checkpoint_signed_by_another_key_is_refused(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.checkpoint import Checkpoint, sign_checkpoint
    from ledger.note import Ed25519Signer

    conn = sqlite3.connect(ledger_copy)
    origin = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()[0]
    size, note = conn.execute("SELECT size, note FROM checkpoints ORDER BY size LIMIT 1").fetchone()
    conn.close()
    cp = Checkpoint.parse(note[: note.index("\n\n") + 1])
    forged = sign_checkpoint(Checkpoint(origin, size, cp.root), Ed25519Signer.generate(origin))
    sql(ledger_copy, "UPDATE checkpoints SET note = ? WHERE size = ?", (forged, size))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert f"checkpoint at size {size}" in err


@pytest.mark.parametrize(
    "content", [b"", b"not a database at all\n" * 50, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    code, err = run_verify(path, capsys)
    assert code == 2
    assert err.startswith("kgate: error:") and err.count("\n") == 1
    assert path.read_bytes() == content, "verify must not write"


def test_an_sqlite_file_that_is_not_a_ledger_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    sql(path, "CREATE TABLE t (x)")
    code, err = run_verify(path, capsys)
    assert code == 2
    assert "not a kgate ledger" in err


def test_missing_file_and_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_verify(tmp_path / "nothing.db", capsys)
    assert code == 2 and "no such file" in err
    with pytest.raises(SystemExit) as exc:
        main(["verify"])
    assert exc.value.code == 2


# --- the signatures and roots verify must check (each test fails if that check is removed) ----------


def _note(path: Path, table: str, size: int | None = None) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    where = "" if size is None else f" WHERE size = {int(size)}"
    row = conn.execute(f"SELECT size, note FROM {table}{where} ORDER BY size DESC LIMIT 1").fetchone()
    conn.close()
    return int(row[0]), str(row[1])


def _resigned(note: str, signer: Ed25519Signer, *, root: bytes | None = None) -> str:
    cp = Checkpoint.parse(note[: note.index("\n\n") + 1])
    return sign_checkpoint(Checkpoint(cp.origin, cp.size, cp.root if root is None else root), signer)


def test_newest_checkpoint_signed_by_another_key_is_refused(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, note = _note(ledger_copy, "head")
    forged = _resigned(note, Ed25519Signer.generate(SMALL_LEDGER_ORIGIN))  # same name, right root
    sql(ledger_copy, "UPDATE head SET note = ?", (forged,))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1, err
    assert "newest checkpoint" in err and err.count("\n") == 1


def test_newest_checkpoint_with_a_changed_signature_byte_is_refused(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, note = _note(ledger_copy, "head")
    body, sig = note.split("\n\n")
    prefix, b64 = sig.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x01
    sql(ledger_copy, "UPDATE head SET note = ?", (f"{body}\n\n{prefix} {base64.b64encode(raw).decode()}\n",))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1, err
    assert "newest checkpoint" in err


def test_presented_checkpoint_signed_by_another_key_is_refused(
    small_ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, note = _note(small_ledger, "head")
    presented = tmp_path / "presented.cp"
    presented.write_text(_resigned(note, Ed25519Signer.generate(SMALL_LEDGER_ORIGIN)))
    code, err = run_verify(small_ledger, capsys, "--checkpoint", str(presented))
    assert code == 1, err
    assert "presented checkpoint" in err
    presented.write_text(note)
    assert run_verify(small_ledger, capsys, "--checkpoint", str(presented))[0] == 0


def test_retained_checkpoint_with_a_wrong_root_signed_by_the_device_key_is_refused(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A device that signed two histories: the retained checkpoint at 32 is validly signed, wrong root.
    _, note = _note(ledger_copy, "checkpoints", 32)
    signer = load_key(ledger_copy.with_name("device.key"))
    sql(
        ledger_copy,
        "UPDATE checkpoints SET note = ? WHERE size = 32",
        (_resigned(note, signer, root=bytes(32)),),
    )
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1, err
    assert "checkpoint at size 32" in err and "entry " in err


def test_entries_appended_without_signing_are_named(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Someone without the key adds entries (and their tree hashes, which need no key) after the
    # newest signed checkpoint: the rows are those of a real append with its head row put back.
    size, note = _note(ledger_copy, "head")
    with open_ledger(ledger_copy, clock=FakeClock(1_790_000_500_000)) as ledger:
        for i in range(3):
            ledger.append("in", child=f"X{i}", method="qr")
        assert ledger.size == size + 3 and (size + 3) % 16  # no retained checkpoint covers them
    sql(ledger_copy, "UPDATE head SET size = ?, note = ?", (size, note))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1, err
    assert f"entry {size}: is not covered by the newest signed checkpoint" in err and err.count("\n") == 1


def test_monotonic_time_going_back_within_a_boot_is_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What docs/ledger.md says: neither the appender nor ``kgate verify`` checks ``mono_ns`` order.

    Such a ledger is intact (every entry signed, every hash right); whether its clock is plausible is
    the audit's question (``clock_inconsistent``, docs/audit.md). Restoring a check here means
    changing the docs, and the register's verification with it (one replay for both).
    """
    db = tmp_path / "ledger.db"
    clock = FakeClock(1_790_000_000_000)
    with open_ledger(db, origin="reg.example/kgate/mono", clock=clock) as ledger:
        ledger.append("boot")
        clock.advance(60)
        ledger.append("in", child="C1", method="qr")
        clock.mono_ns -= 30 * 10**9  # the same boot, monotonic time 30 s earlier, wall time later
        clock.time_ms += 1000
        ledger.append("out", child="C1", method="qr")
    code, err = run_verify(db, capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # an interior hash (entries 4..7) is wrong and a later entry cannot be decoded
        ("UPDATE hashes SET hash = zeroblob(32) WHERE id = ?", "entry 4: entries 4..7 do not match"),
        # an interior hash is missing: named before the later bad entry too
        ("DELETE FROM hashes WHERE id = ?", "entry 4: the stored Merkle tree lacks the hash of level 2 node"),
    ],
)
def test_the_first_bad_entry_is_named_when_the_tree_is_compared_in_runs(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str], change: str, named: str
) -> None:
    """Stored hashes are compared a run at a time; the error still names the earliest damage."""
    sql(ledger_copy, change, (hash_id(2, 1),))
    sql(ledger_copy, "UPDATE entries SET data = ? WHERE idx = 9", (b"not an entry",))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert named in err, err


def test_a_wrong_leaf_is_named_before_a_wrong_parent_of_an_earlier_range(
    ledger_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The leaf of entry 8 is compared (when entry 8 is replayed) before the hash of entries 0..15
    is even computed (when entry 15 is): in one run, the order in which they are produced wins."""
    sql(ledger_copy, "UPDATE hashes SET hash = zeroblob(32) WHERE id = ?", (hash_id(4, 0),))
    sql(ledger_copy, "UPDATE hashes SET hash = zeroblob(32) WHERE id = ?", (hash_id(0, 8),))
    code, err = run_verify(ledger_copy, capsys)
    assert code == 1
    assert "entry 8: its bytes do not match the stored leaf hash" in err, err
