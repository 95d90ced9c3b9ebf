"""kill -9 of a process in the middle of appending loses no acknowledged entry."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.verify import verify_ledger
from tests.conftest import READY_S, LineReader

APPENDER = """
import hashlib, sys
from pathlib import Path
from ledger.store import open_ledger
with open_ledger(Path(sys.argv[1]), origin="reg.example/kgate/kill9") as ledger:
    i = 0
    while True:
        a = ledger.append("in", child=f"C{i % 120}", method="qr")
        # acknowledged: COMMIT returned; tell the parent which entry and which bytes
        print(a.index, hashlib.sha256(a.data).hexdigest(), flush=True)
        i += 1
"""


@pytest.mark.slow
@pytest.mark.timeout(600)  # 25 interpreter starts; each may take seconds when the cores are shared
def test_kill9_loop_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    rng = random.Random(99)
    acked: dict[int, str] = {}
    replaced: list[int] = []  # acknowledged, then the index acknowledged again with other bytes: lost
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    for round_ in range(25):
        proc = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(db)], stdout=subprocess.PIPE, text=True, env=env
        )
        lines = LineReader(proc)
        try:
            # Readiness, not a fixed delay: the kill lands after a random number of acknowledged entries
            # (the appender runs ahead of this reader, so it is somewhere inside a later append).
            lines.wait_for(rng.randint(10, 40), f"round {round_}: the appender's acknowledged entries")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(READY_S)
        for line in lines.rest():
            parts = line.split()
            if len(parts) == 2 and len(parts[1]) == 64:  # the last line may be cut by the kill
                index, digest = int(parts[0]), parts[1]
                if acked.get(index, digest) != digest:
                    replaced.append(index)
                acked[index] = digest
    assert len(acked) > 200
    import sqlite3

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {i: hashlib.sha256(d).hexdigest() for i, d in conn.execute("SELECT idx, data FROM entries")}
    conn.close()
    lost = [i for i, h in acked.items() if stored.get(i) != h]
    assert lost == [] and replaced == []
    assert verify_ledger(db).size >= len(acked)
