"""Ledger benchmark: durable appends/s, verified entries/s, proof sizes and times, bytes per entry.

Prints one JSON object. Raw-library baselines measured in the same run sit beside each number:
Ed25519 sign/verify (cryptography), and an SQLite INSERT + COMMIT with WAL and synchronous=FULL;
``ratios`` divides each figure by its baseline, which stays meaningful on a loaded machine where the
absolute numbers do not. Verification is reported per wall second and per CPU second of this process
(``time.process_time``: what one core does, whatever else the machine is running).

    .venv/bin/python bench/ledger.py            # 10^3, 10^5 and 10^6 entries (several minutes)
    .venv/bin/python bench/ledger.py --max 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# This script is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.clock import FakeClock
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.store import Ledger, open_ledger, open_reader
from ledger.verify import verify_ledger

ORIGIN = "register.bench.kgate.kz/kgate/bench-1"


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def ed25519_baselines(n: int = 3000) -> dict[str, float]:
    """Raw Ed25519 sign and verify per second (cryptography, a 120-byte message); verify also per CPU
    second of this process, to set beside the verifier's own per-CPU-second figure."""
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    msg = b"x" * 120
    t = time.perf_counter()
    for _ in range(n):
        sig = key.sign(msg)
    sign = rate(n, time.perf_counter() - t)
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        pub.verify(sig, msg)
    verify, verify_cpu = rate(n, time.perf_counter() - t), rate(n, time.process_time() - cpu)
    return {
        "ed25519_sign_per_s": sign,
        "ed25519_verify_per_s": verify,
        "ed25519_verify_per_cpu_s": verify_cpu,
    }


def durable_vs_bare(tmp: Path, n: int, rounds: int = 8) -> tuple[float, float]:
    """(bare SQLite FULL commits/s, durable ledger appends/s), measured in alternating rounds.

    Both are fsync-bound; on a shared machine the disk's speed drifts within seconds, so the two are
    interleaved (``rounds`` runs of each, ``n`` of each in all) and their ratio compares like with like.
    The bare commit is one INSERT of a 120-byte blob in WAL with synchronous=FULL.
    """
    conn = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, data BLOB)")
    msg = b"x" * 120
    clock = FakeClock(1_790_000_000_000)
    bare = durable = 0.0
    per = max(1, n // rounds)
    with open_ledger(tmp / "durable" / "ledger.db", origin=ORIGIN, clock=clock) as ledger:
        for r in range(rounds):
            t = time.perf_counter()
            for i in range(r * per, (r + 1) * per):
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?, ?)", (i, msg))
                conn.execute("COMMIT")
            bare += time.perf_counter() - t
            t = time.perf_counter()
            append_n(ledger, clock, per)
            durable += time.perf_counter() - t
    conn.close()
    return rate(per * rounds, bare), rate(per * rounds, durable)


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Each figure over its raw baseline from the same run.

    ``durable_appends_to_bare_commits``: a durable append against a bare SQLite INSERT + COMMIT
    (both WAL, synchronous=FULL). ``verify_cpu_to_ed25519_verify_<n>``: entries verified per CPU second
    over raw Ed25519 verifications per CPU second (a verifier checks one signature per 16 entries, so
    16 is the ceiling with nothing else to do).
    """
    base = result["baseline"]
    out = {
        "durable_appends_to_bare_commits": round(
            result["durable_appends_per_s"] / base["sqlite_full_commits_per_s"], 3
        )
    }
    for size, value in result.get("verified_entries_per_cpu_s", {}).items():
        out[f"verify_cpu_to_ed25519_verify_{size}"] = round(value / base["ed25519_verify_per_cpu_s"], 2)
    return out


def append_n(ledger: Ledger, clock: FakeClock, n: int) -> None:
    for i in range(n):
        clock.advance(0.5)
        ledger.append(
            "in", child=f"KZ07{i % 120:04d}", method="qr", evidence={"group": "Балапан"}, roster_version=1
        )


def proofs(db: Path, size: int) -> dict[str, object]:
    """Inclusion and consistency proofs in a tree of ``size`` leaves: sizes and timings (ms)."""
    with open_reader(db) as reader:
        root = reader.tree_hash(size)
        half = max(1, size // 2)
        old_root = reader.tree_hash(half)
        incl, cons, incl_v, cons_v = [], [], [], []
        for k in range(200):
            index = (k * 7919) % size
            t = time.perf_counter()
            proof = reader.inclusion_proof(index, size)
            incl.append(time.perf_counter() - t)
            (data,) = reader.entries(index, index + 1)
            t = time.perf_counter()
            verify_inclusion(leaf_hash(data), index, size, proof, root)
            incl_v.append(time.perf_counter() - t)
        for _ in range(200):
            t = time.perf_counter()
            cproof = reader.consistency_proof(half, size)
            cons.append(time.perf_counter() - t)
            t = time.perf_counter()
            verify_consistency(half, size, old_root, root, cproof)
            cons_v.append(time.perf_counter() - t)

    def ms(xs: list[float]) -> float:
        return round(statistics.median(xs) * 1000, 3)

    return {
        "size": size,
        "inclusion_hashes": len(proof),
        "inclusion_make_ms": ms(incl),
        "inclusion_verify_ms": ms(incl_v),
        "consistency_hashes": len(cproof),
        "consistency_make_ms": ms(cons),
        "consistency_verify_ms": ms(cons_v),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max", type=int, default=1_000_000, help="largest ledger (default 10^6)")
    parser.add_argument("--durable", type=int, default=2000, help="durable appends to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgate-bench-") as d:
        tmp = Path(d)
        bare, durable = durable_vs_bare(tmp, args.durable)
        result: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "baseline": {**ed25519_baselines(), "sqlite_full_commits_per_s": bare},
            "durable_appends_per_s": durable,
        }
        # The large ledgers are built with the same append code but without fsync (bench only).
        db = tmp / "big" / "ledger.db"
        clock = FakeClock(1_790_000_000_000)
        sizes = [s for s in (1_000, 100_000, 1_000_000) if s <= args.max]
        points, verify_rates, verify_cpu = [], {}, {}
        with open_ledger(db, origin=ORIGIN, clock=clock) as ledger:
            ledger._conn.execute("PRAGMA synchronous=OFF")
            built = 0
            t_build = time.perf_counter()
            for size in sizes:
                append_n(ledger, clock, size - built)
                built = size
                ledger._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                points.append(proofs(db, size))
                t, cpu = time.perf_counter(), time.process_time()
                report = verify_ledger(db)
                verify_rates[str(size)] = rate(report.size, time.perf_counter() - t)
                verify_cpu[str(size)] = rate(report.size, time.process_time() - cpu)
            build_rate = rate(built, time.perf_counter() - t_build)
        result["nondurable_appends_per_s"] = build_rate
        result["verified_entries_per_s"] = verify_rates
        result["verified_entries_per_cpu_s"] = verify_cpu
        result["ratios"] = ratios(result)
        result["proofs"] = points
        result["bytes_per_entry"] = round(db.stat().st_size / built, 1)
        result["entries"] = built
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
