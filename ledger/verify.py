"""Verify a device ledger end to end and name the first bad entry.

The file is opened read-only through the storage boundary (nothing is written or created beside it)
and must be a complete kgate ledger of a known schema version. Then :func:`ledger.replay.replay`
recomputes the log: every entry decodes canonically at its position, every stored tree hash (leaves
included) equals the recomputed one, and every retained checkpoint carries a valid signature by the
log's key and commits to the recomputed root at its size. The newest checkpoint (the ``head`` row: one
row, whose size is a non-negative integer equal to its signed note's) must cover exactly the stored
entries -- neither fewer (entries appended without the key) nor more; a checkpoint presented from
outside (the register's, an auditor's) must agree too, which catches a file rolled back to an older
copy. All of it reads one snapshot of the database.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint
from ledger.errors import NoteError, StorageError, VerificationError
from ledger.note import Ed25519Verifier
from ledger.replay import open_signed, replay
from ledger.sqlite import iter_rows, open_readonly, storage_error, transaction
from ledger.store import WHAT, check_ledger, hash_id

#: How a stored value of the wrong type is named in a message (SQLite's names; anything else is NULL).
_KINDS = {"str": "text", "bytes": "a blob", "float": "a real number"}
_Judged = tuple[int, tuple[str, Checkpoint]]  # (size, (which checkpoint, the checkpoint))


@dataclass(frozen=True)
class LedgerReport:
    """What a successful verification established."""

    origin: str
    vkey: str
    size: int
    root: bytes
    checkpoints: int  # signed checkpoints verified (retained + newest + presented)


def _bad(index: int | None, message: str) -> VerificationError:
    return VerificationError(f"entry {index}: {message}" if index is not None else message, index)


class _StoredHashes:
    """The ledger's ``hashes`` table (leaves at level 0 included), read level by level in id order.

    Recomputed hashes are buffered per level and compared with the stored ones a run at a time (two
    list comparisons per level and flush, instead of a query-cursor step and a call per hash). A
    mismatch is reported exactly as a hash-by-hash comparison would have: the one produced first.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._levels: list[Iterator[tuple[Any, Any]]] = []  # per level: stored (id, hash) rows in id order
        self._next: list[int] = []  # per level: the index of the first buffered hash
        self._pending: list[list[bytes]] = []  # per level: recomputed hashes not yet compared

    def expect(self, level: int, index: int, value: bytes) -> None:
        try:
            self._pending[level].append(value)
        except IndexError:
            while len(self._pending) <= level:
                self._pending.append([])
                self._next.append(0)
                lo, hi = hash_id(len(self._levels), 0), hash_id(len(self._levels) + 1, 0)
                self._levels.append(
                    iter_rows(
                        self._conn,
                        "SELECT id, hash FROM hashes WHERE id >= ? AND id < ? ORDER BY id",
                        (lo, hi),
                    )
                )
            self._pending[level].append(value)

    def flush(self) -> None:
        """Compare every buffered hash; raise for the mismatch a hash-by-hash replay would meet first."""
        worst: tuple[int, int, int, bool] | None = None  # (produced after entry, level, index, missing)
        for level, values in enumerate(self._pending):
            if not values:
                continue
            start = self._next[level]
            rows = list(islice(self._levels[level], len(values)))
            first_id = hash_id(level, start)
            ids = [row[0] for row in rows]
            hashes = [row[1] for row in rows]
            if ids != list(range(first_id, first_id + len(values))) or hashes != values:
                at = next(
                    k
                    for k in range(len(values))
                    if k >= len(rows) or rows[k][0] != first_id + k or rows[k][1] != values[k]
                )
                missing = at >= len(rows) or rows[at][0] != first_id + at
                index = start + at
                found = (((index + 1) << level) - 1, level, index, missing)
                worst = found if worst is None else min(worst, found)
            self._next[level] = start + len(values)
            values.clear()
        if worst is not None:
            _, level, index, missing = worst
            first = index << level
            if missing:
                raise _bad(first, f"the stored Merkle tree lacks the hash of level {level} node {index}")
            if level == 0:
                raise _bad(first, "its bytes do not match the stored leaf hash (entry edited)")
            raise _bad(
                first, f"entries {first}..{((index + 1) << level) - 1} do not match the stored tree hash"
            )

    def finish(self, size: int) -> None:
        expected = 2 * size - size.bit_count()  # complete subtrees of every level, leaves included
        stored = self._conn.execute("SELECT count(*) FROM hashes").fetchone()[0]
        if stored != expected:
            raise _bad(
                size,
                f"the tree holds {stored - expected} hashes beyond the log's {size} entries (tail deleted)",
            )


