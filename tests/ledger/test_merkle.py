"""RFC 9162 Merkle tree: real CT vectors, agreement with the recursive definitions, O(log n) reads."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    MemoryHashStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import shared_path

# --- the RFC's recursive definitions, written naively -------------------------------------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D_n)."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return [*naive_path(m, leaves[:k]), root_from_leaves(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), root_from_leaves(leaves[:k])]


def naive_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D_n, b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [root_from_leaves(leaves)]
    k = _split(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), root_from_leaves(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), root_from_leaves(leaves[:k])]


def naive_consistency(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return naive_subproof(m, leaves, True) if 0 < m < len(leaves) else []


class CountingReader:
    """Wraps a store; records each read_hashes call and checks only complete subtrees are read."""

    def __init__(self, store: MemoryHashStore, size: int) -> None:
        self.store = store
        self.size = size
        self.calls: list[list[tuple[int, int]]] = []

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        for level, index in addresses:
            assert (index + 1) << level <= self.size, f"read {(level, index)} beyond size {self.size}"
        self.calls.append(list(addresses))
        return self.store.read_hashes(addresses)

    @property
    def reads(self) -> int:
        return sum(len(c) for c in self.calls)


def flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def make_leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def make_store(leaves: Sequence[bytes]) -> MemoryHashStore:
    store = MemoryHashStore()
    for leaf in leaves:
        store.append(leaf)
    return store


MAX_SMALL = 300
LEAVES = make_leaves(MAX_SMALL)
STORE = make_store(LEAVES)  # one store serves every smaller size: proofs read only the prefix
BIG_LEAVES = make_leaves(5000, b"big")
BIG_STORE = make_store(BIG_LEAVES)

# --- hashing ------------------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert HASH_SIZE == 32
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert node_hash(b"a" * 32, b"b" * 32) != node_hash(b"b" * 32, b"a" * 32)
    assert root_from_leaves([]) == EMPTY_ROOT


def test_rfc6962_reference_roots() -> None:
    """The 8-leaf tree of the certificate-transparency reference test suite."""
    entries = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        bytes(range(0x60, 0x70)),
    ]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    rng = CompactRange()
    for entry, root in zip(entries, roots, strict=True):
        rng.append(leaf_hash(entry))
        assert rng.root().hex() == root


# --- real Certificate Transparency data (Argon 2020) --------------------------------------------------


@dataclass(frozen=True)
class CTVectors:
    """The Argon 2020 responses, decoded as ../shared/data/vectors/README.md describes them."""

    leaf: bytes
    index: int
    size: int
    root: bytes
    path: list[bytes]
    old_size: int
    old_root: bytes
    consistency: list[bytes]


def _load(name: str) -> Any:
    with shared_path("data", "vectors", "ct-argon2020", name).open() as f:
        return json.load(f)


@pytest.fixture(scope="module")
def ct() -> CTVectors:
    sth, proof = _load("sth.json"), _load("proof.json")
    return CTVectors(
        leaf=leaf_hash(base64.b64decode(_load("entries.json")["entries"][0]["leaf_input"])),
        index=proof["leaf_index"],
        size=sth["tree_size"],
        root=base64.b64decode(sth["sha256_root_hash"]),
        path=[base64.b64decode(h) for h in proof["audit_path"]],
        old_size=3654490,
        old_root=base64.b64decode("AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ="),
        consistency=[base64.b64decode(h) for h in _load("consistency.json")["consistency"]],
    )


def test_ct_inclusion(ct: CTVectors) -> None:
    assert (ct.index, ct.size) == (10000, 961984013)
    verify_inclusion(ct.leaf, ct.index, ct.size, ct.path, ct.root)


def test_ct_inclusion_rejects_any_change(ct: CTVectors) -> None:
    leaf, index, size, path, root = ct.leaf, ct.index, ct.size, ct.path, ct.root
    for i in range(len(path)):
        for bit in (0, 7):
            bad = [*path[:i], flip(path[i], bit), *path[i + 1 :]]
            with pytest.raises(ProofError):
                verify_inclusion(leaf, index, size, bad, root)
    for bad_index in (0, 9999, 10001, 10000 ^ (1 << 20), size - 1, size):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, bad_index, size, path, root)
    # Sizes that change the proof's shape; sizes with the same shape are bound only by the root.
    for bad_size in (10001, 2**14, 2**29, 2**30 + 1, 2**31):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, bad_size, path, root)
    for bad_path in (path[:-1], [*path, path[-1]], path[1:], []):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, bad_path, root)
    with pytest.raises(ProofError):
        verify_inclusion(flip(leaf), index, size, path, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, path, flip(root))


def test_ct_consistency(ct: CTVectors) -> None:
    verify_consistency(ct.old_size, ct.size, ct.old_root, ct.root, ct.consistency)


def test_ct_consistency_rejects_any_change(ct: CTVectors) -> None:
    old, new, old_root, root, proof = ct.old_size, ct.size, ct.old_root, ct.root, ct.consistency
    for i in range(len(proof)):
        bad = [*proof[:i], flip(proof[i]), *proof[i + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, root, bad)
    for bad_old in (old - 1, old + 1, 2**21, 0, new):
        with pytest.raises(ProofError):
            verify_consistency(bad_old, new, old_root, root, proof)
    for bad_new in (old, old + 1, 2**29, 2**31):
        with pytest.raises(ProofError):
            verify_consistency(old, bad_new, old_root, root, proof)
    for bad_proof in (proof[:-1], [*proof, proof[-1]], proof[1:], []):
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, root, bad_proof)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(old, new, flip(old_root), root, proof)
    with pytest.raises(ProofError, match="new root"):
        verify_consistency(old, new, old_root, flip(root), proof)
    with pytest.raises(ProofError):
        verify_consistency(new, old, root, old_root, proof)


# --- agreement with the recursive definitions ---------------------------------------------------------


def test_small_trees_exhaustively() -> None:
    """Every index and every old size for trees of 0..40 leaves."""
    for n in range(41):
        leaves = LEAVES[:n]
        root = root_from_leaves(leaves)
        assert tree_hash(n, STORE) == root
        assert CompactRange.from_reader(n, STORE).root() == root
        for m in range(n):
            proof = inclusion_proof(m, n, STORE)
            assert proof == naive_path(m, leaves), (m, n)
            verify_inclusion(leaves[m], m, n, proof, root)
        for m in range(n + 1):
            proof = consistency_proof(m, n, STORE)
            assert proof == naive_consistency(m, leaves), (m, n)
            verify_consistency(m, n, root_from_leaves(leaves[:m]), root, proof)


@st.composite
def tree_and_index(draw: st.DrawFn, store: MemoryHashStore, min_size: int = 1) -> tuple[int, int]:
    size = draw(st.integers(min_size, store.size))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, MAX_SMALL))
def test_tree_hash_matches_recursive(size: int) -> None:
    root = root_from_leaves(LEAVES[:size])
    assert tree_hash(size, STORE) == root
    assert CompactRange.from_reader(size, STORE).root() == root


@settings(max_examples=300, deadline=None)
@given(tree_and_index(STORE), st.data())
def test_inclusion_matches_recursive(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = LEAVES[:size]
    root = root_from_leaves(leaves)
    proof = inclusion_proof(index, size, STORE)
    assert proof == naive_path(index, leaves)
    verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="tampered element")
        bad = [*proof[:i], flip(proof[i], data.draw(st.integers(0, 7))), *proof[i + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, bad, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, proof[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, size, [*proof, root], root)
    if size > 1:
        other = data.draw(st.integers(0, size - 2), label="wrong index")
        other += other >= index  # any index but the right one
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], other, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(tree_and_index(STORE), st.integers(1, MAX_SMALL))
def test_inclusion_binds_size_through_root(case: tuple[int, int], other_size: int) -> None:
    """Under another size's root a proof verifies only if it is that size's proof too."""
    size, index = case
    proof = inclusion_proof(index, size, STORE)
    other_root = root_from_leaves(LEAVES[:other_size])
    if index < other_size and inclusion_proof(index, other_size, STORE) == proof:
        verify_inclusion(LEAVES[index], index, other_size, proof, other_root)
    else:
        with pytest.raises(ProofError):
            verify_inclusion(LEAVES[index], index, other_size, proof, other_root)


@settings(max_examples=300, deadline=None)
@given(tree_and_index(STORE), st.data())
def test_consistency_matches_recursive(case: tuple[int, int], data: st.DataObject) -> None:
    new, old = case[0], case[1] + 1  # 0 < old <= new
    leaves = LEAVES[:new]
    old_root, new_root = root_from_leaves(leaves[:old]), root_from_leaves(leaves)
    proof = consistency_proof(old, new, STORE)
    assert proof == naive_consistency(old, leaves)
    verify_consistency(old, new, old_root, new_root, proof)
    if old == new:
        assert proof == []
        return
    i = data.draw(st.integers(0, len(proof) - 1), label="tampered element")
    bad = [*proof[:i], flip(proof[i], data.draw(st.integers(0, 7))), *proof[i + 1 :]]
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, bad)
    for wrong in (proof[:-1], [*proof, new_root]):
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, wrong)
    with pytest.raises(ProofError):
        verify_consistency(old, new, flip(old_root), new_root, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, flip(new_root), proof)
    if new > 2:
        other_old = data.draw(st.integers(1, new - 2), label="wrong old size")
        other_old += other_old >= old  # any 0 < size < new but the right one
        with pytest.raises(ProofError):
            verify_consistency(other_old, new, old_root, new_root, proof)


@settings(max_examples=40, deadline=None)
@given(tree_and_index(BIG_STORE, MAX_SMALL), st.integers(1, BIG_STORE.size))
def test_larger_trees_match_recursive(case: tuple[int, int], old: int) -> None:
    size, index = case
    old = min(old, size)
    leaves = BIG_LEAVES[:size]
    root = root_from_leaves(leaves)
    assert tree_hash(size, BIG_STORE) == root
    proof = inclusion_proof(index, size, BIG_STORE)
    assert proof == naive_path(index, leaves)
    verify_inclusion(leaves[index], index, size, proof, root)
    cproof = consistency_proof(old, size, BIG_STORE)
    assert cproof == naive_consistency(old, leaves)
    verify_consistency(old, size, root_from_leaves(leaves[:old]), root, cproof)


# --- the frontier and the store -----------------------------------------------------------------------


def test_append_returns_exactly_the_new_complete_subtrees() -> None:
    rng = CompactRange()
    assert rng.size == 0 and rng.root() == EMPTY_ROOT
    seen: dict[tuple[int, int], bytes] = {}
    for n, leaf in enumerate(LEAVES[:70]):
        created = rng.append(leaf)
        assert created[0] == ((0, n), leaf)
        assert len(created) == 1 + ((n ^ (n + 1)).bit_length() - 1)  # one per trailing 1-bit of n
        for (level, index), h in created:
            assert (level, index) not in seen
            assert (index + 1) << level == n + 1
            assert h == root_from_leaves(LEAVES[index << level : (index + 1) << level])
            seen[(level, index)] = h
        assert rng.size == n + 1
        assert rng.root() == root_from_leaves(LEAVES[: n + 1])
    assert len(seen) == 2 * 70 - (70).bit_count()


def test_from_reader_resumes_and_copy_is_independent() -> None:
    rng = CompactRange.from_reader(123, STORE)
    assert rng.size == 123
    twin = rng.copy()
    for leaf in LEAVES[123:200]:
        rng.append(leaf)
    assert rng.root() == root_from_leaves(LEAVES[:200])
    assert twin.size == 123 and twin.root() == root_from_leaves(LEAVES[:123])
    assert CompactRange.from_reader(0, STORE).root() == EMPTY_ROOT


def test_memory_store() -> None:
    store = MemoryHashStore()
    assert store.size == 0 and store.root() == EMPTY_ROOT
    assert [store.append(leaf) for leaf in LEAVES[:5]] == [0, 1, 2, 3, 4]
    assert store.root() == root_from_leaves(LEAVES[:5])
    assert store.read_hashes([(2, 0), (0, 4)]) == [root_from_leaves(LEAVES[:4]), LEAVES[4]]
    for missing in [(1, 2), (0, 5), (3, 0), (0, -1)]:
        with pytest.raises(KeyError):
            store.read_hashes([missing])
    with pytest.raises(KeyError):
        tree_hash(6, store)
    with pytest.raises(ValueError, match="32 bytes"):
        store.append(b"short")


# --- RFC 9162 edge cases ------------------------------------------------------------------------------


def test_generation_refuses_impossible_requests() -> None:
    for index, size in [(0, 0), (5, 5), (6, 5), (-1, 5)]:
        with pytest.raises(ProofError):
            inclusion_proof(index, size, STORE)
    for old, new in [(6, 5), (-1, 5), (1, 0)]:
        with pytest.raises(ProofError):
            consistency_proof(old, new, STORE)
    assert inclusion_proof(0, 1, STORE) == []
    assert consistency_proof(0, 7, STORE) == [] and consistency_proof(7, 7, STORE) == []
    assert tree_hash(0, STORE) == EMPTY_ROOT
    with pytest.raises(ValueError):
        tree_hash(-1, STORE)


def test_verify_inclusion_edge_cases() -> None:
    root = root_from_leaves(LEAVES[:5])
    proof = inclusion_proof(2, 5, STORE)
    for index, size in [(5, 5), (6, 5), (0, 0), (-1, 5)]:
        with pytest.raises(ProofError, match="outside"):
            verify_inclusion(LEAVES[2], index, size, proof, root)
    with pytest.raises(ProofError, match="expected"):
        verify_inclusion(LEAVES[2], 2, 5, [*proof, proof[0]], root)
    with pytest.raises(ProofError, match="expected"):
        verify_inclusion(LEAVES[2], 2, 5, proof[:-1], root)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(LEAVES[2], 2, 5, [*proof[:-1], proof[-1][:31]], root)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(LEAVES[2][:31], 2, 5, proof, root)
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], LEAVES[0])


def test_verify_consistency_edge_cases() -> None:
    r5, r9 = root_from_leaves(LEAVES[:5]), root_from_leaves(LEAVES[:9])
    proof = consistency_proof(5, 9, STORE)
    with pytest.raises(ProofError, match="not between"):
        verify_consistency(9, 5, r9, r5, proof)
    with pytest.raises(ProofError, match="not between"):
        verify_consistency(-1, 5, r9, r5, [])
    # Equal sizes: empty proof and equal roots.
    verify_consistency(5, 5, r5, r5, [])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(5, 5, r5, r9, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, r5, r5, [r5])
    # The empty tree is a prefix of every tree; its root is SHA-256 of nothing.
    verify_consistency(0, 9, EMPTY_ROOT, r9, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="EMPTY_ROOT"):
        verify_consistency(0, 9, r5, r9, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 9, EMPTY_ROOT, r9, [r9])
    # 0 < old < new with an empty proof fails (RFC 9162 2.1.4.2 step 1).
    with pytest.raises(ProofError, match="expected"):
        verify_consistency(5, 9, r5, r9, [])
    with pytest.raises(ProofError, match="32 bytes"):
        verify_consistency(5, 9, r5, r9, [*proof[:-1], b""])
    with pytest.raises(ProofError, match="32 bytes"):
        verify_consistency(5, 9, r5[:16], r9, proof)


# --- O(log n) work ------------------------------------------------------------------------------------

MILLION = 10**6


@pytest.fixture(scope="module")
def million() -> MemoryHashStore:
    """A store of 10**6 leaves, built cheaply (the leaves need not be real leaf hashes here)."""
    return make_store([i.to_bytes(32, "big") for i in range(MILLION)])


@pytest.mark.slow
def test_proofs_read_o_log_n_addresses_in_one_call(million: MemoryHashStore) -> None:
    bound = 2 * math.log2(MILLION) + 2
    sizes = [MILLION, MILLION - 1, 2**19, 2**19 + 1, 2**20 - 2**16 - 1, 777_777]
    worst = 0
    for size in sizes:
        reader = CountingReader(million, size)
        tree_hash(size, reader)
        assert reader.calls == [reader.calls[0]] and reader.reads == size.bit_count()
        for index in (0, 1, size // 3, size // 2, size - 2, size - 1):
            reader = CountingReader(million, size)
            proof = inclusion_proof(index, size, reader)
            assert len(reader.calls) == 1 and reader.reads <= bound, (index, size, reader.reads)
            worst = max(worst, reader.reads)
            leaf = million.read_hashes([(0, index)])[0]
            verify_inclusion(leaf, index, size, proof, tree_hash(size, million))
        for old in (1, 2, 3, size // 3, size // 2 + 1, size - 1):
            reader = CountingReader(million, size)
            proof = consistency_proof(old, size, reader)
            assert len(reader.calls) == 1 and reader.reads <= bound, (old, size, reader.reads)
            worst = max(worst, reader.reads)
            verify_consistency(old, size, tree_hash(old, million), tree_hash(size, million), proof)
    assert worst <= bound


@pytest.mark.slow
def test_append_work_is_o_log_n(million: MemoryHashStore) -> None:
    """Resuming reads popcount(size) hashes in one call; an append reads nothing, hashes <= log2 n."""
    size = 2**19 - 1  # the worst case below 10**6: the next append completes 19 levels
    reader = CountingReader(million, size)
    rng = CompactRange.from_reader(size, reader)
    assert len(reader.calls) == 1 and reader.reads == 19
    created = rng.append(million.read_hashes([(0, size)])[0])
    assert len(reader.calls) == 1
    assert [address for address, _ in created] == [(level, size >> level) for level in range(20)]
    assert len(created) <= math.log2(MILLION) + 1
    assert created[-1] == ((19, 0), million.read_hashes([(19, 0)])[0])
    assert rng.root() == tree_hash(2**19, million)


def test_push_hands_the_sink_what_append_returns() -> None:
    pushed, appended = CompactRange(), CompactRange()
    got: list[tuple[tuple[int, int], bytes]] = []
    for leaf in LEAVES[:70]:
        got.clear()
        pushed.push(leaf, lambda level, index, h: got.append(((level, index), h)))
        assert got == appended.append(leaf)
        assert pushed.size == appended.size and pushed.root() == appended.root()
    with pytest.raises(ValueError, match="32 bytes"):
        pushed.push(b"short", lambda level, index, h: None)
