"""Verify a device ledger end to end and name the first bad entry.

One streaming pass (constant memory): every entry is decoded and checked for canonical form and its
position; its leaf hash must equal the stored one; every complete-subtree hash the Merkle tree
produces must equal the stored one (so nothing was truncated, inserted or rewritten); every retained
checkpoint and the newest one must carry a valid signature by the log's key and commit to the root
recomputed at its size; a checkpoint presented from outside (the register's, an auditor's) must agree
too, which catches a file rolled back to an older copy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import decode_entry
from ledger.errors import EntryError, NoteError, StorageError, VerificationError
from ledger.merkle import CompactRange, leaf_hash
from ledger.note import Ed25519Verifier
from ledger.store import KIND, connect, hash_id, iter_rows, read_meta, storage_error


@dataclass(frozen=True)
class LedgerReport:
    """What a successful verification established."""

    origin: str
    vkey: str
    size: int
    root: bytes
    checkpoints: int  # signed checkpoints verified (retained + newest + presented)


def _bad(index: int, message: str) -> VerificationError:
    return VerificationError(f"entry {index}: {message}", index)


class _StoredHashes:
    """Streams the stored hashes level by level, in the order the tree recomputes them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._levels: dict[int, Iterator[tuple[int, bytes]]] = {}

    def _level(self, level: int) -> Iterator[tuple[int, bytes]]:
        it = self._levels.get(level)
        if it is None:
            lo, hi = hash_id(level, 0), hash_id(level + 1, 0)
            it = iter_rows(
                self._conn, "SELECT id, hash FROM hashes WHERE id >= ? AND id < ? ORDER BY id", (lo, hi)
            )
            self._levels[level] = it
        return it

    def check(self, level: int, index: int, value: bytes, first_leaf: int) -> None:
        row = next(self._level(level), None)
        if row is None or row[0] != hash_id(level, index):
            raise _bad(first_leaf, f"the stored Merkle tree lacks the hash of level {level} node {index}")
        if row[1] != value:
            if level == 0:
                raise _bad(first_leaf, "its bytes do not match the stored leaf hash (entry edited)")
            last = ((index + 1) << level) - 1
            raise _bad(first_leaf, f"entries {first_leaf}..{last} do not match the stored tree hash")

    def leftover(self, size: int) -> None:
        for level in range(64):
            lo = hash_id(level, 0)
            row = self._conn.execute(
                "SELECT id FROM hashes WHERE id >= ? AND id < ? AND id > ? LIMIT 1",
                (lo, hash_id(level + 1, 0), hash_id(level, (size >> level) - 1) if size >> level else lo - 1),
            ).fetchone()
            if row is not None:
                raise _bad(size, f"the tree holds hashes beyond the log's {size} entries (tail deleted)")


def _open_cp(note: str, verifier: Ed25519Verifier, origin: str, what: str) -> Checkpoint:
    try:
        cp, _ = open_checkpoint(note, [verifier])
    except NoteError as exc:
        raise VerificationError(f"{what}: {exc}") from None
    if cp.origin != origin:
        raise VerificationError(f"{what} is for log {cp.origin!r}, not {origin!r}")
    return cp


