"""`kgate verify` on hostile ledger and register databases: exit 1 or 2, one line, never "ok", and the
file is left byte-identical with no -wal/-shm beside it (the storage boundary's read-only opener)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kgate.cli import main
from ledger.clock import FakeClock
from ledger.note import CosignatureSigner
from ledger.store import hash_id, open_ledger
from register.ingest import Batch
from register.service import Register
from register.store import open_store

ORIGIN = "reg.test/kgate/hostile-1"
ENTRIES = 40
DEVICE_COLUMNS = (
    "id INTEGER PRIMARY KEY, origin, keyid, vkey, kindergarten, gate, added_ms, disabled, size, "
    "last_seen_ms, heartbeat"
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small real ledger and a real register database holding its log, both closed."""
    root = tmp_path_factory.mktemp("pristine")
    ledger_db = root / "ledger.db"
    with open_ledger(ledger_db, origin=ORIGIN, clock=FakeClock(1_764_000_000_000, synced=True)) as ledger:
        ledger.append("boot")
        for i in range(1, ENTRIES):
            ledger.append("in", child=f"c-{i:03d}", method="qr", evidence={"badge": "X" * 16})
        entries, note, vkey = ledger.entries(0, ENTRIES), ledger.checkpoint(), ledger.vkey
    register_db = root / "register.db"
    with open_store(str(register_db)) as store:
        device = store.add_device(vkey, kindergarten="K", gate="1", now_ms=0)
        register = Register(store, CosignatureSigner.generate("reg.test"))
        register.ingest(device, Batch(ORIGIN, 0, tuple(entries), note, 0, ()), evidence=b"")
    return ledger_db, register_db


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    conn.close()


def _rebuild(table: str, columns: str) -> Callable[[Path], None]:
    """Recreate ``table`` without its constraints (what a hostile editor can do), keeping its rows."""

    def edit(path: Path) -> None:
        _sql(
            path,
            f"ALTER TABLE {table} RENAME TO old_{table}",
            f"CREATE TABLE {table} ({columns})",
            f"INSERT INTO {table} SELECT * FROM old_{table}",
            f"DROP TABLE old_{table}",
        )

    return edit


