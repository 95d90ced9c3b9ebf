"""Табель and audit benchmark on SQLite and PostgreSQL; prints JSON.

    .venv/bin/python -P bench/tabel.py                      # 10^6 entries, 300 children per kindergarten
    .venv/bin/python -P bench/tabel.py --entries 50000      # a quick run
    .venv/bin/python -P bench/tabel.py --no-pg              # SQLite only

The data: kindergartens of ``--children`` children (10 groups) with one gate each, a month (2025-03,
Asia/Almaty, the 21st a holiday) of check-ins at 07:30-09:00 and check-outs at 16:30-19:00 (each child
present on ~90 % of working days), until ``--entries`` entries. Each gate's log is built in memory
(:class:`~register.tabel.simulate.SimulatedLog`: canonical entries, RFC 9162 tree, a signed checkpoint
per push) and pushed once a day through :meth:`Register.ingest` (verified, stored, indexed, cosigned),
like a real ingest, on the register's simulated clock (received at 20:00 local).

Measured, per backend, with every kindergarten's entries in the database:

- ``tabel``: the табель of one 300-child kindergarten month (flags included) as CSV, then as XLSX;
- ``anomalies``: the audit pass (:func:`register.tabel.status.flags`) of every kindergarten for the
  month, i.e. over all ``--entries`` entries; the flags found (a clean month: none expected);
- ``baseline``: in the same run, SELECT every entry's bytes and decode them with plain ``cbor2.loads``
  (no validation), and the same for one kindergarten's device: what reading the data costs at least.

PostgreSQL: a throwaway cluster (bench/sync.py's) unless ``--pg URL`` or ``--no-pg``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Keep this script's folder off the import path (bench/ledger.py would shadow the ledger package);
# the repository root on it, so bench.sync (the PostgreSQL cluster) imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.append(str(_HERE.parent))

import cbor2

from bench.sync import Databases, postgres_from_args
from ledger.entry import PREFIX
from ledger.note import CosignatureSigner
from register.roster_csv import parse_csv
from register.service import Register
from register.store import Store, open_store
from register.store.roster import import_roster
from register.tabel import calendar, export, status
from register.tabel.simulate import SimulatedLog

NAME = "register.bench.kgate.kz"
MONTH = "2025-03"
ZONE = ZoneInfo("Asia/Almaty")
HOLIDAY = dt.date(2025, 3, 21)
GROUPS = 10


def _ms(day: dt.date, seconds: int) -> int:
    return int(dt.datetime.combine(day, dt.time(), ZONE).timestamp() * 1000) + seconds * 1000


def child(k: int, i: int) -> str:
    return f"c-{k:03d}-{i:04d}"


def roster_csv(k: int, children: int) -> bytes:
    lines = ["kind,id,name,group"]
    lines += [f"child,{child(k, i)},Бала {i},Топ {i % GROUPS}" for i in range(children)]
    return ("\n".join(lines) + "\n").encode()


def build_logs(entries: int, children: int) -> tuple[list[SimulatedLog], list[list[tuple[int, int]]]]:
    """Gates' logs until ``entries`` entries; per gate, its pushes as (size, received_ms)."""
    days = [d for d in calendar.month_days(MONTH) if d.weekday() < 5 and d != HOLIDAY]
    rng = random.Random(7)
    logs: list[SimulatedLog] = []
    pushes: list[list[tuple[int, int]]] = []
    total = 0
    while total < entries:
        k = len(logs)
        log = SimulatedLog(f"{NAME}/kgate/k{k:03d}", start_ms=_ms(days[0], 6 * 3600))
        plan: list[tuple[int, int]] = []
        for day in days:
            here = [i for i in range(children) if rng.random() < 0.9]
            for n, i in enumerate(here):  # 07:30 onwards, one every 18 s: a morning rush
                log.append("in", _ms(day, 27_000 + n * 18), child=child(k, i), method="qr")
            for n, i in enumerate(here):  # 16:30 onwards, one every 30 s
                log.append("out", _ms(day, 59_400 + n * 30), child=child(k, i), method="qr")
            log.mark()
            plan.append((log.size, _ms(day, 20 * 3600)))
        logs.append(log)
        pushes.append(plan)
        total += log.size
    return logs, pushes


def kindergarten(k: int) -> str:
    return f"K{k:03d}"


