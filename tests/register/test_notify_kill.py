"""The dispatcher killed (SIGKILL) at random moments while entries flow: every notification reaches the
SMTP server, and a repeat is only ever a message sent again after a kill, recognisable by its Message-ID.

Delivery is at-least-once: a kill between the SMTP server's "250" and the outbox update re-sends that
message once its lease runs out. The test counts such repeats and bounds them by the kills.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.note import CosignatureSigner
from register.ingest import Batch
from register.notify.dispatcher import status
from register.notify.outbox import notification_key
from register.service import Register
from register.store import open_store
from tests.conftest import ROOT, wait_until
from tests.register.notify_fixtures import device_at, smtp_sink, subscribe

ROUNDS = 60  # at least this many pushes; more while fewer than MIN_KILLS kills have happened
MIN_KILLS = 3
MAX_ROUNDS = 2000


def _dispatcher(db_url: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "kgate", "register", "notify", "run", "--db", db_url,
           "--smtp", f"127.0.0.1:{port}", "--smtp-from", "k@reg.test", "--lease", "1",
           "--interval", "0.05", "--batch", "4"]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.timeout(600)
def test_sigkilled_dispatcher_delivers_every_message(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("KGATE_KILL_SEED", "13")))
    store = open_store(db_url)
    register = Register(store, CosignatureSigner.generate("reg.test"))
    dev = device_at(tmp_path / "dev", int(time.time() * 1000))
    row = store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(store)
    expected: list[str] = []
    kills = 0
    with smtp_sink() as sink:
        proc = _dispatcher(db_url, sink.port)
        # A kill counts only once the dispatcher has delivered something since it was started: on a
        # loaded machine a fixed delay could kill it before it has even imported its modules.
        next_kill = time.monotonic() + rng.uniform(0.5, 1.5)
        delivered_at_start = 0
        rounds = 0
        try:
            while rounds < ROUNDS or (kills < MIN_KILLS and rounds < MAX_ROUNDS):
                rounds += 1  # entries flow: a push of 4 entries every ~0.1 s
                old = dev.ledger.size
                for child in ("C0", "C2", "C1", "C0"):
                    kind = "in" if dev.ledger.size % 2 == 0 else "out"
                    dev.ledger.append(kind, child=child, method="qr")
                    guardian = {"C0": "g-0", "C2": "g-2"}.get(child)
                    if guardian is not None:
                        expected.append(notification_key(dev.ledger.origin, dev.ledger.size - 1, guardian))
                    dev.clock.advance(1)
                end = dev.ledger.size
                cp = dev.ledger.checkpoint_at(end)
                assert cp is not None
                batch = Batch(dev.ledger.origin, old, tuple(dev.ledger.entries(old, end)), cp, old,
                              tuple(dev.ledger.consistency_proof(old, end)))  # fmt: skip
                register.ingest(row, batch, evidence=b"")
                time.sleep(0.1)
                if time.monotonic() >= next_kill and len(sink.message_ids()) > delivered_at_start:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(60)
                    kills += 1
                    delivered_at_start = len(sink.message_ids())
                    proc = _dispatcher(db_url, sink.port)
                    next_kill = time.monotonic() + rng.uniform(0.5, 1.5)
            wait_until(
                lambda: set(status(store)["counts"].get("email", {})) == {"sent"},
                "every notification sent after the last kill",
                timeout=300,
                interval=0.2,
            )
        finally:
            proc.terminate()
            proc.wait(60)
        received = collections.Counter(sink.message_ids())
    dev.ledger.close()
    store.close()
    assert kills >= MIN_KILLS, f"only {kills} kills in {rounds} rounds"
    want = {f"<{k}@reg.test>" for k in expected}
    assert len(want) == len(expected) == 3 * rounds
    assert set(received) == want  # every message arrived, nothing else did
    repeats = sum(n - 1 for n in received.values())
    assert repeats <= kills * 4, (repeats, kills)  # at most one claimed batch per kill is sent again
    print(f"kills={kills} messages={len(want)} repeats={repeats}")
