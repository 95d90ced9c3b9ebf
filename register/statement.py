"""Build a parent statement (docs/statements.md) from the register's stored, cosigned logs.

The child's kindergarten comes from its roster; every device that kindergarten ever had is searched
(a replaced gate's entries still count). Each entry of the child whose wall time falls in the local
month is taken with its exact stored bytes and an inclusion proof against the device's newest cosigned
checkpoint. The register then signs the statement note (what the statement says: kindergarten, month,
zone, child, each log's device key, checkpoint and entries) with its cosigner key, so building one needs
the register's key, not only its database. The statement is verified with the same offline verifier a
parent runs before it is written.
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
from ledger.note import CosignatureSigner
from ledger.statement import (
    FORMAT,
    VERSION,
    VerifiedStatement,
    encode_statement,
    month_bounds,
    sign_statement,
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


def _found(store: Store, device: Device, child: str, lo: int, hi: int) -> tuple[Any, list[tuple[int, bytes]]]:
    """The device's newest cosigned checkpoint and the child's ``(index, bytes)`` in ``[lo, hi)`` ms under
    it (none without a checkpoint)."""
    cp = store.newest_checkpoint(device.id)
    if cp is None:
        return None, []
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
    return cp, found


def _log_section(store: Store, device: Device, child: str, lo: int, hi: int) -> dict[str, Any] | None:
    """The child's entries in ``[lo, hi)`` ms of one device with their proofs, or None if it has none."""
    cp, found = _found(store, device, child, lo, hi)
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


def _month(
    store: Store, child: str, month: str, kindergarten_name: str | None
) -> tuple[str, str, str, int, int]:
    """``(kindergarten, name, zone, start ms, end ms)`` of ``child``'s local ``month``."""
    home, name = child_home(store, child, kindergarten_name)
    place = get_settings(store, home)  # the табель's zone: a statement's month is the табель's month
    try:
        lo, hi = month_bounds(month, place.zone)
    except ValueError as exc:
        raise ConfigError(f"--month: {exc}") from None
    return home, name, place.tz, lo, hi


def month_entries(
    store: Store, child: str, month: str, *, kindergarten_name: str | None = None
) -> tuple[str, list[tuple[Device, int, bytes]]]:
    """The zone and the stored ``(device, index, bytes)`` a statement of that month would hold (the
    console's "not there that day" reports them, register/console/report.py): no key needed."""
    home, _name, zone, lo, hi = _month(store, child, month, kindergarten_name)
    out = []
    for device in store.devices():
        if device.kindergarten == home:
            out += [(device, idx, data) for idx, data in _found(store, device, child, lo, hi)[1]]
    return zone, out


def build_statement(
    store: Store,
    child: str,
    month: str,
    *,
    signer: CosignatureSigner | None,
    kindergarten_name: str | None = None,
) -> Statement:
    """The statement of ``child``'s ``month`` (YYYY-MM, local to its kindergarten), signed by ``signer``
    (the register's cosigner key) and verified before return against that key.

    ``signer`` None (a console without the register's key) is refused with one line.
    """
    if signer is None:
        raise ConfigError("signing a statement needs the register's cosigner key (--state DIR)")
    register_vkey = signer.vkey
    recorded = store.get_meta(META_COSIGNER)
    if recorded is not None and recorded != register_vkey:
        raise ConfigError(
            f"the key {register_vkey} is not the cosigner this database records ({recorded}): wrong --state?"
        )
    home, name, zone, lo, hi = _month(store, child, month, kindergarten_name)
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
        "timezone": zone,
        "register_vkey": register_vkey,
        "logs": logs,
    }
    try:
        data = encode_statement(sign_statement(doc, signer))
        verified = verify_statement(data, register_vkey)
    except LedgerError as exc:  # the stored log or its cosignature is not what the register believes
        raise StoreError(f"the statement built from this database does not verify: {exc}") from None
    return Statement(data, verified, name, register_vkey)


def load_cosigner(state_dir: Path) -> CosignatureSigner:
    """The register's cosigner key from its key directory (``kgate register serve --state``), which signs
    statements; never generated here."""
    from ledger.errors import BadKeyError  # noqa: PLC0415
    from ledger.keys import read_secret  # noqa: PLC0415
    from register.keys import COSIGNER_FILE  # noqa: PLC0415

    path = state_dir / COSIGNER_FILE
    if not (path.exists() or path.is_symlink()):
        raise ConfigError(f"no register cosigner key {path}: --state must be the register's key directory")
    try:
        return CosignatureSigner.from_skey(read_secret(path, "register key"))
    except BadKeyError as exc:
        raise ConfigError(f"register key {path}: {exc}") from None


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