def verify_ledger(path: Path, *, presented: str | None = None, vkey: str | None = None) -> LedgerReport:
    """Verify the ledger at ``path``; raise :class:`VerificationError` naming the first bad entry.

    ``presented`` is a signed checkpoint from elsewhere (e.g. the register's copy) that the ledger must
    be consistent with; ``vkey`` pins the expected device key instead of trusting the file's own.
    Unreadable input raises :class:`StorageError` (exit 2).
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"{path}: no such file")
    conn = connect(path, readonly=True)
    try:
        return _verify(conn, path, presented, vkey)
    except sqlite3.Error as exc:
        raise storage_error(exc, path) from None
    finally:
        conn.close()


def _verify(conn: sqlite3.Connection, path: Path, presented: str | None, vkey: str | None) -> LedgerReport:
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise StorageError(f"{path} fails SQLite's integrity check: {check}")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        raise StorageError(f"{path} is an SQLite database but not a kgate ledger")
    meta = read_meta(conn)
    if meta.get("kind") != KIND:
        raise StorageError(f"{path} is an SQLite database but not a kgate ledger")
    origin = meta["origin"]
    try:
        verifier = Ed25519Verifier.from_vkey(vkey or meta["vkey"])
    except NoteError as exc:
        raise VerificationError(f"the ledger's verifier key is unusable: {exc}") from None
    if vkey is not None and vkey != meta["vkey"]:
        raise VerificationError("the ledger was created with another key than the one given")

    retained = iter_rows(conn, "SELECT size, note FROM checkpoints ORDER BY size")
    next_cp = next(retained, None)
    stored = _StoredHashes(conn)
    presented_cp = _open_cp(presented, verifier, origin, "the presented checkpoint") if presented else None
    presented_root: bytes | None = None
    tree = CompactRange()
    last_mono: dict[bytes, int] = {}
    checked = 0
    for idx, data in iter_rows(conn, "SELECT idx, data FROM entries ORDER BY idx"):
        pos = tree.size
        if idx != pos:
            raise _bad(pos, f"is missing (the next stored entry is {idx})")
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            raise _bad(pos, str(exc)) from None
        if entry.index != pos:
            raise _bad(pos, f"says it is entry {entry.index} (entries reordered or moved)")
        prev = last_mono.get(entry.boot_id)
        if prev is not None and entry.mono_ns < prev:
            raise _bad(
                pos, "its monotonic time is earlier than an earlier entry of the same boot (reordered)"
            )
        last_mono[entry.boot_id] = entry.mono_ns
        for (level, index), value in tree.append(leaf_hash(data)):
            stored.check(level, index, value, index << level)
        while next_cp is not None and next_cp[0] == tree.size:
            cp = _open_cp(next_cp[1], verifier, origin, f"the checkpoint at size {tree.size}")
            if cp.size != tree.size or cp.root != tree.root():
                first = max(0, tree.size - _gap(conn, tree.size))
                raise _bad(
                    first,
                    f"entries {first}..{tree.size - 1} differ from the signed checkpoint at size {tree.size}",
                )
            checked += 1
            next_cp = next(retained, None)
        if presented_cp is not None and presented_cp.size == tree.size:
            presented_root = tree.root()
    size = tree.size
    if next_cp is not None:
        raise _bad(size, f"is missing: a signed checkpoint covers {next_cp[0]} entries, {size} are stored")
    stored.leftover(size)

    head = conn.execute("SELECT size, note FROM head WHERE one = 1").fetchone()
    if head is None:
        if size:
            raise _bad(0, "the log has entries but no newest checkpoint")
    else:
        cp = _open_cp(head[1], verifier, origin, "the newest checkpoint")
        if cp.size > size:
            raise _bad(size, f"is missing: the newest checkpoint covers {cp.size} entries, {size} are stored")
        if cp.size < size:
            raise _bad(cp.size, "is not covered by the newest signed checkpoint (appended without signing)")
        if cp.root != tree.root():
            raise _bad(max(0, size - 1), "the log's tree differs from its newest signed checkpoint")
        checked += 1
    if presented_cp is not None:
        if presented_cp.size > size:
            raise _bad(
                size,
                f"is missing: the presented checkpoint covers {presented_cp.size} entries but the ledger "
                f"has {size} (rolled back to an older copy or truncated)",
            )
        root = presented_root if presented_cp.size else CompactRange().root()
        if root != presented_cp.root:
            raise VerificationError(
                f"the ledger disagrees with the presented checkpoint at size {presented_cp.size} "
                "(entries before it were rewritten)",
                presented_cp.size,
            )
        checked += 1
    return LedgerReport(origin, meta["vkey"], size, tree.root(), checked)


def _gap(conn: sqlite3.Connection, size: int) -> int:
    """How many entries lie between the previous retained checkpoint and ``size``."""
    row = conn.execute("SELECT max(size) FROM checkpoints WHERE size < ?", (size,)).fetchone()
    return size - (row[0] or 0)
