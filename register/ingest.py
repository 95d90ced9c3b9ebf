"""Verification of one pushed (or pulled) batch against a device's stored log.

Two steps, both free of I/O so push and pull share them and tests can drive them directly:

1. :func:`check_batch` — stateless: the checkpoint is signed by the device key and names its log, its
   size is ``start + len(entries)``, every entry decodes canonically and its index is its position.
2. :func:`plan_append` — against the stored log (read through :class:`LogView` while the caller holds
   the device lock): no gap, overlapping entries byte-identical, the consistency proof from ``old_size``
   verifies against the register's own root at ``old_size``, and the stored tree plus the new leaves
   reproduces the checkpoint root. It returns exactly the rows to add. A device-signed checkpoint
   that cannot be reconciled with the stored log is :class:`Equivocation` (an alarm), whatever
   ``old_size`` the push names: the device signed a tree the register cannot extend to.

Checkpoint notes are bounded beyond the signed-note limits: at most ``MAX_SIGNATURE_LINES`` signature
lines (the register appends its own) and ``MAX_EXTENSION_LINES`` extension lines of at most
``MAX_EXTENSION_BYTES`` bytes each, so nothing large is stored or cosigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.entry import Entry, decode_entry
from ledger.errors import EntryError, NoteError, ProofError
from ledger.merkle import CompactRange, leaf_hash, tree_hash, verify_consistency
from ledger.note import Ed25519Verifier, Note, parse_note
from register.errors import Equivocation, Gap, TooLarge, Unverifiable

MAX_BATCH = 4096  # entries per push; the agent sends at most this many
MAX_SIGNATURE_LINES = 16  # per pushed checkpoint: the device's and a few witnesses' (the spec's minimum)
MAX_EXTENSION_LINES = 4  # per pushed checkpoint
MAX_EXTENSION_BYTES = 256  # per extension line, UTF-8

Address = tuple[int, int]


@dataclass(frozen=True)
class Batch:
    """What a push carries (already base64-decoded)."""

    origin: str
    start: int
    entries: tuple[bytes, ...]
    checkpoint: str
    old_size: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class CheckedBatch:
    """A batch whose checkpoint signature and entries verified; ``leaves`` are the entries' leaf hashes."""

    batch: Batch
    checkpoint: Checkpoint
    leaves: tuple[bytes, ...]
    decoded: tuple[Entry, ...] = ()  # the entries parsed (the index and the outbox use them: no 2nd decode)
    note: Note | None = None  # the checkpoint note as opened (cosigning appends to it without parsing)


