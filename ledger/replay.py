"""Replay and compare: the one verification algorithm for device ledgers and register logs.

A stored log is trusted only as far as it can be recomputed. :func:`replay` streams the stored entries
in index order (constant memory) and, for each one: the row is well typed, its index is its position
(nothing missing, inserted or moved), the bytes decode as a canonical entry that names the same index,
its stored leaf hash (where the store keeps one beside the entry) is its real leaf hash, and every
complete-subtree hash the recomputed Merkle tree produces equals the stored one. Whenever the tree
reaches the size of a signed checkpoint, the caller's ``judge`` checks that checkpoint (signature,
cosignature, root) against the recomputed root. ``kgate verify`` on a device ledger
(:mod:`ledger.verify`) and on a register database (:mod:`register.verify`) differ only in where the
rows, the stored hashes and the checkpoints come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import decode_entry
from ledger.errors import EntryError, NoteError, VerificationError
from ledger.merkle import CompactRange, leaf_hash
from ledger.note import Verifier

C = TypeVar("C")

FLUSH_EVERY = 4096  # entries: the stored tree compares its buffer at least this often


class Fail(Protocol):
    """Builds the error naming the first bad entry (``index``) in the caller's words."""

    def __call__(self, index: int | None, message: str) -> VerificationError: ...


class StoredTree(Protocol):
    """The stored Merkle hashes of one log, compared as the replay recomputes them."""

    def expect(self, level: int, index: int, value: bytes) -> None:
        """Compare one recomputed complete-subtree hash with the stored one (may be buffered)."""

    def flush(self) -> None:
        """Compare everything buffered; called before a checkpoint is judged or an entry is refused,
        every :data:`FLUSH_EVERY` entries, and at the end. Raises for the first mismatch in log order."""

    def finish(self, size: int) -> None:
        """After the last entry: the store holds no hash beyond a log of ``size`` entries."""


def replay(
    rows: Iterable[tuple[Any, Any, Any]],
    stored: StoredTree,
    checkpoints: Iterable[tuple[int, C]],
    judge: Callable[[C, int, bytes], None],
    fail: Fail,
    *,
    stored_leaves: bool = False,
) -> tuple[int, bytes]:
    """Replay ``rows`` = (index, entry bytes, stored leaf hash) and return (size, root).

    ``stored_leaves``: the store keeps each leaf hash beside its entry (the register) and the third
    item must equal the real leaf hash; otherwise it is ignored (the ledger keeps leaves in its tree).

    ``checkpoints`` = (size, anything) in ascending size; ``judge(item, size, root)`` is called when the
    replayed tree has exactly that size. A checkpoint beyond the last entry means entries are missing.
    """
    tree = CompactRange()
    pending: Iterator[tuple[int, C]] = iter(checkpoints)
    nxt = next(pending, None)

    def settle() -> None:
        nonlocal nxt
        while nxt is not None and nxt[0] <= tree.size:
            stored.flush()
            judge(nxt[1], tree.size, tree.root())
            nxt = next(pending, None)

    settle()
    # The loop body runs once per entry: names are bound locally and the tree hands each new subtree
    # hash straight to the store's comparison (CompactRange.push), with no list per leaf.
    push, expect = tree.push, stored.expect

    def bad(pos: int, message: str) -> VerificationError:
        stored.flush()  # a buffered mismatch belongs to an earlier entry: that one is the first bad
        return fail(pos, message)

    for idx, data, leaf in rows:
        pos = tree.size
        if type(idx) is not int:
            raise bad(pos, "damaged row: its index is not an integer")
        if idx != pos:
            raise bad(pos, f"is missing (the next stored entry is {idx})")
        if type(data) is not bytes:
            raise bad(pos, "damaged row: its bytes are NULL or not a blob")
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            raise bad(pos, str(exc)) from None
        if entry.index != pos:
            raise bad(pos, f"says it is entry {entry.index} (entries reordered or moved)")
        actual = leaf_hash(data)
        if stored_leaves and leaf != actual:
            raise bad(pos, "its bytes do not match the stored leaf hash (entry edited)")
        push(actual, expect)
        if nxt is not None and nxt[0] <= pos + 1:
            settle()
        elif not (pos + 1) % FLUSH_EVERY:
            stored.flush()  # bounded buffers: memory stays constant in the log's size
    stored.flush()
    if nxt is not None:
        raise fail(
            tree.size,
            f"is missing: a signed checkpoint covers {nxt[0]} entries but {tree.size} are stored "
            "(truncated, or rolled back to an older copy)",
        )
    stored.finish(tree.size)
    return tree.size, tree.root()


def open_signed(note: Any, verifiers: Sequence[Verifier], origin: str, what: str) -> Checkpoint:
    """Open a stored checkpoint note signed by one of ``verifiers`` for ``origin``, or VerificationError."""
    if type(note) is not str:
        raise VerificationError(f"{what}: damaged row (the note is NULL or not text)")
    try:
        cp, _ = open_checkpoint(note, verifiers)
    except (NoteError, ValueError) as exc:
        raise VerificationError(f"{what}: {exc}") from None
    if cp.origin != origin:
        raise VerificationError(f"{what} is for log {cp.origin!r}, not {origin!r}")
    return cp
