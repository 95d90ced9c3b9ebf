"""Requests captured from a real agent on the wire, replayed against the REAL register.

tests/register/test_push.py already covers hand-made requests (unsigned, expired ``created``, a replay of
identical headers, a body swapped under a signature). This adds what only a capture shows: every push
and state request the agent actually sent is refused when replayed byte for byte, moving a captured
signature to another path is refused, a capture replayed after it expired (a register whose clock is
five minutes later) is refused, and — the documented limit of the in-memory replay cache — a replay
after a register restart gets through but changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from ledger.keys import load_key
from ledger.store import open_reader
from sync_agent.agent import SyncAgent
from sync_agent.client import RegisterClient
from sync_agent.state import SyncState
from tests.e2e.conftest import ThreadedRegister, enrol, new_ledger, stored_log
from tests.e2e.proxy import FaultProxy, exchange


def _send(reg: ThreadedRegister, raw: bytes) -> tuple[int, dict[str, object]]:
    response = exchange(("127.0.0.1", reg.port), raw)
    status = int(response.split(b" ", 2)[1])
    body = json.loads(response.partition(b"\r\n\r\n")[2] or b"{}")
    return status, body


def test_captured_agent_requests_replayed_moved_or_expired_are_refused(
    work: Path, make_register: Callable[..., ThreadedRegister]
) -> None:
    ledger = new_ledger(work / "device", 48)
    enrol(str(work / "register.db"), ledger)
    reg = make_register()
    tap = FaultProxy(("127.0.0.1", reg.port), seed=0, faults=("pass",), capture=True)
    with open_reader(ledger) as reader, SyncState(work / "sync") as state:
        client = RegisterClient(tap.url, load_key(ledger.with_name("device.key")), timeout=(5.0, 30.0))
        agent = SyncAgent(
            reader, state, client, reg.keys.cosigner.verifier(), heartbeat=lambda p: {}, batch_size=16
        )
        assert agent.sync_once().cosigned_size == 48
        client.close()
    tap.close()
    pushes = [r for r in tap.captured if r.startswith(b"POST /v1/push ")]
    states = [r for r in tap.captured if r.startswith(b"GET /v1/state ")]
    assert len(pushes) == 3 and len(states) == 1
    before = stored_log(work / "register.db")

    for raw in (*states, *pushes):
        status, body = _send(reg, raw)
        assert (status, body["error"]) == (401, "unauthenticated")
        assert "replayed" in str(body["detail"])
    moved = pushes[0].replace(b"POST /v1/push ", b"POST /v1/heartbeat ", 1)
    status, body = _send(reg, moved)
    assert status == 401 and "does not verify" in str(body["detail"])

    later = make_register(clock=lambda: time.time() + 301)  # never saw these nonces; 5 min later
    status, body = _send(later, pushes[-1])
    assert status == 401 and ("expired" in str(body["detail"]) or "ago" in str(body["detail"]))

    reg.restart()  # the replay cache is per process and in memory (docs/protocol.md)
    status, body = _send(reg, pushes[0])
    assert status == 200 and body["size"] == 48  # accepted, but a re-send is a no-op
    after = stored_log(work / "register.db")
    assert after.items == before.items and after.rows == 48 and after.alarms == []
