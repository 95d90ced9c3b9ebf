"""A raw TCP proxy on loopback that injects faults into HTTP/1.1 exchanges, one request per connection.

Each accepted connection gets a fault drawn from a seeded RNG (a ``503-burst`` makes the next
``BURST`` connections answer 503 too). The proxy reads one complete request (Content-Length bodies
only, which is what ``requests`` sends), rewrites it to ``Connection: close``, forwards it, reads the
whole response and then misbehaves on the way back:

- ``pass``: forward unchanged;
- ``drop-response``: the register committed, the client hears nothing (connection closed);
- ``reset-mid-body``: two thirds of the response, then a TCP RST;
- ``cut-request``: half of the request reaches the register, then both sides are reset;
- ``slice``: the response in 7-byte writes;
- ``delay``: 50 ms before forwarding;
- ``503`` / ``503-burst``: a 503 without ever reaching the register.

While the upstream is down (a register restart) the client's connection is simply closed.
Every request as received is kept in ``captured`` when ``capture`` is set (for replay tests).
``drawn`` counts the faults drawn per connection; ``applied`` only those carried out to the end (a
client that went away first, or a register that was down, leaves a drawn fault unapplied), so tests
assert on ``applied``.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Sequence

FAULTS: tuple[str, ...] = (
    "pass", "pass", "pass", "drop-response", "reset-mid-body", "cut-request", "delay", "503", "slice",
    "503-burst",
)  # fmt: skip
BURST = 5
_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def read_request(conn: socket.socket) -> bytes:
    """One complete HTTP request (head + Content-Length body) as received; b"" if the peer went away."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        body += chunk
    return head + b"\r\n\r\n" + body


def close_after(request: bytes) -> bytes:
    """``request`` with ``Connection: close`` so that the upstream ends the exchange."""
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body


def exchange(upstream: tuple[str, int], request: bytes, timeout: float = 10.0) -> bytes:
    """Send ``request`` to ``upstream`` and read the response until the upstream closes."""
    with socket.create_connection(upstream, timeout=timeout) as up:
        up.sendall(close_after(request))
        response = b""
        while chunk := up.recv(65536):
            response += chunk
    return response


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
    sock.close()


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream`` with faults from ``faults``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        seed: int,
        faults: Sequence[str] = FAULTS,
        *,
        capture: bool = False,
    ) -> None:
        self.upstream = upstream
        self.faults = tuple(faults)
        self.rng = random.Random(seed)
        self.capture = capture
        self.captured: list[bytes] = []
        self.drawn: dict[str, int] = {}
        self.applied: dict[str, int] = {}
        self.upstream_down = 0  # connections closed because the register was not listening
        self._burst = 0
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def _next_fault(self) -> str:
        with self._lock:
            if self._burst > 0:
                self._burst -= 1
                fault = "503-burst"
            else:
                fault = self.rng.choice(self.faults)
                if fault == "503-burst":
                    self._burst = BURST - 1
            self.drawn[fault] = self.drawn.get(fault, 0) + 1
            return fault

    def _applied(self, fault: str) -> None:
        with self._lock:
            self.applied[fault] = self.applied.get(fault, 0) + 1

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, self._next_fault()), daemon=True).start()

    def _serve(self, conn: socket.socket, fault: str) -> None:
        try:
            self._relay(conn, fault)
        except OSError:
            pass  # the client or the register went away mid-exchange: that is the point
        finally:
            conn.close()

    def _relay(self, conn: socket.socket, fault: str) -> None:
        conn.settimeout(10)
        request = read_request(conn)
        if not request:
            return
        if self.capture:
            with self._lock:
                self.captured.append(request)
        if fault.startswith("503"):
            conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self._applied(fault)
            return
        if fault == "delay":
            time.sleep(0.05)
        if fault == "cut-request":
            try:
                up = socket.create_connection(self.upstream, timeout=10)
            except ConnectionRefusedError:
                self.upstream_down += 1
                return
            up.sendall(close_after(request)[: len(request) // 2])
            _reset(up)
            _reset(conn)
            self._applied(fault)
            return
        try:
            response = exchange(self.upstream, request)
        except ConnectionRefusedError:
            self.upstream_down += 1
            return
        if fault == "drop-response":
            self._applied(fault)
            return
        if fault == "reset-mid-body":
            conn.sendall(response[: len(response) * 2 // 3])
            _reset(conn)
            self._applied(fault)
            return
        if fault == "slice":
            for i in range(0, len(response), 7):
                conn.sendall(response[i : i + 7])
            self._applied(fault)
            return
        conn.sendall(response)
        self._applied(fault)  # "pass" or "delay"

    def close(self) -> None:
        self.sock.close()
