"""The register's storage, written once in portable SQL; backends supply connections, locking, dialect.

Tables: ``devices`` (the registry, plus each log's stored size and last heartbeat), ``entries`` keyed
(device, index) holding the exact bytes and the leaf hash, ``hashes`` (interior Merkle nodes, so the
root at any size and the frontier at the stored size cost O(log n) reads), ``checkpoints`` (every
device-signed checkpoint accepted, with the register's cosigned copy), ``alarms`` (equivocation and
other evidence, never deleted). Nothing is updated in place except the device row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.errors import BadKeyError
from ledger.note import Ed25519Verifier
from register.errors import ConfigError, DuplicateDevice, StoreError
from register.ingest import Address, Plan
from register.store.schema import COMPONENTS, LEGACY_KEY, META_DDL, SQLITE, Dialect, known_versions, meta_key

_PAGE = 1000


@dataclass(frozen=True)
class Device:
    """An enrolled device: its log origin (= key name), key, place, and what the register holds of it."""

    id: int
    origin: str
    keyid: str
    vkey: str
    kindergarten: str
    gate: str
    added_ms: int
    disabled: bool
    size: int
    last_seen_ms: int | None
    heartbeat: dict[str, Any] | None

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier.from_vkey(self.vkey)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id"}


@dataclass(frozen=True)
class StoredCheckpoint:
    """A device-signed checkpoint the register accepted, and its copy with the register's cosignature."""

    size: int
    root: bytes
    note: str
    cosigned: str


@dataclass(frozen=True)
class Alarm:
    """Evidence of misbehaviour (equivocation): kept forever, never overwritten."""

    id: int
    device_id: int | None
    time_ms: int
    kind: str
    index: int | None
    detail: str
    evidence: bytes | None


_DEVICE_COLS = (
    "id, origin, keyid, vkey, kindergarten, gate, added_ms, disabled, size, last_seen_ms, heartbeat"
)


def _device(row: Sequence[Any]) -> Device:
    hb = json.loads(row[10]) if row[10] else None
    return Device(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], int(row[6]), bool(row[7]), int(row[8]),
        None if row[9] is None else int(row[9]), hb,
    )  # fmt: skip


def _blob(value: Any) -> Any:
    """PostgreSQL returns BYTEA as memoryview; anything else is passed on as stored."""
    return bytes(value) if isinstance(value, memoryview) else value


class Conn(Protocol):
    """What both sqlite3 and psycopg connections offer (``?`` placeholders are translated by the store)."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def cursor(self) -> Any: ...


class Sql:
    """A connection inside a transaction, with the dialect's placeholder style."""

    def __init__(self, conn: Conn, paramstyle: str) -> None:
        self._conn = conn
        self._pg = paramstyle == "format"

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._conn.execute(self._q(sql), tuple(params)).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._q(sql), tuple(params)).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(self._q(sql), tuple(params))

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._conn.cursor().executemany(self._q(sql), rows)


class DeviceLog:
    """One device's log inside a write transaction that holds the device lock (implements LogView)."""

    def __init__(self, sql: Sql, device: Device) -> None:
        self._sql = sql
        self.device = device
        self._size = device.size

    @property
    def size(self) -> int:
        return self._size

    @property
    def sql(self) -> Sql:
        """The transaction, for writes that must commit or roll back with the entries (the outbox)."""
        return self._sql

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self._sql.all(
            "SELECT leaf FROM entries WHERE device_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (self.device.id, start, end),
        )
        if len(rows) != end - start:
            raise StoreError(f"device {self.device.origin}: entries {start}..{end - 1} are incomplete")
        return [bytes(r[0]) for r in rows]

    def read_hashes(self, addresses: Sequence[Address]) -> list[bytes]:
        return read_hashes(self._sql, self.device, addresses)

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        return _checkpoint_at(self._sql, self.device.id, size)

    def apply(self, plan: Plan) -> None:
        """Insert the plan's entries and hashes and move the stored size."""
        dev = self.device.id
        self._sql.many(
            "INSERT INTO entries (device_id, idx, leaf, data) VALUES (?, ?, ?, ?)",
            [(dev, i, leaf, data) for i, data, leaf in plan.entries],
        )
        self._sql.many(
            "INSERT INTO hashes (device_id, level, idx, hash) VALUES (?, ?, ?, ?)",
            [(dev, level, i, h) for (level, i), h in plan.hashes],
        )
        if plan.size != self._size:
            self._sql.run("UPDATE devices SET size = ? WHERE id = ?", (plan.size, dev))
            self._size = plan.size

    def put_checkpoint(self, cp: StoredCheckpoint, now_ms: int) -> None:
        self._sql.run(
            "INSERT INTO checkpoints (device_id, size, root, note, cosigned, received_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (self.device.id, cp.size, cp.root, cp.note, cp.cosigned, now_ms),
        )


def _checkpoint_at(sql: Sql, device_id: int, size: int) -> StoredCheckpoint | None:
    row = sql.one(
        "SELECT size, root, note, cosigned FROM checkpoints WHERE device_id = ? AND size = ?",
        (device_id, size),
    )
    return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])


