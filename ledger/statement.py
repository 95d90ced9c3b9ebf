"""Parent statements (docs/statements.md): one child's month of entries, provable offline.

A statement is one JSON document (format ``kgate-statement``, version 2) holding, per device log, the
exact bytes of the child's entries, an RFC 9162 inclusion proof for each, the device-signed checkpoint
they are proved against with the register's cosignature, and the device's verifier key; and ``signed``,
the register's **statement note**: a c2sp.org/signed-note whose body commits to the kindergarten, month,
time zone, child, and per log the origin, device key, checkpoint (size, root, SHA-256 of the note) and
the list of entries (index, leaf hash), signed with the register's cosigner key. Anyone holding the file
and the register's published cosigner key checks it with :func:`verify_statement`, which needs nothing
but this ledger layer: the statement note fixes what the statement says (a changed label, a dropped
entry, another checkpoint no longer match it), the register's cosignature fixes the checkpoint (origin,
size, root), the device's signature on that same checkpoint is by the key the statement note names, and
every entry is bound to the root by its proof.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ledger.checkpoint import Checkpoint
from ledger.entry import Entry, decode_entry
from ledger.errors import LedgerError, NoteError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import (
    CosignatureVerifier,
    Ed25519Verifier,
    Signature,
    Signer,
    cosignature_timestamp,
    parse_note,
    sign_note,
)

FORMAT: Final = "kgate-statement"
VERSION: Final = 2
NOTE_HEADER: Final = "kgate-statement/v2"  # the statement note's first line (never a checkpoint's size)
LABELS: Final = ("kindergarten", "month", "timezone", "child")
MAX_STATEMENT_SIZE: Final = 16 * 1024 * 1024  # a month of one child is ~100 entries, a few hundred KiB
MAX_LOGS: Final = 64
MAX_ENTRIES: Final = 10_000
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


class StatementError(LedgerError):
    """Base class of statement errors."""


class StatementUnreadable(StatementError, ValueError):
    """Not a statement at all: not JSON, a wrong format or version, a missing or mistyped field."""

    exit_code = 2


class StatementInvalid(StatementError, ValueError):
    """The statement is well formed but does not verify; the message names the log, entry and check."""

    exit_code = 1


@dataclass(frozen=True)
class ProvenEntry:
    """One verified entry: its log origin and the decoded event."""

    origin: str
    entry: Entry


@dataclass(frozen=True)
class VerifiedStatement:
    """What a valid statement proves: whose month it is, and every entry in it, all verified."""

    child: str
    month: str
    kindergarten: str
    timezone: str
    entries: tuple[ProvenEntry, ...]
    signed_at: int = 0  # POSIX seconds: when the register signed the statement note


def encode_statement(doc: Mapping[str, Any]) -> bytes:
    """The statement file's bytes: sorted keys, two-space indent, UTF-8, a final newline (one spelling)."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


# -- reading ---------------------------------------------------------------------------------------------


