"""Console page latency on SQLite and PostgreSQL; prints JSON.

    .venv/bin/python -P bench/console.py             # 10,000 devices, a 300-child month
    .venv/bin/python -P bench/console.py --no-pg     # SQLite only

The data: one kindergarten of ``--children`` children with one gate and a month of check-ins and
check-outs pushed through :meth:`Register.ingest` (bench/tabel.py's generator), plus ``--devices``
further devices spread over 1,000 kindergartens, each with a heartbeat, a cosigned-checkpoint row and
some alarms (rows written directly: the overview only reads them). ``kgate register serve --console``
runs in its own process; an auditor (sees every device) and the kindergarten's director log in over
HTTP, and each page is fetched ``--requests`` times:

- ``overview``: ``/console/overview`` (100 devices a page, the total, 50 alarms), first and a middle page;
- ``tabel``: ``/console/k/K000/tabel?month=2025-03`` (300 children × 31 days); the first request builds
  the табель (``cold_ms``), later ones reuse it while nothing it depends on changed.

Target: p95 ≤ 150 ms each. PostgreSQL: a throwaway cluster (bench/sync.py's) unless ``--pg`` or ``--no-pg``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.append(str(_HERE.parent))

import requests

from bench.sync import Databases, free_port, postgres_from_args
from bench.tabel import MONTH, build_logs, load
from register.store import Store, open_store
from register.tabel.calendar import add_absence
from register.users import add_user

PASSWORD = "bench console password"


def add_devices(store: Store, n: int, now_ms: int) -> None:
    """``n`` devices with a heartbeat, a checkpoint row each, and an alarm on every 100th."""
    hb = json.dumps({"time_ms": now_ms - 60_000, "free_disk_bytes": 5_000_000_000, "clock_synced": True,
                     "roster_version": 3, "pending": 0}, sort_keys=True)  # fmt: skip
    with store._tx(write=True) as sql:
        sql.many(
            "INSERT INTO devices (origin, keyid, vkey, kindergarten, gate, added_ms, size, last_seen_ms, "
            "heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(f"bench/kgate/d{i:05d}", f"{i:08x}", f"bench/kgate/d{i:05d}+{i:08x}+AAAA", f"B{i % 1000:03d}",
              str(i // 1000), 0, 16, now_ms - (i % 97) * 3_600_000, hb) for i in range(n)],
        )  # fmt: skip
        ids = [int(r[0]) for r in sql.all("SELECT id FROM devices WHERE origin LIKE ?", ("bench/kgate/d%",))]
        sql.many(
            "INSERT INTO checkpoints (device_id, size, root, note, cosigned, received_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(i, 16, b"\0" * 32, "note", "cosigned", now_ms - 3_600_000) for i in ids],
        )
        sql.many(
            "INSERT INTO alarms (device_id, time_ms, kind, idx, detail, evidence) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, now_ms, "equivocation", 3, "bench alarm", None) for i in ids[::100]],
        )


@contextmanager
def console_server(db: str, state: Path) -> Iterator[str]:
    """``kgate register serve --console`` in its own process on a free loopback port."""
    port = free_port()
    cmd = [sys.executable, "-P", "-m", "kgate", "register", "serve", "--db", db, "--console",
           "--listen", f"127.0.0.1:{port}", "--state", str(state)]  # fmt: skip
    state.mkdir(parents=True, exist_ok=True)
    with (state / "serve.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"register did not start; see {state / 'serve.log'}")
                try:
                    if requests.get(url + "/console/login", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(20)


def login(url: str, name: str) -> requests.Session:
    s = requests.Session()
    form = s.get(f"{url}/console/login", timeout=10).text
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match
    r = s.post(
        f"{url}/console/login", data={"csrf": match[1], "name": name, "password": PASSWORD}, timeout=30
    )
    r.raise_for_status()
    return s


def measure(s: requests.Session, url: str, n: int) -> dict[str, Any]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = s.get(url, timeout=60)
        times.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    times.sort()
    return {
        "requests": n,
        "p50_ms": round(times[len(times) // 2], 1),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 1),
        "max_ms": round(times[-1], 1),
        "bytes": len(r.content),
    }


def run(db: str, state: Path, devices: int, children: int, n: int) -> dict[str, Any]:
    logs, pushes = build_logs(children * 20, children)
    logs, pushes = logs[:1], pushes[:1]
    load(db, logs, pushes, children)
    now_ms = int(time.time() * 1000)
    with open_store(db) as store:
        add_devices(store, devices, now_ms)
        add_user(store, "auditor", "auditor", None, PASSWORD, now_ms=now_ms)
        add_user(store, "director", "director", "K000", PASSWORD, now_ms=now_ms)
        total = len(store.devices())
    out: dict[str, Any] = {"devices": total, "entries": sum(log.size for log in logs)}
    with console_server(db, state) as url:
        auditor = login(url, "auditor")
        director = login(url, "director")
        out["overview_first_page"] = measure(auditor, f"{url}/console/overview", n)
        out["overview_page_50"] = measure(auditor, f"{url}/console/overview?page=50", n)
        tabel = f"{url}/console/k/K000/tabel?month={MONTH}"
        t = time.perf_counter()
        page = director.get(tabel, timeout=120)
        page.raise_for_status()
        cold = (time.perf_counter() - t) * 1000
        out["tabel"] = {**measure(director, tabel, n), "cold_ms": round(cold, 1),
                        "children": page.text.count("data-child=")}  # fmt: skip
        # A change the табель depends on (a director enters an absence), then the next view: the
        # first view above also indexed the register once (the bench's extra devices have rows, no logs).
        with open_store(db) as store:
            add_absence(store, "K000", "c-000-0000", dt.date(2025, 3, 3), "child_ill", document=None,
                        by="bench", now_ms=now_ms)  # fmt: skip
        t = time.perf_counter()
        director.get(tabel, timeout=120).raise_for_status()
        out["tabel"]["after_change_ms"] = round((time.perf_counter() - t) * 1000, 1)
    out["target_p95_ms"] = 150
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--devices", type=int, default=10_000, help="devices besides the табель's gate (%(default)s)"
    )
    ap.add_argument("--children", type=int, default=300, help="children in the табель (%(default)s)")
    ap.add_argument("--requests", type=int, default=40, help="requests per page (%(default)s)")
    ap.add_argument("--pg", help="PostgreSQL base URL (no database); default: a throwaway cluster")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = ap.parse_args()
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                          "load": os.getloadavg()[0]}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kgate-bench-console-") as tmp, postgres_from_args(args) as pg:
        dbs = Databases(Path(tmp), pg)
        for backend in dbs.backends():
            result[backend] = run(dbs.fresh(backend), Path(tmp) / backend, args.devices, args.children,
                                  args.requests)  # fmt: skip
            print(json.dumps({backend: result[backend]}), file=sys.stderr)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
