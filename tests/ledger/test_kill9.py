"""kill -9 of a process in the middle of appending loses no acknowledged entry."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.verify import verify_ledger

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
def test_kill9_loop_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    rng = random.Random(99)
    acked: dict[int, str] = {}
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    for _ in range(25):
        proc = subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(db)], stdout=subprocess.PIPE, text=True, env=env
        )
        time.sleep(rng.uniform(0.3, 0.8))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:  # the last line may be cut by the kill
                acked[int(parts[0])] = parts[1]
    assert len(acked) > 200
    import sqlite3

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {i: hashlib.sha256(d).hexdigest() for i, d in conn.execute("SELECT idx, data FROM entries")}
    conn.close()
    lost = [i for i, h in acked.items() if stored.get(i) != h]
    assert lost == []
    assert verify_ledger(db).size >= len(acked)
