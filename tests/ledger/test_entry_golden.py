"""Golden vectors for the entry format (docs/ledger.md), the one contract that can never change.

FROZEN: changing a vector breaks every deployed ledger. Every device ledger and register holds entries
as these exact bytes and their Merkle leaves hash them; a vector may only be ADDED, never edited.

Valid vectors live in ``entry_vectors.json`` (hex of the exact bytes). Invalid encodings are written
by hand below as bytes, without cbor2's encoder, so that a change in the encoder cannot hide a change
in what the decoder accepts.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from ledger.entry import MAX_ENTRY_SIZE, PREFIX, Entry, decode_entry, encode_entry
from ledger.errors import EntryError

VECTORS = json.loads((Path(__file__).with_name("entry_vectors.json")).read_text(encoding="utf-8"))
assert VECTORS["comment"] == "frozen: changing a vector breaks every deployed ledger"


def _entry(fields: dict[str, Any]) -> Entry:
    evidence = {
        k: bytes.fromhex(v["bytes"]) if isinstance(v, dict) else v for k, v in fields["evidence"].items()
    }
    return Entry(**{**fields, "boot_id": bytes.fromhex(fields["boot_id"]), "evidence": evidence})


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=[v["name"] for v in VECTORS["vectors"]])
def test_golden_vector(vector: dict[str, Any]) -> None:
    entry, data = _entry(vector["entry"]), bytes.fromhex(vector["hex"])
    assert encode_entry(entry) == data
    assert decode_entry(data) == entry


def test_the_vectors_cover_every_kind_and_method() -> None:
    entries = [_entry(v["entry"]) for v in VECTORS["vectors"]]
    assert {e.kind for e in entries} == {
        "in",
        "out",
        "boot",
        "clock",
        "roster",
        "rejected",
        "correction",
        "note",
    }
    assert {e.method for e in entries} >= {"qr", "face", "qr+face", "staff"}


# --- hand-written CBOR ------------------------------------------------------------------------------


def head(major: int, n: int) -> bytes:
    """The shortest CBOR head for major type ``major`` and argument ``n`` (RFC 8949 §3)."""
    if n < 24:
        return bytes([major << 5 | n])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | info]) + n.to_bytes(width, "big")
    raise ValueError(n)


def text(s: str) -> bytes:
    raw = s.encode()
    return head(3, len(raw)) + raw


def uint(n: int) -> bytes:
    return head(0, n)


BOOT_ID = bytes(range(16))
# A minimal valid entry (kind "note", index 5), as (key, value) pairs in canonical key order.
BASE: list[tuple[bytes, bytes]] = [
    (text("b"), head(2, 16) + BOOT_ID),
    (text("i"), uint(5)),
    (text("k"), text("note")),
    (text("m"), uint(7)),
    (text("n"), text("hi")),
    (text("s"), b"\xf5"),
    (text("t"), uint(1_790_000_000_000)),
]
BASE_ENTRY = Entry(5, "note", 1_790_000_000_000, True, BOOT_ID, 7, reason="hi")


def cbor_map(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def entry_bytes(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return PREFIX + cbor_map(pairs)


def replace(key: str, value: bytes, pairs: list[tuple[bytes, bytes]] = BASE) -> list[tuple[bytes, bytes]]:
    out = [(k, value if k == text(key) else v) for k, v in pairs]
    assert out != pairs, key
    return out


def without(*keys: str, pairs: list[tuple[bytes, bytes]] = BASE) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in pairs if k not in {text(key) for key in keys}]


def with_fields(
    extra: dict[str, bytes], pairs: list[tuple[bytes, bytes]] = BASE
) -> list[tuple[bytes, bytes]]:
    """``pairs`` plus ``extra``, kept in canonical order (one-character keys sort by their byte)."""
    return sorted([*pairs, *((text(k), v) for k, v in extra.items())], key=lambda kv: (len(kv[0]), kv[0]))


def test_the_hand_written_base_is_valid() -> None:
    """Guards the cases below: each differs from a valid entry only by the fault it names."""
    data = entry_bytes(BASE)
    assert decode_entry(data) == BASE_ENTRY
    assert encode_entry(BASE_ENTRY) == data
    assert decode_entry(entry_bytes(with_fields({"e": cbor_map([(text("x"), uint(1))])}))).evidence == {
        "x": 1
    }
    in_entry = decode_entry(
        entry_bytes(replace("k", text("in"), with_fields({"c": text("C1"), "h": text("qr")})))
    )
    assert (in_entry.kind, in_entry.child, in_entry.method) == ("in", "C1", "qr")
    fixed = decode_entry(entry_bytes(replace("k", text("correction"), with_fields({"x": uint(4)}))))
    assert fixed.ref == 4


def _bad(name: str, data: bytes) -> Any:
    return pytest.param(data, id=name)


T = 1_790_000_000_000
NON_CANONICAL = [
    # integers not in their shortest form
    _bad("index 5 as uint8", entry_bytes(replace("i", b"\x18\x05"))),
    _bad("index 5 as uint16", entry_bytes(replace("i", b"\x19\x00\x05"))),
    _bad("index 5 as uint32", entry_bytes(replace("i", b"\x1a\x00\x00\x00\x05"))),
    _bad("index 5 as uint64", entry_bytes(replace("i", b"\x1b" + (5).to_bytes(8, "big")))),
    _bad("mono 7 as uint8", entry_bytes(replace("m", b"\x18\x07"))),
    _bad("map length in a long head", PREFIX + b"\xb8\x07" + b"".join(k + v for k, v in BASE)),
    _bad("text length in a long head", entry_bytes(replace("k", b"\x78\x04note"))),
    _bad("bytes length in a long head", entry_bytes(replace("b", b"\x58\x10" + BOOT_ID))),
    # indefinite lengths
    _bad("indefinite map", PREFIX + b"\xbf" + b"".join(k + v for k, v in BASE) + b"\xff"),
    _bad("indefinite text", entry_bytes(replace("k", b"\x7f\x62no\x62te\xff"))),
    _bad(
        "indefinite bytes",
        entry_bytes(replace("b", b"\x5f\x48" + BOOT_ID[:8] + b"\x48" + BOOT_ID[8:] + b"\xff")),
    ),
    _bad(
        "indefinite empty array as evidence value",
        entry_bytes(with_fields({"e": cbor_map([(text("x"), b"\x9f\xff")])})),
    ),
    _bad("indefinite array at the top", PREFIX + b"\x9f" + b"".join(k + v for k, v in BASE) + b"\xff"),
    _bad("indefinite evidence map", entry_bytes(with_fields({"e": b"\xbf" + text("x") + uint(1) + b"\xff"}))),
    # map order and duplicates
    _bad("unsorted keys", entry_bytes([BASE[1], BASE[0], *BASE[2:]])),
    _bad("reverse order", entry_bytes(BASE[::-1])),
    _bad(
        "evidence keys unsorted",
        entry_bytes(with_fields({"e": cbor_map([(text("y"), uint(1)), (text("x"), uint(2))])})),
    ),
    _bad(
        "evidence keys length-unsorted",
        entry_bytes(with_fields({"e": cbor_map([(text("ab"), uint(1)), (text("b"), uint(2))])})),
    ),
    _bad("duplicate key, same value", entry_bytes([*BASE[:2], BASE[1], *BASE[2:]])),
    _bad("duplicate key, other value", entry_bytes([*BASE[:2], (text("i"), uint(6)), *BASE[2:]])),
    _bad(
        "duplicate evidence key",
        entry_bytes(with_fields({"e": cbor_map([(text("x"), uint(1)), (text("x"), uint(1))])})),
    ),
    # floats, even those equal to an integer
    _bad(
        "time as float64 equal to the int", entry_bytes(replace("t", b"\xfb" + struct.pack(">d", float(T))))
    ),
    _bad("index 5 as float16", entry_bytes(replace("i", b"\xf9\x45\x00"))),
    _bad("mono 0 as float16 zero", entry_bytes(replace("m", b"\xf9\x00\x00"))),
    _bad("index 5 as float32", entry_bytes(replace("i", b"\xfa\x40\xa0\x00\x00"))),
    _bad(
        "evidence float equal to 1", entry_bytes(with_fields({"e": cbor_map([(text("x"), b"\xf9\x3c\x00")])}))
    ),
    _bad("evidence NaN", entry_bytes(with_fields({"e": cbor_map([(text("x"), b"\xf9\x7e\x00")])}))),
    # tags
    _bad("self-describe tag on the map", PREFIX + b"\xd9\xd9\xf7" + cbor_map(BASE)),
    _bad("epoch-time tag on time", entry_bytes(replace("t", b"\xc1" + uint(T)))),
    _bad("bignum tag for index", entry_bytes(replace("i", b"\xc2\x41\x05"))),
    _bad("tag on a text value", entry_bytes(replace("k", b"\xd8\x20" + text("note")))),
    # other simple values
    _bad("null for an optional field", entry_bytes(with_fields({"c": b"\xf6"}))),
    _bad("undefined for an optional field", entry_bytes(with_fields({"c": b"\xf7"}))),
    _bad("clock_synced as integer 1", entry_bytes(replace("s", uint(1)))),
    _bad("negative index", entry_bytes(replace("i", b"\x20"))),
]

NOT_AN_ENTRY = [
    _bad("no prefix", cbor_map(BASE)),
    _bad("v2 prefix", b"kgate/entry/v2\n" + cbor_map(BASE)),
    _bad("prefix without newline", b"kgate/entry/v1" + cbor_map(BASE)),
    _bad("prefix with CRLF", b"kgate/entry/v1\r\n" + cbor_map(BASE)),
    _bad("upper-case prefix", b"KGATE/entry/v1\n" + cbor_map(BASE)),
    _bad("prefix only", PREFIX),
    _bad("empty", b""),
    _bad("trailing zero byte", entry_bytes(BASE) + b"\x00"),
    _bad("trailing second map", entry_bytes(BASE) + cbor_map(BASE)),
    _bad("truncated", entry_bytes(BASE)[:-1]),
    _bad("top level is an array", PREFIX + head(4, 1) + cbor_map(BASE)),
    _bad("top level is text", PREFIX + text("note")),
    # text and bytes swapped
    _bad("kind as bytes", entry_bytes(replace("k", b"\x44note"))),
    _bad("boot_id as text", entry_bytes(replace("b", text("0123456789abcdef")))),
    _bad("key as bytes", entry_bytes([(b"\x41b", BASE[0][1]), *BASE[1:]])),
    _bad("reason as bytes", entry_bytes(replace("n", b"\x42hi"))),
    _bad("child as bytes", entry_bytes(with_fields({"c": b"\x42C1"}))),
    _bad("evidence key as bytes", entry_bytes(with_fields({"e": cbor_map([(b"\x41x", uint(1))])}))),
    _bad("evidence key as integer", entry_bytes(with_fields({"e": cbor_map([(uint(1), uint(1))])}))),
    # unknown and missing fields
    _bad("unknown key z", entry_bytes(with_fields({"z": uint(1)}))),
    _bad("long field name", entry_bytes(with_fields({"index": uint(5)}))),
    _bad("integer key", entry_bytes([(uint(0), uint(0)), *BASE])),
    *[_bad(f"missing {k}", entry_bytes(without(k))) for k in "biksmt"],
    _bad("empty map", PREFIX + b"\xa0"),
    # evidence
    _bad("empty evidence map", entry_bytes(with_fields({"e": b"\xa0"}))),
    _bad("evidence not a map", entry_bytes(with_fields({"e": uint(1)}))),
    _bad("evidence with an array value", entry_bytes(with_fields({"e": cbor_map([(text("x"), b"\x80")])}))),
    _bad("evidence key with a capital", entry_bytes(with_fields({"e": cbor_map([(text("X"), uint(1))])}))),
    _bad(
        "17 evidence items",
        entry_bytes(with_fields({"e": cbor_map([(text(f"k{n:02d}"), uint(n)) for n in range(17)])})),
    ),
    # field values
    _bad("unknown kind", entry_bytes(replace("k", text("exit")))),
    _bad("boot_id of 15 bytes", entry_bytes(replace("b", head(2, 15) + BOOT_ID[:15]))),
    _bad("unknown method", entry_bytes(with_fields({"h": text("pin")}))),
    _bad("reason with a control character", entry_bytes(replace("n", text("a\x1bb")))),
    _bad("empty reason", entry_bytes(replace("n", text("")))),
    _bad("257-character reason", entry_bytes(replace("n", text("x" * 257)))),
    _bad("index above 64 bits", entry_bytes(replace("i", b"\xc2\x49\x01" + bytes(8)))),
    _bad("larger than the size limit", entry_bytes(replace("n", text("x" * 200))) + bytes(MAX_ENTRY_SIZE)),
]

IN_PAIRS = replace("k", text("in"), with_fields({"c": text("C1"), "h": text("qr")}))
PER_KIND = [
    _bad("in without child", entry_bytes(without("c", pairs=IN_PAIRS))),
    _bad("in without method", entry_bytes(without("h", pairs=IN_PAIRS))),
    _bad("out without child", entry_bytes(without("c", pairs=replace("k", text("out"), IN_PAIRS)))),
    _bad("rejected without reason", entry_bytes(without("n", pairs=replace("k", text("rejected"))))),
    _bad("correction without ref", entry_bytes(replace("k", text("correction")))),
    _bad(
        "correction without reason",
        entry_bytes(without("n", pairs=replace("k", text("correction"), with_fields({"x": uint(1)})))),
    ),
    _bad("ref equal to index", entry_bytes(replace("k", text("correction"), with_fields({"x": uint(5)})))),
    _bad("ref above index", entry_bytes(replace("k", text("correction"), with_fields({"x": uint(6)})))),
]


@pytest.mark.parametrize("data", NON_CANONICAL)
def test_a_non_canonical_encoding_is_refused(data: bytes) -> None:
    with pytest.raises(EntryError):
        decode_entry(data)


@pytest.mark.parametrize("data", NOT_AN_ENTRY)
def test_bytes_that_are_not_an_entry_are_refused(data: bytes) -> None:
    with pytest.raises(EntryError):
        decode_entry(data)


@pytest.mark.parametrize("data", PER_KIND)
def test_the_per_kind_rules_are_enforced_when_decoding(data: bytes) -> None:
    with pytest.raises(EntryError):
        decode_entry(data)


def test_the_encoder_refuses_what_would_exceed_the_size_limit() -> None:
    big = {f"k{n:02d}": b"\x01" * 256 for n in range(16)}
    with pytest.raises(EntryError, match="more than"):
        encode_entry(Entry(1, "note", 0, True, BOOT_ID, 0, reason="x", evidence=big))
