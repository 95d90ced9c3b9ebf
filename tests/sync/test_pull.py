"""Tiles: path encoding, and the pull server/client over loopback with request signatures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import FetchRefused, PulledLogInvalid
from ledger.httpsig import sign_request
from ledger.merkle import MemoryHashStore, consistency_proof, leaf_hash
from ledger.note import Ed25519Signer
from ledger.store import open_reader
from ledger.tileclient import fetch_log
from ledger.tiles import (
    TileError,
    TileHashReader,
    TileRef,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    tile_addresses,
)
from sync_agent.pull import PullServer, PullService
from tests.sync.conftest import TEMPLATE_SIZE


def test_tile_paths_follow_c2sp() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(5) == "005"
    assert TileRef(0, 1234067, 7).path() == "tile/0/x001/x234/067.p/7"
    assert TileRef(None, 2).path() == "tile/entries/002"
    assert parse_tile_path("tile/entries/x001/000.p/255") == TileRef(None, 1000, 255)
    for bad in (
        "tile/0/5",
        "tile/0/x000/005",
        "tile/0/005.p/256",
        "tile/0/005.p/0",
        "tile/01/005",
        "x/0/005",
    ):
        with pytest.raises(TileError):
            parse_tile_path(bad)


@given(st.integers(0, 2**63), st.integers(1, 256), st.one_of(st.none(), st.integers(0, 63)))
def test_tile_path_roundtrip(index: int, width: int, level: int | None) -> None:
    ref = TileRef(level, index, width)
    assert parse_tile_path(ref.path()) == ref


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_bundle_roundtrip(entries: list[bytes]) -> None:
    assert decode_bundle(encode_bundle(entries), len(entries)) == entries
    with pytest.raises(TileError):
        decode_bundle(encode_bundle(entries) + b"\x00", len(entries))


@given(st.integers(1, 1500), st.data())
def test_tile_hash_reader_matches_the_tree(size: int, data: st.DataObject) -> None:
    store = MemoryHashStore()
    for i in range(size):
        store.append(leaf_hash(i.to_bytes(4, "big")))
    reader = TileHashReader(size, lambda ref: store.read_hashes(tile_addresses(ref)))
    old = data.draw(st.integers(0, size))
    assert consistency_proof(old, size, reader) == consistency_proof(old, size, store)


@pytest.fixture
def register_key() -> Ed25519Signer:
    return Ed25519Signer.generate("reg.test-pull")


@pytest.fixture
def pull_server(ledger_path: Path, register_key: Ed25519Signer) -> Iterator[str]:
    reader = open_reader(ledger_path)
    server = PullServer(PullService(reader, [register_key.verifier()], prefix="log"), "127.0.0.1", 0)
    server.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/log"
    server.stop()
    reader.close()


def signed_get(url: str, signer: Ed25519Signer) -> requests.Response:
    headers = sign_request("GET", url, {}, b"", signer, now=int(time.time()))
    return requests.get(url, headers=headers, timeout=5)


def test_tiles_served_match_the_ledger(
    pull_server: str, ledger_path: Path, register_key: Ed25519Signer
) -> None:
    with open_reader(ledger_path) as r:
        entries = r.entries(0, r.size)
        checkpoint = r.checkpoint()
    store = MemoryHashStore()
    for e in entries:
        store.append(leaf_hash(e))
    resp = signed_get(f"{pull_server}/checkpoint", register_key)
    assert resp.status_code == 200 and resp.text == checkpoint
    # 1100 entries: 4 full level-0 tiles + a partial of 76; level 1 holds 4 hashes
    for ref in (TileRef(0, 0), TileRef(0, 4, 76), TileRef(1, 0, 4)):
        body = signed_get(f"{pull_server}/{ref.path()}", register_key).content
        assert body == b"".join(store.read_hashes(tile_addresses(ref)))
    bundle = signed_get(f"{pull_server}/tile/entries/004.p/76", register_key).content
    assert decode_bundle(bundle, 76) == entries[1024:]
    assert signed_get(f"{pull_server}/tile/entries/004", register_key).status_code == 404  # not full yet
    assert signed_get(f"{pull_server}/tile/0/x000/004", register_key).status_code == 404  # non-canonical


def test_unsigned_badly_signed_and_replayed_requests_are_refused(
    pull_server: str, register_key: Ed25519Signer
) -> None:
    url = f"{pull_server}/checkpoint"
    assert requests.get(url, timeout=5).status_code == 401
    stranger = Ed25519Signer.generate("reg.test-pull")
    assert signed_get(url, stranger).status_code == 401
    headers = sign_request("GET", url, {}, b"", register_key, now=int(time.time()))
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    assert requests.get(url, headers=headers, timeout=5).status_code == 401  # replay
    old = sign_request("GET", url, {}, b"", register_key, now=int(time.time()) - 3600)
    assert requests.get(url, headers=old, timeout=5).status_code == 401
    assert requests.post(url, timeout=5).status_code == 405


def test_fetch_log_verifies_and_gives_what_a_push_carries(
    pull_server: str, ledger_path: Path, register_key: Ed25519Signer
) -> None:
    with open_reader(ledger_path) as r:
        vkey, entries = r.vkey, r.entries(0, r.size)
        proof = r.consistency_proof(300, r.size)
    pulled = fetch_log(pull_server, register_key, 300, 5.0, device_vkey=vkey)
    assert pulled.start == 300 and pulled.entries == entries[300:]
    assert pulled.checkpoint.size == TEMPLATE_SIZE and pulled.proof == proof
    everything = fetch_log(pull_server, register_key, 0, 5.0, device_vkey=vkey)
    assert everything.entries == entries and everything.proof == []
    with pytest.raises(PulledLogInvalid):
        fetch_log(pull_server, register_key, 0, 5.0, device_vkey=Ed25519Signer.generate("x").vkey)
    with pytest.raises(FetchRefused):
        fetch_log(pull_server, Ed25519Signer.generate("reg.test-pull"), 0, 5.0, device_vkey=vkey)


def test_fetch_log_rejects_a_tampered_entry(ledger_path: Path, register_key: Ed25519Signer) -> None:
    class Tampering(PullService):
        def handle(self, method: str, target: str, headers: object) -> tuple[int, str, bytes]:
            status, ctype, body = super().handle(method, target, headers)
            if "entries" in target and status == 200:
                body = body[:-1] + bytes([body[-1] ^ 1])
            return status, ctype, body

    reader = open_reader(ledger_path)
    server = PullServer(Tampering(reader, [register_key.verifier()]), "127.0.0.1", 0)
    server.start()
    try:
        with pytest.raises(PulledLogInvalid, match="root"):
            fetch_log(
                f"http://127.0.0.1:{server.server_address[1]}",
                register_key,
                1000,
                5.0,
                device_vkey=reader.vkey,
            )
    finally:
        server.stop()
        reader.close()
