"""The pull server over TLS: stalled or broken handshakes cost one slot for a few seconds, never the server.

Real sockets on loopback, a CA and server certificate made here (as tests/e2e/test_tls.py does).
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from ledger.httpsig import sign_request
from ledger.note import Ed25519Signer
from ledger.store import open_reader
from sync_agent.pull import PullServer, PullService
from tests.conftest import free_port
from tests.e2e.test_tls import make_ca, make_server_cert, write_ca

CAP = 24
STALLED = 20  # + one half ClientHello + the real client = 22 <= CAP: the cap refuses none of them
DEADLINE = 2.0  # the server's handshake deadline in these tests (the default is HANDSHAKE_TIMEOUT)


@dataclass
class TlsPull:
    port: int
    ca: Path
    key: Ed25519Signer
    checkpoint: str

    def connection(self) -> http.client.HTTPSConnection:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=5)

    def get(self, conn: http.client.HTTPSConnection, path: str = "/log/checkpoint") -> tuple[int, bytes]:
        url = f"https://127.0.0.1:{self.port}{path}"
        conn.request("GET", path, headers=sign_request("GET", url, {}, b"", self.key, now=int(time.time())))
        resp = conn.getresponse()
        return resp.status, resp.read()


@pytest.fixture
def tls_pull(tmp_path: Path, ledger_path: Path) -> Iterator[TlsPull]:
    ca_key, ca = make_ca("kgate pull test CA")
    cert, key = make_server_cert(ca_key, ca, tmp_path)
    register_key = Ed25519Signer.generate("reg.test-pull")
    reader = open_reader(ledger_path)
    port = free_port()
    server = PullServer(
        PullService(reader, [register_key.verifier()], prefix="log"), "127.0.0.1", port,
        tls_cert=cert, tls_key=key, max_connections=CAP, handshake_timeout=DEADLINE,
    )  # fmt: skip
    server.start()
    try:
        yield TlsPull(port, write_ca(ca, tmp_path / "ca.pem"), register_key, reader.checkpoint())
    finally:
        server.stop()
        reader.close()


def client_hello() -> bytes:
    """A real TLS ClientHello (made in memory)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.fixture
def stalled(tls_pull: TlsPull) -> Iterator[list[socket.socket]]:
    """STALLED connections that never send a byte, and one that sends half a ClientHello, then waits."""
    socks = [socket.create_connection(("127.0.0.1", tls_pull.port), timeout=5) for _ in range(STALLED)]
    half = socket.create_connection(("127.0.0.1", tls_pull.port), timeout=5)
    hello = client_hello()
    half.sendall(hello[: len(hello) // 2])
    socks.append(half)
    try:
        yield socks
    finally:
        for s in socks:  # before the server stops: a server that handshakes in accept() is freed by this
            s.close()


def still_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except ConnectionError:
        return False
    finally:
        s.settimeout(5)


def closed_by_server(s: socket.socket, timeout: float) -> bool:
    """True when the server closed the connection (EOF or reset; a TLS alert first is fine) in time."""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            if s.recv(4096) == b"":
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        pass
    return False


def burst_up_to_the_cap(pull: TlsPull) -> None:
    """CAP TLS connections held at once are each served; one more is told 503 (the cap holds)."""
    conns = [pull.connection() for _ in range(CAP)]
    try:
        for c in conns:
            c.connect()  # returns after the server's thread finished the handshake
        assert [pull.get(c) for c in conns] == [(200, pull.checkpoint.encode())] * CAP
        with closing(pull.connection()) as extra:
            status, body = pull.get(extra)
        assert status == 503 and b"too many connections" in body
    finally:
        for c in conns:
            c.close()


def test_stalled_handshakes_do_not_block_a_real_pull(tls_pull: TlsPull, stalled: list[socket.socket]) -> None:
    started = time.monotonic()
    with closing(tls_pull.connection()) as conn:
        status, body = tls_pull.get(conn)
    took = time.monotonic() - started
    assert (status, body.decode()) == (200, tls_pull.checkpoint)
    assert took < DEADLINE, f"the pull waited {took:.2f} s"
    assert all(still_open(s) for s in stalled)  # served while every stalled handshake still held on


def test_stalled_handshakes_are_closed_at_the_deadline_and_their_slots_freed(
    tls_pull: TlsPull, stalled: list[socket.socket]
) -> None:
    started = time.monotonic()
    assert all(closed_by_server(s, DEADLINE + 5) for s in stalled)
    took = time.monotonic() - started
    assert DEADLINE - 0.5 < took < DEADLINE + 3
    time.sleep(0.2)  # each slot is returned right after its close
    burst_up_to_the_cap(tls_pull)


def test_a_trickled_client_hello_does_not_stretch_the_deadline(tls_pull: TlsPull) -> None:
    started = time.monotonic()
    closed_after = None
    with socket.create_connection(("127.0.0.1", tls_pull.port), timeout=5) as s:
        for byte in client_hello():  # a byte every 0.25 s: each read comes well within any per-read timeout
            if time.monotonic() - started > DEADLINE + 2:
                break
            try:
                if not still_open(s):
                    closed_after = time.monotonic() - started
                    break
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.25)
    assert closed_after is not None and closed_after < DEADLINE + 1, closed_after


def test_plain_http_and_broken_handshakes_are_closed_with_one_line_and_free_their_slots(
    tls_pull: TlsPull, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.WARNING, logger="sync_agent.pull")
    plain = requests.get(f"http://127.0.0.1:{tls_pull.port}/log/checkpoint", timeout=5)
    assert plain.status_code == 400 and plain.json()["error"] == "tls_required"
    for _ in range(CAP):  # more failures than slots: any slot not returned would show in the burst
        with socket.create_connection(("127.0.0.1", tls_pull.port), timeout=5) as s:
            s.sendall(b"GET /log/checkpoint HTTP/1.1\r\nHost: gate\r\n\r\n")
            answer = b"".join(iter(lambda: s.recv(4096), b""))  # ends in EOF, not a reset
        assert answer.startswith(b"HTTP/1.1 400 ") and b"use https" in answer
        with socket.create_connection(("127.0.0.1", tls_pull.port), timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # a handshake record that is not a ClientHello
            assert closed_by_server(s, 5)
        socket.create_connection(("127.0.0.1", tls_pull.port), timeout=5).close()
    with closing(tls_pull.connection()) as conn:
        assert tls_pull.get(conn) == (200, tls_pull.checkpoint.encode())
    time.sleep(0.2)
    burst_up_to_the_cap(tls_pull)

    lines = [r for r in caplog.records if r.name == "sync_agent.pull" and "too many" not in r.message]
    assert len(lines) == 1 + 3 * CAP  # one line per refused connection
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    assert sum("plain HTTP" in r.getMessage() for r in lines) == 1 + CAP
    assert "Traceback" not in capfd.readouterr().err
