"""c2sp.org/tlog-tiles: tile paths, hash tiles and entry bundles (pure functions, no I/O).

A tile at level ``L`` and index ``N`` holds up to 256 consecutive Merkle hashes of tree level ``8·L``
(indices ``256·N …``); ``.p/W`` marks a partial tile of width ``W`` (1…255). Entry bundles hold the
entries ``256·N …`` each prefixed by its big-endian uint16 length. :class:`TileHashReader` turns a tile
fetcher into a :class:`ledger.merkle.HashReader`, so tree hashes and proofs can be computed from tiles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from ledger.merkle import HASH_SIZE, node_hash

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT  # 256
MAX_LEVEL: Final = 63
MAX_BUNDLE_ENTRY: Final = 0xFFFF


class TileError(ValueError):
    """A tile path or tile body is malformed (the pull server answers 404/400, the client rejects)."""


@dataclass(frozen=True)
class TileRef:
    """One tile: ``level`` is ``None`` for an entry bundle; ``width`` is 256 for a full tile."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        """The tile's path below the log prefix, e.g. ``tile/0/x001/234.p/7``."""
        head = "tile/entries" if self.level is None else f"tile/{self.level}"
        tail = f".p/{self.width}" if self.partial else ""
        return f"{head}/{encode_index(self.index)}{tail}"


def encode_index(n: int) -> str:
    """The tile index path elements: 1234067 → ``x001/x234/067``."""
    if n < 0:
        raise TileError(f"tile index must be >= 0, got {n}")
    digits = str(n)
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])


def parse_tile_path(path: str) -> TileRef:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` strictly (one spelling each)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TileError(f"not a tile path: {path[:80]!r}")
    level: int | None
    if parts[1] == "entries":
        level = None
    elif re.fullmatch(r"0|[1-9]\d?", parts[1]) and int(parts[1]) <= MAX_LEVEL:
        level = int(parts[1])
    else:
        raise TileError(f"bad tile level in {path[:80]!r}")
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not re.fullmatch(r"[1-9]\d{0,2}", w) or int(w) >= TILE_WIDTH:
            raise TileError(f"bad partial width in {path[:80]!r}")
        width = int(w)
        rest = [*rest[:-2], rest[-2][:-2]]
    if len(rest) > 7:  # 2^64 needs at most 7 groups of 3 digits
        raise TileError(f"tile index too long in {path[:80]!r}")
    if not all(re.fullmatch(r"x?\d{3}", part) for part in rest):
        raise TileError(f"bad tile index in {path[:80]!r}")
    n = int("".join(p.removeprefix("x") for p in rest))
    ref = TileRef(level, n, width)
    if ref.path() != path:  # e.g. leading x000 groups: not the canonical spelling
        raise TileError(f"non-canonical tile path {path[:80]!r}")
    return ref


def encode_hash_tile(hashes: Sequence[bytes]) -> bytes:
    """Concatenate 1…256 hashes of 32 bytes."""
    if not 1 <= len(hashes) <= TILE_WIDTH or any(len(h) != HASH_SIZE for h in hashes):
        raise TileError("a hash tile holds 1 to 256 hashes of 32 bytes")
    return b"".join(hashes)


def decode_hash_tile(data: bytes, width: int) -> list[bytes]:
    """Split a hash tile body that must hold exactly ``width`` hashes."""
    if len(data) != width * HASH_SIZE:
        raise TileError(f"hash tile has {len(data)} bytes, expected {width * HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its exact bytes."""
    out = bytearray()
    for e in entries:
        if len(e) > MAX_BUNDLE_ENTRY:
            raise TileError(f"entry of {len(e)} bytes does not fit an entry bundle")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def decode_bundle(data: bytes, count: int) -> list[bytes]:
    """Split an entry bundle that must hold exactly ``count`` entries and nothing else."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TileError("entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise TileError("entry bundle ends inside an entry")
        out.append(data[pos : pos + n])
        pos += n
    if len(out) != count:
        raise TileError(f"entry bundle holds {len(out)} entries, expected {count}")
    return out


def tile_addresses(ref: TileRef) -> list[tuple[int, int]]:
    """The Merkle ``(level, index)`` addresses a hash tile holds, in order."""
    if ref.level is None:
        raise TileError("an entry bundle holds entries, not hashes")
    first = ref.index * TILE_WIDTH
    return [(ref.level * TILE_HEIGHT, first + i) for i in range(ref.width)]


def hashes_at_level(level: int, size: int) -> int:
    """How many complete subtree hashes of Merkle ``level`` a tree of ``size`` leaves has."""
    return size >> level


def tile_exists(ref: TileRef, size: int) -> bool:
    """Whether the tree of ``size`` leaves has this (full or partial) tile, as a server may serve it.

    A partial tile is served while any hashes (or entries) beyond it exist too: its content never changes.
    """
    available = size if ref.level is None else hashes_at_level(ref.level * TILE_HEIGHT, size)
    return available >= ref.index * TILE_WIDTH + ref.width


def tile_for(ref_level: int | None, first: int, size: int) -> TileRef:
    """The tile (full if complete at ``size``, else partial) holding item ``first`` of that level."""
    index = first // TILE_WIDTH
    available = size if ref_level is None else hashes_at_level(ref_level * TILE_HEIGHT, size)
    width = min(TILE_WIDTH, available - index * TILE_WIDTH)
    if width <= 0:
        raise TileError(f"item {first} does not exist in a tree of size {size}")
    return TileRef(ref_level, index, width)


class TileHashReader:
    """A :class:`ledger.merkle.HashReader` over the hash tiles of a tree of ``size`` leaves.

    ``fetch(ref)`` returns a tile's decoded hashes; tiles are cached, so a proof costs a few fetches. Any
    ``(level, index)`` is derived from the tile of level ``level // 8`` by hashing within it. The hashes
    are untrusted until a root computed from them matches a signed checkpoint.
    """

    def __init__(self, size: int, fetch: Callable[[TileRef], list[bytes]]) -> None:
        self.size = size
        self._fetch = fetch
        self._cache: dict[TileRef, list[bytes]] = {}

    def _tile(self, ref: TileRef) -> list[bytes]:
        if ref not in self._cache:
            hashes = self._fetch(ref)
            if len(hashes) != ref.width:
                raise TileError(f"{ref.path()} returned {len(hashes)} hashes, expected {ref.width}")
            self._cache[ref] = hashes
        return self._cache[ref]

    def _hash(self, level: int, index: int) -> bytes:
        tile_level, sub = divmod(level, TILE_HEIGHT)
        lo = index << sub
        if (index + 1) << level > self.size:
            raise KeyError((level, index))
        ref = tile_for(tile_level, lo, self.size)
        base = self._tile(ref)[lo - ref.index * TILE_WIDTH : lo - ref.index * TILE_WIDTH + (1 << sub)]
        while len(base) > 1:
            base = [node_hash(base[i], base[i + 1]) for i in range(0, len(base), 2)]
        return base[0]

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self._hash(level, index) for level, index in addresses]