def _then(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        for step in edits:
            step(path)

    return edit


def _statements(*sql: str) -> Callable[[Path], None]:
    return lambda path: _sql(path, *sql)


LEDGER_CASES: dict[str, Callable[[Path], object]] = {
    "no meta table": _statements("DROP TABLE meta"),
    "meta without origin": _statements("DELETE FROM meta WHERE key = 'origin'"),
    "meta vkey NULL": _then(
        _rebuild("meta", "key, value"), _statements("UPDATE meta SET value = NULL WHERE key = 'vkey'")
    ),
    "entry data NULL": _then(
        _rebuild("entries", "idx INTEGER PRIMARY KEY, data"),
        _statements("UPDATE entries SET data = NULL WHERE idx = 7"),
    ),
    "entry data as text": _then(
        _rebuild("entries", "idx INTEGER PRIMARY KEY, data"),
        _statements("UPDATE entries SET data = 'kgate' WHERE idx = 7"),
    ),
    "entry data as integer": _then(
        _rebuild("entries", "idx INTEGER PRIMARY KEY, data"),
        _statements("UPDATE entries SET data = 5 WHERE idx = 7"),
    ),
    "negative hash id": _statements(f"INSERT INTO hashes (id, hash) VALUES ({-(1 << 60)}, x'00')"),
    "hash NULL": _then(
        _rebuild("hashes", "id INTEGER PRIMARY KEY, hash"),
        _statements("UPDATE hashes SET hash = NULL WHERE id = 3"),
    ),
    "hash as text": _then(
        _rebuild("hashes", "id INTEGER PRIMARY KEY, hash"),
        _statements(f"UPDATE hashes SET hash = 'x' WHERE id = {hash_id(1, 2)}"),
    ),
    "checkpoint note as integer": _then(
        _rebuild("checkpoints", "size INTEGER PRIMARY KEY, note"),
        _statements("UPDATE checkpoints SET note = 7 WHERE size = 16"),
    ),
    "head note NULL": _then(
        _rebuild("head", "one INTEGER PRIMARY KEY, size, note"), _statements("UPDATE head SET note = NULL")
    ),
    "head size as text": _statements("UPDATE head SET size = 'forty'"),
    "head size negative": _statements("UPDATE head SET size = -40"),
    "head size beyond its note": _statements(f"UPDATE head SET size = {ENTRIES + 1}"),
    "head size below its note": _statements("UPDATE head SET size = 32"),
    "head row added": _statements("INSERT INTO head (one, size, note) SELECT 2, size, note FROM head"),
    # The newest signed checkpoint swapped for an older one: the entries after it are unsigned.
    "head note older than the entries": _statements(
        "UPDATE head SET size = 32, note = (SELECT note FROM checkpoints WHERE size = 32)"
    ),
    "schema version 99": _statements("PRAGMA user_version = 99"),
    "foreign application id": _statements("PRAGMA application_id = 7"),
    "no hashes table": _statements("DROP TABLE hashes"),
    "truncated file": lambda path: path.write_bytes(path.read_bytes()[:5000]),
    "empty file": lambda path: path.write_bytes(b""),
    "text file": lambda path: path.write_text("not a database\n" * 50),
}

REGISTER_CASES: dict[str, Callable[[Path], object]] = {
    "schema 99": _statements("UPDATE meta SET value = '99' WHERE key LIKE 'schema%'"),
    "no schema row": _statements("DELETE FROM meta WHERE key LIKE 'schema%'"),
    "unknown component": _statements("INSERT INTO meta (key, value) VALUES ('schema.future', '1')"),
    "no meta table": _statements("DROP TABLE meta"),
    "device size NULL": _then(
        _rebuild(
            "devices",
            DEVICE_COLUMNS,
        ),
        _statements("UPDATE devices SET size = NULL"),
    ),
    "device size as text": _then(
        _rebuild(
            "devices",
            DEVICE_COLUMNS,
        ),
        _statements("UPDATE devices SET size = 'forty'"),
    ),
    "device vkey garbage": _statements("UPDATE devices SET vkey = 'garbage'"),
    "entry data NULL": _then(
        _rebuild("entries", "device_id, idx, leaf, data, PRIMARY KEY (device_id, idx)"),
        _statements("UPDATE entries SET data = NULL WHERE idx = 9"),
    ),
    "entry leaf NULL": _then(
        _rebuild("entries", "device_id, idx, leaf, data, PRIMARY KEY (device_id, idx)"),
        _statements("UPDATE entries SET leaf = NULL WHERE idx = 9"),
    ),
    "entry index as text": _then(
        _rebuild("entries", "device_id, idx, leaf, data, PRIMARY KEY (device_id, idx)"),
        _statements("UPDATE entries SET idx = 'nine' WHERE idx = 9"),
    ),
    "cosigned NULL": _then(
        _rebuild(
            "checkpoints", "device_id, size, root, note, cosigned, received_ms, PRIMARY KEY (device_id, size)"
        ),
        _statements("UPDATE checkpoints SET cosigned = NULL"),
    ),
    "negative hash index": _statements(
        "INSERT INTO hashes (device_id, level, idx, hash) VALUES (1, 1, -5, x'00')"
    ),
    "entries table dropped": _statements("DROP TABLE hashes", "DROP TABLE entries"),
    "checkpoint device_id as text": _statements("UPDATE checkpoints SET device_id = 'one'"),
    "checkpoint copied to device_id text": _statements(
        "INSERT INTO checkpoints SELECT 'one', size, root, note, cosigned, received_ms FROM checkpoints"
    ),
    "checkpoint copied to no device": _statements(
        "INSERT INTO checkpoints SELECT 99, size, root, note, cosigned, received_ms FROM checkpoints"
    ),
    "entries copied to no device": _statements(
        "INSERT INTO entries SELECT 7, idx, leaf, data FROM entries WHERE idx < 3"
    ),
    "hashes copied to device_id text": _statements(
        "INSERT INTO hashes SELECT 'x1', level, idx, hash FROM hashes WHERE level = 1"
    ),
    "checkpoints deleted (entries unsigned)": _statements("DELETE FROM checkpoints"),
    "truncated file": lambda path: path.write_bytes(path.read_bytes()[:4096]),
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    before = _digest(path)
    code = main(["verify", str(path)])
    out, err = capsys.readouterr()
    assert code in (1, 2), f"verify said ok (exit {code}): {out}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kgate: error: "), err
    assert "Traceback" not in err
    assert _digest(path) == before, "kgate verify changed the file it verified"
    for suffix in ("-wal", "-shm", "-journal"):
        assert not Path(f"{path}{suffix}").exists(), f"kgate verify left {path.name}{suffix} beside it"
    return lines[0]


@pytest.mark.parametrize("case", sorted(LEDGER_CASES))
def test_hostile_ledger(
    case: str, pristine: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.db"
    shutil.copy(pristine[0], path)
    LEDGER_CASES[case](path)
    _check_refused(path, capsys)


@pytest.mark.parametrize("case", sorted(REGISTER_CASES))
def test_hostile_register(
    case: str, pristine: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "register.db"
    shutil.copy(pristine[1], path)
    REGISTER_CASES[case](path)
    _check_refused(path, capsys)


@pytest.mark.parametrize("which", [0, 1])
def test_untouched_copies_verify_and_stay_untouched(
    which: int, pristine: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control case: the same checks pass on the untouched files, which verify (exit 0)."""
    path = tmp_path / pristine[which].name
    shutil.copy(pristine[which], path)
    before = _digest(path)
    assert main(["verify", str(path)]) == 0, capsys.readouterr().err
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_a_missing_hash_row_is_a_corrupt_ledger_for_the_sync_agent(
    pristine: tuple[Path, Path], tmp_path: Path
) -> None:
    """A damaged tree reaches the agent as CorruptLedger naming the node, never a KeyError."""
    from ledger.errors import CorruptLedger
    from ledger.store import open_reader

    path = tmp_path / "ledger.db"
    shutil.copy(pristine[0], path)
    _sql(path, f"DELETE FROM hashes WHERE id = {hash_id(1, 3)}")
    with open_reader(path) as reader, pytest.raises(CorruptLedger, match=r"level 1 node 3 is missing"):
        reader.inclusion_proof(4, ENTRIES)
