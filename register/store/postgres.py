"""PostgreSQL backend (psycopg 3): a small connection pool; writers lock the device row ``FOR UPDATE``."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from register.errors import StoreError, StoreUnavailable
from register.store.base import Sql, Store, _schema

POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10


def _psycopg() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - only the PostgreSQL backend needs it
    except ImportError:
        raise StoreError("PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'") from None
    return psycopg


class PostgresStore(Store):
    """The register in PostgreSQL; connections are opened on demand up to ``pool_size`` and reused."""

    paramstyle = "format"

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self._pg = _psycopg()
        self.integrity_errors = (self._pg.errors.IntegrityError,)
        self._url = url
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        with self._conn():  # fail now, not at the first request, if the server is unreachable
            pass

    def _schema(self) -> list[str]:
        return _schema("BIGINT GENERATED ALWAYS AS IDENTITY", "BYTEA")

    def _connect(self) -> Any:
        try:
            return self._pg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except self._pg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {str(exc).strip()}") from None

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=30):
            raise StoreUnavailable("all PostgreSQL connections are busy")
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
            except BaseException:
                if conn.closed or conn.info.transaction_status != self._pg.pq.TransactionStatus.IDLE:
                    conn.close()
                    conn = None
                raise
            finally:
                if conn is not None and not conn.closed and not self._closed:
                    self._idle.put(conn)
                elif conn is not None:
                    conn.close()
        finally:
            self._slots.release()

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Sql]:
        del write  # every transaction is READ COMMITTED; writers serialise on the device row
        try:
            with self._conn() as conn, conn.transaction():
                yield Sql(conn, self.paramstyle)
        except self._pg.errors.IntegrityError:
            raise
        except self._pg.OperationalError as exc:
            raise StoreUnavailable(f"PostgreSQL: {str(exc).strip()}") from None
        except self._pg.Error as exc:
            raise StoreError(f"PostgreSQL: {str(exc).strip()}") from None

    def _lock_device(self, sql: Sql, device_id: int) -> None:
        sql.one("SELECT id FROM devices WHERE id = ? FOR UPDATE", (device_id,))

    def migrate(self) -> None:
        with self._tx(write=True) as sql:  # one migrator at a time across register processes
            sql.run("SELECT pg_advisory_xact_lock(7106412)")
        super().migrate()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
