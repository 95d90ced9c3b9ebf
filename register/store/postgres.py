"""PostgreSQL backend (psycopg 3): a small connection pool; writers lock the device row ``FOR UPDATE``.

Bulk inserts (``Sql.many`` with a plain ``INSERT INTO t (cols) VALUES (?, …)``, i.e. a batch's entries and
Merkle hashes) run as one binary ``COPY … FROM STDIN`` instead of an executemany: one round trip and no
per-row statement on the server (~10× the rows/s here). COPY obeys the same constraints as INSERT — a row
whose key exists fails the whole statement with a unique violation, so nothing is ever overwritten.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from register.errors import StoreError, StoreUnavailable
from register.store.base import Conn, Sql, Store
from register.store.schema import POSTGRES

POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10
COPY_MIN_ROWS = 8  # fewer rows than this go through executemany (a COPY costs a catalogue-free setup)

_PLAIN_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(\?(?:, \?)*\)")


class PgSql(Sql):
    """``Sql`` whose bulk inserts are binary COPYs (column types looked up once per table and cached)."""

    def __init__(self, conn: Conn, paramstyle: str, types: dict[str, dict[str, int]]) -> None:
        super().__init__(conn, paramstyle)
        self._types = types

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        match = _PLAIN_INSERT.fullmatch(sql)
        if match is None or len(rows) < COPY_MIN_ROWS:
            super().many(sql, rows)
            return
        table = match[1]
        cols = [c.strip() for c in match[2].split(",")]
        if len(cols) != sql.count("?"):
            super().many(sql, rows)
            return
        types = self._column_types(table)
        cur = self._conn.cursor()
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([types[c] for c in cols])
            for row in rows:
                copy.write_row(row)

    def _column_types(self, table: str) -> dict[str, int]:
        types = self._types.get(table)
        if types is None:
            rows = self.all(
                "SELECT attname, atttypid FROM pg_attribute "
                "WHERE attrelid = ?::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
            types = {str(name): int(oid) for name, oid in rows}
            self._types[table] = types
        return types


def _psycopg() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - only the PostgreSQL backend needs it
    except ImportError:
        raise StoreError("PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'") from None
    return psycopg


class PostgresStore(Store):
    """The register in PostgreSQL; connections are opened on demand up to ``pool_size`` and reused."""

    paramstyle = "format"
    dialect = POSTGRES

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, readonly: bool = False) -> None:
        self._pg = _psycopg()
        self.readonly = readonly
        self.integrity_errors = (self._pg.errors.IntegrityError,)
        self._url = url
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        self._types: dict[str, dict[str, int]] = {}  # table → column → type oid, for COPY
        with self._conn():  # fail now, not at the first request, if the server is unreachable
            pass

    def _connect(self) -> Any:
        try:
            options = "-c default_transaction_read_only=on" if self.readonly else None
            return self._pg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, options=options
            )
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
        """A READ COMMITTED transaction; writers serialise on the device row.

        Readers run their statements in autocommit: under READ COMMITTED every statement takes its own
        snapshot inside a transaction too, so BEGIN/COMMIT would only add two round trips per read.
        """
        try:
            with self._conn() as conn:
                if not write:
                    yield PgSql(conn, self.paramstyle, self._types)
                    return
                with conn.transaction():
                    yield PgSql(conn, self.paramstyle, self._types)
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
