"""Fixtures for the sync tests: a template ledger built once, copied per test; a loopback register."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.clock import FakeClock
from ledger.keys import load_key
from ledger.note import CosignatureSigner
from ledger.store import open_ledger, open_reader
from sync_agent.agent import SyncAgent
from sync_agent.client import RegisterClient
from sync_agent.state import SyncState
from tests.sync.fake_register import FakeRegister

ORIGIN = "reg.test/kgate/dev1"
TEMPLATE_SIZE = 1100


def _fast_dir() -> Path:
    """tmpfs when available: fsync is free there, so building a ledger is ~10x faster."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="kgate-sync-", dir=base))


def append_entries(path: Path, count: int) -> None:
    with open_ledger(path, clock=FakeClock(1_700_000_000_000)) as ledger:
        for i in range(count):
            ledger.append("in" if i % 2 == 0 else "out", child=f"C{i % 97}", method="qr")


@pytest.fixture(scope="session")
def template_ledger() -> Iterator[Path]:
    d = _fast_dir()
    path = d / "ledger.db"
    with open_ledger(path, origin=ORIGIN, clock=FakeClock(1_700_000_000_000)):
        pass
    append_entries(path, TEMPLATE_SIZE)
    yield path
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def ledger_path(template_ledger: Path) -> Iterator[Path]:
    d = _fast_dir()
    for name in ("ledger.db", "device.key"):
        shutil.copy2(template_ledger.parent / name, d / name)
    yield d / "ledger.db"
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cosigner() -> CosignatureSigner:
    return CosignatureSigner.generate("reg.test")


@pytest.fixture
def register(ledger_path: Path, cosigner: CosignatureSigner) -> Iterator[FakeRegister]:
    with open_reader(ledger_path) as r:
        vkey = r.vkey
    reg = FakeRegister(cosigner, [vkey])
    yield reg
    reg.stop()


@pytest.fixture
def make_agent(
    ledger_path: Path, tmp_path: Path, cosigner: CosignatureSigner
) -> Iterator[Callable[..., SyncAgent]]:
    """Builds agents (each with its own reader/state/client, all closed at the end)."""
    made: list[SyncAgent] = []

    def make(url: str, *, state_dir: Path | None = None, **kw: Any) -> SyncAgent:
        signer = load_key(ledger_path.with_name("device.key"))
        agent = SyncAgent(
            open_reader(ledger_path),
            SyncState(state_dir or tmp_path / "state"),
            RegisterClient(url, signer, timeout=(2.0, 5.0)),
            cosigner.verifier(),
            heartbeat=lambda pending: {"pending": pending, "software_version": "test"},
            **kw,
        )
        made.append(agent)
        return agent

    yield make
    for a in made:
        a.client.close()
        a.state.close()
        a.reader.close()
