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

from register.limits import Limits
from tests.conftest import READY_S, free_port, wait_until
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


CLIENT_TIMEOUT = 60.0  # an attacker gives up after this; the register must hang up long before


def _attack(port: int, started: float, headed: list[int], closed_after: list[float], why: list[str]) -> None:
    """One anonymous client: a head declaring 8 MiB, 7 MiB of body, then silence until the server hangs up.

    ``why`` gets ``"server"`` when the register closed or reset the connection, ``"client"`` when this
    client's own timeout ended it (the register never hung up)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT)
    head = (
        f"POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n"
    )
    reason = "server"
    try:
        sock.sendall(head.encode())
        headed.append(1)
        chunk = b" " * (256 << 10)
        for _ in range(SENT // len(chunk)):
            sock.sendall(chunk)
        while sock.recv(65536):  # stall: read whatever the server says until it closes
            pass
    except TimeoutError:
        reason = "client"
    except OSError:
        pass  # reset by the server: closed
    finally:
        closed_after.append(time.monotonic() - started)
        why.append(reason)
        sock.close()


@pytest.mark.slow
def test_slow_anonymous_bodies_are_cut_off_and_signed_clients_served(work: Path) -> None:
    ledger = new_ledger(work / "device", 200)
    db, reg_state = work / "register.db", work / "register-state"
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
        headed: list[int] = []
        why: list[str] = []
        started = time.monotonic()
        attackers = [
            threading.Thread(target=_attack, args=(port, started, headed, closed_after, why), daemon=True)
            for _ in range(ATTACKERS)
        ]
        for t in attackers:
            t.start()
        results: list[subprocess.CompletedProcess[str]] = []
        agent_args = (
            "sync", "once", "--ledger", str(ledger), "--state", str(work / "sync"), "--register", url,
            "--key", str(ledger.with_name("device.key")), "--register-vkey", cosigner_vkey,
        )  # fmt: skip
        agent = threading.Thread(target=lambda: results.append(kgate(*agent_args)), daemon=True)
        # the attack is under way: every attacker has sent its head (or already been cut off)
        wait_until(lambda: len(headed) + len(closed_after) >= ATTACKERS, "the attackers' request heads")
        agent.start()
        while any(t.is_alive() for t in attackers) or agent.is_alive():
            peak = max(peak, _rss_kib(proc.pid))
            if time.monotonic() - started > CLIENT_TIMEOUT + 3 * READY_S:
                break
            time.sleep(0.05)
        assert not any(t.is_alive() for t in attackers), "stalled connections still open"
        agent.join(3 * READY_S)
        slowest = max(closed_after)
        print(
            f"\nslow-body attack: idle RSS {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB "
            f"(+{(peak - idle) / 1024:.1f} MiB); {ATTACKERS} stalled connections all closed after "
            f"{slowest:.2f} s"
        )
        assert peak - idle < 100 * 1024, f"register grew by {(peak - idle) / 1024:.0f} MiB"
        # The register hung up on every one (none ended by its own timeout), and within the deadline it
        # gives even an authenticated body: it refused at the headers, it did not wait for the body. (Idle:
        # all closed after ~0.4 s; the deadline leaves room for a loaded machine.)
        assert why == ["server"] * ATTACKERS, why
        assert slowest < Limits().body_timeout, f"closed after {slowest:.1f} s"
        assert len(results) == 1
        done = results[0]
        assert done.returncode == 0, done.stderr
        assert stored_size(db) == 200
        log = (work / "register.log").read_text()
        assert "Traceback" not in log
    finally:
        stop(proc)  # uvicorn re-raises the SIGTERM it handled: -15 is a clean stop
