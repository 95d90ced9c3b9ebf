"""Power loss during appends loses no acknowledged entry (and the test can tell when it would)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from ledger.clock import FakeClock
from ledger.errors import LedgerError
from ledger.store import Ledger, open_ledger
from ledger.verify import verify_ledger

apsw = pytest.importorskip("apsw", reason="APSW (Debian python3-apsw) is needed for the power-cut VFS")

from tests.ledger.powercut import PowerCutVFS  # noqa: E402 - needs apsw, checked above

ORIGIN = "reg.example/kgate/powercut"


@pytest.fixture(scope="module")
def vfs() -> PowerCutVFS:
    if apsw.sqlitelibversion() != sqlite3.sqlite_version:
        pytest.skip("APSW and sqlite3 link different SQLite libraries; the VFS would not be shared")
    return PowerCutVFS()


MAX_APPENDS_PER_CUT = 200  # a cut is armed within 80 writes; every append writes at least twice
CHECKPOINT_EVERY = 3  # appends between WAL checkpoints, so that cuts also land inside checkpointing


def _checkpoint(db: Path) -> None:
    """Copy the WAL back into the database from a second connection (as another process would)."""
    conn = sqlite3.connect(f"file:{db}?vfs=powercut", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()


def _appends_until_the_cut(
    vfs: PowerCutVFS,
    db: Path,
    clock: FakeClock,
    rng: random.Random,
    acked: dict[int, bytes],
    *,
    synchronous: str,
) -> None:
    """Append (and checkpoint now and then) until the armed cut fires; only the cut may end this."""
    ledger: Ledger | None = None
    try:
        vfs.phase = "open"
        ledger = open_ledger(db, origin=ORIGIN, clock=clock, vfs="powercut")
        if synchronous != "FULL":
            ledger._conn.execute(f"PRAGMA synchronous={synchronous}")
        for n in range(MAX_APPENDS_PER_CUT):
            clock.advance(1)
            vfs.phase = "append"
            appended = ledger.append("in", child=f"C{rng.randrange(120)}", method="qr")
            acked[appended.index] = appended.data
            if n % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                vfs.phase = "checkpoint"
                _checkpoint(db)
        pytest.fail(f"{MAX_APPENDS_PER_CUT} appends and no error although the power was cut: an I/O error "
                    f"was swallowed (cut fired: {vfs.dead}, in {vfs.cut_phase})")  # fmt: skip
    except (LedgerError, sqlite3.Error):
        if not vfs.dead:
            raise  # a real failure, not the simulated cut
    finally:
        if ledger is not None:
            ledger.close()


def run_cuts(
    vfs: PowerCutVFS, db: Path, cuts: int, seed: int, *, synchronous: str = "FULL"
) -> dict[str, int]:
    """Append until the power is cut, ``cuts`` times; count acknowledged entries that did not survive."""
    rng = random.Random(seed)
    clock = FakeClock(1_790_000_000_000)
    acked: dict[int, bytes] = {}
    lost = 0
    phases: dict[str, int] = {}
    for _ in range(cuts):
        vfs.arm(rng.randint(1, 80))
        _appends_until_the_cut(vfs, db, clock, rng, acked, synchronous=synchronous)
        assert vfs.cut_phase is not None
        phases[vfs.cut_phase] = phases.get(vfs.cut_phase, 0) + 1
        if vfs.cut_phase == "checkpoint" and vfs.cut_path == str(db):
            phases["checkpoint_db_write"] = phases.get("checkpoint_db_write", 0) + 1
        vfs.power_cut(rng)
        vfs.arm(None)

        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        created = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
        stored = dict(conn.execute("SELECT idx, data FROM entries")) if created else {}
        conn.close()
        gone = [i for i, data in acked.items() if stored.get(i) != data]
        lost += len(gone)
        for i in gone:  # later appends reuse the position; count each loss once
            del acked[i]
    return {"acknowledged": len(acked) + lost, "lost": lost, **phases}


@pytest.mark.slow
def test_full_sync_loses_nothing_over_200_cuts(vfs: PowerCutVFS, tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    result = run_cuts(vfs, db, cuts=200, seed=2026)
    assert result["acknowledged"] > 300, result
    assert result["lost"] == 0, result
    # {'acknowledged': 548, 'open': 5, 'append': 159, 'checkpoint': 36, 'checkpoint_db_write': 26} today
    assert result.get("checkpoint", 0) >= 20, f"too few cuts inside a WAL checkpoint: {result}"
    assert result.get("checkpoint_db_write", 0) >= 10, f"too few cuts while copying WAL pages back: {result}"
    report = verify_ledger(db)
    assert report.size >= result["acknowledged"]


def test_normal_sync_loses_acknowledged_entries_so_the_test_can_fail(
    vfs: PowerCutVFS, tmp_path: Path
) -> None:
    result = run_cuts(vfs, tmp_path / "ledger.db", cuts=60, seed=7, synchronous="NORMAL")
    assert result["lost"] > 0, f"synchronous=NORMAL should lose acknowledged entries: {result}"
