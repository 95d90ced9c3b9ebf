"""An embedded register on loopback: the same app and store as ``kgate register serve``, in a thread.

Used by ``kgate demo`` (a gate and its register on one laptop) and by end-to-end tests.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from register.app import create_app
from register.errors import RegisterError
from register.keys import RegisterKeys, load_or_create_keys
from register.service import Register
from register.store import Store, open_store


@dataclass(frozen=True)
class LocalRegister:
    """A running embedded register."""

    url: str
    store: Store
    keys: RegisterKeys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_locally(
    db: str,
    state_dir: Path,
    name: str,
    *,
    timeout: float = 10.0,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[LocalRegister]:
    """Serve a register on 127.0.0.1 (a free port) until the block ends; HTTPS with ``tls=(cert, key)``."""
    keys = load_or_create_keys(state_dir, name)
    store = open_store(db)
    port = _free_port()
    app = create_app(Register(store, keys.cosigner))
    app.state.rosters_dir = state_dir / "rosters"  # as `kgate register serve` (register/tuf_cli.py repos_dir)
    cert, key = tls if tls else (None, None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        log_level="warning",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="kgate-register", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RegisterError("the embedded register did not start")
            time.sleep(0.01)
        scheme = "https" if tls else "http"
        yield LocalRegister(f"{scheme}://127.0.0.1:{port}", store, keys)
    finally:
        server.should_exit = True
        thread.join(timeout)
        store.close()
