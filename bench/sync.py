"""Sync benchmark over real HTTP on loopback: the real SyncAgent against `kgate register serve`; prints JSON.

    .venv/bin/python -P bench/sync.py            # full: 100k backlog, 1,000 devices, 10k/50k/100k memory
    .venv/bin/python -P bench/sync.py --quick    # small sizes (a minute or so)

Sections of the output:

- ``backlog``: a device ledger of ``--backlog`` entries delivered by one SyncAgent (batches of 4096) to a
  register subprocess on SQLite and on PostgreSQL; seconds and entries/s, and the register's copy is
  compared byte for byte with the device's.
- ``ingest``: the register's verify-and-store path without HTTP (``Register.ingest``), on both backends,
  beside raw baselines measured in the same run (Ed25519 verify/s, SHA-256 leaf hashes/s, the batch
  checks alone, raw SQLite executemany and raw PostgreSQL executemany / binary COPY rows/s).
- ``devices``: ``--devices`` ledgers of ``--device-entries`` entries each, enrolled, pushed concurrently
  by a pool of ``--workers`` threads (each device's pushes sequential, batches of 16 so each device
  makes several pushes); afterwards every device's stored entries must equal its ledger (count and bytes).
- ``memory``: peak RSS (VmHWM) of a fresh agent process delivering backlogs of ``--memory-sizes``.

PostgreSQL: a throwaway cluster (initdb + pg_ctl as the ``postgres`` user when run as root, on a free
loopback port, default durability settings) unless ``--pg URL`` names a server (a base URL without a
database; databases are created in it) or ``--no-pg``. Device ledgers are built with the real append
code but ``PRAGMA synchronous=OFF`` (building only, as bench/ledger.py does).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Keep this script's folder off the import path (bench/ledger.py would shadow the ledger package).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.clock import FakeClock
from ledger.keys import load_key
from ledger.merkle import leaf_hash
from ledger.note import CosignatureSigner, CosignatureVerifier
from ledger.store import Ledger, open_ledger, open_reader
from register.ingest import Batch, check_batch
from register.keys import load_or_create_keys
from register.service import Register
from register.store import open_store
from sync_agent.agent import SyncAgent
from sync_agent.client import RegisterClient
from sync_agent.errors import RetryableError
from sync_agent.state import SyncState

NAME = "register.bench.kgate.kz"
BATCH = 4096  # entries per push for the backlog (the register's maximum)
START_MS = 1_790_000_000_000


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- device ledgers -------------------------------------------------------------------------------------
def fast_ledger(path: Path, origin: str, clock: FakeClock) -> Ledger:
    """A ledger opened for building only: the real append code without fsync."""
    ledger = open_ledger(path, origin=origin, clock=clock)
    ledger._conn.execute("PRAGMA synchronous=OFF")
    return ledger


def append_n(ledger: Ledger, clock: FakeClock, n: int) -> None:
    for i in range(n):
        clock.advance(0.5)
        ledger.append(
            "in", child=f"KZ07{i % 120:04d}", method="qr", evidence={"group": "Балапан"}, roster_version=1
        )


def snapshot(ledger: Ledger, dest: Path) -> None:
    """Copy the ledger as it is now (database + device key) into ``dest``/ledger.db."""
    dest.mkdir(parents=True, exist_ok=True)
    out = sqlite3.connect(dest / "ledger.db")
    try:
        ledger._conn.backup(out)
    finally:
        out.close()
    key = ledger.path.with_name("device.key")
    shutil.copy2(key, dest / "device.key")
    os.chmod(dest / "device.key", 0o600)


def build_backlog(root: Path, sizes: list[int]) -> tuple[dict[int, Path], float]:
    """One ledger grown to max(sizes), with a snapshot at each size; returns {size: ledger.db}, seconds."""
    clock = FakeClock(START_MS)
    out: dict[int, Path] = {}
    t = time.perf_counter()
    with fast_ledger(root / "build" / "ledger.db", f"{NAME}/kgate/backlog", clock) as ledger:
        built = 0
        for size in sorted(set(sizes)):
            append_n(ledger, clock, size - built)
            built = size
            snapshot(ledger, root / f"backlog-{size}")
            out[size] = root / f"backlog-{size}" / "ledger.db"
    return out, time.perf_counter() - t


def build_device(job: tuple[str, str, int]) -> str:
    """Build one small device ledger (process pool worker); returns its vkey."""
    path, origin, n = job
    clock = FakeClock(START_MS)
    with fast_ledger(Path(path), origin, clock) as ledger:
        append_n(ledger, clock, n)
        return ledger.vkey


# -- servers --------------------------------------------------------------------------------------------
def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port; yields its base URL (no database)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL binaries not found (/usr/lib/postgresql/*/bin); use --pg or --no-pg")
    bindir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="kgate-bench-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data, port = base / "data", free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
    subprocess.run(_as_postgres(initdb), check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        _as_postgres([*pg_ctl, "-o", opts, "-l", str(base / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([*pg_ctl, "-m", "fast", "-w", "stop"]), check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


class Databases:
    """Fresh register database URLs: SQLite files under ``root``, PostgreSQL databases in ``pg``."""

    def __init__(self, root: Path, pg: str | None) -> None:
        self.root = root
        self.pg = pg
        self._n = 0

    def backends(self) -> list[str]:
        return ["sqlite", "postgresql"] if self.pg else ["sqlite"]

    def fresh(self, backend: str) -> str:
        self._n += 1
        if backend == "sqlite":
            return f"sqlite:///{self.root / f'register-{self._n}.db'}"
        import psycopg

        assert self.pg is not None
        name = f"kgate_bench_{os.getpid()}_{self._n}"
        with psycopg.connect(f"{self.pg}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"{self.pg}/{name}"


@dataclass(frozen=True)
class Served:
    url: str
    cosigner: CosignatureVerifier
    pid: int | None = None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the register process has used so far."""
        if self.pid is None:
            return 0.0
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def register_server(db: str, state: Path) -> Iterator[Served]:
    """`kgate register serve` in a subprocess (its own interpreter and GIL) on a free loopback port."""
    state.mkdir(parents=True, exist_ok=True)
    keys = load_or_create_keys(state, NAME)
    port = free_port()
    cmd = [sys.executable, "-P", "-m", "kgate", "register", "serve", "--db", db]
    cmd += ["--listen", f"127.0.0.1:{port}", "--state", str(state)]
    with (state / "register.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"register did not start; see {state / 'register.log'}")
                try:
                    if requests.get(url + "/openapi.json", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.05)
            yield Served(url, keys.cosigner.verifier(), proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def enrol(db: str, vkeys: list[str]) -> None:
    with open_store(db) as store:
        for i, vkey in enumerate(vkeys):
            store.add_device(vkey, kindergarten=f"K{i // 4}", gate=str(i % 4), now_ms=0)


# -- delivery -------------------------------------------------------------------------------------------
@dataclass
class Delivery:
    size: int
    batches: int
    retries: int


def deliver(
    ledger_db: Path, state_dir: Path, served: Served, *, batch_size: int, attempts: int = 30
) -> Delivery:
    """Run SyncAgent rounds until the register cosigned the whole ledger (retrying retryable errors)."""
    signer = load_key(ledger_db.with_name("device.key"))
    client = RegisterClient(served.url, signer, timeout=(5, 120))
    batches = retries = 0
    try:
        with open_reader(ledger_db) as reader, SyncState(state_dir) as state:
            agent = SyncAgent(
                reader, state, client, served.cosigner, heartbeat=_heartbeat, batch_size=batch_size
            )
            for attempt in range(attempts):
                try:
                    result = agent.sync_once()
                except RetryableError as exc:
                    retries += 1
                    time.sleep(min(2.0, 0.05 * 2**attempt) if exc.retry_after is None else exc.retry_after)
                    continue
                batches += result.batches
                if result.cosigned_size == reader.size:
                    return Delivery(reader.size, batches, retries)
            raise RuntimeError(f"{ledger_db}: not delivered after {attempts} rounds")
    finally:
        client.close()


def _heartbeat(pending: int) -> dict[str, Any]:
    return {"time_ms": int(time.time() * 1000), "clock_synced": True, "camera_ok": True, "pending": pending}


def stored_equals(db: str, ledgers: list[Path]) -> dict[str, int]:
    """Compare the register's copy of each device log with the device's ledger: lost/unexpected/differing."""
    lost = unexpected = differing = rows = 0
    with open_store(db) as store:
        by_origin = {d.origin: d for d in store.devices()}
        for path in ledgers:
            with open_reader(path) as reader:
                device = by_origin[reader.origin]
                mine = reader.entries(0, reader.size)
                theirs = {idx: data for idx, _leaf, data in store.iter_entries(device.id)}
                rows += len(theirs)
                lost += sum(1 for i in range(len(mine)) if i not in theirs)
                unexpected += sum(1 for i in theirs if i >= len(mine))
                differing += sum(1 for i, data in enumerate(mine) if i in theirs and theirs[i] != data)
    return {"stored_rows": rows, "lost": lost, "unexpected": unexpected, "differing": differing}


def bench_backlog(ledger_db: Path, dbs: Databases, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with open_reader(ledger_db) as reader:
        vkey = reader.vkey
    for backend in dbs.backends():
        db = dbs.fresh(backend)
        enrol(db, [vkey])
        with register_server(db, root / f"reg-backlog-{backend}") as served:
            t, cpu = time.perf_counter(), served.cpu_seconds()
            d = deliver(ledger_db, root / f"sync-backlog-{backend}", served, batch_size=BATCH)
            seconds = time.perf_counter() - t
            cpu = served.cpu_seconds() - cpu
        check = stored_equals(db, [ledger_db])
        out[backend] = {
            "entries": d.size,
            "seconds": round(seconds, 2),
            "entries_per_s": rate(d.size, seconds),
            "batches": d.batches,
            "retries": d.retries,
            "register_cpu_seconds": round(cpu, 2),
            "entries_per_register_cpu_s": rate(d.size, cpu),
            **check,
            "ok": d.size == check["stored_rows"] and check["lost"] + check["differing"] == 0,
        }
    return out


# -- ingest without HTTP, with raw baselines ------------------------------------------------------------
def make_batches(ledger_db: Path, n: int) -> list[Batch]:
    batches = []
    with open_reader(ledger_db) as reader:
        start = 0
        while start < n:
            end = min(n, start + BATCH)
            cp = reader.checkpoint_at(end)
            assert cp is not None, f"no checkpoint at {end}"
            entries = tuple(reader.entries(start, end))
            proof = tuple(reader.consistency_proof(start, end))
            batches.append(Batch(reader.origin, start, entries, cp, start, proof))
            start = end
    return batches


def raw_baselines(root: Path, batches: list[Batch], pg_db: str | None) -> dict[str, float]:
    key = Ed25519PrivateKey.generate()
    pub, msg = key.public_key(), b"x" * 200
    sig = key.sign(msg)
    n = 3000
    t = time.perf_counter()
    for _ in range(n):
        pub.verify(sig, msg)
    out = {"ed25519_verify_per_s": rate(n, time.perf_counter() - t)}
    datas = [d for b in batches for d in b.entries]
    t = time.perf_counter()
    leaves = [leaf_hash(d) for d in datas]
    out["sha256_leaf_hashes_per_s"] = rate(len(datas), time.perf_counter() - t)
    rows = [(1, i, leaf, data) for i, (leaf, data) in enumerate(zip(leaves, datas, strict=True))]
    chunks = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
    conn = sqlite3.connect(root / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE e (d INTEGER, idx INTEGER, leaf BLOB, data BLOB, PRIMARY KEY (d, idx))")
    t = time.perf_counter()
    for chunk in chunks:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", chunk)
        conn.execute("COMMIT")
    out["sqlite_executemany_rows_per_s"] = rate(len(rows), time.perf_counter() - t)
    conn.close()
    if pg_db is not None:
        import psycopg

        with psycopg.connect(pg_db, autocommit=True) as pg:
            ddl = "CREATE TABLE {} (d BIGINT, idx BIGINT, leaf BYTEA, data BYTEA, PRIMARY KEY (d, idx))"
            pg.execute(ddl.format("e1"))
            pg.execute(ddl.format("e2"))
            t = time.perf_counter()
            for chunk in chunks:
                with pg.transaction():
                    pg.cursor().executemany("INSERT INTO e1 VALUES (%s, %s, %s, %s)", chunk)
            out["postgresql_executemany_rows_per_s"] = rate(len(rows), time.perf_counter() - t)
            t = time.perf_counter()
            for chunk in chunks:
                with pg.transaction(), pg.cursor().copy("COPY e2 FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "int8", "bytea", "bytea"])
                    for row in chunk:
                        copy.write_row(row)
            out["postgresql_copy_rows_per_s"] = rate(len(rows), time.perf_counter() - t)
    return out


def bench_ingest(ledger_db: Path, n: int, dbs: Databases, root: Path) -> dict[str, Any]:
    batches = make_batches(ledger_db, n)
    total = sum(len(b.entries) for b in batches)
    with open_reader(ledger_db) as reader:
        vkey = reader.vkey
    out: dict[str, Any] = {"entries": total, "batch": BATCH}
    out["baseline"] = raw_baselines(root, batches, dbs.fresh("postgresql") if dbs.pg else None)
    from ledger.note import Ed25519Verifier

    verifier = Ed25519Verifier.from_vkey(vkey)
    t = time.perf_counter()
    for b in batches:
        check_batch(b, verifier)
    out["check_batch_entries_per_s"] = rate(total, time.perf_counter() - t)
    for backend in dbs.backends():
        db = dbs.fresh(backend)
        with open_store(db) as store:
            device = store.add_device(vkey, kindergarten="K", gate="g", now_ms=0)
            register = Register(store, CosignatureSigner.generate(NAME))
            t = time.perf_counter()
            for b in batches:
                register.ingest(device, b, evidence=b"")
            seconds = time.perf_counter() - t
        out[backend] = {"seconds": round(seconds, 2), "entries_per_s": rate(total, seconds)}
    return out


# -- many devices ---------------------------------------------------------------------------------------
def bench_devices(
    root: Path, dbs: Databases, *, devices: int, entries: int, workers: int, batch_size: int
) -> dict[str, Any]:
    jobs = [
        (str(root / "devices" / f"d{i:05d}" / "ledger.db"), f"{NAME}/kgate/gate-{i:05d}", entries)
        for i in range(devices)
    ]
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        vkeys = list(pool.map(build_device, jobs, chunksize=16))
    out: dict[str, Any] = {
        "devices": devices,
        "entries_per_device": entries,
        "workers": workers,
        "batch_size": batch_size,
        "build_seconds": round(time.perf_counter() - t, 1),
    }
    ledgers = [Path(j[0]) for j in jobs]
    for backend in dbs.backends():
        db = dbs.fresh(backend)
        enrol(db, vkeys)
        errors: list[str] = []
        with register_server(db, root / f"reg-devices-{backend}") as served:

            def one(path: Path, served: Served = served, backend: str = backend) -> Delivery:
                return deliver(path, path.parent / f"sync-{backend}", served, batch_size=batch_size)

            t, cpu = time.perf_counter(), served.cpu_seconds()
            results = _run_pool(one, ledgers, workers, errors)
            seconds = time.perf_counter() - t
            cpu = served.cpu_seconds() - cpu
        check = stored_equals(db, ledgers)
        delivered = sum(r.size for r in results)
        out[backend] = {
            "seconds": round(seconds, 2),
            "entries": delivered,
            "entries_per_s": rate(delivered, seconds),
            "pushes": sum(r.batches for r in results),
            "pushes_per_s": rate(sum(r.batches for r in results), seconds),
            "retries": sum(r.retries for r in results),
            "register_cpu_seconds": round(cpu, 2),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            **check,
            "ok": not errors
            and check["stored_rows"] == devices * entries
            and check["lost"] + check["unexpected"] + check["differing"] == 0,
        }
    return out


def _run_pool(
    fn: Callable[[Path], Delivery], items: list[Path], workers: int, errors: list[str]
) -> list[Delivery]:
    results: list[Delivery] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for fut in [pool.submit(fn, p) for p in items]:
            try:
                results.append(fut.result())
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    return results


# -- agent memory ---------------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def memory_child(args: argparse.Namespace) -> None:
    """Child process: deliver one backlog with a fresh agent; print its RSS before and its peak (VmHWM)."""
    ledger_db = Path(args.ledger)
    served = Served(args.url, CosignatureVerifier.from_vkey(args.cosigner))
    rss_start = _status_kb("VmRSS")
    t = time.perf_counter()
    d = deliver(ledger_db, Path(args.state), served, batch_size=BATCH)
    seconds = time.perf_counter() - t
    print(json.dumps({
        "entries": d.size, "seconds": round(seconds, 2), "rss_start_kb": rss_start,
        "peak_rss_kb": _status_kb("VmHWM"), "growth_kb": _status_kb("VmHWM") - rss_start,
    }))  # fmt: skip


def bench_memory(ledgers: dict[int, Path], sizes: list[int], dbs: Databases, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for size in sizes:
        ledger_db = ledgers[size]
        with open_reader(ledger_db) as reader:
            vkey = reader.vkey
        db = dbs.fresh("sqlite")
        enrol(db, [vkey])
        with register_server(db, root / f"reg-memory-{size}") as served:
            cmd = [sys.executable, "-P", __file__, "memory-child", "--ledger", str(ledger_db)]
            cmd += ["--state", str(root / f"sync-memory-{size}"), "--url", served.url]
            cmd += ["--cosigner", served.cosigner.vkey]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        out[str(size)] = json.loads(proc.stdout.strip().splitlines()[-1])
    peaks = [v["peak_rss_kb"] for v in out.values()]
    out["peak_ratio_largest_to_smallest"] = round(max(peaks) / min(peaks), 3)
    return out


# -- main -----------------------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "memory-child":
        child = argparse.ArgumentParser()
        for flag in ("--ledger", "--state", "--url", "--cosigner"):
            child.add_argument(flag, required=True)
        memory_child(child.parse_args(sys.argv[2:]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--backlog", type=int, help="entries in the backlog (default 100000; quick 5000)")
    ap.add_argument("--ingest", type=int, help="entries for the no-HTTP ingest (default 50000; quick 5000)")
    ap.add_argument("--devices", type=int, help="simulated devices (default 1000; quick 100)")
    ap.add_argument("--device-entries", type=int, default=20, help="entries per device (%(default)s)")
    ap.add_argument("--workers", type=int, default=50, help="concurrent pushing threads (%(default)s)")
    ap.add_argument("--device-batch", type=int, default=16, help="entries per device push (%(default)s)")
    ap.add_argument("--memory-sizes", help="comma-separated backlogs (default 10000,50000,100000)")
    ap.add_argument("--pg", help="PostgreSQL base URL (no database); default: a throwaway cluster")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--only", help="comma-separated sections: backlog,ingest,devices,memory")
    args = ap.parse_args()
    q = args.quick
    backlog = args.backlog or (5000 if q else 100_000)
    ingest = min(backlog, args.ingest or (5000 if q else 50_000))
    devices = args.devices or (100 if q else 1000)
    mem_sizes = [
        int(s) for s in (args.memory_sizes or ("1000,2500,5000" if q else "10000,50000,100000")).split(",")
    ]
    sections = set((args.only or "backlog,ingest,devices,memory").split(","))
    with tempfile.TemporaryDirectory(prefix="kgate-bench-sync-") as tmp, postgres_from_args(args) as pg:
        root = Path(tmp)
        dbs = Databases(root, pg)
        result: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "backends": dbs.backends(),
        }
        sizes = [backlog] + (mem_sizes if "memory" in sections else [])
        if sections & {"backlog", "ingest", "memory"}:
            ledgers, seconds = build_backlog(root, sizes)
            result["build"] = {"entries": max(sizes), "seconds": round(seconds, 1)}
        if "backlog" in sections:
            result["backlog"] = bench_backlog(ledgers[backlog], dbs, root)
        if "ingest" in sections:
            result["ingest"] = bench_ingest(ledgers[backlog], ingest // 16 * 16, dbs, root)
        if "devices" in sections:
            result["devices"] = bench_devices(
                root,
                dbs,
                devices=devices,
                entries=args.device_entries,
                workers=args.workers,
                batch_size=args.device_batch,
            )
        if "memory" in sections:
            result["memory"] = bench_memory(ledgers, mem_sizes, dbs, root)
        print(json.dumps(result, indent=1))


@contextmanager
def postgres_from_args(args: argparse.Namespace) -> Iterator[str | None]:
    """``--no-pg``: None; ``--pg URL``: that server; else a throwaway cluster for the benchmark's run."""
    if args.no_pg:
        yield None
    elif args.pg:
        yield args.pg.rstrip("/")
    else:
        with postgres_cluster() as url:
            yield url


if __name__ == "__main__":
    main()