def load(url: str, logs: list[SimulatedLog], pushes: list[list[tuple[int, int]]], children: int) -> float:
    """Enrol, publish rosters and calendars, and push every gate's month; returns seconds spent."""
    now = [0.0]
    t0 = time.perf_counter()
    with open_store(url) as store:
        register = Register(store, CosignatureSigner.generate(NAME), clock=lambda: now[0])
        first = _ms(dt.date(2025, 2, 28), 0)
        for k, (log, plan) in enumerate(zip(logs, pushes, strict=True)):
            log.enrol(store, kindergarten=kindergarten(k), gate="1")
            import_roster(store, kindergarten(k), parse_csv(roster_csv(k, children)), now_ms=first)
            calendar.set_settings(store, kindergarten(k), rate_tiyn=250_000)
            calendar.set_days(store, kindergarten(k), [(HOLIDAY, "holiday", "Наурыз")])
            for size, received_ms in plan:
                now[0] = received_ms / 1000
                log.deliver(register, upto=size)
    return time.perf_counter() - t0


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def bench_tabel(store: Store, repeat: int = 3) -> dict[str, Any]:
    """The табель of K000 (best of ``repeat``): CSV (build + flags + encode), then XLSX."""
    csv_s, xlsx_s = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        tabel = status.build(store, kindergarten(0), MONTH)
        data = export.to_csv(tabel)
        csv_s.append(time.perf_counter() - t)
        _, s = timed(export.to_xlsx, tabel)
        xlsx_s.append(s)
    present = sum(r.status == "present" for r in tabel.rows)
    return {
        "kindergarten": kindergarten(0),
        "children": len({r.child for r in tabel.rows}),
        "rows": len(tabel.rows),
        "present": present,
        "payable": sum(r.payable for r in tabel.rows),
        "csv_bytes": len(data),
        "csv_seconds": round(min(csv_s), 3),
        "xlsx_extra_seconds": round(min(xlsx_s), 3),
        "target_seconds": 1.0,
    }


def bench_anomalies(store: Store, count: int) -> dict[str, Any]:
    """The audit of every kindergarten's month: every entry in the database passes through the rules."""
    t = time.perf_counter()
    flags: dict[str, int] = {}
    for k in range(count):
        for f in status.flags(store, status.context(store, kindergarten(k), MONTH)):
            flags[f.rule] = flags.get(f.rule, 0) + 1
    return {"kindergartens": count, "seconds": round(time.perf_counter() - t, 2), "flags": flags,
            "target_seconds": 60.0}  # fmt: skip


def baseline(store: Store) -> dict[str, Any]:
    """SELECT the entries' bytes and decode them with plain cbor2 (no validation, no rules)."""
    cut = len(PREFIX)

    def decode_all(device_id: int | None) -> tuple[int, float]:
        t = time.perf_counter()
        n = 0
        with store._tx(write=False) as sql:
            if device_id is None:
                rows = sql.all("SELECT data FROM entries")
            else:
                rows = sql.all("SELECT data FROM entries WHERE device_id = ?", (device_id,))
        for (data,) in rows:
            cbor2.loads(bytes(data)[cut:])
            n += 1
        return n, time.perf_counter() - t

    first = store.devices()[0].id
    n_all, s_all = decode_all(None)
    n_one, s_one = decode_all(first)
    return {
        "all_entries": n_all,
        "all_select_cbor2_seconds": round(s_all, 2),
        "one_device_entries": n_one,
        "one_device_select_cbor2_seconds": round(s_one, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries in all (%(default)s)")
    ap.add_argument("--children", type=int, default=300, help="children per kindergarten (%(default)s)")
    ap.add_argument("--pg", help="PostgreSQL base URL (no database); default: a throwaway cluster")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = ap.parse_args()
    t = time.perf_counter()
    logs, pushes = build_logs(args.entries, args.children)
    built = time.perf_counter() - t
    total = sum(log.size for log in logs)
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "data": {"entries": total, "kindergartens": len(logs), "children_each": args.children,
                 "month": MONTH, "build_seconds": round(built, 1)},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kgate-bench-tabel-") as tmp, postgres_from_args(args) as pg:
        dbs = Databases(Path(tmp), pg)
        for backend in dbs.backends():
            if args.no_sqlite and backend == "sqlite":
                continue
            url = dbs.fresh(backend)
            ingest = load(url, logs, pushes, args.children)
            with open_store(url) as store:
                result[backend] = {
                    "ingest": {"seconds": round(ingest, 1), "entries_per_s": round(total / ingest)},
                    "tabel": bench_tabel(store),
                    "anomalies": bench_anomalies(store, len(logs)),
                    "baseline": baseline(store),
                }
            print(json.dumps({backend: result[backend]}), file=sys.stderr)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