def _field(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in obj:
        raise StatementUnreadable(f"{where} lacks the field {key!r}")
    value = obj[key]
    if type(value) is not kind:
        raise StatementUnreadable(f"{where} field {key!r} must be {kind.__name__}")
    return value


def _b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise StatementUnreadable(f"{what} is not base64") from None
    return raw


def _parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_STATEMENT_SIZE:
        raise StatementUnreadable(f"statement is larger than {MAX_STATEMENT_SIZE} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise StatementUnreadable(f"statement is not JSON: {exc}") from None
    if type(doc) is not dict:
        raise StatementUnreadable("statement is not a JSON object")
    if doc.get("format") != FORMAT:
        raise StatementUnreadable(f"not a {FORMAT} document (format field)")
    if doc.get("version") != VERSION:
        old = (
            " (version 1 statements carry no register signature: get a new one)"
            if doc.get("version") == 1
            else ""
        )
        raise StatementUnreadable(f"statement version {doc.get('version')!r} is not {VERSION}{old}")
    for key in ("child", "month", "kindergarten", "timezone", "register_vkey", "signed"):
        _field(doc, key, str, "statement")
    if not _MONTH.fullmatch(doc["month"]):
        raise StatementUnreadable("statement month must be YYYY-MM")
    logs = _field(doc, "logs", list, "statement")
    if len(logs) > MAX_LOGS:
        raise StatementUnreadable(f"statement has more than {MAX_LOGS} logs")
    total = 0
    for n, log in enumerate(logs):
        where = f"logs[{n}]"
        if type(log) is not dict:
            raise StatementUnreadable(f"{where} is not an object")
        for key in ("origin", "device_vkey", "checkpoint"):
            _field(log, key, str, where)
        entries = _field(log, "entries", list, where)
        total += len(entries)
        if total > MAX_ENTRIES:
            raise StatementUnreadable(f"statement has more than {MAX_ENTRIES} entries")
        for i, item in enumerate(entries):
            at = f"{where}.entries[{i}]"
            if type(item) is not dict:
                raise StatementUnreadable(f"{at} is not an object")
            _field(item, "index", int, at)
            _field(item, "data", str, at)
            proof = _field(item, "proof", list, at)
            if any(type(p) is not str for p in proof):
                raise StatementUnreadable(f"{at} proof hashes must be base64 strings")
    return doc


# -- the register's statement note ---------------------------------------------------------------------


def _commitment(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the statement note's body commits to, computed from a (parsed) statement's own fields."""
    logs = []
    for log in doc["logs"]:
        text, _sigs = parse_note(log["checkpoint"])
        cp = Checkpoint.parse(text)
        logs.append({
            "origin": log["origin"],
            "device_vkey": log["device_vkey"],
            "checkpoint": {
                "size": cp.size,
                "root": base64.b64encode(cp.root).decode(),
                "sha256": hashlib.sha256(log["checkpoint"].encode()).hexdigest(),
            },
            "entries": [
                [item["index"], leaf_hash(_b64(item["data"], "entry data")).hex()] for item in log["entries"]
            ],
        })  # fmt: skip
    return {**{key: doc[key] for key in LABELS}, "logs": logs}


def statement_note_text(doc: Mapping[str, Any]) -> str:
    """The statement note's body for ``doc`` (every field but ``signed``): ``kgate-statement/v2``, then
    the commitment as one line of canonical JSON (sorted keys, no spaces, ASCII)."""
    line = json.dumps(_commitment(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{NOTE_HEADER}\n{line}\n"


def sign_statement(doc: Mapping[str, Any], register: Signer) -> dict[str, Any]:
    """``doc`` with ``signed``: its statement note signed by the register's cosigner key."""
    return {**doc, "signed": sign_note(statement_note_text(doc), register)}


def _open_statement_note(note: str, register: CosignatureVerifier) -> tuple[dict[str, Any], int]:
    """The verified commitment of the statement note and when the register signed it."""
    try:
        text, sigs = parse_note(note)
    except LedgerError as exc:
        raise StatementInvalid(f"the register's statement note is not a signed note: {exc}") from None
    sig = _only_sig(sigs, register.name, register.key_hash)
    if sig is None:
        raise StatementInvalid("the statement note carries no signature by the register key")
    if not register.verify(text.encode(), sig.sig):
        raise StatementInvalid("the register's signature on the statement note does not verify")
    header, _, rest = text.partition("\n")
    try:
        commit = json.loads(rest)
    except (json.JSONDecodeError, RecursionError, ValueError):
        commit = None
    if header != NOTE_HEADER or type(commit) is not dict or type(commit.get("logs")) is not list:
        raise StatementInvalid(f"the register's statement note is not a {NOTE_HEADER} note")
    return commit, cosignature_timestamp(sig.sig)


def _compare_log(log: Mapping[str, Any], mine: Mapping[str, Any], signed: Any, where: str) -> None:
    """One log of the file against the statement note's: device key, checkpoint, the list of entries."""
    if type(signed) is not dict:
        raise StatementInvalid(f"{where}: the register's statement note does not list this log")
    if signed.get("device_vkey") != log["device_vkey"]:
        raise StatementInvalid(f"{where}: the register's signed statement does not name this device key")
    if signed.get("checkpoint") != mine["checkpoint"]:
        theirs = signed.get("checkpoint")
        size = theirs.get("size") if type(theirs) is dict else None
        raise StatementInvalid(
            f"{where}: the checkpoint (size {mine['checkpoint']['size']}) is not the one the register "
            f"signed the statement with (size {size})"
        )
    listed = signed.get("entries")
    want = [tuple(e) if type(e) is list and e else (e,) for e in (listed if type(listed) is list else [])]
    have = [tuple(e) for e in mine["entries"]]
    if want != have:
        missing = [e[0] for e in want if e not in have]
        extra = [e[0] for e in have if e not in want]
        raise StatementInvalid(
            f"{where}: the entries differ from the {len(want)} the register signed"
            + (f"; missing index {', '.join(map(str, missing[:5]))}" if missing else "")
            + (f"; not signed: index {', '.join(map(str, extra[:5]))}" if extra else "")
        )


# -- verifying -------------------------------------------------------------------------------------------


def _only_sig(sigs: Sequence[Signature], name: str, key_id: int) -> Signature | None:
    for sig in sigs:
        if sig.name == name and sig.key_hash == key_id:
            return sig
    return None


def _verify_log(
    log: Mapping[str, Any], where: str, register: CosignatureVerifier, child: str
) -> list[ProvenEntry]:
    """The checkpoint's two signatures, then each entry's bytes, index, child and inclusion proof."""
    origin = log["origin"]
    try:
        device = Ed25519Verifier.from_vkey(log["device_vkey"])
    except NoteError as exc:
        raise StatementInvalid(
            f"{where}: the device key is not an Ed25519 note verifier key: {exc}"
        ) from None
    try:
        text, sigs = parse_note(log["checkpoint"])
        cp = Checkpoint.parse(text)
    except LedgerError as exc:
        raise StatementInvalid(f"{where}: the checkpoint is not a signed checkpoint: {exc}") from None
    if cp.origin != origin:
        raise StatementInvalid(f"{where}: the checkpoint's origin {cp.origin!r} is not the log's {origin!r}")
    if device.name != cp.origin:
        raise StatementInvalid(
            f"{where}: the device key is named {device.name!r}, not the checkpoint origin {cp.origin!r}"
        )
    cosig = _only_sig(sigs, register.name, register.key_hash)
    if cosig is None:
        raise StatementInvalid(f"{where}: the checkpoint carries no cosignature by the register key")
    if not register.verify(text.encode(), cosig.sig):
        raise StatementInvalid(f"{where}: the register's cosignature on the checkpoint does not verify")
    signed = _only_sig(sigs, device.name, device.key_hash)
    if signed is None:
        raise StatementInvalid(
            f"{where}: the checkpoint carries no signature by the statement's device key "
            f"{device.name}+{device.key_hash:08x}"
        )
    if not device.verify(text.encode(), signed.sig):
        raise StatementInvalid(f"{where}: the device's signature on the checkpoint does not verify")
    proven: list[ProvenEntry] = []
    last = -1
    for i, item in enumerate(log["entries"]):
        at = f"{where} entry {i} (index {item['index']})"
        data = _b64(item["data"], f"{at} data")
        proof = [_b64(p, f"{at} proof hash {k}") for k, p in enumerate(item["proof"])]
        if item["index"] <= last:
            raise StatementInvalid(f"{at}: entries are not in increasing index order")
        last = item["index"]
        try:
            entry = decode_entry(data)
        except LedgerError as exc:
            raise StatementInvalid(f"{at}: the entry bytes do not decode: {exc}") from None
        if entry.index != item["index"]:
            raise StatementInvalid(f"{at}: the entry's own index is {entry.index}")
        if entry.child != child:
            raise StatementInvalid(f"{at}: the entry is about child {entry.child!r}, not {child!r}")
        try:
            verify_inclusion(leaf_hash(data), entry.index, cp.size, proof, cp.root)
        except LedgerError as exc:
            raise StatementInvalid(
                f"{at}: the inclusion proof against the checkpoint of size {cp.size} fails: {exc}"
            ) from None
        proven.append(ProvenEntry(origin, entry))
    return proven


def verify_statement(raw: bytes, register_vkey: str) -> VerifiedStatement:
    """Check a statement offline against the register's cosigner key (note vkey form, type 0x04).

    Raises :class:`StatementUnreadable` (exit 2) for a file that is not a statement and
    :class:`StatementInvalid` (exit 1) naming the first check that fails.
    """
    try:
        register = CosignatureVerifier.from_vkey(register_vkey.strip())
    except NoteError as exc:
        raise StatementUnreadable(f"the register key is not a cosignature/v1 verifier key: {exc}") from None
    doc = _parse(raw)
    if doc["register_vkey"] != register.vkey:
        raise StatementInvalid(
            f"the statement names the register key {doc['register_vkey']!r}, not the given {register.vkey!r}"
        )
    signed, signed_at = _open_statement_note(doc["signed"], register)
    for key in LABELS:
        if doc[key] != signed.get(key):
            raise StatementInvalid(
                f"the statement's {key} {doc[key]!r} is not the {signed.get(key)!r} the register signed"
            )
    origins = [log["origin"] for log in doc["logs"]]
    if len(set(origins)) != len(origins):
        raise StatementInvalid("the statement lists one log twice")
    signed_logs = {
        str(s.get("origin")): s for s in signed["logs"] if type(s) is dict and type(s.get("origin")) is str
    }
    if set(signed_logs) != set(origins) or len(signed_logs) != len(signed["logs"]):
        gone = sorted(set(signed_logs) - set(origins))
        raise StatementInvalid(
            "the statement's logs are not the ones the register signed"
            + (f" (missing {', '.join(gone)})" if gone else "")
        )
    entries: list[ProvenEntry] = []
    for n, log in enumerate(doc["logs"]):
        where = f"log {n} ({log['origin']})"
        entries += _verify_log(log, where, register, doc["child"])
        mine = _commitment({**{key: doc[key] for key in LABELS}, "logs": [log]})["logs"][0]
        _compare_log(log, mine, signed_logs[log["origin"]], where)
    return VerifiedStatement(
        doc["child"], doc["month"], doc["kindergarten"], doc["timezone"], tuple(entries), signed_at
    )


def month_bounds(month: str, tz: dt.tzinfo) -> tuple[int, int]:
    """UTC milliseconds ``[start, end)`` of the local calendar month ``YYYY-MM`` in ``tz``."""
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month {month!r} must be YYYY-MM")
    year, mon = int(month[:4]), int(month[5:])
    start = dt.datetime(year, mon, 1, tzinfo=tz)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
