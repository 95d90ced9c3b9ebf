"""Fault injection through a loopback proxy (tests/e2e/proxy.py) against the stand-in register.

The same proxy drives the real register in tests/e2e/test_faults.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.store import open_reader
from sync_agent.agent import Backoff, SyncAgent, run_forever
from tests.e2e.proxy import FAULTS, FaultProxy
from tests.sync.conftest import TEMPLATE_SIZE, append_entries
from tests.sync.fake_register import FakeRegister


@pytest.mark.slow
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
        assert all(proxy.applied.get(f, 0) > 0 for f in set(FAULTS)), proxy.applied  # each fault carried out
    finally:
        proxy.close()
