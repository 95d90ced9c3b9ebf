"""RFC 9162 Merkle tree: hashing, an append-only frontier, and inclusion/consistency proofs.

Storage-agnostic: stored hashes are addressed by ``(level, index)``, the hash of the complete subtree
covering leaves ``[index << level, (index + 1) << level)``. Every operation reads O(log n) of them, in
one ``read_hashes`` call (after golang.org/x/mod/sumdb/tlog). "Leaf" here always means a leaf hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol

from ledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "HashReader",
    "MemoryHashStore",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaves",
    "tree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

_sha256 = hashlib.sha256

EMPTY_ROOT: bytes = _sha256(b"").digest()

Address = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    """The RFC 9162 leaf hash SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


class HashReader(Protocol):
    """Reads stored complete-subtree hashes by ``(level, index)`` address."""

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        """Return the hashes at ``addresses`` in the same order; raise KeyError if one is missing."""
        ...


def _decompose(lo: int, hi: int) -> list[Address]:
    """Addresses of the complete subtrees covering ``[lo, hi)``, largest (leftmost) first.

    Valid for the ranges the RFC recursion produces: ``lo`` is a multiple of a power of two >= hi - lo.
    """
    out: list[Address] = []
    n = hi - lo
    while n:
        level = n.bit_length() - 1
        out.append((level, lo >> level))
        lo += 1 << level
        n -= 1 << level
    return out


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its complete subtrees (largest first): fold from the right."""
    h = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        h = _sha256(b"\x01" + hashes[i] + h).digest()
    return h


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n > 1): the RFC's split point k."""
    return 1 << ((n - 1).bit_length() - 1)


def _read_ranges(ranges: Sequence[tuple[int, int]], reader: HashReader) -> list[bytes]:
    """The MTH of each ``[lo, hi)`` range, fetching every needed address in one ``read_hashes`` call."""
    addresses: list[Address] = []
    bounds: list[tuple[int, int]] = []
    for lo, hi in ranges:
        start = len(addresses)
        addresses.extend(_decompose(lo, hi))
        bounds.append((start, len(addresses)))
    if not addresses:
        return []
    hashes = reader.read_hashes(addresses)
    if len(hashes) != len(addresses):
        raise ValueError(f"hash reader returned {len(hashes)} hashes for {len(addresses)} addresses")
    return [_fold(hashes[start:end]) for start, end in bounds]


