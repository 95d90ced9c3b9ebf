"""SQLite backend on the project's storage boundary (:mod:`ledger.sqlite`): WAL + ``synchronous=FULL``.

One connection, serialised by a thread lock; writers take ``BEGIN IMMEDIATE``. ``readonly=True``
(verification, listings) opens the file so that nothing is written or created beside it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.errors import DatabaseBusy, StorageError
from ledger.sqlite import open_durable, open_readonly, transaction
from register.errors import StoreError, StoreUnavailable
from register.store.base import Sql, Store
from register.store.schema import SQLITE

BUSY_TIMEOUT_MS = 10_000
WHAT = "register database"


def _store_error(exc: StorageError) -> StoreError:
    """The storage boundary's error in the register's tree (busy → retry later, 503)."""
    if isinstance(exc, DatabaseBusy):
        return StoreUnavailable(str(exc))
    return StoreError(str(exc))


class SqliteStore(Store):
    """The register in one SQLite file (embedded default); a thread lock serialises use of the connection."""

    integrity_errors = (sqlite3.IntegrityError,)
    dialect = SQLITE

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                self._conn = open_readonly(self.path, what=WHAT)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = open_durable(self.path, what=WHAT, busy_timeout_ms=BUSY_TIMEOUT_MS)
        except StorageError as exc:
            raise _store_error(exc) from None
        self._lock = threading.RLock()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Sql]:
        if write and self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        with self._lock:
            try:
                with transaction(self._conn, self.path, what=WHAT, immediate=write) as conn:
                    yield Sql(conn, self.paramstyle)
            except sqlite3.IntegrityError:
                raise
            except StorageError as exc:
                raise _store_error(exc) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
