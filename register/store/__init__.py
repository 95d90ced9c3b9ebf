"""Register storage behind one interface, chosen by the ``--db`` URL.

``sqlite:///path``, ``sqlite:relative`` or a plain path → :class:`SqliteStore` (the default);
``postgresql://…`` / ``postgres://…`` → :class:`PostgresStore` (psycopg 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from register.errors import ConfigError, StoreError
from register.store.base import Alarm, Device, DeviceLog, Store, StoredCheckpoint

__all__ = [
    "Alarm", "Device", "DeviceLog", "Store", "StoredCheckpoint", "existing_only", "open_store", "sqlite_path",
]  # fmt: skip

#: Whether :func:`open_store` may create a missing SQLite file when its caller does not say.
_CREATE: ContextVar[bool] = ContextVar("kgate_store_create", default=True)


@contextmanager
def existing_only() -> Iterator[None]:
    """Within: :func:`open_store` refuses a missing SQLite file instead of creating an empty database.

    ``kgate register …`` runs every command but ``serve`` and ``init`` inside it (register/cli.py), so a
    mistyped or forgotten ``--db`` says so instead of leaving an empty ``register.db`` behind.
    """
    token = _CREATE.set(False)
    try:
        yield
    finally:
        _CREATE.reset(token)


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL or path names, or None for a PostgreSQL URL."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    if url.startswith("sqlite:"):
        rest = url.removeprefix("sqlite:")
        if rest.startswith("///"):
            rest = rest[2:]  # sqlite:///abs/path → /abs/path
        elif rest.startswith("//"):
            raise ConfigError(f"--db {url!r}: use sqlite:///ABSOLUTE/PATH or sqlite:RELATIVE/PATH")
        url = rest
    if not url or "://" in url:
        raise ConfigError(f"--db {url!r} is neither a path, a sqlite: URL nor a postgresql:// URL")
    return Path(url)


def open_store(url: str, *, readonly: bool = False, create: bool | None = None) -> Store:
    """Open the register database at ``url``, creating or upgrading its schema.

    ``readonly`` (verification, listings) writes nothing — a missing SQLite file is an error, not a
    new database — and refuses a database whose schema this kgate does not know exactly.
    ``create=False`` (default: True, False inside :func:`existing_only`) refuses a missing SQLite file
    too, but upgrades an existing database's schema. A PostgreSQL database is never created here (the
    operator creates it); its tables are.
    """
    if create is None:
        create = _CREATE.get()
    path = sqlite_path(url)
    store: Store
    if path is None:
        from register.store.postgres import PostgresStore  # noqa: PLC0415 - psycopg only when asked

        store = PostgresStore(url, readonly=readonly)
    else:
        from register.store.sqlite import SqliteStore  # noqa: PLC0415

        if (readonly or not create) and not path.is_file():
            raise StoreError(f"no register database at {path} (kgate register init --db {path} creates one)")
        store = SqliteStore(path, readonly=readonly)
    try:
        if readonly:
            store.check_schema()
        else:
            store.migrate()
    except BaseException:
        store.close()
        raise
    return store