class CompactRange:
    """The frontier of a tree: hashes of the complete subtrees in the binary decomposition of ``size``."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_reader(cls, size: int, reader: HashReader) -> CompactRange:
        """Load the frontier of the first ``size`` leaves from stored hashes (one read, O(log n))."""
        if size < 0:
            raise ValueError(f"tree size must be >= 0, got {size}")
        rng = cls()
        addresses = _decompose(0, size)
        if addresses:
            rng._hashes = list(reader.read_hashes(addresses))
            if len(rng._hashes) != len(addresses):
                raise ValueError(f"hash reader returned {len(rng._hashes)} hashes for {len(addresses)}")
        rng._size = size
        return rng

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    def root(self) -> bytes:
        """The tree hash (EMPTY_ROOT when empty)."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def append(self, leaf: bytes) -> list[tuple[tuple[int, int], bytes]]:
        """Add a leaf hash; return every newly complete subtree ``(address, hash)``, the leaf first.

        These are exactly the hashes a store must persist for later proofs.
        """
        created: list[tuple[Address, bytes]] = []
        self.push(leaf, lambda level, index, h: created.append(((level, index), h)))
        return created

    def push(self, leaf: bytes, sink: Callable[[int, int, bytes], None]) -> None:
        """:meth:`append` for a replay: hand each new complete subtree to ``sink(level, index, hash)``.

        The same hashes in the same order (the leaf first), without building a list per leaf.
        """
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
        index = self._size
        sink(0, index, leaf)
        hashes = self._hashes
        h = leaf
        level = 0
        while index & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            index >>= 1
            level += 1
            sink(level, index, h)
        hashes.append(h)
        self._size += 1

    def copy(self) -> CompactRange:
        """An independent copy."""
        rng = CompactRange()
        rng._size = self._size
        rng._hashes = self._hashes.copy()
        return rng

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def tree_hash(size: int, reader: HashReader) -> bytes:
    """The root of the first ``size`` leaves (O(log n) reads, one call)."""
    if size < 0:
        raise ValueError(f"tree size must be >= 0, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return _read_ranges([(0, size)], reader)[0]


def inclusion_proof(index: int, size: int, reader: HashReader) -> list[bytes]:
    """The RFC 9162 2.1.3.1 inclusion proof PATH(index, D[0:size]), deepest sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"cannot prove leaf {index}: outside the tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return _read_ranges(ranges, reader)


def consistency_proof(old_size: int, new_size: int, reader: HashReader) -> list[bytes]:
    """The RFC 9162 2.1.4.1 consistency proof PROOF(old_size, D[0:new_size]); empty if old is 0 or new."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"cannot prove tree size {old_size} is a prefix of tree size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, new_size
    whole = True  # SUBPROOF's b: the old root is this range's left edge, which the verifier already has
    while old_size != hi:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            whole = False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return _read_ranges(ranges, reader)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_proof(proof: Sequence[bytes], what: str) -> None:
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"{what} hash {i} must be {HASH_SIZE} bytes, got {len(p)}")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` in the tree of ``size`` with ``root`` (RFC 9162 2.1.3.2).

    Raises ProofError saying which check failed.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside the tree of size {size}")
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    inner = (index ^ (size - 1)).bit_length()
    expected = inner + (index >> inner).bit_count()
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes, {expected} expected for leaf {index} of {size}"
        )
    _check_proof(proof, "inclusion proof")
    # The RFC's own length checks below (sn == 0) cannot fire after the exact count above; kept as written.
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not reproduce the root of size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root) (RFC 9162 2.1.4.2).

    Equal sizes need an empty proof and equal roots; size 0 needs an empty proof and EMPTY_ROOT.
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old tree size {old_size} is not between 0 and the new size {new_size}")
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"consistency proof from size {old_size} to {new_size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("old root of an empty tree must be EMPTY_ROOT")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}")
        return
    shift = (old_size & -old_size).bit_length() - 1
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    power_of_two = old_size == 1 << shift
    expected = inner - shift + border + (0 if power_of_two else 1)
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes, {expected} expected for {old_size} -> {new_size}"
        )
    _check_proof(proof, "consistency proof")
    path = [old_root, *proof] if power_of_two else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"consistency proof does not reproduce the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not reproduce the new root of size {new_size}")


class MemoryHashStore:
    """An in-memory HashReader that grows by appending leaf hashes (tests, benchmarks, in-memory use)."""

    __slots__ = ("_levels", "_range")

    def __init__(self) -> None:
        # Complete subtrees are created in index order at each level, so plain lists suffice.
        self._levels: list[list[bytes]] = []
        self._range = CompactRange()

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._range.size

    def root(self) -> bytes:
        """The current tree hash."""
        return self._range.root()

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash and store the subtree hashes it completes; return the leaf's index."""
        index = self._range.size
        levels = self._levels
        for (level, _), h in self._range.append(leaf_hash):
            if level == len(levels):
                levels.append([])
            levels[level].append(h)
        return index

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        """The hashes at ``addresses``, in order; KeyError for one not (yet) complete."""
        levels = self._levels
        out: list[bytes] = []
        for level, index in addresses:
            if not (0 <= level < len(levels) and 0 <= index < len(levels[level])):
                raise KeyError((level, index))
            out.append(levels[level][index])
        return out


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """The naive recursive MTH (RFC 9162 2.1.1) of a list of leaf hashes; O(n), for tests and small trees."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root_from_leaves(leaves[:k]), root_from_leaves(leaves[k:]))
