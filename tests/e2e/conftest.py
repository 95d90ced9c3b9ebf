"""End-to-end fixtures: device ledgers, the REAL register (uvicorn in a thread, or ``kgate register serve``
as a process), ``kgate`` subprocesses, and a direct look into the register's SQLite database.

Ledgers live on tmpfs when available (fsync is free there), and the 10,000-entry ledger is built once
per session and copied per test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from ledger.clock import FakeClock
from ledger.store import open_ledger, open_reader
from register.app import create_app
from register.keys import RegisterKeys, load_or_create_keys
from register.limits import Limits
from register.service import Register
from register.store import Store, open_store
from tests.conftest import READY_S, free_port, wait_until

REGISTER_NAME = "reg.e2e"
ORIGIN = f"{REGISTER_NAME}/kgate/gate-1"
BIG = 10_000
ROOT = Path(__file__).resolve().parents[2]
# The register's default 10 req/s would make a fault test mostly 429s; these tests are about faults.
FAST_LIMITS = Limits(rate=10_000.0, burst=10_000)


def fast_dir(prefix: str = "kgate-e2e-") -> Path:
    """A fresh directory on tmpfs when available."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def append_entries(path: Path, count: int, *, start_ms: int = 1_700_000_000_000, child: str = "C") -> None:
    """Append ``count`` check-in/out entries to the ledger at ``path`` (its key beside it)."""
    with open_ledger(path, clock=FakeClock(start_ms)) as ledger:
        for i in range(count):
            ledger.append("in" if i % 2 == 0 else "out", child=f"{child}{i % 97}", method="qr")


def new_ledger(directory: Path, count: int, origin: str = ORIGIN) -> Path:
    """Create ``directory/ledger.db`` (and ``device.key``) holding ``count`` entries."""
    path = directory / "ledger.db"
    with open_ledger(path, origin=origin, clock=FakeClock(1_700_000_000_000)):
        pass
    append_entries(path, count)
    return path


def copy_ledger(src: Path, dest_dir: Path) -> Path:
    """Copy a closed ledger and its key (mode kept) into ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    for name in ("ledger.db", "device.key"):
        shutil.copy2(src.parent / name, dest_dir / name)
    return dest_dir / "ledger.db"


def device_entries(path: Path) -> list[bytes]:
    with open_reader(path) as r:
        return r.entries(0, r.size)


def device_vkey(path: Path) -> str:
    with open_reader(path) as r:
        return r.vkey


@pytest.fixture(scope="session")
def big_template() -> Iterator[Path]:
    """A 10,000-entry device ledger, built once."""
    d = fast_dir()
    yield new_ledger(d, BIG)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def work() -> Iterator[Path]:
    """A per-test directory on tmpfs."""
    d = fast_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def big_ledger(big_template: Path, work: Path) -> Path:
    """A private copy of the 10,000-entry ledger."""
    return copy_ledger(big_template, work / "device")


# -- the register's database, read directly ---------------------------------------------------------


@dataclass(frozen=True)
class StoredLog:
    """One device's rows in the register database, read with plain SQL (not through the store)."""

    rows: int
    distinct: int
    size: int
    items: list[tuple[int, bytes]]  # (idx, data) in index order
    leaves_ok: bool  # every row's leaf column is SHA-256(0x00 || data)
    alarms: list[tuple[str, int | None, bytes | None]]

    @property
    def entries(self) -> list[bytes]:
        return [data for _, data in self.items]


def stored_log(db: Path, origin: str = ORIGIN) -> StoredLog:
    """What the register holds for ``origin``: entry rows, distinct indices, bytes in index order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        dev, size = conn.execute("SELECT id, size FROM devices WHERE origin = ?", (origin,)).fetchone()
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT idx) FROM entries WHERE device_id = ?", (dev,)
        ).fetchone()
        items, leaves_ok = [], True
        for idx, leaf, blob in conn.execute(
            "SELECT idx, leaf, data FROM entries WHERE device_id = ? ORDER BY idx", (dev,)
        ):
            leaves_ok &= bytes(leaf) == hashlib.sha256(b"\x00" + bytes(blob)).digest()
            items.append((int(idx), bytes(blob)))
        alarms = conn.execute(
            "SELECT kind, idx, evidence FROM alarms WHERE device_id = ? ORDER BY id", (dev,)
        ).fetchall()
    finally:
        conn.close()
    return StoredLog(int(rows), int(distinct), int(size), items, leaves_ok, alarms)


def stored_size(db: Path, origin: str = ORIGIN) -> int:
    """The register's stored size for ``origin`` (0 while the database or device row is missing)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT size FROM devices WHERE origin = ?", (origin,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return 0 if row is None else int(row[0])


