"""The ledger, ingest and scan figures in under two minutes, each as a ratio to a raw baseline; JSON.

    .venv/bin/python -P bench/quick.py             # SQLite + a throwaway PostgreSQL cluster, ~1-2 min
    .venv/bin/python -P bench/quick.py --no-pg     # SQLite only
    .venv/bin/python -P bench/quick.py --pg postgresql://postgres@127.0.0.1:5432
    .venv/bin/python -P bench/quick.py --only ledger,ingest --no-pg --verify 100000 --profile  # + cProfile

Run it before and after a change to the per-entry paths: a change that costs speed shows as a lower
ratio. The raw baselines are measured in the same run, so the ratios hold on a loaded machine where the
absolute numbers do not (CPU-bound figures are per CPU second of this process, ``time.process_time``).
Not a timed test: nothing fails, it only reports. The full benchmarks are bench/ledger.py,
bench/sync.py and bench/scan.py (docs/performance.md).

``ratios``:

- ``durable_appends_to_bare_commits``: durable ledger appends/s over bare SQLite INSERT + COMMIT/s
  (WAL, synchronous=FULL), measured in alternating rounds (budget: >= 0.85).
- ``verify_cpu_to_ed25519_verify``: verified entries per CPU second over raw Ed25519 verifications per
  CPU second (the verifier checks one signature per 16 entries besides decoding and hashing each, so
  16 is the ceiling).
- ``ingest_<backend>_to_raw_insert``: entries per second the register verifies, stores, indexes
  (табель) and queues notifications for (``Register.ingest``, batches of 4096, no HTTP), over raw rows
  per second of the same entries inserted by executemany into a bare (device, idx, leaf, data) table
  (SQLite) or by binary COPY (PostgreSQL), one transaction per batch; both wall time. The register's
  own CPU per entry is ``ingest.<backend>.entries_per_cpu_s`` (budget: >= 20,000).
- ``scan_median_pipeline_to_raw_zxing``: the terminal's scan pipeline's median time per synthetic badge
  photo over raw zxing-cpp's on the same photos, interleaved, fastest of 3 rounds per photo
  (bench/scan.py's ``measure``; budget: <= 1.0), and the difference in correct reads beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Keep this script's folder off the import path (bench/ledger.py would shadow the ledger package).
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench import ledger as ledger_bench
from bench import sync as sync_bench
from ledger.clock import FakeClock
from ledger.note import CosignatureSigner
from ledger.store import open_ledger
from ledger.verify import verify_ledger
from register.service import Register
from register.store import open_store


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def profile(what: str, fn: Callable[[], object], top: int = 14) -> None:
    """Run ``fn`` once more under cProfile and print the ``top`` functions by own time to stderr."""
    prof = cProfile.Profile()
    prof.runcall(fn)
    print(f"-- cProfile of {what}, by tottime --", file=sys.stderr)
    pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(top)


def ledger_figures(tmp: Path, durable: int, entries: int, *, profiled: bool = False) -> dict[str, Any]:
    bare, appends = ledger_bench.durable_vs_bare(tmp, durable)
    crypto = ledger_bench.ed25519_baselines(1000)
    db = tmp / "verify" / "ledger.db"
    clock = FakeClock(1_790_000_000_000)
    with open_ledger(db, origin=ledger_bench.ORIGIN, clock=clock) as built:
        built._conn.execute("PRAGMA synchronous=OFF")  # building the input only
        ledger_bench.append_n(built, clock, entries)
    t, cpu = time.perf_counter(), time.process_time()
    report = verify_ledger(db)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    if profiled:
        profile(f"verify_ledger, {entries} entries", lambda: verify_ledger(db))
    return {
        "baseline": {**crypto, "sqlite_full_commits_per_s": bare},
        "durable_appends_per_s": appends,
        "verified_entries": report.size,
        "verified_entries_per_s": rate(report.size, wall),
        "verified_entries_per_cpu_s": rate(report.size, cpu),
    }


def ingest_figures(tmp: Path, entries: int, pg: str | None, *, profiled: bool = False) -> dict[str, Any]:
    ledgers, _ = sync_bench.build_backlog(tmp, [entries])
    batches = sync_bench.make_batches(ledgers[entries], entries)
    dbs = sync_bench.Databases(tmp, pg)
    out: dict[str, Any] = {
        "entries": entries,
        "baseline": sync_bench.raw_baselines(tmp, batches, dbs.fresh("postgresql") if pg else None),
    }
    for backend in dbs.backends():
        with open_store(dbs.fresh(backend)) as store:
            device = store.add_device(_vkey(ledgers[entries]), kindergarten="K", gate="g", now_ms=0)
            register = Register(store, CosignatureSigner.generate(sync_bench.NAME))
            t, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                register.ingest(device, batch, evidence=b"")
                device = store.device_by_keyid(device.keyid) or device
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        out[backend] = {"entries_per_s": rate(entries, wall), "entries_per_cpu_s": rate(entries, cpu)}
    if profiled:
        with open_store(dbs.fresh("sqlite")) as store:
            device = store.add_device(_vkey(ledgers[entries]), kindergarten="K", gate="g", now_ms=0)
            register = Register(store, CosignatureSigner.generate(sync_bench.NAME))

            def ingest_all() -> None:
                for batch in batches:
                    register.ingest(store.device_by_keyid(device.keyid) or device, batch, evidence=b"")

            profile(f"Register.ingest on SQLite, {entries} entries", ingest_all)
    return out


def _vkey(ledger_db: Path) -> str:
    from ledger.store import open_reader

    with open_reader(ledger_db) as reader:
        return reader.vkey


def scan_figures(tmp: Path, photos: int) -> dict[str, Any]:
    from bench import scan as scan_bench
    from terminal.scan import ScanConfig

    (tmp / "photos").mkdir()
    items = scan_bench.load_set(scan_bench.make_photos(tmp / "photos", photos, 2024))
    table = {"pipeline": scan_bench.pipeline_decoder(ScanConfig()), "raw_zxing_cpp": scan_bench.raw_zxing}
    measured = scan_bench.measure(items, table, repeats=3)
    pipeline, raw = measured["pipeline"], measured["raw_zxing_cpp"]
    keep = ("correct", "wrong", "missed", "total", "median_ms", "p95_ms")
    return {
        "photos": photos,
        "pipeline": {k: pipeline[k] for k in keep},
        "raw_zxing_cpp": {k: raw[k] for k in keep},
    }


def ratios(result: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    led = result.get("ledger")
    if led:
        base = led["baseline"]
        out["durable_appends_to_bare_commits"] = round(
            led["durable_appends_per_s"] / base["sqlite_full_commits_per_s"], 3
        )
        out["verify_cpu_to_ed25519_verify"] = round(
            led["verified_entries_per_cpu_s"] / base["ed25519_verify_per_cpu_s"], 2
        )
    ing = result.get("ingest")
    if ing:
        raw = {
            "sqlite": ing["baseline"]["sqlite_executemany_rows_per_s"],
            "postgresql": ing["baseline"].get("postgresql_copy_rows_per_s"),
        }
        for backend in ("sqlite", "postgresql"):
            if backend in ing and raw[backend]:
                ours = ing[backend]["entries_per_s"]
                out[f"ingest_{backend}_to_raw_insert"] = round(ours / raw[backend], 3)
    scan = result.get("scan")
    if scan:
        out["scan_median_pipeline_to_raw_zxing"] = round(
            scan["pipeline"]["median_ms"] / scan["raw_zxing_cpp"]["median_ms"], 3
        )
        out["scan_reads_pipeline_minus_raw_zxing"] = (
            scan["pipeline"]["correct"] - scan["raw_zxing_cpp"]["correct"]
        )
    return out


@contextmanager
def postgres(args: argparse.Namespace) -> Iterator[str | None]:
    if args.no_pg:
        yield None
    elif args.pg:
        yield args.pg.rstrip("/")
    else:
        try:
            cluster = sync_bench.postgres_cluster()
            url = cluster.__enter__()
        except (RuntimeError, OSError) as exc:  # no PostgreSQL binaries here: SQLite only, and say so
            print(f"quick: PostgreSQL skipped ({exc})", file=sys.stderr)
            yield None
            return
        try:
            yield url
        finally:
            cluster.__exit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--durable", type=int, default=400, help="durable appends (and bare commits) to time")
    ap.add_argument("--verify", type=int, default=20_000, help="entries in the ledger to verify")
    ap.add_argument("--ingest", type=int, default=16_384, help="entries to ingest (batches of 4096)")
    ap.add_argument("--photos", type=int, default=100, help="synthetic badge photos to scan")
    ap.add_argument("--pg", help="PostgreSQL base URL (no database); default: a throwaway cluster")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--only", help="comma-separated parts: ledger,ingest,scan (default all)")
    ap.add_argument(
        "--profile", action="store_true", help="also print cProfile tables of verify and ingest to stderr"
    )
    args = ap.parse_args()
    parts = set((args.only or "ledger,ingest,scan").split(","))
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory(prefix="kgate-quick-") as d:
        tmp = Path(d)
        for part in ("ledger", "ingest", "scan"):
            (tmp / part).mkdir()
        if "ledger" in parts:
            result["ledger"] = ledger_figures(
                tmp / "ledger", args.durable, args.verify, profiled=args.profile
            )
        if "ingest" in parts:
            with postgres(args) as pg:
                result["ingest"] = ingest_figures(tmp / "ingest", args.ingest, pg, profiled=args.profile)
        if "scan" in parts:
            result["scan"] = scan_figures(tmp / "scan", args.photos)
    result["ratios"] = ratios(result)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
