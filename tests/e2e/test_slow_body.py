"""The anonymous slow-body attack on the real ``kgate register serve``: 30 connections each send 7 MiB of
a declared 8 MiB body and stall. The register must not buffer them (it authenticates the headers first),
must close them within seconds, and must keep serving a signed agent meanwhile.
"""

from __future__ import annotations

import json
import socket
import sqlite3
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


TRICKLERS = 100
BODY_TIMEOUT = 3.0
_CONSOLE_FORMS = ("/console/login", "/console/parent", "/console/parent/report", "/console/logout")


def _trickle(port: int, path: str, opened: list[float], cut: list[tuple[float, bytes]]) -> None:
    """One anonymous client: a form head declaring 4000 bytes, then one byte every 0.25 s until cut."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n"
    )
    answer = b""
    try:
        sock.sendall(head.encode() + b"n")
        started = time.monotonic()
        opened.append(started)
        sock.settimeout(0.25)
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"a")  # the next byte of the trickle
                continue
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass  # reset by the server: cut
    finally:
        cut.append((time.monotonic() - started if opened else -1.0, answer))
        sock.close()


@pytest.mark.slow
def test_trickled_console_forms_are_cut_at_the_body_deadline_and_a_push_succeeds(work: Path) -> None:
    """Issue 17: 100 anonymous connections trickling form bodies to the console (login, parent code, the
    report page, logout) are each cut with a 408 within the register's body deadline, nothing is written
    for them, and a gate's signed push is served meanwhile."""
    ledger = new_ledger(work / "device", 50)
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
        "--console", "--body-timeout", str(BODY_TIMEOUT), log=work / "register.log",
    )  # fmt: skip
    try:
        wait_http(url + "/console/login", proc=proc)
        log = work / "register.log"
        while "Uvicorn running on" not in log.read_text():  # ours answered, not another test's server
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        opened: list[float] = []
        cut: list[tuple[float, bytes]] = []
        tricklers = [
            threading.Thread(target=_trickle, args=(port, form, opened, cut), daemon=True)
            for form in (_CONSOLE_FORMS[i % len(_CONSOLE_FORMS)] for i in range(TRICKLERS))
        ]
        for t in tricklers:
            t.start()
        while len(opened) < TRICKLERS and any(t.is_alive() for t in tricklers):
            time.sleep(0.01)  # every trickler has sent its head: the attack is under way
        assert len(opened) == TRICKLERS
        pushed = kgate(
            "sync", "once", "--ledger", str(ledger), "--state", str(work / "sync"), "--register", url,
            "--key", str(ledger.with_name("device.key")), "--register-vkey", cosigner_vkey, timeout=60,
        )  # fmt: skip
        pushed_at = time.monotonic()
        give_up = time.monotonic() + BODY_TIMEOUT + 10
        for t in tricklers:
            t.join(max(0.0, give_up - time.monotonic()))
        assert not any(t.is_alive() for t in tricklers), "trickling connections still open"
        assert pushed.returncode == 0, pushed.stderr + (work / "register.log").read_text()[-3000:]
        assert stored_size(db) == 50
        assert pushed_at < max(opened) + BODY_TIMEOUT, "the push was not served while the attack lasted"
        slowest = max(after for after, _ in cut)
        print(f"\n{TRICKLERS} trickled console forms all cut after at most {slowest:.2f} s")
        assert slowest < BODY_TIMEOUT + 2.0, f"a trickled body was cut only after {slowest:.2f} s"
        assert all(answer.startswith(b"HTTP/1.1 408") for _, answer in cut), {a[:40] for _, a in cut}
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            written = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("audit", "login_throttle", "console_sessions")
            }
        finally:
            conn.close()
        assert written == {"audit": 0, "login_throttle": 0, "console_sessions": 0}, written
        assert "Traceback" not in (work / "register.log").read_text()
    finally:
        stop(proc)
