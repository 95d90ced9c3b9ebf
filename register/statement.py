"""Build a parent statement (docs/statements.md) from the register's stored, cosigned logs.

The child's kindergarten comes from its roster; every device that kindergarten ever had is searched
(a replaced gate's entries still count). Each entry of the child whose wall time falls in the local
month is taken with its exact stored bytes and an inclusion proof against the device's newest cosigned
checkpoint. The statement is verified with the same offline verifier a parent runs before it is written.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.entry import decode_entry
from ledger.errors import LedgerError
from ledger.merkle import inclusion_proof
from ledger.statement import (
    FORMAT,
    VERSION,
    VerifiedStatement,
    encode_statement,
    month_bounds,
    verify_statement,
)
from register.errors import ConfigError, StoreError, UnknownPerson
from register.service import META_COSIGNER
from register.store.base import Device, Store
from register.tabel.calendar import get_settings


@dataclass(frozen=True)
class Statement:
    """The statement file's bytes, what they prove, and the child's name for the printed page."""

    data: bytes
    verified: VerifiedStatement
    name: str
    verified_with: str  # the register's cosigner vkey

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class _Reader:
    """One device's stored tree as a :class:`ledger.merkle.HashReader` (read transactions)."""

    def __init__(self, store: Store, device: Device) -> None:
        self._store = store
        self._device = device

    def read_hashes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes]:
        return self._store.device_hashes(self._device, addresses)


def child_home(store: Store, child: str, kindergarten_name: str | None) -> tuple[str, str]:
    """``(kindergarten, name)`` of ``child`` from the rosters; ambiguity needs ``kindergarten_name``."""
    with store._tx(write=False) as sql:
        rows = sql.all("SELECT kindergarten, name FROM roster_children WHERE id = ?", (child,))
    if kindergarten_name is not None:
        rows = [r for r in rows if r[0] == kindergarten_name]
    if not rows:
        where = f" of {kindergarten_name}" if kindergarten_name else ""
        raise UnknownPerson(f"no child {child!r} in the roster{where}")
    if len(rows) > 1:
        raise ConfigError(f"child {child!r} is on several rosters: give --kindergarten")
    return str(rows[0][0]), str(rows[0][1])


def _log_section(store: Store, device: Device, child: str, lo: int, hi: int) -> dict[str, Any] | None:
    """The child's entries in ``[lo, hi)`` ms of one device with their proofs, or None if it has none."""
    cp = store.newest_checkpoint(device.id)
    if cp is None:
        return None
    found: list[tuple[int, bytes]] = []
    for idx, _leaf, data in store.iter_entries(device.id):
        if int(idx) >= cp.size:
            break
        try:
            entry = decode_entry(bytes(data))
        except LedgerError:
            raise StoreError(f"device {device.origin}: stored entry {idx} does not decode") from None
        if entry.child == child and lo <= entry.time_ms < hi:
            found.append((int(idx), bytes(data)))
    if not found:
        return None
    reader = _Reader(store, device)
    try:
        items = [
            {
                "index": idx,
                "data": base64.b64encode(data).decode(),
                "proof": [base64.b64encode(h).decode() for h in inclusion_proof(idx, cp.size, reader)],
            }
            for idx, data in found
        ]
    except KeyError as exc:
        raise StoreError(f"cannot prove an entry: {exc.args[0]}") from None
    return {"origin": device.origin, "device_vkey": device.vkey, "checkpoint": cp.cosigned, "entries": items}


def build_statement(
    store: Store,
    child: str,
    month: str,
    *,
    kindergarten_name: str | None = None,
    register_vkey: str | None = None,
) -> Statement:
    """The statement of ``child``'s ``month`` (YYYY-MM, local to its kindergarten), verified before return.

    ``register_vkey`` is the cosigner key to prove against: by default the one the register recorded.
    """
    register_vkey = register_vkey or store.get_meta(META_COSIGNER)
    if register_vkey is None:
        raise StoreError("the register has never cosigned a checkpoint on this database (no cosigner key)")
    home, name = child_home(store, child, kindergarten_name)
    place = get_settings(store, home)  # the табель's zone: a statement's month is the табель's month
    try:
        lo, hi = month_bounds(month, place.zone)
    except ValueError as exc:
        raise ConfigError(f"--month: {exc}") from None
    logs = [
        section
        for device in store.devices()
        if device.kindergarten == home and (section := _log_section(store, device, child, lo, hi)) is not None
    ]
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "child": child,
        "month": month,
        "kindergarten": home,
        "timezone": place.tz,
        "register_vkey": register_vkey,
        "logs": logs,
    }
    data = encode_statement(doc)
    try:
        verified = verify_statement(data, register_vkey)
    except LedgerError as exc:  # the stored log or its cosignature is not what the register believes
        raise StoreError(f"the statement built from this database does not verify: {exc}") from None
    return Statement(data, verified, name, register_vkey)


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_statement(statement: Statement, out: Path) -> tuple[Path, Path]:
    """Write ``out/statement.json``, ``statement.pdf`` (showing the JSON's SHA-256), ``register.vkey``."""
    from register.statement_pdf import render_statement  # noqa: PLC0415 - fpdf2 only when printing

    pdf = render_statement(statement)
    out.mkdir(parents=True, exist_ok=True)
    json_path, pdf_path = out / "statement.json", out / "statement.pdf"
    _write(json_path, statement.data)
    _write(pdf_path, pdf)
    _write(out / "register.vkey", statement.verified_with.encode() + b"\n")
    return json_path, pdf_path
