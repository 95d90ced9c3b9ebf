"""The fast entry encoder (maps built in canonical key order, cbor2 without ``canonical=True``) writes
exactly what cbor2's canonical encoder writes, for any valid entry; and the decoder's direct
construction gives the same entry as the dataclass constructor."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entry import _FIELDS, KINDS, METHODS, PREFIX, Entry, decode_entry, encode_entry, new_entry
from ledger.errors import EntryError

UINT = st.integers(0, (1 << 64) - 1)
TEXT = st.text(
    st.characters(min_codepoint=0x20, blacklist_characters="\x7f", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=40,
)
EVIDENCE_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
EVIDENCE_VALUE = st.one_of(
    st.integers(-(1 << 63), (1 << 64) - 1), st.booleans(), TEXT, st.binary(max_size=40)
)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    index = draw(UINT)
    kind = draw(st.sampled_from(sorted(KINDS - ({"correction"} if index == 0 else set()))))
    child = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True))
    method = draw(st.sampled_from(sorted(METHODS)))
    needs_child = kind in ("in", "out")
    with_ref = index > 0 and (kind == "correction" or draw(st.booleans()))
    return Entry(
        index=index,
        kind=kind,
        time_ms=draw(UINT),
        clock_synced=draw(st.booleans()),
        boot_id=draw(st.binary(min_size=16, max_size=16)),
        mono_ns=draw(UINT),
        child=child if needs_child or draw(st.booleans()) else None,
        method=method if needs_child or draw(st.booleans()) else None,
        evidence=draw(st.dictionaries(EVIDENCE_KEY, EVIDENCE_VALUE, max_size=6)),
        roster_version=draw(st.none() | UINT),
        reason=draw(TEXT) if kind in ("rejected", "correction") or draw(st.booleans()) else None,
        ref=draw(st.integers(0, index - 1)) if with_ref else None,
    )


def _canonical(entry: Entry) -> bytes:
    obj: dict[str, Any] = {}
    for attr, key in _FIELDS:  # declaration order, not the canonical one: cbor2 must sort
        value = getattr(entry, attr)
        if value is not None and not (attr == "evidence" and not value):
            obj[key] = dict(value) if attr == "evidence" else value
    return PREFIX + cbor2.dumps(obj, canonical=True)


@settings(max_examples=300)
@given(entries())
def test_the_fast_encoder_writes_cbor2s_canonical_bytes(entry: Entry) -> None:
    data = encode_entry(entry)
    assert data == _canonical(entry)
    decoded = decode_entry(data)
    assert decoded == entry
    assert decoded == Entry(**decoded.__dict__)  # the same object the dataclass constructor builds
    assert new_entry(**decoded.__dict__) == decoded
    assert encode_entry(decoded) == data


def test_an_unhashable_kind_or_method_is_refused_with_the_field_named() -> None:
    base = {"i": 5, "k": "note", "t": 1, "s": True, "b": bytes(16), "m": 1}
    for key, value, field in (("k", [], "kind"), ("h", {"x": 1}, "method"), ("k", b"note", "kind")):
        data = PREFIX + cbor2.dumps({**base, key: value}, canonical=True)
        with pytest.raises(EntryError, match=f"^{field} must be one of"):
            decode_entry(data)


def test_a_lone_surrogate_in_text_is_an_entry_error_not_an_encoder_crash() -> None:
    """Found by the property test above: such text passed validation and then crashed the encoder."""
    base: dict[str, Any] = {
        "index": 3, "kind": "note", "time_ms": 1, "clock_synced": True, "boot_id": bytes(16), "mono_ns": 1
    }  # fmt: skip
    for extra in ({"reason": "a\ud800"}, {"evidence": {"text": "\udfff"}}):
        with pytest.raises(EntryError, match="lone surrogate"):
            Entry(**base, **extra)


def test_new_entry_refuses_what_the_constructor_refuses() -> None:
    base: dict[str, Any] = {
        "index": 3, "kind": "note", "time_ms": 1, "clock_synced": True, "boot_id": bytes(16), "mono_ns": 1
    }  # fmt: skip
    assert new_entry(**base) == Entry(**base)
    for bad in ({"kind": "exit"}, {"index": -1}, {"ref": 3, "kind": "correction", "reason": "x"}):
        with pytest.raises(EntryError) as fast:
            new_entry(**{**base, **bad})
        with pytest.raises(EntryError) as slow:
            Entry(**{**base, **bad})
        assert str(fast.value) == str(slow.value)
    with pytest.raises(TypeError):
        new_entry(**{**base, "colour": "red"})
    with pytest.raises(TypeError):
        new_entry(index=3)
