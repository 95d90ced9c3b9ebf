"""The device's signed log in SQLite: append (durably, one signed checkpoint per append), read, prove.

Durability rules (docs/ledger.md): WAL with ``synchronous=FULL``, both set and asserted at open;
every append is one ``BEGIN IMMEDIATE`` … ``COMMIT`` holding the entry, the new Merkle hashes and the
new signed checkpoint; :meth:`Ledger.append` returns only after COMMIT returned, so whatever the
caller acknowledges (screen, sound) is on disk. Nothing is ever deleted or updated in place except the
single "newest checkpoint" row.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self, TypeVar

import sqlite_utils

from ledger.checkpoint import CheckpointSigner
from ledger.clock import Clock, SystemClock
from ledger.entry import EvidenceValue, encode_entry, new_entry
from ledger.errors import CorruptLedger, LedgerError, StorageError
from ledger.keys import load_key, load_or_create_key
from ledger.merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash, tree_hash
from ledger.note import Ed25519Signer, Ed25519Verifier
from ledger.sqlite import column, expect_schema, open_durable, open_readonly, storage_error, transaction

APPLICATION_ID: Final = 0x6B676C67  # "kglg": marks the file as a kgate ledger (PRAGMA application_id)
KIND: Final = "kgate-ledger"
RETAIN_EVERY: Final = 16  # keep every 16th checkpoint for audit, besides the newest (docs/ledger.md)
WHAT: Final = "kgate ledger"
_LEVEL_SHIFT: Final = 56  # hashes are keyed by (level << 56) | index: one integer primary key

T = TypeVar("T")

# One statement per table per append (docs/performance.md). The entry is inserted only where the stored
# log ends; the new tree hashes (one to 64 of them) go in as one multi-row INSERT.
_INSERT_ENTRY: Final = (
    "INSERT INTO entries (idx, data) SELECT ?, ? WHERE coalesce((SELECT max(idx) + 1 FROM entries), 0) = ?"
)
_INSERT_HASHES: Final = {
    n: "INSERT INTO hashes (id, hash) VALUES " + ", ".join(["(?, ?)"] * n)  # noqa: S608 - placeholders only
    for n in range(1, 66)
}
_SET_HEAD: Final = (
    "INSERT INTO head (one, size, note) VALUES (1, ?, ?) "
    "ON CONFLICT (one) DO UPDATE SET size = excluded.size, note = excluded.note"
)


def hash_id(level: int, index: int) -> int:
    """The integer key of the complete-subtree hash at (level, index)."""
    return (level << _LEVEL_SHIFT) | index


@dataclass(frozen=True)
class Appended:
    """What one durable append produced: the entry's position and bytes and the signed checkpoint."""

    index: int
    data: bytes
    checkpoint: str


# -- schema migrations: code, applied in order, tracked by PRAGMA user_version ------------------------