def read_hashes(sql: Sql, device: Device, addresses: Sequence[Address]) -> list[bytes]:
    """Complete-subtree hashes by (level, index); leaves come from ``entries``. KeyError if missing."""
    found: dict[Address, bytes] = {}
    leaves = [i for level, i in addresses if level == 0]
    nodes = [(level, i) for level, i in addresses if level > 0]
    for chunk in range(0, len(leaves), 500):
        part = leaves[chunk : chunk + 500]
        marks = ",".join("?" * len(part))
        for idx, leaf in sql.all(
            f"SELECT idx, leaf FROM entries WHERE device_id = ? AND idx IN ({marks})",  # noqa: S608
            (device.id, *part),
        ):
            found[(0, int(idx))] = bytes(leaf)
    for level, i in nodes:  # O(log n) of them per call
        row = sql.one(
            "SELECT hash FROM hashes WHERE device_id = ? AND level = ? AND idx = ?", (device.id, level, i)
        )
        if row is not None:
            found[(level, i)] = bytes(row[0])
    try:
        return [found[a] for a in addresses]
    except KeyError as exc:
        raise KeyError(f"device {device.origin}: tree hash {exc.args[0]} missing") from None


class Store:
    """The register database. Backends implement ``_tx`` (a transaction) and ``_lock_device``."""

    paramstyle = "qmark"
    integrity_errors: tuple[type[BaseException], ...] = ()

    # -- backend hooks --------------------------------------------------------------------------------
    def _tx(self, *, write: bool) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _lock_device(self, sql: Sql, device_id: int) -> None:
        """Serialise writers of one device until the transaction ends (no-op where BEGIN IMMEDIATE did)."""

    dialect: Dialect = SQLITE

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade every component's tables (idempotent, one transaction; docs in schema.py)."""
        with self._tx(write=True) as sql:
            sql.run(META_DDL)
            versions = self._versions(sql)
            for component, steps in COMPONENTS.items():
                version = versions.get(component, 0)
                for step in steps[version:]:
                    for ddl in step(self.dialect):
                        sql.run(ddl)
                if version != len(steps):
                    sql.run(
                        "INSERT INTO meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (meta_key(component), str(len(steps))),
                    )

    def check_schema(self) -> None:
        """Refuse a database whose schema this code does not know (StoreError): never guess."""
        with self._tx(write=False) as sql:
            versions = self._versions(sql)
        known = known_versions()
        if not versions:
            raise StoreError("not a kgate register database (no schema version recorded)")
        for component, version in versions.items():
            if component not in known or version > known[component]:
                raise StoreError(
                    f"register database has schema {component} v{version}, which this kgate does not know"
                )
            if version < known[component]:
                raise StoreError(
                    f"register database has schema {component} v{version}, older than this kgate's "
                    f"v{known[component]}: run kgate register serve (or any writing command) to upgrade it"
                )

    def _versions(self, sql: Sql) -> dict[str, int]:
        """Each component's recorded version (a pre-component database counts as ``log`` v1)."""
        versions: dict[str, int] = {}
        for key, value in sql.all("SELECT key, value FROM meta WHERE key LIKE ?", (LEGACY_KEY + "%",)):
            name = "log" if key == LEGACY_KEY else str(key).removeprefix(LEGACY_KEY + ".")
            if name == str(key) or not str(value).isdigit():
                raise StoreError(f"register database meta row {key!r} = {value!r} is not a schema version")
            versions[name] = max(versions.get(name, 0), int(value))
        return versions

    def get_meta(self, key: str) -> str | None:
        with self._tx(write=False) as sql:
            row = sql.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx(write=True) as sql:
            sql.run(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- devices --------------------------------------------------------------------------------------
    def add_device(
        self, vkey: str, *, kindergarten: str, gate: str, now_ms: int, register_name: str | None = None
    ) -> Device:
        """Enrol a device by its note vkey (the operator's manual path); its log origin is the key's name.

        The origin rules of :mod:`register.origins` apply, with ``register_name`` (or the name recorded
        by the register that ran on this database) as the required prefix; one live device per gate.
        """
        from register.store.enrolment import insert_device  # noqa: PLC0415 - it imports this module

        try:
            verifier = Ed25519Verifier.from_vkey(vkey)
        except BadKeyError as exc:
            raise ConfigError(f"VKEY is not a valid Ed25519 note verifier key: {exc}") from None
        try:
            with self._tx(write=True) as sql:
                return insert_device(
                    sql, verifier, kindergarten=kindergarten, gate=gate, now_ms=now_ms, prefix=register_name
                )
        except self.integrity_errors:
            raise DuplicateDevice(
                f"a device with origin {verifier.name!r} or its key is already enrolled, "
                f"or {kindergarten} / {gate} already has a live device"
            ) from None

    def devices(self) -> list[Device]:
        with self._tx(write=False) as sql:
            return [_device(r) for r in sql.all(f"SELECT {_DEVICE_COLS} FROM devices ORDER BY id")]  # noqa: S608

    def device_by_keyid(self, keyid: str) -> Device | None:
        with self._tx(write=False) as sql:
            row = sql.one(f"SELECT {_DEVICE_COLS} FROM devices WHERE keyid = ?", (keyid,))  # noqa: S608
        return None if row is None else _device(row)

    def device_by_origin(self, origin: str) -> Device | None:
        with self._tx(write=False) as sql:
            row = sql.one(f"SELECT {_DEVICE_COLS} FROM devices WHERE origin = ?", (origin,))  # noqa: S608
        return None if row is None else _device(row)

    def touch(self, device_id: int, now_ms: int, heartbeat: dict[str, Any] | None) -> None:
        """Record that the device was heard from, with its newest heartbeat if it sent one."""
        with self._tx(write=True) as sql:
            if heartbeat is None:
                sql.run("UPDATE devices SET last_seen_ms = ? WHERE id = ?", (now_ms, device_id))
            else:
                sql.run(
                    "UPDATE devices SET last_seen_ms = ?, heartbeat = ? WHERE id = ?",
                    (now_ms, json.dumps(heartbeat, sort_keys=True), device_id),
                )

    # -- logs -----------------------------------------------------------------------------------------
    @contextmanager
    def device_log(self, device_id: int) -> Iterator[DeviceLog]:
        """A write transaction holding the device's lock; commits if the block ends normally."""
        with self._tx(write=True) as sql:
            self._lock_device(sql, device_id)
            row = sql.one(f"SELECT {_DEVICE_COLS} FROM devices WHERE id = ?", (device_id,))  # noqa: S608
            if row is None:
                raise StoreError(f"no device with id {device_id}")
            yield DeviceLog(sql, _device(row))

    def newest_checkpoint(self, device_id: int) -> StoredCheckpoint | None:
        with self._tx(write=False) as sql:
            row = sql.one(
                "SELECT size, root, note, cosigned FROM checkpoints WHERE device_id = ? "
                "ORDER BY size DESC LIMIT 1",
                (device_id,),
            )
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2], row[3])

    def checkpoints(self, device_id: int) -> list[StoredCheckpoint]:
        with self._tx(write=False) as sql:
            rows = sql.all(
                "SELECT size, root, note, cosigned FROM checkpoints WHERE device_id = ? ORDER BY size",
                (device_id,),
            )
        return [StoredCheckpoint(int(r[0]), bytes(r[1]), r[2], r[3]) for r in rows]

    def iter_entries(self, device_id: int) -> Iterator[tuple[Any, Any, Any]]:
        """Every stored entry ``(index, leaf hash, data)`` in index order, a page at a time."""
        after = -1
        while True:
            with self._tx(write=False) as sql:
                rows = sql.all(
                    "SELECT idx, leaf, data FROM entries "
                    "WHERE device_id = ? AND idx > ? ORDER BY idx LIMIT ?",
                    (device_id, after, _PAGE),
                )
            if not rows:
                return
            for idx, leaf, data in rows:  # types are the verifier's to check: a damaged row is named
                yield idx, _blob(leaf), _blob(data)
            after = int(rows[-1][0])

    def device_hashes(self, device: Device, addresses: Sequence[Address]) -> list[bytes]:
        """Stored tree hashes of ``device`` in a read transaction (statement proofs); KeyError if missing."""
        with self._tx(write=False) as sql:
            return read_hashes(sql, device, addresses)

    def stored_hashes(self, device_id: int, level: int, lo: int, hi: int) -> dict[int, bytes]:
        """Interior hashes of one level with index in ``[lo, hi)`` (verification reads them in pages)."""
        with self._tx(write=False) as sql:
            rows = sql.all(
                "SELECT idx, hash FROM hashes WHERE device_id = ? AND level = ? AND idx >= ? AND idx < ?",
                (device_id, level, lo, hi),
            )
        return {int(i): bytes(h) for i, h in rows}

    def count_hashes(self, device_id: int) -> int:
        with self._tx(write=False) as sql:
            return int(sql.one("SELECT count(*) FROM hashes WHERE device_id = ?", (device_id,))[0])

    # -- alarms ---------------------------------------------------------------------------------------
    def add_alarm(
        self,
        device_id: int | None,
        kind: str,
        detail: str,
        *,
        index: int | None,
        evidence: bytes | None,
        now_ms: int,
    ) -> int:
        with self._tx(write=True) as sql:
            row = sql.one(
                "INSERT INTO alarms (device_id, time_ms, kind, idx, detail, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (device_id, now_ms, kind, index, detail, evidence),
            )
        return int(row[0])

    def alarms(self, device_id: int | None = None) -> list[Alarm]:
        with self._tx(write=False) as sql:
            if device_id is None:
                rows = sql.all(
                    "SELECT id, device_id, time_ms, kind, idx, detail, evidence FROM alarms ORDER BY id"
                )
            else:
                rows = sql.all(
                    "SELECT id, device_id, time_ms, kind, idx, detail, evidence FROM alarms "
                    "WHERE device_id = ? ORDER BY id",
                    (device_id,),
                )
        return [
            Alarm(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], None if r[6] is None else bytes(r[6]))
            for r in rows
        ]
