"""Fixtures for register tests: both database backends, device ledgers, a real server on loopback.

The PostgreSQL cluster is a throwaway one (initdb into a temp dir, pg_ctl start on a free loopback
port), run as the ``postgres`` user when the suite runs as root. Tests that use it are skipped with a
reason when the PostgreSQL binaries are not installed.
"""

from __future__ import annotations

import base64
import glob
import gzip
import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from ledger.clock import FakeClock
from ledger.httpsig import sign_request
from ledger.keys import load_key
from ledger.note import CosignatureSigner, Ed25519Signer
from ledger.store import Ledger, open_ledger
from register.app import create_app
from register.limits import Limits
from register.service import Register
from register.store import Store, open_store
from tests.conftest import READY_S, free_port, wait_until

REGISTER = "reg.test"
ORIGIN = f"{REGISTER}/kgate/dev1"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields the base URL (without database name)."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL binaries not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root but there is no 'postgres' user to run the server")
    base = Path(tempfile.mkdtemp(prefix="kgate-pg-"))
    if os.geteuid() == 0:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data, port = base / "data", free_port()
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    # -t: pg_ctl's own readiness wait (it polls the server), long enough for a loaded machine
    started = subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(base / "log"),
                "-w",
                "-t",
                "300",
                "start",
            ]
        ),
        check=False,
        capture_output=True,
    )
    if started.returncode != 0:
        log = (base / "log").read_text(errors="replace")[-2000:] if (base / "log").exists() else ""
        pytest.fail(f"the throwaway PostgreSQL did not start on port {port}: {log}", pytrace=False)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty register database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'register.db'}"
    import psycopg

    base: str = request.getfixturevalue("pg_server")
    name = f"reg_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@dataclass
class Device:
    """A device ledger with its key, as the sync agent sees it."""

    ledger: Ledger
    signer: Ed25519Signer
    clock: FakeClock

    def append(self, n: int) -> None:
        for i in range(n):
            self.ledger.append("in", child=f"C{i % 50}", method="qr")
            self.clock.advance(1)

    def body(self, start: int, end: int, *, old_size: int | None = None, **extra: Any) -> dict[str, Any]:
        old = start if old_size is None else old_size
        cp = self.ledger.checkpoint_at(end)
        assert cp is not None, f"no checkpoint at {end}"
        body: dict[str, Any] = {
            "origin": self.ledger.origin,
            "start": start,
            "entries": [base64.b64encode(e).decode() for e in self.ledger.entries(start, end)],
            "checkpoint": cp,
            "old_size": old,
            "proof": [base64.b64encode(h).decode() for h in self.ledger.consistency_proof(old, end)],
        }
        body.update(extra)
        return body


def make_device(path: Path, origin: str = ORIGIN, *, key_path: Path | None = None) -> Device:
    clock = FakeClock(1_700_000_000_000)
    key = key_path or path / "device.key"
    ledger = open_ledger(path / "ledger.db", origin=origin, key_path=key, clock=clock)
    return Device(ledger, load_key(key), clock)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Device]:
    dev = make_device(tmp_path / "dev1")
    yield dev
    dev.ledger.close()


@dataclass
class Server:
    """A register served by uvicorn in a thread on a free 127.0.0.1 port."""

    url: str
    store: Store
    cosigner: CosignatureSigner
    register: Register
    session: requests.Session = field(default_factory=requests.Session)

    def send(
        self,
        method: str,
        path: str,
        signer: Ed25519Signer | None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        gzipped: bool = False,
        now: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json"} if data else {}
        if gzipped:
            data = gzip.compress(data)
            hdrs["Content-Encoding"] = "gzip"
        if signer is not None:
            stamp = int(time.time()) if now is None else now
            hdrs.update(sign_request(method, self.url + path, hdrs, data, signer, now=stamp))
        hdrs.update(headers or {})
        return self.session.request(method, self.url + path, data=data, headers=hdrs, timeout=READY_S)

    def push(self, signer: Ed25519Signer | None, body: Any, **kw: Any) -> requests.Response:
        return self.send("POST", "/v1/push", signer, body, **kw)


@pytest.fixture
def make_server(db_url: str) -> Iterator[Callable[..., Server]]:
    """Start a register on loopback (optionally with limits); every started server stops at teardown."""
    started: list[tuple[uvicorn.Server, threading.Thread, Store]] = []

    def start(limits: Limits | None = None, rosters_dir: Path | None = None) -> Server:
        store = open_store(db_url)
        cosigner = CosignatureSigner.generate(REGISTER)
        register = Register(store, cosigner, max_batch=(limits or Limits()).max_batch)
        app = create_app(register, limits=limits)
        if rosters_dir is not None:  # as `kgate register serve`: STATE/rosters (register/tuf_cli.py)
            app.state.rosters_dir = rosters_dir
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_until(lambda: server.started or not thread.is_alive(), f"the register on port {port}")
        assert server.started, f"the register's thread ended before it listened on port {port}"
        started.append((server, thread, store))
        return Server(f"http://127.0.0.1:{port}", store, cosigner, register)

    yield start
    for server, thread, store in started:
        server.should_exit = True
        thread.join(READY_S)
        store.close()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()


@pytest.fixture
def enrolled(server: Server, device: Device) -> Device:
    """``device`` enrolled in ``server``'s registry."""
    server.store.add_device(device.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    return device
