"""The c2sp.org/tlog-tiles client: fetch a log's checkpoint, entry bundles and hash tiles, and verify them.

:func:`fetch_log` fetches the checkpoint, verifies the device signature, fetches the entry bundles after
``since_size`` and the hash tiles for the prefix, recomputes the root, compares it with the checkpoint,
and returns what a push would have carried (entries, checkpoint, consistency proof). Every request is
signed (RFC 9421, :mod:`ledger.httpsig`) and bounded in time and size. The register pulls with it; the
server side is :mod:`sync_agent.pull`. It lives beside :mod:`ledger.tiles` so that the register needs
nothing from the sync agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import requests

from kgate.urls import check_url
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import FetchRefused, FetchUnreachable, LedgerError, ProofError, PulledLogInvalid
from ledger.httpsig import sign_request
from ledger.merkle import CompactRange, consistency_proof, leaf_hash, verify_consistency
from ledger.note import Ed25519Signer, Ed25519Verifier
from ledger.tiles import (
    TILE_WIDTH,
    TileError,
    TileHashReader,
    TileRef,
    decode_bundle,
    decode_hash_tile,
    tile_for,
)

MAX_TILE_BYTES: Final = TILE_WIDTH * (2 + 0xFFFF)  # the largest possible entry bundle


@dataclass(frozen=True)
class PulledLog:
    """A verified pull: entries ``[start, checkpoint.size)``, the device-signed checkpoint note, and the
    consistency proof ``start → checkpoint.size`` (what a push would carry, for the same ingest)."""

    start: int
    entries: list[bytes]
    checkpoint_note: str
    checkpoint: Checkpoint
    proof: list[bytes]
    old_root: bytes


class _Fetcher:
    """Signed GETs below one log prefix, with bounded answers."""

    def __init__(
        self,
        base: str,
        *,
        signer: Ed25519Signer,
        timeout: tuple[float, float],
        verify: bool | str,
        session: requests.Session,
        clock: Callable[[], float],
    ) -> None:
        self.base, self.signer, self.timeout, self.verify = base, signer, timeout, verify
        self.session, self.clock = session, clock

    def get(self, rel: str, limit: int) -> bytes:
        url = f"{self.base}/{rel}"
        headers = sign_request("GET", url, {}, b"", self.signer, now=int(self.clock()))
        try:
            with self.session.get(
                url,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
                stream=True,
                allow_redirects=False,
            ) as resp:
                out = bytearray()
                for chunk in resp.iter_content(65536):
                    out += chunk
                    if len(out) > limit:
                        raise PulledLogInvalid(f"GET {rel}: answer larger than {limit} bytes")
        except requests.exceptions.RequestException as exc:
            raise FetchUnreachable(f"GET {url}: {type(exc).__name__}: {exc}"[:300]) from None
        if resp.status_code == 401:
            raise FetchRefused(f"GET {rel}: the device refused our request signature")
        if resp.status_code == 429 or resp.status_code >= 500:  # busy or failing: try again later
            raise FetchUnreachable(f"GET {rel}: HTTP {resp.status_code}, retry later")
        if resp.status_code != 200:
            raise PulledLogInvalid(f"GET {rel}: HTTP {resp.status_code}")
        return bytes(out)

    def tile(self, ref: TileRef) -> bytes:
        return self.get(ref.path(), MAX_TILE_BYTES)


def fetch_log(
    url: str,
    signer: Ed25519Signer,
    since_size: int,
    timeout: float | tuple[float, float],
    *,
    device_vkey: str,
    ca: Path | None = None,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> PulledLog:
    """Fetch and verify a device's log from its pull server (``url`` = the log prefix).

    ``signer`` is the register's request key; ``device_vkey`` the device's note key (the checkpoint
    must verify with it); ``since_size`` the size already held (normally the last cosigned size).
    Raises :class:`PulledLogInvalid` when anything fails to verify, :class:`FetchUnreachable`
    (retryable) on network failure, :class:`FetchRefused` when the device refuses our signature.
    """
    base = check_url(url, "pull URL")
    t = (timeout, timeout) if isinstance(timeout, int | float) else timeout
    fetcher = _Fetcher(
        base,
        signer=signer,
        timeout=t,
        verify=str(ca) if ca else True,
        session=session or requests.Session(),
        clock=clock,
    )
    note = fetcher.get("checkpoint", 1 << 20).decode("utf-8", "replace")
    try:
        cp, _ = open_checkpoint(note, [Ed25519Verifier.from_vkey(device_vkey)])
    except LedgerError as exc:
        raise PulledLogInvalid(f"the device's checkpoint does not verify: {exc}") from None
    size = cp.size
    if since_size < 0 or since_size > size:
        raise PulledLogInvalid(f"the device's checkpoint size {size} is below the {since_size} already held")

    def hash_tile(ref: TileRef) -> list[bytes]:
        try:
            return decode_hash_tile(fetcher.tile(ref), ref.width)
        except TileError as exc:
            raise PulledLogInvalid(f"{ref.path()}: {exc}") from None

    tiles = TileHashReader(size, hash_tile)
    try:
        frontier = CompactRange.from_reader(since_size, tiles)
    except (KeyError, TileError) as exc:
        raise PulledLogInvalid(
            f"hash tiles for the first {since_size} entries are incomplete: {exc}"
        ) from None
    old_root = frontier.root()
    entries: list[bytes] = []
    pos = since_size
    while pos < size:
        ref = tile_for(None, pos, size)
        try:
            bundle = decode_bundle(fetcher.tile(ref), ref.width)
        except TileError as exc:
            raise PulledLogInvalid(f"{ref.path()}: {exc}") from None
        for e in bundle[pos - ref.index * TILE_WIDTH :]:
            entries.append(e)
            frontier.append(leaf_hash(e))
        pos = ref.index * TILE_WIDTH + ref.width
    if frontier.root() != cp.root:
        raise PulledLogInvalid(
            f"entries and hash tiles do not reproduce the checkpoint's root at size {size}"
        )
    try:
        proof = consistency_proof(since_size, size, tiles)
        verify_consistency(since_size, size, old_root, cp.root, proof)
    except (KeyError, TileError, ProofError) as exc:
        raise PulledLogInvalid(
            f"cannot build a consistency proof {since_size} → {size} from tiles: {exc}"
        ) from None
    return PulledLog(since_size, entries, note, cp, proof, old_root)
