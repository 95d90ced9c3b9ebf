"""Notification benchmark, as JSON: gate append → SMTP acceptance latency, and dispatcher throughput.

Latency: a device ledger appends check-ins at random moments (about 2/s) for ``--seconds``; an agent
loop pushes what is new every ``--push-interval`` seconds into the register (``Register.ingest``: the
same verification, storage and outbox transaction as HTTP push, without HTTP); one dispatcher (a thread,
idle poll 0.2 s) mails through a real SMTP server on loopback (aiosmtpd). Latency = the SMTP server's
acceptance time - the append time. Throughput: ``--backlog`` notifications queued at once, then one
dispatcher drains them; notifications/s.

    .venv/bin/python -m bench.notify [--db URL] [--seconds 20] [--push-interval 3] [--backlog 2000]
        [--record-every 50]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.sync import postgres_cluster
from ledger.note import CosignatureSigner
from register.ingest import Batch
from register.notify.channels.smtp import EmailChannel
from register.notify.dispatcher import Dispatcher, Policy
from register.notify.outbox import notification_key
from register.service import Register
from register.store import Device, open_store
from tests.register.conftest import Device as Dev
from tests.register.notify_fixtures import device_at, smtp_sink, subscribe


def push(register: Register, row: Device, dev: Dev, old: int) -> int:
    end = dev.ledger.size
    if end == old:
        return old
    cp = dev.ledger.checkpoint_at(end)
    assert cp is not None
    entries = tuple(dev.ledger.entries(old, end))
    proof = tuple(dev.ledger.consistency_proof(old, end))
    register.ingest(row, Batch(dev.ledger.origin, old, entries, cp, old, proof), evidence=b"")
    return end


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", help="register database URL (default: a temporary SQLite file)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--push-interval", type=float, default=3.0)
    ap.add_argument("--backlog", type=int, default=2000)
    ap.add_argument("--record-every", type=int, default=Policy().record_every, help="sends per commit")
    ap.add_argument(
        "--postgres", action="store_true", help="a throwaway PostgreSQL cluster (as bench/sync.py) for --db"
    )
    args = ap.parse_args(argv)
    if args.postgres:
        with postgres_cluster() as url:
            return run(args, f"{url}/postgres")
    return run(args, args.db)


def run(args: argparse.Namespace, db: str | None) -> int:
    """The latency run, then the backlog's throughput, on ``db`` (None: a temporary SQLite file)."""
    tmp = Path(tempfile.mkdtemp(prefix="kgate-bench-notify-"))
    store = open_store(db or f"sqlite:///{tmp / 'register.db'}")
    register = Register(store, CosignatureSigner.generate("reg.test"))
    dev = device_at(tmp / "dev", int(time.time() * 1000))
    row = store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(store)
    appended: dict[str, float] = {}
    accepted: dict[str, float] = {}
    out: dict[str, Any] = {
        "push_interval_s": args.push_interval,
        "record_every": args.record_every,
        "backend": store.dialect.blob,
    }
    with smtp_sink() as sink:
        channel = EmailChannel(sink.host, sink.port, "k@reg.test", domain="reg.test")
        dispatcher = Dispatcher(
            store,
            {"email": channel},
            parent_url="https://reg.test",
            policy=Policy(record_every=args.record_every),
        )
        stop = threading.Event()
        seen = 0

        def watch() -> None:  # the sink's acceptance times, by Message-ID
            nonlocal seen
            while not stop.is_set():
                ids = sink.message_ids()
                now = time.time()
                for mid in ids[seen:]:
                    accepted.setdefault(mid, now)
                seen = len(ids)
                time.sleep(0.01)

        threads = [threading.Thread(target=watch, daemon=True),
                   threading.Thread(target=dispatcher.run, kwargs={"interval": 0.2, "stop": stop.is_set},
                                    daemon=True)]  # fmt: skip
        for t in threads:
            t.start()
        rng, size, end = random.Random(1), 0, time.monotonic() + args.seconds
        next_push = time.monotonic() + args.push_interval
        while time.monotonic() < end:
            time.sleep(rng.expovariate(2.0))
            dev.clock.advance(max(0.0, time.time() - dev.clock.time_ms / 1000))  # gate time = now
            child = rng.choice(("C0", "C2"))
            dev.ledger.append("in", child=child, method="qr")
            key = notification_key(dev.ledger.origin, dev.ledger.size - 1, {"C0": "g-0", "C2": "g-2"}[child])
            appended[f"<{key}@reg.test>"] = time.time()
            if time.monotonic() >= next_push:
                size = push(register, row, dev, size)
                next_push = time.monotonic() + args.push_interval
        size = push(register, row, dev, size)
        deadline = time.monotonic() + 30
        while len(accepted) < len(appended) and time.monotonic() < deadline:
            time.sleep(0.05)
        lat = sorted(accepted[m] - appended[m] for m in appended if m in accepted)
        out["latency"] = {
            "messages": len(appended), "delivered": len(lat),
            "p50_s": round(statistics.median(lat), 3),
            "p95_s": round(lat[int(0.95 * (len(lat) - 1))], 3), "max_s": round(lat[-1], 3),
        }  # fmt: skip
        stop.set()
        for t in threads:
            t.join(10)
        # throughput: a backlog drained by one dispatcher
        before = len(sink.message_ids())
        old = size
        for i in range(args.backlog):
            dev.ledger.append("in" if i % 2 == 0 else "out", child="C0", method="qr")
        size = push(register, row, dev, old)
        t0 = time.perf_counter()
        while dispatcher.run_once().sent:
            pass
        elapsed = time.perf_counter() - t0
        got = len(sink.message_ids()) - before
        out["throughput"] = {
            "notifications": got,
            "seconds": round(elapsed, 2),
            "per_s": round(got / elapsed, 1),
        }
        dispatcher.close()
    store.close()
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