def _v1(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key", not_null={"value"})
    db.table("entries").create({"idx": int, "data": bytes}, pk="idx", not_null={"data"})
    db.table("hashes").create({"id": int, "hash": bytes}, pk="id", not_null={"hash"})
    db.table("checkpoints").create({"size": int, "note": str}, pk="size", not_null={"note"})
    db.table("head").create({"one": int, "size": int, "note": str}, pk="one", not_null={"size", "note"})


MIGRATIONS: Final[Sequence[Callable[[sqlite_utils.Database], None]]] = (_v1,)


def migrate(conn: sqlite3.Connection, path: Path, *, init: Mapping[str, str] | None = None) -> None:
    """Bring the schema up to date inside one transaction (a crash leaves the old version intact).

    ``init`` creates a new ledger: its meta rows and the application id are written in the same
    transaction as the schema, so a power cut never leaves a half-made ledger behind.
    """
    db = sqlite_utils.Database(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise LedgerError(f"{path} has schema version {version}, newer than this kgate knows")
    if version == len(MIGRATIONS) and init is None:
        return
    with transaction(conn, path, what=WHAT):
        for step in MIGRATIONS[version:]:
            step(db)
        if init is not None:
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(init.items()))
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")


#: The tables and columns this code reads; :func:`check_ledger` refuses a file without them.
TABLES: Final[Mapping[str, Sequence[str]]] = {
    "meta": ("key", "value"),
    "entries": ("idx", "data"),
    "hashes": ("id", "hash"),
    "checkpoints": ("size", "note"),
    "head": ("one", "size", "note"),
}
META_KEYS: Final = ("kind", "origin", "vkey")


def check_ledger(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    """Refuse a file that is not a complete kgate ledger of a known version; return its meta rows."""
    expect_schema(
        conn, path, what=WHAT, application_id=APPLICATION_ID, user_version=len(MIGRATIONS), tables=TABLES
    )
    meta = read_meta(conn, path)
    _check_kind(meta, path)
    return meta


class SqliteHashReader:
    """The Merkle tree's stored complete-subtree hashes, fetched in one query per request."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        if not addresses:
            return []
        ids = [hash_id(level, index) for level, index in addresses]
        found: dict[int, bytes] = {}
        for start in range(0, len(ids), 500):  # stay far below SQLITE_MAX_VARIABLE_NUMBER
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._conn.execute(f"SELECT id, hash FROM hashes WHERE id IN ({marks})", chunk))  # noqa: S608
        missing = next((a for a, i in zip(addresses, ids, strict=True) if i not in found), None)
        if missing is not None:
            raise CorruptLedger(
                f"corrupt ledger: the tree hash of level {missing[0]} node {missing[1]} is missing "
                f"(entries from {missing[1] << missing[0]} on cannot be proved)"
            )
        return [
            column(found[i], bytes, f"ledger hash ({a[0]}, {a[1]})")
            for a, i in zip(addresses, ids, strict=True)
        ]


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The ledger's meta rows; each of :data:`META_KEYS` must be present as text."""
    meta = {
        column(k, str, "ledger meta key"): column(v, str, f"ledger meta {k!r}")
        for k, v in conn.execute("SELECT key, value FROM meta")
    }
    for key in META_KEYS:
        if key not in meta:
            raise CorruptLedger(f"{path} is not a complete kgate ledger: meta {key!r} is missing")
    return meta


class LedgerReader:
    """Read access to a device log (entries, checkpoints, proofs) without the device key.

    The sync agent and the pull server use this from their own processes; :class:`Ledger` adds appending.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, origin: str, vkey: str) -> None:
        self._conn = conn
        self.path = path
        self.origin = origin
        self.vkey = vkey
        self._lock = threading.Lock()
        self._reader = SqliteHashReader(conn)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier.from_vkey(self.vkey)

    def _db_size(self) -> int:
        row = self._conn.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _read(self, fn: Callable[[], T]) -> T:
        with self._lock:
            try:
                return fn()
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path, WHAT) from None

    @property
    def size(self) -> int:
        """Entries stored now (read from the database: another process may be appending)."""
        return self._read(self._db_size)

    def checkpoint(self) -> str:
        """The newest signed checkpoint (a signed note), covering every acknowledged entry."""
        return self._read(lambda: newest_checkpoint(self._conn, self.path))

    def checkpoint_at(self, size: int) -> str | None:
        """The signed checkpoint of exactly ``size`` entries, if kept (every RETAIN_EVERY-th, the newest)."""

        def query() -> str | None:
            for sql in (
                "SELECT note FROM checkpoints WHERE size = ?",
                "SELECT note FROM head WHERE size = ?",
            ):
                row = self._conn.execute(sql, (size,)).fetchone()
                if row is not None:
                    return column(row[0], str, f"corrupt ledger: the checkpoint at size {size}")
            return None

        return self._read(query)

    def entries(self, start: int, end: int) -> list[bytes]:
        """The exact bytes of entries ``start`` to ``end - 1``."""
        rows = self._read(
            lambda: self._conn.execute(
                "SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
            ).fetchall()
        )
        return [column(data, bytes, f"corrupt ledger: entry {idx}") for idx, data in rows]

    def tree_hash(self, size: int) -> bytes:
        return self._read(lambda: tree_hash(size, self._reader))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._read(lambda: inclusion_proof(index, size, self._reader))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return self._read(lambda: consistency_proof(old_size, new_size, self._reader))

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        """Stored complete-subtree hashes by (level, index): what tlog-tiles serves."""
        return self._read(lambda: self._reader.read_hashes(addresses))


class Ledger(LedgerReader):
    """A device log open for appending. Use :func:`open_ledger`; close it (or use ``with``)."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, signer: Ed25519Signer, origin: str, clock: Clock
    ) -> None:
        super().__init__(conn, path, origin, signer.vkey)
        self._signer = signer
        self._clock = clock
        self._tree = CompactRange.from_reader(self._db_size(), self._reader)
        self._checkpoints = CheckpointSigner(origin, signer)

    @property
    def size(self) -> int:
        return self._tree.size

    def verifier(self) -> Ed25519Verifier:
        return self._signer.verifier()

    # -- appending --------------------------------------------------------------------------------------
    def append(
        self,
        kind: str,
        *,
        child: str | None = None,
        method: str | None = None,
        evidence: Mapping[str, EvidenceValue] | None = None,
        roster_version: int | None = None,
        reason: str | None = None,
        ref: int | None = None,
    ) -> Appended:
        """Append one event durably and sign the new checkpoint; returns after COMMIT.

        Raises :class:`~ledger.errors.EntryError` for an invalid event (nothing written),
        :class:`DiskFull`/:class:`LedgerBusy` (retryable) or another :class:`StorageError`.
        """
        with self._lock:
            reading = self._clock.read()
            conn = self._conn
            for attempt in range(2):
                with transaction(conn, self.path, what=WHAT):
                    if attempt:  # someone else appended (or the file changed): trust the database
                        self._tree = CompactRange.from_reader(self._db_size(), self._reader)
                    size = self._tree.size
                    entry = new_entry(
                        index=size,
                        kind=kind,
                        time_ms=reading.time_ms,
                        clock_synced=reading.synced,
                        boot_id=self._clock.boot_id,
                        mono_ns=reading.mono_ns,
                        child=child,
                        method=method,
                        evidence=dict(evidence or {}),
                        roster_version=roster_version,
                        reason=reason,
                        ref=ref,
                    )
                    data = encode_entry(entry)
                    # The entry goes in only where the stored log ends: this one statement both writes
                    # it and checks that no other writer got in since our tree was read.
                    if conn.execute(_INSERT_ENTRY, (size, data, size)).rowcount != 1:
                        if attempt:
                            raise CorruptLedger(f"{self.path}: entry {size} cannot be appended")
                        continue  # nothing was written: commit the empty transaction, reload, retry
                    tree = self._tree.copy()
                    rows: list[int | bytes] = []
                    for (level, index), h in tree.append(leaf_hash(data)):
                        rows += (level << _LEVEL_SHIFT) | index, h
                    note = self._checkpoints.sign(tree.size, tree.root())
                    conn.execute(_INSERT_HASHES[len(rows) // 2], rows)
                    conn.execute(_SET_HEAD, (tree.size, note))
                    if tree.size % RETAIN_EVERY == 0:
                        conn.execute("INSERT INTO checkpoints (size, note) VALUES (?, ?)", (tree.size, note))
                self._tree = tree
                return Appended(size, data, note)
            raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def newest_checkpoint(conn: sqlite3.Connection, path: Path) -> str:
    """The signed note in the ``head`` row (an empty log has none)."""
    row = conn.execute("SELECT note FROM head WHERE one = 1").fetchone()
    if row is None:
        raise LedgerError(f"{path} has no entries yet, so no checkpoint")
    return column(row[0], str, "corrupt ledger: the newest checkpoint")


def _check_kind(meta: Mapping[str, str], path: Path) -> None:
    if meta.get("kind") != KIND:
        raise CorruptLedger(f"{path} is an SQLite database but not a kgate ledger")


def open_ledger(
    path: Path,
    *,
    key_path: Path | None = None,
    origin: str | None = None,
    clock: Clock | None = None,
    vfs: str | None = None,
) -> Ledger:
    """Open (or, given ``origin``, create) the ledger at ``path`` with the device key at ``key_path``.

    The key defaults to ``device.key`` beside the database and is generated on first use. Opening an
    existing ledger checks that the key is the one the ledger was created with.
    """
    path = Path(path)
    key_path = key_path or path.with_name("device.key")
    if not path.exists() and origin is None:
        raise StorageError(f"no ledger at {path} (create one by giving the log's origin)")
    if not path.exists():
        assert origin is not None
        load_or_create_key(key_path, origin)  # a bad key file stops us before the database exists
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = open_durable(path, what=WHAT, vfs=vfs)
    try:
        try:
            # An empty file is a ledger whose creation never committed (e.g. power lost): create it.
            fresh = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if fresh:
                if origin is None:
                    raise StorageError(f"{path} is an empty database, not a ledger")
                signer = load_or_create_key(key_path, origin)
                migrate(conn, path, init={"kind": KIND, "origin": origin, "vkey": signer.vkey})
            elif conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise CorruptLedger(f"{path} is an SQLite database but not a kgate ledger")
            else:
                migrate(conn, path)
            meta = check_ledger(conn, path)
        except sqlite3.Error as exc:
            raise storage_error(exc, path, WHAT) from None
        if origin is not None and origin != meta["origin"]:
            raise LedgerError(f"{path} is the log {meta['origin']!r}, not {origin!r}")
        # An existing ledger never gets a new key: a missing key file is an error, not a first use.
        signer = load_key(key_path)
        if signer.vkey != meta["vkey"]:
            raise LedgerError(f"device key {key_path} is not the key this ledger was created with")
        return Ledger(conn, path, signer, meta["origin"], clock or SystemClock())
    except BaseException:
        conn.close()
        raise


def open_reader(path: Path, *, vfs: str | None = None) -> LedgerReader:
    """Open an existing ledger read-only (no key needed); the writer may keep appending meanwhile."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"no ledger at {path}")
    conn = open_readonly(path, what=WHAT, vfs=vfs, follow=True)
    try:
        try:
            meta = check_ledger(conn, path)
        except sqlite3.Error as exc:
            raise storage_error(exc, path, WHAT) from None
        return LedgerReader(conn, path, meta["origin"], meta["vkey"])
    except BaseException:
        conn.close()
        raise
