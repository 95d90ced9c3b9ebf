"""Parent statements (docs/statements.md): one child's month of entries, provable offline.

A statement is one JSON document (format ``kgate-statement``, version 1) holding, per device log, the
exact bytes of the child's entries, an RFC 9162 inclusion proof for each, the device-signed checkpoint
they are proved against with the register's cosignature, and the device's verifier key. Anyone holding
the file and the register's published cosigner key checks it with :func:`verify_statement`, which needs
nothing but this ledger layer: the register's cosignature fixes the checkpoint (origin, size, root), the
device's signature on that same checkpoint names the device key (whose name must be the origin), and
every entry is bound to the root by its proof.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ledger.checkpoint import Checkpoint
from ledger.entry import Entry, decode_entry
from ledger.errors import LedgerError, NoteError
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.note import CosignatureVerifier, Ed25519Verifier, Signature, parse_note

FORMAT: Final = "kgate-statement"
VERSION: Final = 1
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
        raise StatementUnreadable(f"statement version {doc.get('version')!r} is not {VERSION}")
    for key in ("child", "month", "kindergarten", "timezone", "register_vkey"):
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
    origins = [log["origin"] for log in doc["logs"]]
    if len(set(origins)) != len(origins):
        raise StatementInvalid("the statement lists one log twice")
    entries: list[ProvenEntry] = []
    for n, log in enumerate(doc["logs"]):
        entries += _verify_log(log, f"log {n} ({log['origin']})", register, doc["child"])
    return VerifiedStatement(doc["child"], doc["month"], doc["kindergarten"], doc["timezone"], tuple(entries))


def month_bounds(month: str, tz: dt.tzinfo) -> tuple[int, int]:
    """UTC milliseconds ``[start, end)`` of the local calendar month ``YYYY-MM`` in ``tz``."""
    if not _MONTH.fullmatch(month):
        raise ValueError(f"month {month!r} must be YYYY-MM")
    year, mon = int(month[:4]), int(month[5:])
    start = dt.datetime(year, mon, 1, tzinfo=tz)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
