"""The device's tile server (``kgate sync serve``) caps its connections: one thread each, at most N."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests

from ledger.errors import FetchUnreachable
from ledger.httpsig import sign_request
from ledger.note import Ed25519Signer
from ledger.store import open_reader
from ledger.tileclient import fetch_log
from sync_agent.pull import PullServer, PullService
from tests.conftest import READY_S, wait_until
from tests.e2e.conftest import new_ledger


def free_slots(server: PullServer) -> int:
    """The server's free connection slots (its semaphore's count: the readiness signal here)."""
    return int(server._slots._value)


def test_connections_beyond_the_cap_get_503_and_a_slot_frees_up(work: Path) -> None:
    ledger = new_ledger(work / "device", 10)
    key = Ed25519Signer.generate("reg.e2e-pull")
    reader = open_reader(ledger)
    server = PullServer(
        PullService(reader, [key.verifier()], prefix="log"), "127.0.0.1", 0, max_connections=2
    )
    server.start()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/log/checkpoint"
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=READY_S) for _ in range(2)]
        wait_until(lambda: free_slots(server) == 0, "both idle connections holding a slot")
        extra = socket.create_connection(("127.0.0.1", port), timeout=READY_S)
        answer = extra.recv(4096)
        extra.close()
        assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
        # The register's puller takes the 503 as "busy, retry later" (kgate register pull exits 75),
        # not as a log that does not verify.
        with pytest.raises(FetchUnreachable, match="HTTP 503, retry later"):
            fetch_log(f"http://127.0.0.1:{port}/log", key, 0, 5, device_vkey=reader.vkey)
        idle[0].close()
        wait_until(lambda: free_slots(server) == 1, "the closed connection's slot freed")
        headers = sign_request("GET", url, {}, b"", key, now=int(time.time()))
        r = requests.get(url, headers=headers, timeout=READY_S)
        assert r.status_code == 200 and r.text.startswith("reg.e2e/kgate/gate-1\n10\n")
        idle[1].close()
    finally:
        server.stop()
        reader.close()
