"""Parents' notifications while ``kgate register serve`` (and the dispatcher) are killed with SIGKILL.

Real processes on loopback: the register (``kgate register serve``), the gate's agent (``kgate sync
run``, pushing every 0.2 s while entries flow), the dispatcher (``kgate register notify run``) mailing a
real SMTP server (aiosmtpd, in this process). The test appends check-ins and check-outs at the gate
while the register is killed three times and the dispatcher twice, each restarted on the same database.

What must hold: every notification the entries call for reaches the SMTP server; the outbox has exactly
one row per (entry, guardian, channel) although the agent re-sends batches whose answer a killed
register never gave; a message arrives twice only after a dispatcher kill (at most one claimed batch
per kill), recognisable by its Message-ID. Register kills alone never cause a repeat.
"""

from __future__ import annotations

import collections
import json
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from ledger.clock import FakeClock
from ledger.store import open_ledger
from register.notify.outbox import notification_key
from register.store import open_store
from tests.conftest import READY_S, free_port, wait_until
from tests.e2e.conftest import REGISTER_NAME, kgate, kill9, spawn, stop, stored_size, wait_http
from tests.register.notify_fixtures import smtp_sink, subscribe

KILLS = ("register", "dispatcher", "register", "dispatcher", "register")
ENTRIES = 240
BATCH = 8  # the dispatcher's --batch: the most a dispatcher kill can make it send again
GUARDIAN = {"C0": "g-0", "C2": "g-2"}  # opted in with email (C1's guardian opted out)
CONFIG = """\
batch_size = 16
connect_timeout = 5.0
read_timeout = 30.0
poll_interval = 1.0
push_interval = 0.2
backoff_base = 0.05
backoff_cap = 0.25
"""


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _outbox_rows(db: Path) -> list[tuple[object, ...]]:
    return _query(db, "SELECT idx, guardian, channel FROM notify_outbox WHERE channel = 'email'")


def _email_states(db: Path) -> set[object]:
    return {r[0] for r in _query(db, "SELECT DISTINCT state FROM notify_outbox WHERE channel = 'email'")}


@pytest.mark.slow
@pytest.mark.timeout(900)  # 39 s beside two CPU hogs; three processes restarted five times
def test_register_and_dispatcher_killed_every_notification_arrives(tmp_path: Path) -> None:
    rng = random.Random(4242)
    gate_dir, db, reg_state = tmp_path / "gate", tmp_path / "register.db", tmp_path / "register-state"
    gate_dir.mkdir()
    clock = FakeClock(int(time.time() * 1000))
    ledger = open_ledger(gate_dir / "ledger.db", origin=f"{REGISTER_NAME}/kgate/gate-1", clock=clock)
    assert kgate("register", "init", "--db", str(db)).returncode == 0  # only init and serve create it
    added = kgate("register", "device", "add", ledger.vkey, "--kindergarten", "K1", "--gate", "north",
                  "--db", str(db), "--name", REGISTER_NAME)  # fmt: skip
    assert added.returncode == 0, added.stderr
    with open_store(str(db)) as store:
        subscribe(store, "K1")  # roster C0..C2; g-0 and g-2 opted in, g-1 not
    keys = kgate("register", "keys", "--state", str(reg_state), "--name", REGISTER_NAME, "--json")
    assert keys.returncode == 0, keys.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "sync.toml").write_text(CONFIG)
    logs = {name: tmp_path / f"{name}.log" for name in ("register", "agent", "dispatcher")}
    expected: list[str] = []
    with smtp_sink() as sink:
        commands = {
            "register": ("register", "serve", "--db", str(db), "--listen", f"127.0.0.1:{port}",
                         "--state", str(reg_state), "--rate", "10000", "--burst", "10000"),
            "agent": ("sync", "run", "--config", str(tmp_path / "sync.toml"), "--ledger",
                      str(gate_dir / "ledger.db"), "--state", str(tmp_path / "sync"), "--register", url,
                      "--key", str(gate_dir / "device.key"),
                      "--register-vkey", json.loads(keys.stdout)["cosigner_vkey"]),
            "dispatcher": ("register", "notify", "run", "--db", str(db), "--smtp", f"127.0.0.1:{sink.port}",
                           "--smtp-from", "k@reg.test", "--lease", "1", "--interval", "0.05",
                           "--batch", str(BATCH)),
        }  # fmt: skip

        def start(name: str) -> subprocess.Popen[bytes]:
            proc = spawn(*commands[name], log=logs[name])
            if name == "register":
                wait_http(url + "/openapi.json", proc=proc)
            return proc

        procs = {name: start(name) for name in ("register", "dispatcher", "agent")}
        ledger.append("boot", evidence={"software": "e2e"})
        wait_until(lambda: stored_size(db, ledger.origin) >= 1, "the agent's first push", interval=0.05)
        kill_at = sorted(rng.sample(range(20, ENTRIES - 20), len(KILLS)))
        killed: list[tuple[str, int, int]] = []
        try:
            for i in range(ENTRIES):  # the gate: a check-in or check-out every ~20-60 ms
                child = rng.choice(("C0", "C1", "C2"))
                ledger.append("in" if i % 2 == 0 else "out", child=child, method="qr")
                if child in GUARDIAN:
                    expected.append(notification_key(ledger.origin, ledger.size - 1, GUARDIAN[child]))
                clock.advance(rng.uniform(0.02, 0.06))
                time.sleep(rng.uniform(0.02, 0.06))
                if kill_at and i == kill_at[0]:
                    victim = KILLS[len(killed)]
                    # Entries are flowing: the register has taken some since the last kill (a restarted
                    # process may still be starting on a loaded machine; wait for it, never guess).
                    before = max([1, *(stored for _, _, stored in killed)])
                    more = lambda n=before: stored_size(db, ledger.origin) > n  # noqa: E731
                    wait_until(more, f"entries stored after {before}")
                    kill9(procs[victim])
                    killed.append((victim, i, stored_size(db, ledger.origin)))
                    time.sleep(rng.uniform(0.0, 0.3))
                    procs[victim] = start(victim)
                    kill_at.pop(0)
            deadline = time.monotonic() + 5 * READY_S
            while stored_size(db, ledger.origin) < ledger.size or _email_states(db) != {"sent"}:
                for name, proc in procs.items():
                    assert proc.poll() is None, f"{name} exited with {proc.returncode}: {logs[name]}"
                if time.monotonic() > deadline:
                    stored, states = stored_size(db, ledger.origin), _email_states(db)
                    pytest.fail(
                        f"readiness deadline passed: not all delivered within {5 * READY_S:g} s "
                        f"(stored {stored} of {ledger.size}, mail states {states})",
                        pytrace=False,
                    )
                time.sleep(0.1)
            time.sleep(0.3)  # a repeat still in flight would show now
        finally:
            for proc in procs.values():
                stop(proc)
            ledger.close()
        received = collections.Counter(sink.message_ids())
    assert [v for v, _, _ in killed] == list(KILLS)
    assert all(1 < stored <= ENTRIES for _, _, stored in killed), killed  # every kill with entries flowing
    rows = _outbox_rows(db)
    assert len(rows) == len(set(rows)) == len(expected)  # one decision per (entry, guardian, channel)
    want = {f"<{k}@reg.test>" for k in expected}
    assert len(want) == len(expected) > 100
    assert set(received) == want  # every notification arrived, nothing else did
    repeats = sum(n - 1 for n in received.values())
    dispatcher_kills = KILLS.count("dispatcher")
    assert repeats <= dispatcher_kills * BATCH, (repeats, killed)
    print(f"kills={killed} messages={len(want)} repeats={repeats}")
