"""Fault injection through a loopback proxy: the register ends with exactly the device's entries."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ledger.store import open_reader
from sync_agent.agent import Backoff, SyncAgent, run_forever
from tests.sync.conftest import TEMPLATE_SIZE, append_entries
from tests.sync.fake_register import FakeRegister

FAULTS = ("pass", "pass", "pass", "drop-response", "reset-mid-body", "delay", "503", "slice")


def _read_request(conn: socket.socket) -> bytes:
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
    head = b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:"))
    return head + b"\r\nConnection: close\r\n\r\n" + body


class FaultProxy:
    """One request per connection; each gets a fault drawn from a seeded RNG."""

    def __init__(self, upstream: tuple[str, int], seed: int) -> None:
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                fault = self.rng.choice(FAULTS)
                self.counts[fault] = self.counts.get(fault, 0) + 1
            threading.Thread(target=self._serve, args=(conn, fault), daemon=True).start()

    def _serve(self, conn: socket.socket, fault: str) -> None:
        with conn:
            request = _read_request(conn)
            if not request:
                return
            if fault == "503":
                conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if fault == "delay":
                time.sleep(0.05)
            with socket.create_connection(self.upstream, timeout=10) as up:
                up.sendall(request)
                response = b""
                while chunk := up.recv(65536):
                    response += chunk
            if fault == "drop-response":  # the register committed; we never hear of it
                return
            if fault == "reset-mid-body":
                conn.sendall(response[: len(response) * 2 // 3])
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            if fault == "slice":
                for i in range(0, len(response), 7):
                    conn.sendall(response[i : i + 7])
                return
            conn.sendall(response)

    def close(self) -> None:
        self.sock.close()


def test_faulty_network_delivers_exactly_the_device_entries(
    register: FakeRegister, make_agent: Callable[..., SyncAgent], ledger_path: Path
) -> None:
    append_entries(ledger_path, 3000 - TEMPLATE_SIZE)
    proxy = FaultProxy(("127.0.0.1", register.server_address[1]), seed=4)
    try:
        agent = make_agent(f"http://127.0.0.1:{proxy.port}", batch_size=64)
        stop = threading.Event()
        agent.on_batch = lambda: stop.set() if agent.state.read().cosigned_size == 3000 else None
        timer = threading.Timer(60, stop.set)
        timer.start()
        try:
            assert run_forever(agent, Backoff(0.001, 0.01), stop, poll_interval=0.01) == 0
        finally:
            timer.cancel()
        with open_reader(ledger_path) as r:
            device = r.entries(0, r.size)
        assert agent.state.read().cosigned_size == 3000
        assert register.log().entries == device  # lost 0, unexpected 0, duplicates 0, same bytes
        assert min(proxy.counts.get(f, 0) for f in FAULTS) > 0  # every fault happened
    finally:
        proxy.close()
