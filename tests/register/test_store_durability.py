"""The register's SQLite store asks for ``synchronous=FULL`` on every connection it writes through.

SQLite's compiled-in default happens to be FULL on most builds, so reading the pragma back is not
enough: the test also watches the statements the store sends, to catch a store that stops asking
(and would silently run with NORMAL on a build whose default differs) or asks for less.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ledger.note import Ed25519Signer
from register.store import open_store

_SYNC = re.compile(r"pragma\s+(main\.)?synchronous\s*=\s*['\"]?(full|extra|2|3)\b", re.IGNORECASE)


def test_every_register_connection_is_wal_and_synchronous_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_connect = sqlite3.connect
    opened: list[tuple[sqlite3.Connection, list[str]]] = []

    def spy(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = real_connect(*args, **kwargs)
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        opened.append((conn, statements))
        return conn

    monkeypatch.setattr(sqlite3, "connect", spy)
    store = open_store(f"sqlite:///{tmp_path / 'register.db'}")
    try:
        store.add_device(
            Ed25519Signer.generate("reg.test/kgate/dev1").vkey, kindergarten="K", gate="g", now_ms=0
        )
        assert store.device_by_origin("reg.test/kgate/dev1") is not None
        live = []
        for conn, statements in opened:
            try:
                sync = conn.execute("PRAGMA synchronous").fetchone()[0]
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            except sqlite3.ProgrammingError:
                continue  # closed already (e.g. a migration connection)
            live.append(conn)
            assert sync in (2, 3), f"synchronous={sync}, not FULL"
            assert mode == "wal"
            assert any(_SYNC.search(s) for s in statements), "the store never asked for synchronous=FULL"
        assert live, "the store holds no open SQLite connection to check"
    finally:
        store.close()
