"""The anonymous slow-body attack on the real ``kgate register serve``: 30 connections each send 7 MiB of
a declared 8 MiB body and stall. The register must not buffer them (it authenticates the headers first),
must close them within seconds, and must keep serving a signed agent meanwhile.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import (
    REGISTER_NAME,
    device_vkey,
    kgate,
    new_ledger,
    spawn,
    stop,
    stored_size,
    wait_http,
)

ATTACKERS = 30
DECLARED = 8 << 20
SENT = 7 << 20


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _attack(port: int, started: float, closed_after: list[float]) -> None:
    """One anonymous client: a head declaring 8 MiB, 7 MiB of body, then silence until the server hangs up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n"
    )
    try:
        sock.sendall(head.encode())
        chunk = b" " * (256 << 10)
        for _ in range(SENT // len(chunk)):
            sock.sendall(chunk)
        while sock.recv(65536):  # stall: read whatever the server says until it closes
            pass
    except OSError:
        pass  # reset by the server: closed
    finally:
        closed_after.append(time.monotonic() - started)
        sock.close()


@pytest.mark.slow
def test_slow_anonymous_bodies_are_cut_off_and_signed_clients_served(work: Path) -> None:
    ledger = new_ledger(work / "device", 200)
    db, reg_state = work / "register.db", work / "register-state"
    assert kgate("register", "init", "--db", str(db)).returncode == 0  # only init and serve create it
    added = kgate(
        "register", "device", "add", device_vkey(ledger), "--kindergarten", "K-1", "--gate", "north",
        "--db", str(db), "--name", REGISTER_NAME,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    keys = kgate("register", "keys", "--state", str(reg_state), "--name", REGISTER_NAME, "--json")
    cosigner_vkey = json.loads(keys.stdout)["cosigner_vkey"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn(
        "register", "serve", "--db", str(db), "--listen", f"127.0.0.1:{port}", "--state", str(reg_state),
        log=work / "register.log",
    )  # fmt: skip
    try:
        wait_http(url + "/v1/state", proc=proc)
        time.sleep(0.5)
        idle = _rss_kib(proc.pid)
        peak = idle
        closed_after: list[float] = []
        started = time.monotonic()
        attackers = [
            threading.Thread(target=_attack, args=(port, started, closed_after), daemon=True)
            for _ in range(ATTACKERS)
        ]
        for t in attackers:
            t.start()
        results: list[subprocess.CompletedProcess[str]] = []
        agent_args = (
            "sync", "once", "--ledger", str(ledger), "--state", str(work / "sync"), "--register", url,
            "--key", str(ledger.with_name("device.key")), "--register-vkey", cosigner_vkey,
        )  # fmt: skip
        agent = threading.Thread(target=lambda: results.append(kgate(*agent_args, timeout=60)), daemon=True)
        time.sleep(0.2)  # the attack is under way
        agent.start()
        while any(t.is_alive() for t in attackers) or agent.is_alive():
            peak = max(peak, _rss_kib(proc.pid))
            if time.monotonic() - started > 60:
                break
            time.sleep(0.05)
        assert not any(t.is_alive() for t in attackers), "stalled connections still open after 60 s"
        agent.join(30)
        slowest = max(closed_after)
        print(
            f"\nslow-body attack: idle RSS {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB "
            f"(+{(peak - idle) / 1024:.1f} MiB); {ATTACKERS} stalled connections all closed after "
            f"{slowest:.2f} s"
        )
        assert peak - idle < 100 * 1024, f"register grew by {(peak - idle) / 1024:.0f} MiB"
        assert slowest < 5.0
        assert len(results) == 1
        done = results[0]
        assert done.returncode == 0, done.stderr
        assert stored_size(db) == 200
        log = (work / "register.log").read_text()
        assert "Traceback" not in log
    finally:
        stop(proc)  # uvicorn re-raises the SIGTERM it handled: -15 is a clean stop