class LogView(Protocol):
    """One device's stored log, read while the device lock is held."""

    @property
    def size(self) -> int: ...

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Stored leaf hashes of entries ``start .. end-1``."""
        ...

    def read_hashes(self, addresses: Sequence[Address]) -> list[bytes]:
        """Stored complete-subtree hashes by (level, index), level 0 being leaves."""
        ...


@dataclass(frozen=True)
class Plan:
    """Rows to add for an accepted batch (empty for a re-send) and the log size afterwards."""

    entries: tuple[tuple[int, bytes, bytes], ...]  # (index, data, leaf hash)
    hashes: tuple[tuple[Address, bytes], ...]  # interior nodes (level >= 1) newly complete
    size: int


def check_batch(batch: Batch, verifier: Ed25519Verifier, *, max_entries: int = MAX_BATCH) -> CheckedBatch:
    """Stateless verification; raises Unverifiable (422) or TooLarge (413) naming the problem."""
    if len(batch.entries) > max_entries:
        raise TooLarge(f"batch has {len(batch.entries)} entries, at most {max_entries} allowed")
    if batch.origin != verifier.name:
        raise Unverifiable(f"origin {batch.origin!r} is not this device's log {verifier.name!r}")
    # The note is parsed once: its signature lines are counted before any signature is verified, and
    # the opened note travels on (CheckedBatch.note) so that cosigning does not parse it again.
    try:
        text, sigs = parse_note(batch.checkpoint)
    except NoteError as exc:
        raise Unverifiable(f"checkpoint: {exc}") from None
    if len(sigs) > MAX_SIGNATURE_LINES:
        raise Unverifiable(
            f"checkpoint has {len(sigs)} signature lines, at most {MAX_SIGNATURE_LINES} allowed"
        )
    try:
        cp, note = open_checkpoint(batch.checkpoint, [verifier], parsed=(text, sigs))
    except NoteError as exc:
        raise Unverifiable(f"checkpoint: {exc}") from None
    except ValueError as exc:  # CheckpointError
        raise Unverifiable(f"checkpoint: {exc}") from None
    if len(cp.extensions) > MAX_EXTENSION_LINES:
        raise Unverifiable(
            f"checkpoint has {len(cp.extensions)} extension lines, at most {MAX_EXTENSION_LINES} allowed"
        )
    for number, line in enumerate(cp.extensions, start=4):
        if len(line.encode()) > MAX_EXTENSION_BYTES:
            raise Unverifiable(f"checkpoint line {number} is longer than {MAX_EXTENSION_BYTES} bytes")
    if cp.origin != batch.origin:
        raise Unverifiable(f"checkpoint origin {cp.origin!r} is not {batch.origin!r}")
    end = batch.start + len(batch.entries)
    if cp.size != end:
        raise Unverifiable(f"checkpoint size {cp.size} is not start + entries = {end}")
    if not 0 <= batch.old_size <= cp.size:
        raise Unverifiable(f"old_size {batch.old_size} is not between 0 and the checkpoint size {cp.size}")
    leaves, decoded = [], []
    for offset, data in enumerate(batch.entries):
        index = batch.start + offset
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            raise Unverifiable(f"entry {index}: {exc}") from None
        if entry.index != index:
            raise Unverifiable(f"entry {index}: carries index {entry.index}")
        leaves.append(leaf_hash(data))
        decoded.append(entry)
    return CheckedBatch(batch, cp, tuple(leaves), tuple(decoded), note)


def plan_append(checked: CheckedBatch, log: LogView) -> Plan:
    """Check ``checked`` against the stored log (Gap, Equivocation, Unverifiable); return the rows to add."""
    batch, cp = checked.batch, checked.checkpoint
    stored = log.size
    start, end = batch.start, cp.size
    if start > stored:
        raise Gap(f"batch starts at {start} but the register holds {stored} entries", size=stored)
    if batch.old_size > stored:
        raise Gap(f"old_size {batch.old_size} is beyond the {stored} entries the register holds", size=stored)
    overlap_end = min(end, stored)
    if start < overlap_end:
        have = log.leaf_hashes(start, overlap_end)
        for offset, (mine, theirs) in enumerate(zip(have, checked.leaves, strict=False)):
            if mine != theirs:
                index = start + offset
                raise Equivocation(f"entry {index} differs from the stored entry {index}", index=index)
    if end <= stored:
        if tree_hash(end, log) != cp.root:
            raise Equivocation(
                f"checkpoint of size {end} has a different root than the stored log", index=None
            )
        return Plan((), (), stored)
    try:
        verify_consistency(batch.old_size, end, tree_hash(batch.old_size, log), cp.root, batch.proof)
    except ProofError as exc:
        raise Equivocation(
            f"checkpoint of size {end} is not consistent with the stored log at size {batch.old_size}: {exc}"
        ) from None
    tree = CompactRange.from_reader(stored, log)
    entries: list[tuple[int, bytes, bytes]] = []
    hashes: list[tuple[Address, bytes]] = []

    def interior(level: int, index: int, value: bytes) -> None:
        if level:  # leaves are stored beside their entries
            hashes.append(((level, index), value))

    for index in range(stored, end):
        offset = index - start
        leaf = checked.leaves[offset]
        entries.append((index, batch.entries[offset], leaf))
        tree.push(leaf, interior)
    if tree.root() != cp.root:
        # The device signed a tree of size `end` that the stored log plus these entries does not give:
        # either its log forked after old_size (a proof from a smaller old_size cannot see that) or it
        # sent entries that are not its log. Both contradict what it signed: an alarm, not a 422.
        raise Equivocation(
            f"device-signed checkpoint of size {end} cannot be reconciled with the {stored} stored "
            f"entries (entries {stored}..{end - 1} do not reproduce its root)"
        )
    return Plan(tuple(entries), tuple(hashes), end)