def assert_exactly(db: Path, expected: list[bytes], origin: str = ORIGIN) -> None:
    """Lost 0, unexpected 0, byte-identical entries at positions 0..n-1, consistent leaves, no alarm.

    (No duplicate count: (device_id, idx) is the primary key, so duplicate rows cannot exist.)
    """
    log = stored_log(db, origin)
    want, have = set(enumerate(expected)), set(log.items)
    lost, unexpected = len(want - have), len(have - want)
    assert (lost, unexpected) == (0, 0)
    assert [idx for idx, _ in log.items] == list(range(len(expected)))
    assert log.rows == log.size == len(expected)
    assert log.entries == expected
    assert log.leaves_ok
    assert log.alarms == []


# -- the register in this process -------------------------------------------------------------------


def enrol(db: str, ledger: Path, *, kindergarten: str = "K-1", gate: str = "north") -> None:
    """Add the ledger's device to the register database's registry."""
    with open_store(db) as store:
        store.add_device(device_vkey(ledger), kindergarten=kindergarten, gate=gate, now_ms=0)


class ThreadedRegister:
    """The real register app on uvicorn in a thread, on a fixed port, restartable on the same database."""

    def __init__(
        self,
        db: str,
        state_dir: Path,
        *,
        port: int | None = None,
        limits: Limits = FAST_LIMITS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.keys: RegisterKeys = load_or_create_keys(state_dir, REGISTER_NAME)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.limits = limits
        self.clock = clock
        self.restarts = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        assert self._store is not None, "register not running"
        return self._store

    def start(self) -> ThreadedRegister:
        self._store = open_store(self.db)
        register = Register(self._store, self.keys.cosigner, max_batch=self.limits.max_batch)
        app = create_app(register, limits=self.limits, clock=self.clock)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="e2e-register", daemon=True)
        self._thread.start()
        server, thread = self._server, self._thread
        wait_until(
            lambda: server.started or not thread.is_alive(),
            f"the register on port {self.port}",
            interval=0.005,
        )
        if not server.started:
            pytest.fail(f"the register's thread ended before it listened on port {self.port}", pytrace=False)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(READY_S)
            assert not self._thread.is_alive(), (
                f"readiness deadline passed: register not stopped in {READY_S:g} s"
            )
        if self._store is not None:
            self._store.close()
        self._server = self._thread = self._store = None

    def restart(self) -> None:
        """Stop the server and start a new one on the same db and port."""
        self.stop()
        self.start()
        self.restarts += 1


@pytest.fixture
def make_register(work: Path) -> Iterator[Callable[..., ThreadedRegister]]:
    """Start real registers (SQLite at ``work/register.db``); all are stopped at teardown."""
    made: list[ThreadedRegister] = []

    def make(**kw: Any) -> ThreadedRegister:
        reg = ThreadedRegister(str(work / "register.db"), work / "register-state", **kw)
        made.append(reg.start())
        return reg

    yield make
    for reg in made:
        reg.stop()


# -- kgate as a process -----------------------------------------------------------------------------


def kgate(*args: str, timeout: float = 3 * READY_S) -> subprocess.CompletedProcess[str]:
    """Run ``kgate ARGS`` to completion (captured output)."""
    return subprocess.run(
        [sys.executable, "-m", "kgate", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start ``kgate ARGS`` in the background, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kgate", *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def wait_http(url: str, timeout: float = READY_S, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers over HTTP (any status); fails naming the URL after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            pass
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the process exited with {proc.returncode} before {url} answered", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(
                f"readiness deadline passed: {url} did not answer within {timeout:g} s", pytrace=False
            )
        time.sleep(0.05)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(READY_S)


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait; returns the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(READY_S)
        except subprocess.TimeoutExpired:
            kill9(proc)
    return int(proc.returncode)


def status_json(state: Path, ledger: Path) -> dict[str, Any]:
    """``kgate sync status --state DIR --ledger PATH --json``, parsed."""
    out = kgate("sync", "status", "--state", str(state), "--ledger", str(ledger), "--json")
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result
