"""Re-verify every device log stored in a register database, naming the device and first bad entry.

For each device, one streaming pass: every entry decodes canonically with its index as position, its
stored leaf hash is its real leaf hash, every interior Merkle hash the tree produces equals the stored
one, the entry count equals the stored size, and every stored checkpoint carries a valid signature by
the device key, commits to the root recomputed at its size, and carries a valid cosignature by the
register's cosigner key (recorded in the database, or given).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.checkpoint import open_checkpoint
from ledger.entry import decode_entry
from ledger.errors import BadKeyError, EntryError, NoteError, VerificationError
from ledger.merkle import CompactRange, leaf_hash
from ledger.note import CosignatureVerifier, open_note
from register.errors import StoreError
from register.service import META_COSIGNER
from register.store import Device, Store, StoredCheckpoint, open_store, sqlite_path

_CHUNK = 4096


@dataclass(frozen=True)
class DeviceReport:
    origin: str
    size: int
    checkpoints: int


@dataclass(frozen=True)
class RegisterReport:
    """What a successful verification established, per device."""

    cosigner_vkey: str | None
    devices: tuple[DeviceReport, ...]

    @property
    def entries(self) -> int:
        return sum(d.size for d in self.devices)


def _bad(device: Device, index: int | None, message: str) -> VerificationError:
    where = f"entry {index}: " if index is not None else ""
    return VerificationError(f"device {device.origin}: {where}{message}", index)


def _check_checkpoint(
    device: Device, cp: StoredCheckpoint, root: bytes, cosigner: CosignatureVerifier | None
) -> None:
    verifier = device.verifier()
    try:
        parsed, _ = open_checkpoint(cp.note, [verifier])
        if cosigner is not None:
            if not cp.cosigned.startswith(cp.note):
                raise NoteError("cosigned copy does not extend the device-signed checkpoint")
            opened = open_note(cp.cosigned, [cosigner])
            if not any(s.name == cosigner.name for s in opened.verified):
                raise NoteError("no cosignature by the register")
    except (NoteError, ValueError) as exc:
        raise _bad(device, None, f"checkpoint of size {cp.size}: {exc}") from None
    if parsed.size != cp.size or parsed.root != cp.root or parsed.origin != device.origin:
        raise _bad(device, None, f"checkpoint of size {cp.size} does not match its stored size/root/origin")
    if root != cp.root:
        raise _bad(
            device, max(cp.size - 1, 0), f"tree of size {cp.size} does not match the signed checkpoint"
        )


def verify_device(store: Store, device: Device, cosigner: CosignatureVerifier | None) -> DeviceReport:
    """Verify one device's stored log (streaming; memory independent of its size)."""
    pending = {cp.size: cp for cp in store.checkpoints(device.id)}
    tree = CompactRange()
    expected = 0
    created: list[tuple[int, int, bytes, int]] = []  # (level, index, hash, first leaf)

    def flush() -> None:
        by_level: dict[int, list[tuple[int, bytes, int]]] = {}
        for level, i, h, first in created:
            by_level.setdefault(level, []).append((i, h, first))
        for level, items in by_level.items():
            stored = store.stored_hashes(device.id, level, items[0][0], items[-1][0] + 1)
            for i, h, first in items:
                if stored.get(i) != h:
                    raise _bad(device, first, f"stored tree hash ({level}, {i}) is missing or wrong")
        created.clear()

    if 0 in pending:
        _check_checkpoint(device, pending.pop(0), tree.root(), cosigner)
    for index, leaf, data in store.iter_entries(device.id):
        if index != expected:
            raise _bad(device, expected, f"missing (the next stored entry is {index})")
        try:
            entry = decode_entry(data)
        except EntryError as exc:
            raise _bad(device, index, str(exc)) from None
        if entry.index != index:
            raise _bad(device, index, f"carries index {entry.index}")
        actual = leaf_hash(data)
        if leaf != actual:
            raise _bad(device, index, "stored leaf hash does not match the entry bytes")
        for (level, i), h in tree.append(actual):
            if level > 0:
                created.append((level, i, h, i << level))
        expected += 1
        if len(created) >= _CHUNK:
            flush()
        if expected in pending:
            flush()
            _check_checkpoint(device, pending.pop(expected), tree.root(), cosigner)
    flush()
    if expected != device.size:
        raise _bad(device, expected, f"register says {device.size} entries are stored, found {expected}")
    if pending:
        raise _bad(device, None, f"checkpoints beyond the stored log: sizes {sorted(pending)[:5]}")
    if store.count_hashes(device.id) != max(expected - (expected).bit_count(), 0):
        raise _bad(device, None, "the hashes table holds extra rows")
    return DeviceReport(device.origin, expected, len(store.checkpoints(device.id)))


def verify_register(path_or_url: str | Path, *, cosigner_vkey: str | None = None) -> RegisterReport:
    """Verify every device log in a register database; raise VerificationError naming device and entry.

    ``cosigner_vkey`` defaults to the key the register recorded when it started serving; StoreError
    (exit code 2) if the database cannot be read.
    """
    url = str(path_or_url)
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreError(f"no register database at {path}")
    store = open_store(url, migrate=False)
    try:
        vkey = cosigner_vkey or store.get_meta(META_COSIGNER)
        try:
            cosigner = CosignatureVerifier.from_vkey(vkey) if vkey else None
        except BadKeyError as exc:
            raise VerificationError(f"register cosigner key: {exc}") from None
        reports = tuple(verify_device(store, device, cosigner) for device in store.devices())
    finally:
        store.close()
    return RegisterReport(vkey, reports)
