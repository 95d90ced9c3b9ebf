"""Hostile clients against the register over real HTTP: bounded notes, strict types, the signed
authority, per-device nonce budgets, fork probes, slow and vanishing bodies, and 500s without tracebacks.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import uvicorn

from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.httpsig import sign_request
from ledger.note import CosignatureSigner, Ed25519Signer
from register.app import create_app
from register.limits import Limits
from register.service import Register
from register.store import open_store
from tests.conftest import READY_S, free_port, wait_until
from tests.register.conftest import REGISTER, Device, Server, make_device


def _stored(server: Server, device: Device) -> int:
    dev = server.store.device_by_origin(device.ledger.origin)
    assert dev is not None
    return sum(1 for _ in server.store.iter_entries(dev.id))


def test_checkpoint_with_99_foreign_signature_lines_is_4xx(server: Server, enrolled: Device) -> None:
    enrolled.append(16)
    body = enrolled.body(0, 16)
    strangers = [Ed25519Signer.generate(f"witness{i}.test") for i in range(99)]
    lines = "".join(f"— {s.name} {'A' * 86}==\n" for s in strangers)
    body["checkpoint"] += lines
    r = server.push(enrolled.signer, body)
    assert 400 <= r.status_code < 500, r.text
    assert "signature lines" in r.json()["detail"]
    assert _stored(server, enrolled) == 0


def test_long_extension_line_is_refused_and_nothing_stored(server: Server, enrolled: Device) -> None:
    enrolled.append(16)
    cp, _ = open_checkpoint(enrolled.ledger.checkpoint_at(16) or "", [enrolled.ledger.verifier()])
    long_cp = sign_checkpoint(Checkpoint(cp.origin, cp.size, cp.root, ("x" * 60_000,)), enrolled.signer)
    r = server.push(enrolled.signer, {**enrolled.body(0, 16), "checkpoint": long_cp})
    assert 400 <= r.status_code < 500 and "longer than 256 bytes" in r.json()["detail"], r.text
    assert _stored(server, enrolled) == 0
    assert server.store.newest_checkpoint(server.store.device_by_origin(cp.origin).id) is None  # type: ignore[union-attr]
    short = sign_checkpoint(Checkpoint(cp.origin, cp.size, cp.root, ("note: gate north",)), enrolled.signer)
    assert server.push(enrolled.signer, {**enrolled.body(0, 16), "checkpoint": short}).status_code == 200


@pytest.mark.parametrize("bad", ["5", True, 5.0, None])
def test_wrong_types_are_400_not_converted(server: Server, enrolled: Device, bad: object) -> None:
    enrolled.append(8)
    body = {**enrolled.body(0, 8), "start": bad}
    r = server.push(enrolled.signer, body)
    assert r.status_code == 400 and r.json()["error"] == "malformed", r.text
    if bad is not None:  # heartbeat fields are optional: null means unknown
        hb = {"origin": enrolled.ledger.origin, "heartbeat": {"roster_version": bad}}
        assert server.send("POST", "/v1/heartbeat", enrolled.signer, hb).status_code == 400
    assert _stored(server, enrolled) == 0


def test_integer_uptime_is_still_a_number(server: Server, enrolled: Device) -> None:
    hb = {"origin": enrolled.ledger.origin, "heartbeat": {"uptime_s": 12, "camera_ok": True}}
    assert server.send("POST", "/v1/heartbeat", enrolled.signer, hb).status_code == 200


def test_fork_probe_below_the_fork_point_raises_an_alarm(
    server: Server, enrolled: Device, tmp_path: Path
) -> None:
    enrolled.append(192)
    (tmp_path / "fork").mkdir()
    with (
        sqlite3.connect(tmp_path / "dev1" / "ledger.db") as src,
        sqlite3.connect(tmp_path / "fork" / "ledger.db") as dst,
    ):
        src.backup(dst)  # the same history up to 192, then the device's log forks
    fork = make_device(tmp_path / "fork", enrolled.ledger.origin, key_path=tmp_path / "dev1" / "device.key")
    assert fork.ledger.entries(0, 192) == enrolled.ledger.entries(0, 192)
    enrolled.append(33)  # the register cosigns 225 of these
    fork.clock.advance(7)
    fork.append(48)  # the device signs a different 240
    assert server.push(enrolled.signer, enrolled.body(0, 225)).status_code == 200
    for n, old_size in enumerate((192, 0), start=1):
        probe = fork.body(225, 240, old_size=old_size)
        r = server.push(enrolled.signer, probe)
        assert r.status_code == 409 and r.json()["error"] == "equivocation", r.text
        alarms = server.store.alarms()
        assert len(alarms) == n and alarms[-1].kind == "equivocation"
        assert alarms[-1].evidence is not None
        assert json.loads(alarms[-1].evidence)["checkpoint"] == probe["checkpoint"]
    assert _stored(server, enrolled) == 225
    fork.ledger.close()


def test_nonce_budget_is_per_device(make_server: Callable[..., Server], tmp_path: Path) -> None:
    server = make_server(Limits(nonces=5, rate=1000.0, burst=1000))
    busy, quiet = make_device(tmp_path / "busy", f"{REGISTER}/kgate/busy"), make_device(tmp_path / "q")
    for gate, dev in enumerate((busy, quiet)):  # one device per gate
        server.store.add_device(dev.ledger.vkey, kindergarten="K1", gate=f"g{gate}", now_ms=0)
    for _ in range(5):
        assert server.send("GET", "/v1/state", busy.signer).status_code == 200
    r = server.send("GET", "/v1/state", busy.signer)
    assert r.status_code == 429 and "Retry-After" in r.headers, r.text
    for _ in range(5):
        assert server.send("GET", "/v1/state", quiet.signer).status_code == 200
    busy.ledger.close()
    quiet.ledger.close()


def test_entries_budget_is_per_device(make_server: Callable[..., Server], device: Device) -> None:
    server = make_server(Limits(max_batch=16, entries_burst=20, entries_rate=0.001))
    server.store.add_device(device.ledger.vkey, kindergarten="K1", gate="g", now_ms=0)
    device.append(32)
    assert server.push(device.signer, device.body(0, 16)).status_code == 200
    r = server.push(device.signer, device.body(16, 32))
    assert r.status_code == 429 and "entries" in r.json()["detail"], r.text


# -- a register with a configured authority and short deadlines, on loopback --------------------------


@pytest.fixture
def strict_server(db_url: str) -> Iterator[Server]:
    store = open_store(db_url)
    cosigner = CosignatureSigner.generate(REGISTER)
    register = Register(store, cosigner)
    port = free_port()
    app = create_app(register, limits=Limits(body_timeout=1.0), authorities=[f"127.0.0.1:{port}"])

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/kgate")

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), f"the register on port {port}")
    assert server.started, f"the register's thread ended before it listened on port {port}"
    yield Server(f"http://127.0.0.1:{port}", store, cosigner, register)
    server.should_exit = True
    thread.join(READY_S)
    store.close()


@pytest.fixture
def strict_device(strict_server: Server, device: Device) -> Device:
    strict_server.store.add_device(device.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    return device


def test_wrong_signed_authority_is_401(strict_server: Server, strict_device: Device) -> None:
    assert strict_server.send("GET", "/v1/state", strict_device.signer).status_code == 200
    url = strict_server.url.replace("127.0.0.1", "localhost")  # same socket, another authority
    hdrs = sign_request("GET", url + "/v1/state", {}, b"", strict_device.signer, now=int(time.time()))
    r = requests.get(url + "/v1/state", headers=hdrs, timeout=10)
    assert r.status_code == 401 and "authority" in r.json()["detail"], r.text


def _raw_request(url: str, path: str, signer: Ed25519Signer, body: bytes, declared: int) -> socket.socket:
    """Open a connection and send a signed POST head declaring ``declared`` body bytes, then ``body``."""
    hdrs = sign_request("POST", url + path, {}, b"x" * 0 + body, signer, now=int(time.time()))
    host = url.removeprefix("http://")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {declared}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    ip, port = host.split(":")
    sock = socket.create_connection((ip, int(port)), timeout=READY_S)
    sock.sendall(head.encode() + body)
    return sock


def test_slow_signed_body_gets_408_and_the_connection_closes(
    strict_server: Server, strict_device: Device
) -> None:
    strict_device.append(8)
    body = json.dumps(strict_device.body(0, 8)).encode()
    sock = _raw_request(strict_server.url, "/v1/push", strict_device.signer, body[:100], len(body))
    started = time.monotonic()
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()
    # The 408 shows the register's 1 s deadline cut it; the bound only rules out a much later timeout
    # (it leaves room for a loaded machine).
    assert time.monotonic() - started < 10
    assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()
    assert _stored(strict_server, strict_device) == 0


def test_disconnect_mid_body_is_one_log_line(
    strict_server: Server, strict_device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    strict_device.append(8)
    body = json.dumps(strict_device.body(0, 8)).encode()
    caplog.set_level(logging.DEBUG)
    sock = _raw_request(strict_server.url, "/v1/push", strict_device.signer, body[:100], len(body))
    sock.close()  # the head and 100 bytes are sent: the register reads them, then the end of the stream
    wait_until(
        lambda: any("disconnected" in r.getMessage() for r in caplog.records), "the register's disconnect log"
    )
    gone = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(gone) == 1 and "\n" not in gone[0].getMessage() and gone[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_unexpected_error_is_a_json_500_without_traceback(
    strict_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = requests.get(strict_server.url + "/boom", timeout=10)
    assert r.status_code == 500 and r.json() == {"error": "internal", "detail": "internal error, retry later"}
    assert "secret" not in r.text and "Traceback" not in r.text
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and "RuntimeError" in errors[0].getMessage() and errors[0].exc_info is None
    assert not [rec for rec in caplog.records if rec.exc_info and rec.levelno > logging.DEBUG]


def test_a_console_form_declaring_more_than_its_cap_is_413_before_any_byte(strict_server: Server) -> None:
    """The one body guard caps /console/ bodies at Limits.max_form: refused on the head alone, closed."""
    host = strict_server.url.removeprefix("http://")
    ip, port = host.split(":")
    with socket.create_connection((ip, int(port)), timeout=10) as sock:
        head = (
            f"POST /console/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: {Limits().max_form + 1}\r\n\r\n"
        )
        sock.sendall(head.encode())
        started = time.monotonic()
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert time.monotonic() - started < 2
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower(), answer[:300]
    assert b'"too_large"' in answer
