"""Ledger entries: the exact signed bytes of one attendance event.

Encoding (version 1): the ASCII prefix ``kgate/entry/v1\\n`` (domain separation: these bytes can never
be mistaken for another protocol's message) followed by one map in deterministic CBOR
(RFC 8949 §4.2.1: shortest integers, definite lengths, keys sorted bytewise). The bytes are stored and
sent unchanged; :func:`decode_entry` refuses anything that does not re-encode to the same bytes, so
every event has exactly one valid encoding. See ``docs/ledger.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import cbor2

from ledger.errors import EntryError

PREFIX: Final = b"kgate/entry/v1\n"
MAX_ENTRY_SIZE: Final = 4096  # bytes; an entry is ~150 bytes, anything near this is hostile

KINDS: Final = frozenset({"in", "out", "boot", "clock", "roster", "rejected", "correction", "note"})
METHODS: Final = frozenset({"qr", "face", "qr+face", "staff"})
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_EVIDENCE_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # controls, and lone surrogates (not UTF-8)
_MAX_TEXT = 256
_MAX_EVIDENCE = 16
_UINT64 = (1 << 64) - 1

EvidenceValue = str | int | bool | bytes


@dataclass(frozen=True)
class Entry:
    """One attendance-log event, validated at construction.

    ``time_ms`` is UTC wall time in milliseconds with ``clock_synced`` telling whether NTP/RTC vouched
    for it; ``boot_id`` (16 bytes) and ``mono_ns`` (CLOCK_MONOTONIC-style, since boot) let a verifier
    check ordering even when the wall clock is wrong. Evidence values are integers, not floats (a face
    distance is stored in thousandths) so that the encoding stays canonical.
    """

    index: int
    kind: str
    time_ms: int
    clock_synced: bool
    boot_id: bytes
    mono_ns: int
    child: str | None = None
    method: str | None = None
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict)
    roster_version: int | None = None
    reason: str | None = None
    ref: int | None = None

    def __post_init__(self) -> None:
        _validate(self)

    def with_index(self, index: int) -> Entry:
        """The same event at another log position (the ledger assigns the index at append)."""
        return Entry(**{**self.__dict__, "index": index})


def _fail(message: str) -> EntryError:
    return EntryError(message)


def _uint(value: object, name: str) -> int:
    if type(value) is not int or not 0 <= value <= _UINT64:
        raise _fail(f"{name} must be an unsigned 64-bit integer, got {value!r}")
    return value


def _text(value: object, name: str) -> str:
    if type(value) is not str or not value or len(value) > _MAX_TEXT:
        raise _fail(f"{name} must be non-empty text of at most {_MAX_TEXT} characters")
    bad = _CONTROL.search(value)
    if bad:
        if "\ud800" <= bad.group() <= "\udfff":
            raise _fail(f"{name} must be valid Unicode (it holds a lone surrogate)")
        raise _fail(f"{name} must not contain control characters")
    return value


def _is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value <= _UINT64


def _validate(e: Entry) -> None:
    # Runs for every entry a verifier replays: each check is inline and cheap when it passes.
    index, kind = e.index, e.kind
    if type(index) is not int or not 0 <= index <= _UINT64:
        _uint(index, "index")
    if not _is_uint(e.time_ms):
        _uint(e.time_ms, "time_ms")
    if not _is_uint(e.mono_ns):
        _uint(e.mono_ns, "mono_ns")
    if type(kind) is not str or kind not in KINDS:
        raise _fail(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    if type(e.clock_synced) is not bool:
        raise _fail("clock_synced must be a boolean")
    if type(e.boot_id) is not bytes or len(e.boot_id) != 16:
        raise _fail("boot_id must be 16 bytes")
    child, method = e.child, e.method
    if child is not None and (type(child) is not str or not _ID.fullmatch(child)):
        raise _fail(f"child must match {_ID.pattern}, got {child!r}")
    if method is not None and (type(method) is not str or method not in METHODS):
        raise _fail(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if e.roster_version is not None:
        _uint(e.roster_version, "roster_version")
    if e.reason is not None:
        _text(e.reason, "reason")
    if e.ref is not None:
        _uint(e.ref, "ref")
        if e.ref >= index:
            raise _fail("ref must name an earlier entry")
    evidence = e.evidence
    if type(evidence) is not dict and not isinstance(evidence, Mapping):
        raise _fail(f"evidence must be a mapping of at most {_MAX_EVIDENCE} items")
    if len(evidence) > _MAX_EVIDENCE:
        raise _fail(f"evidence must be a mapping of at most {_MAX_EVIDENCE} items")
    for key, value in evidence.items():
        if type(key) is not str or not _EVIDENCE_KEY.fullmatch(key):
            raise _fail(f"evidence key {key!r} must match {_EVIDENCE_KEY.pattern}")
        if type(value) is int:
            if not -(1 << 63) <= value <= _UINT64:
                raise _fail(f"evidence {key} is out of range")
        elif type(value) is str:
            _text(value, f"evidence {key}")
        elif type(value) is bytes:
            if len(value) > _MAX_TEXT:
                raise _fail(f"evidence {key} is longer than {_MAX_TEXT} bytes")
        elif type(value) is not bool:
            raise _fail(f"evidence {key} must be int, bool, text or bytes, got {type(value).__name__}")
    # Per-kind requirements: what an auditor needs to make sense of the event.
    if e.kind in ("in", "out") and (e.child is None or e.method is None):
        raise _fail(f"a {e.kind!r} entry needs child and method")
    if e.kind == "rejected" and e.reason is None:
        raise _fail("a 'rejected' entry needs a reason")
    if e.kind == "correction" and (e.ref is None or e.reason is None):
        raise _fail("a 'correction' entry needs ref and reason")


# CBOR map keys: short, stable, documented in docs/ledger.md.
_FIELDS: Final = (
    ("index", "i"),
    ("kind", "k"),
    ("time_ms", "t"),
    ("clock_synced", "s"),
    ("boot_id", "b"),
    ("mono_ns", "m"),
    ("child", "c"),
    ("method", "h"),
    ("evidence", "e"),
    ("roster_version", "r"),
    ("reason", "n"),
    ("ref", "x"),
)
_REQUIRED: Final = frozenset({"i", "k", "t", "s", "b", "m"})
_KEY_TO_ATTR: Final = {key: attr for attr, key in _FIELDS}


# The map keys in canonical order (RFC 8949 §4.2.1: bytewise order of the encoded keys; each key is one
# ASCII letter, so that is their alphabetical order). cbor2 writes a map in its insertion order, every
# integer in its shortest form and every length definite, so a map built in this order encodes
# canonically without ``canonical=True`` (which sorts each map again, 3x the cost); the golden vectors
# in tests/ledger check the bytes.
_CANONICAL: Final = tuple(sorted(_FIELDS, key=lambda field: field[1]))


def _evidence_order(key: str) -> tuple[int, str]:
    """Canonical order of evidence keys: shorter encoding first, then bytewise (keys are ASCII)."""
    return len(key), key


def encode_entry(entry: Entry) -> bytes:
    """The canonical bytes of ``entry``; optional fields that are unset are omitted."""
    values = entry.__dict__
    obj = {key: value for attr, key in _CANONICAL if (value := values[attr]) is not None}
    evidence = obj.get("e")
    if evidence is not None:
        if not evidence:
            del obj["e"]
        elif len(evidence) > 1:
            obj["e"] = {k: evidence[k] for k in sorted(evidence, key=_evidence_order)}
        elif type(evidence) is not dict:
            obj["e"] = dict(evidence)  # one item: already in order
    data = PREFIX + cbor2.dumps(obj)
    if len(data) > MAX_ENTRY_SIZE:
        raise _fail(f"entry encodes to {len(data)} bytes, more than {MAX_ENTRY_SIZE}")
    return data


_UNSET: Final[Mapping[str, Any]] = {
    attr: None for attr, key in _FIELDS if key not in _REQUIRED and key != "e"
}
_KEYS: Final = frozenset(_KEY_TO_ATTR)
_PREFIX_LEN: Final = len(PREFIX)


def decode_entry(data: bytes) -> Entry:
    """Parse and validate canonical entry bytes; :class:`EntryError` says what is wrong."""
    if len(data) > MAX_ENTRY_SIZE:
        raise _fail(f"entry is {len(data)} bytes, more than {MAX_ENTRY_SIZE}")
    if not data.startswith(PREFIX):
        raise _fail("entry does not start with the kgate/entry/v1 prefix")
    try:
        obj = cbor2.loads(data[_PREFIX_LEN:])
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _fail(f"entry is not valid CBOR: {exc}") from None
    if type(obj) is not dict:
        raise _fail("entry is not a CBOR map")
    keys = obj.keys()
    if not keys <= _KEYS:
        raise _fail(f"entry has unknown fields {sorted(map(str, keys - _KEYS))}")
    if not keys >= _REQUIRED:
        raise _fail(f"entry lacks required fields {sorted(_REQUIRED - keys)}")
    evidence = obj.get("e", _NO_EVIDENCE)
    if evidence is not _NO_EVIDENCE and (type(evidence) is not dict or not evidence):
        raise _fail("entry evidence must be a non-empty map when present")
    # The dataclass's own __init__ sets twelve frozen fields one object.__setattr__ at a time; filling
    # __dict__ directly and running the same validation is the same object at a fifth of the cost.
    entry = object.__new__(Entry)
    fields = entry.__dict__
    fields.update(_UNSET)
    fields["evidence"] = {} if evidence is _NO_EVIDENCE else evidence
    for key, value in obj.items():
        if key != "e":
            fields[_KEY_TO_ATTR[key]] = value
    _validate(entry)
    if encode_entry(entry) != data:
        raise _fail("entry is not in canonical encoding")
    return entry


_NO_EVIDENCE: Final[dict[str, Any]] = {}
_ATTRS: Final = frozenset(attr for attr, _ in _FIELDS)
_REQUIRED_ATTRS: Final = frozenset(_KEY_TO_ATTR[key] for key in _REQUIRED)


def new_entry(**fields: Any) -> Entry:
    """``Entry(**fields)``, validated alike, at a fraction of the cost (the ledger builds one per append).

    The frozen dataclass's ``__init__`` sets each of the twelve fields through ``object.__setattr__``;
    this fills the instance's ``__dict__`` and runs the same validation.
    """
    if not fields.keys() <= _ATTRS or not fields.keys() >= _REQUIRED_ATTRS:
        return Entry(**fields)  # the dataclass names the unknown or missing argument (TypeError)
    entry = object.__new__(Entry)
    values = entry.__dict__
    values.update(_UNSET)
    values["evidence"] = {}
    values.update(fields)
    _validate(entry)
    return entry
