"""kill -9 of ``kgate sync run`` and of ``kgate register serve`` at random points, then resume.

Both run as real processes talking HTTP on loopback. Each is killed three times (order and moments
drawn from a seeded RNG, each while entries are flowing) and started again on the same state, ledger,
database and port. The register must end with exactly the device's 10,000 entries, ``kgate verify``
must pass on its database, and the agent's status must show everything cosigned.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sync_agent.cli import status_dict
from tests.conftest import READY_S, free_port, wait_until
from tests.e2e.conftest import (
    BIG,
    REGISTER_NAME,
    assert_exactly,
    device_entries,
    device_vkey,
    kgate,
    kill9,
    spawn,
    stop,
    stored_size,
    wait_http,
)

KILLS = ("agent", "register") * 3
CONFIG = """\
batch_size = 32
connect_timeout = 5.0
read_timeout = 30.0
poll_interval = 0.2
backoff_base = 0.05
backoff_cap = 0.25
"""


def _wait_for(db: Path, size: int, procs: dict[str, subprocess.Popen[bytes]], stall: float = READY_S) -> None:
    """Until the register stores ``size`` entries; fails if either process exits or no entry arrives for
    ``stall`` seconds (a deadline on progress: a loaded machine may be slow, but it is never stuck)."""
    last, moved = stored_size(db), time.monotonic()
    while last < size:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}"
        now, current = time.monotonic(), stored_size(db)
        if current > last:
            last, moved = current, now
        elif now - moved > stall:
            pytest.fail(
                f"readiness deadline passed: the register stayed at {last} of {size} entries for {stall:g} s",
                pytrace=False,
            )
        time.sleep(0.002)


@pytest.mark.slow
@pytest.mark.timeout(900)  # 69 s beside two CPU hogs; progress is bounded by _wait_for
def test_kill9_agent_and_register_then_resume_exactly_once(big_ledger: Path, work: Path) -> None:
    db, reg_state, sync_state = work / "register.db", work / "register-state", work / "sync"
    assert kgate("register", "init", "--db", str(db)).returncode == 0  # only init and serve create it
    added = kgate(
        "register", "device", "add", device_vkey(big_ledger), "--kindergarten", "K-1", "--gate", "north",
        "--db", str(db), "--name", REGISTER_NAME,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    keys = kgate("register", "keys", "--state", str(reg_state), "--name", REGISTER_NAME, "--json")
    assert keys.returncode == 0, keys.stderr
    cosigner_vkey = json.loads(keys.stdout)["cosigner_vkey"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (work / "sync.toml").write_text(CONFIG)
    register_cmd = (
        "register", "serve", "--db", str(db), "--listen", f"127.0.0.1:{port}", "--state", str(reg_state),
        "--rate", "10000", "--burst", "10000",
    )  # fmt: skip
    agent_cmd = (
        "sync", "run", "--config", str(work / "sync.toml"), "--ledger", str(big_ledger),
        "--state", str(sync_state), "--register", url, "--key", str(big_ledger.with_name("device.key")),
        "--register-vkey", cosigner_vkey,
    )  # fmt: skip
    logs = {"register": work / "register.log", "agent": work / "agent.log"}

    def start(name: str) -> subprocess.Popen[bytes]:
        if name == "register":
            proc = spawn(*register_cmd, log=logs[name])
            wait_http(url + "/openapi.json", proc=proc)
            return proc
        return spawn(*agent_cmd, log=logs[name])

    rng = random.Random(1789)
    thresholds = sorted(rng.sample(range(600, BIG - 1200, 200), len(KILLS)))
    plan = list(zip(thresholds, rng.sample(KILLS, len(KILLS)), strict=True))
    procs = {"register": start("register"), "agent": start("agent")}
    killed_at: list[tuple[str, int]] = []
    try:
        for threshold, victim in plan:
            _wait_for(db, threshold, procs)
            time.sleep(rng.uniform(0, 0.03))
            kill9(procs[victim])
            killed_at.append((victim, stored_size(db)))
            procs[victim] = start(victim)
        _wait_for(db, BIG, procs)
        wait_until(
            lambda: status_dict(sync_state, big_ledger)["cosigned_size"] >= BIG,
            "the agent's final acknowledgement",
            interval=0.02,
        )
    finally:
        codes = {name: stop(proc) for name, proc in procs.items()}
    # uvicorn re-raises SIGTERM after its graceful shutdown (systemd counts that as a clean exit)
    assert codes["agent"] == 0 and codes["register"] in (0, -signal.SIGTERM), codes
    assert [v for v, _ in killed_at] == [v for _, v in plan]
    assert all(0 < size < BIG for _, size in killed_at), killed_at  # every kill landed mid-stream
    assert_exactly(db, device_entries(big_ledger))
    verified = kgate("verify", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    status = json.loads(kgate("sync", "status", "--state", str(sync_state), "--json").stdout)
    assert status == {"size": BIG, "cosigned_size": BIG, "pending": 0, "last_error": None}
