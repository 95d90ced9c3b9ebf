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

ORIGIN = "reg.example/kgate/powercut"


@pytest.fixture(scope="module")
def vfs() -> object:
    if apsw.sqlitelibversion() != sqlite3.sqlite_version:
        pytest.skip("APSW and sqlite3 link different SQLite libraries; the VFS would not be shared")
    from tests.ledger.powercut import PowerCutVFS

    return PowerCutVFS()


def run_cuts(vfs: object, db: Path, cuts: int, seed: int, *, synchronous: str = "FULL") -> dict[str, int]:
    """Append until the power is cut, ``cuts`` times; count acknowledged entries that did not survive."""
    rng = random.Random(seed)
    clock = FakeClock(1_790_000_000_000)
    acked: dict[int, bytes] = {}
    lost = 0
    for _ in range(cuts):
        vfs.arm(rng.randint(1, 80))  # type: ignore[attr-defined]
        ledger: Ledger | None = None
        try:
            ledger = open_ledger(db, origin=ORIGIN, clock=clock, vfs="powercut")
            if synchronous != "FULL":
                ledger._conn.execute(f"PRAGMA synchronous={synchronous}")
            while True:
                clock.advance(1)
                appended = ledger.append("in", child=f"C{rng.randrange(120)}", method="qr")
                acked[appended.index] = appended.data
        except LedgerError:
            pass  # the power went off mid-operation
        finally:
            if ledger is not None:
                ledger.close()
        vfs.power_cut(rng)  # type: ignore[attr-defined]
        vfs.arm(None)  # type: ignore[attr-defined]

        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        created = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
        stored = dict(conn.execute("SELECT idx, data FROM entries")) if created else {}
        conn.close()
        gone = [i for i, data in acked.items() if stored.get(i) != data]
        lost += len(gone)
        for i in gone:  # later appends reuse the position; count each loss once
            del acked[i]
    return {"acknowledged": len(acked) + lost, "lost": lost}


def test_full_sync_loses_nothing_over_200_cuts(vfs: object, tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    result = run_cuts(vfs, db, cuts=200, seed=2026)
    assert result["acknowledged"] > 300, result
    assert result["lost"] == 0, result
    report = verify_ledger(db)
    assert report.size >= result["acknowledged"]


def test_normal_sync_loses_acknowledged_entries_so_the_test_can_fail(vfs: object, tmp_path: Path) -> None:
    result = run_cuts(vfs, tmp_path / "ledger.db", cuts=60, seed=7, synchronous="NORMAL")
    assert result["lost"] > 0, f"synchronous=NORMAL should lose acknowledged entries: {result}"