def verify_ledger(path: Path, *, presented: str | None = None, vkey: str | None = None) -> LedgerReport:
    """Verify the ledger at ``path``; raise :class:`VerificationError` naming the first bad entry.

    ``presented`` is a signed checkpoint from elsewhere (e.g. the register's copy) that the ledger must
    be consistent with; ``vkey`` pins the expected device key instead of trusting the file's own.
    Unreadable input raises :class:`StorageError` (exit 2); the file is never written.
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"{path}: no such file")
    conn = open_readonly(path, what=WHAT)
    try:
        with transaction(conn, path, what=WHAT, immediate=False):  # one snapshot for every read
            return _verify(conn, path, presented, vkey)
    except sqlite3.Error as exc:
        raise storage_error(exc, path, WHAT) from None
    finally:
        conn.close()


def _verify(conn: sqlite3.Connection, path: Path, presented: str | None, vkey: str | None) -> LedgerReport:
    check = conn.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise StorageError(f"{path} fails SQLite's integrity check: {check}")
    meta = check_ledger(conn, path)
    origin = meta["origin"]
    try:
        verifier = Ed25519Verifier.from_vkey(vkey or meta["vkey"])
    except NoteError as exc:
        raise VerificationError(f"the ledger's verifier key is unusable: {exc}") from None
    if vkey is not None and vkey != meta["vkey"]:
        raise VerificationError("the ledger was created with another key than the one given")
    if verifier.name != origin:
        raise VerificationError(f"the ledger's key is named {verifier.name!r}, not its origin {origin!r}")
    keys = [verifier]

    head = _head_row(conn)
    head_cp = None if head is None else open_signed(head[1], keys, origin, "the newest checkpoint")
    if head is not None and head_cp is not None and head[0] != head_cp.size:
        raise VerificationError(
            f"the head row says {head[0]} entries but its signed checkpoint covers {head_cp.size} "
            "(damaged row)"
        )
    outside = None if presented is None else open_signed(presented, keys, origin, "the presented checkpoint")
    # Every signed checkpoint, judged when the replayed tree reaches its size: (size, (what, checkpoint)).
    wanted: list[_Judged] = []
    for cp, what in ((head_cp, "newest"), (outside, "presented")):
        if cp is not None:
            wanted.append((cp.size, (what, cp)))
    retained = (
        (size, ("retained", open_signed(note, keys, origin, f"the checkpoint at size {size}")))
        for size, note in iter_rows(conn, "SELECT size, note FROM checkpoints ORDER BY size")
    )
    judged: dict[str, bytes] = {}
    count = 0

    def judge(item: tuple[str, Checkpoint], size: int, root: bytes) -> None:
        nonlocal count
        what, cp = item
        count += 1
        if what != "retained":
            judged[what] = root
            return
        if cp.size != size or cp.root != root:
            first = max(0, size - _gap(conn, size))
            raise _bad(first, f"entries {first}..{size - 1} differ from the signed checkpoint at size {size}")

    rows = ((idx, data, None) for idx, data in iter_rows(conn, "SELECT idx, data FROM entries ORDER BY idx"))
    size, root = replay(rows, _StoredHashes(conn), _merge(retained, wanted), judge, _bad)

    if head_cp is None:
        if size:
            raise _bad(0, "the log has entries but no newest checkpoint")
    else:
        if head_cp.size < size:
            raise _bad(
                head_cp.size, "is not covered by the newest signed checkpoint (appended without signing)"
            )
        if judged["newest"] != head_cp.root:
            raise _bad(max(0, size - 1), "the log's tree differs from its newest signed checkpoint")
    if outside is not None and judged["presented"] != outside.root:
        raise VerificationError(
            f"the ledger disagrees with the presented checkpoint at size {outside.size} "
            "(entries before it were rewritten)",
            outside.size,
        )
    return LedgerReport(origin, meta["vkey"], size, root, count)


def _head_row(conn: sqlite3.Connection) -> tuple[int, Any] | None:
    """The ``head`` row (size, note): one row, ``one`` = 1, its size a non-negative integer, or None."""
    rows = conn.execute("SELECT one, size, note FROM head LIMIT 2").fetchall()
    if not rows:
        return None
    if len(rows) > 1 or rows[0][0] != 1:
        raise VerificationError("the head table holds a row other than its one row (damaged or added row)")
    size = rows[0][1]
    if type(size) is not int or size < 0:
        got = str(size) if type(size) is int else _KINDS.get(type(size).__name__, "NULL")
        raise VerificationError(f"the head row's size is {got}, not a count of entries (damaged row)")
    return size, rows[0][2]


def _merge(retained: Iterable[_Judged], extra: list[_Judged]) -> Iterator[_Judged]:
    """Retained checkpoints (streamed, ascending) merged with the few others, by size."""
    return heapq.merge(retained, sorted(extra, key=_size), key=_size)


def _size(item: _Judged) -> int:
    return item[0]


def _gap(conn: sqlite3.Connection, size: int) -> int:
    """How many entries lie between the previous retained checkpoint and ``size``."""
    row = conn.execute("SELECT max(size) FROM checkpoints WHERE size < ?", (size,)).fetchone()
    return size - (row[0] or 0)
