"""The one storage boundary for every SQLite database kgate keeps (ledger, roster, sync state, register).

- :func:`open_durable` opens a database for writing: autocommit (we issue BEGIN ourselves), WAL and
  ``synchronous=FULL`` set *and read back*, a busy timeout, foreign keys on.
- :func:`transaction` is the only way to write: ``BEGIN IMMEDIATE`` … ``COMMIT``, ``ROLLBACK`` on any
  exception; it returns only after COMMIT returned.
- :func:`open_readonly` is for verification and status: it never writes, never creates a file (no
  ``-wal``/``-shm`` beside a copied database) and refuses what is not a regular file.
- :func:`expect_schema` refuses a database that is not what it claims (application id, schema version,
  tables and columns), and :func:`column` refuses a NULL or wrongly typed value, so a damaged row
  becomes "corrupt …, entry N", never a ``KeyError`` or ``TypeError``.
- :func:`storage_error` is the one mapping from SQLite's errors to the project's
  (:class:`~ledger.errors.DiskFull`, :class:`~ledger.errors.DatabaseBusy`,
  :class:`~ledger.errors.CorruptDatabase`, :class:`~ledger.errors.StorageError`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from ledger.errors import CorruptDatabase, DatabaseBusy, DiskFull, StorageError

BUSY_TIMEOUT_MS: Final = 5000
_FETCH: Final = 1024

T = TypeVar("T")


def storage_error(exc: sqlite3.Error, path: Path | str, what: str = "database") -> StorageError:
    """Translate SQLite's error into the project's tree, keeping the message precise."""
    msg = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "disk is full" in msg:
        return DiskFull(f"disk full while writing {what} {path}; nothing was written")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in msg:
        return DatabaseBusy(f"{what} {path} is locked by another process")
    if isinstance(exc, sqlite3.DatabaseError) and (
        code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
        or "not a database" in msg
        or "malformed" in msg
    ):
        return CorruptDatabase(f"{path} is not a readable {what} ({msg})")
    return StorageError(f"{what} {path}: {msg}")


def _uri(path: Path, params: Sequence[str]) -> str:
    query = "&".join(p for p in params if p)
    return path.resolve().as_uri() + ("?" + query if query else "")


def open_durable(
    path: Path | str,
    *,
    what: str = "database",
    vfs: str | None = None,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    journal: str = "wal",
) -> sqlite3.Connection:
    """A connection for writing, in autocommit mode, with WAL + ``synchronous=FULL`` checked.

    Creates the file if it does not exist (callers that must not create check first). ``journal="delete"``
    is for data that must really go when deleted (face templates, with ``secure_delete``): a WAL keeps
    old page images until a checkpoint.
    """
    if journal not in ("wal", "delete"):
        raise ValueError(f"journal must be 'wal' or 'delete', not {journal!r}")
    path = Path(path)
    try:
        conn = sqlite3.connect(
            _uri(path, [f"vfs={vfs}" if vfs else ""]),
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
        )
    except sqlite3.Error as exc:
        raise storage_error(exc, path, what) from None
    try:
        mode = conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
        if mode != journal:
            raise StorageError(f"{what} {path}: cannot switch to journal mode {journal} (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        if sync != 2:
            raise StorageError(f"{what} {path}: synchronous=FULL did not take effect (got {sync})")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(exc, path, what) from None
    except StorageError:
        conn.close()
        raise
    return conn


def open_readonly(
    path: Path | str, *, what: str = "database", vfs: str | None = None, follow: bool = False
) -> sqlite3.Connection:
    """A connection that can only read; without ``follow`` it also creates nothing beside ``path``.

    A database with no ``-wal`` file beside it (a copy, a closed ledger) is opened ``immutable``, so
    SQLite neither creates ``-wal``/``-shm`` files nor takes locks; a live database (its writer has a
    ``-wal`` open) is opened ``mode=ro`` so that committed pages still in the WAL are seen. ``follow``
    (the sync agent reading the terminal's ledger) always opens ``mode=ro``, to see later commits.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise StorageError(f"cannot open {what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise StorageError(f"{what} {path} is not a regular file")
    live = follow or Path(f"{path}-wal").exists()
    params = ["mode=ro", "" if live else "immutable=1", f"vfs={vfs}" if vfs else ""]
    try:
        conn = sqlite3.connect(
            _uri(path, params),
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        conn.execute("PRAGMA query_only=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the header: not a db → error
    except sqlite3.Error as exc:
        raise storage_error(exc, path, what) from None
    return conn


@contextmanager
def transaction(
    conn: sqlite3.Connection, path: Path | str, *, what: str = "database", immediate: bool = True
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (or deferred) … ``COMMIT``; ``ROLLBACK`` if the block raises.

    SQLite errors, including a failed COMMIT, leave as :class:`StorageError` subclasses, except a
    constraint violation (``sqlite3.IntegrityError``), which the caller interprets ("already enrolled");
    the caller's own exceptions pass through unchanged after the rollback.
    """
    try:
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    except sqlite3.Error as exc:
        raise storage_error(exc, path, what) from None
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            # the original error says more; SQLite rolls back a failed COMMIT itself
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
            raise storage_error(exc, path, what) from None
        raise


def iter_rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """Stream the rows of a query (a verifier must not hold a million entries in memory)."""
    cursor = conn.execute(sql, params)
    while True:
        rows = cursor.fetchmany(_FETCH)
        if not rows:
            return
        yield from rows


def expect_schema(
    conn: sqlite3.Connection,
    path: Path | str,
    *,
    what: str,
    application_id: int | None,
    user_version: int,
    tables: Mapping[str, Sequence[str]],
) -> None:
    """Refuse a database that is not the kind, version and shape the caller knows (CorruptDatabase).

    ``tables`` maps each table the caller reads to the columns it reads; extra tables or columns are
    allowed (they do not change what is read), missing ones are not.
    """
    if application_id is not None:
        found = conn.execute("PRAGMA application_id").fetchone()[0]
        if found != application_id:
            raise CorruptDatabase(f"{path} is an SQLite database but not a {what}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > user_version:
        raise CorruptDatabase(f"{path} has {what} schema version {version}, newer than this kgate knows")
    if version < user_version:
        raise CorruptDatabase(f"{path} has {what} schema version {version}; expected {user_version}")
    for table, columns in tables.items():
        have = {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
        if not have:
            raise CorruptDatabase(f"{path} is not a complete {what}: table {table!r} is missing")
        missing = [c for c in columns if c not in have]
        if missing:
            raise CorruptDatabase(f"{path} is not a complete {what}: {table}.{missing[0]} is missing")


def column(value: Any, kind: type[T], where: str) -> T:
    """``value`` if it has exactly type ``kind`` (bool is not int), else :class:`CorruptDatabase`."""
    if type(value) is not kind:
        got = "NULL" if value is None else type(value).__name__
        raise CorruptDatabase(f"{where} holds {got} where {kind.__name__} belongs (damaged row)")
    return value
