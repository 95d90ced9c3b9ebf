"""SQLite backend: one connection in WAL with ``synchronous=FULL``; writers take ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from register.errors import StoreError, StoreUnavailable
from register.store.base import Sql, Store
from register.store.schema import SQLITE

BUSY_TIMEOUT_S = 10.0


def _error(exc: sqlite3.Error, path: Path) -> StoreError:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return StoreUnavailable(f"{path} is busy: {msg}")
    return StoreError(f"{path}: {msg}")


class SqliteStore(Store):
    """The register in one SQLite file (embedded default); a thread lock serialises use of the connection."""

    integrity_errors = (sqlite3.IntegrityError,)
    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise _error(exc, self.path) from None
        if mode != "wal" or sync != 2:
            conn.close()
            raise StoreError(f"{self.path}: cannot set WAL + synchronous=FULL (got {mode}, {sync})")
        self._conn = conn
        self._lock = threading.RLock()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Sql]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield Sql(conn, self.paramstyle)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise _error(exc, self.path) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
