"""Register ingest throughput (entries verified and stored per second) on SQLite or PostgreSQL; prints JSON.

    .venv/bin/python -P bench/register_ingest.py [--db URL] [--entries N] [--batch 4096]

Calls the ingest path directly (no HTTP) so it measures verification + storage. The device ledger is
built with the real append code but ``PRAGMA synchronous=OFF`` (building only, as bench/ledger.py does).
bench/sync.py measures the same path over HTTP, with raw baselines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# Keep this script's folder off the import path (bench/ledger.py would shadow the ledger package).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from ledger.clock import FakeClock
from ledger.note import CosignatureSigner
from ledger.store import open_ledger
from register.ingest import Batch
from register.service import Register
from register.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="register database URL (default: a temp SQLite file)")
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=4096)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(1_700_000_000_000)
        ledger = open_ledger(Path(tmp) / "ledger.db", origin="bench.test/kgate/dev1", clock=clock)
        ledger._conn.execute("PRAGMA synchronous=OFF")  # building the input only
        for i in range(args.entries):
            ledger.append("in", child=f"C{i % 100}", method="qr")
            clock.advance(1)
        store = open_store(args.db or f"sqlite:///{tmp}/register.db")
        device = store.add_device(ledger.vkey, kindergarten="K", gate="g", now_ms=0)
        register = Register(store, CosignatureSigner.generate("bench.test"), max_batch=args.batch)
        batches = []
        start = 0
        while start < args.entries:
            end = min(args.entries, (start + args.batch) // 16 * 16 or start + args.batch)
            if end <= start or ledger.checkpoint_at(end) is None:
                end = args.entries
            cp = ledger.checkpoint_at(end)
            assert cp is not None
            entries = tuple(ledger.entries(start, end))
            batches.append(
                Batch(ledger.origin, start, entries, cp, start, tuple(ledger.consistency_proof(start, end)))
            )
            start = end
        t0 = time.perf_counter()
        for b in batches:
            register.ingest(device, b, evidence=b"")
        elapsed = time.perf_counter() - t0
        store.close()
        ledger.close()
    backend = "postgresql" if (args.db or "").startswith("postgres") else "sqlite"
    result = {"backend": backend, "entries": args.entries, "batch": args.batch, "seconds": round(elapsed, 3)}
    print(json.dumps({**result, "entries_per_s": round(args.entries / elapsed)}))


if __name__ == "__main__":
    main()
