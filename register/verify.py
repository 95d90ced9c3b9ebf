"""Re-verify every device log stored in a register database, naming the device and first bad entry.

The database is opened read-only (nothing written, nothing created beside a SQLite file) and must have
a schema this kgate knows. Each device's log is recomputed by :func:`ledger.replay.replay`, the same
algorithm ``kgate verify`` applies to a device ledger: entries decode canonically at their positions,
stored leaf hashes are the real ones, every interior Merkle hash equals the recomputed one, the entry
count equals the stored size, and every stored checkpoint carries a valid signature by the device key,
commits to the recomputed root at its size, and its cosigned copy extends it with a valid cosignature
by the register's key (recorded in the database, or given). The newest stored checkpoint covers
exactly the stored entries (none appended without the device's key), and no row of the log tables
(entries, hashes, checkpoints) belongs to no device: a ``device_id`` that is not an enrolled device's
(text, or a number no device has) is refused, as it would be invisible to every per-device check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.errors import BadKeyError, NoteError, VerificationError
from ledger.note import CosignatureVerifier, open_note
from ledger.replay import open_signed, replay
from register.errors import StoreError
from register.service import META_COSIGNER
from register.store import Device, Store, StoredCheckpoint, open_store

_CHUNK = 4096
#: How a stored value of the wrong type is named in a message (SQLite's names; anything else is NULL).
_KINDS = {"str": "text", "bytes": "a blob", "float": "a real number"}
#: The tables that hold the devices' logs, each row by ``device_id``.
_LOG_TABLES = ("entries", "hashes", "checkpoints")


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


class _Fail:
    """Errors that name the device and the entry."""

    def __init__(self, device: Device) -> None:
        self.device = device

    def __call__(self, index: int | None, message: str) -> VerificationError:
        where = f"entry {index}: " if index is not None else ""
        return VerificationError(f"device {self.device.origin}: {where}{message}", index)


class _StoredHashes:
    """The register's interior hashes (leaves live beside the entries), compared a page at a time."""

    def __init__(self, store: Store, device: Device, fail: _Fail) -> None:
        self._store = store
        self._device = device
        self._fail = fail
        self._pending: dict[int, list[tuple[int, bytes]]] = {}
        self._count = 0

    def expect(self, level: int, index: int, value: bytes) -> None:
        if level == 0:
            return  # the leaf was compared with the entry's stored leaf hash
        self._pending.setdefault(level, []).append((index, value))
        self._count += 1
        if self._count >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        for level, items in self._pending.items():
            stored = self._store.stored_hashes(self._device.id, level, items[0][0], items[-1][0] + 1)
            for index, value in items:
                if stored.get(index) != value:
                    raise self._fail(
                        index << level, f"stored tree hash ({level}, {index}) is missing or wrong"
                    )
        self._pending.clear()
        self._count = 0

    def finish(self, size: int) -> None:
        expected = size - size.bit_count()  # complete interior subtrees of a log of ``size`` leaves
        stored = self._store.count_hashes(self._device.id)
        if stored != expected:
            raise self._fail(None, f"the hashes table holds {stored - expected} rows beyond the stored log")


def verify_device(store: Store, device: Device, cosigner: CosignatureVerifier | None) -> DeviceReport:
    """Verify one device's stored log (streaming; memory independent of its size)."""
    fail = _Fail(device)
    try:
        verifier = device.verifier()
    except (NoteError, ValueError) as exc:
        raise fail(None, f"its enrolled key is unusable: {exc}") from None
    checkpoints = store.checkpoints(device.id)

    def judge(cp: StoredCheckpoint, size: int, root: bytes) -> None:
        what = f"checkpoint of size {cp.size}"
        try:
            parsed = open_signed(cp.note, [verifier], device.origin, what)
        except VerificationError as exc:
            raise fail(None, str(exc)) from None
        if parsed.size != cp.size or parsed.root != cp.root:
            raise fail(None, f"{what} does not match its stored size/root")
        if root != cp.root:
            raise fail(max(cp.size - 1, 0), f"tree of size {cp.size} does not match the signed checkpoint")
        if cosigner is None:
            return
        try:
            if type(cp.cosigned) is not str or not cp.cosigned.startswith(cp.note):
                raise NoteError("cosigned copy does not extend the device-signed checkpoint")
            opened = open_note(cp.cosigned, [cosigner])
            if not any(s.name == cosigner.name for s in opened.verified):
                raise NoteError("no cosignature by the register")
        except (NoteError, ValueError) as exc:
            raise fail(None, f"{what}: {exc}") from None

    size, _ = replay(
        ((index, data, leaf) for index, leaf, data in store.iter_entries(device.id)),
        _StoredHashes(store, device, fail),
        ((cp.size, cp) for cp in checkpoints),
        judge,
        fail,
        stored_leaves=True,
    )
    if size != device.size:
        raise fail(size, f"register says {device.size} entries are stored, found {size}")
    newest = checkpoints[-1].size if checkpoints else 0
    if newest < size:
        raise fail(newest, "is not covered by any signed checkpoint (appended without the device's key)")
    return DeviceReport(device.origin, size, len(checkpoints))


def _check_owners(store: Store, devices: list[Device]) -> None:
    """Every row of the log tables belongs to an enrolled device (read through each table's key)."""
    known = {d.id for d in devices}
    with store._tx(write=False) as sql:
        for table in _LOG_TABLES:
            for (owner,) in sql.all(f"SELECT DISTINCT device_id FROM {table}"):  # noqa: S608 - fixed names
                if type(owner) is not int or owner not in known:
                    what = str(owner) if type(owner) is int else _KINDS.get(type(owner).__name__, "NULL")
                    raise VerificationError(
                        f"{table} rows belong to no device (device_id {what}; damaged or added rows)"
                    )


def verify_register(path_or_url: str | Path, *, cosigner_vkey: str | None = None) -> RegisterReport:
    """Verify every device log in a register database; raise VerificationError naming device and entry.

    ``cosigner_vkey`` defaults to the key the register recorded when it started serving; StoreError
    (exit code 2) if the database cannot be read or is not a register database this kgate knows.
    """
    url = str(path_or_url)
    store = open_store(url, readonly=True)
    try:
        vkey = cosigner_vkey or store.get_meta(META_COSIGNER)
        try:
            cosigner = CosignatureVerifier.from_vkey(vkey) if vkey else None
        except BadKeyError as exc:
            raise VerificationError(f"register cosigner key: {exc}") from None
        devices = store.devices()
        _check_owners(store, devices)
        reports = tuple(verify_device(store, device, cosigner) for device in devices)
    except (TypeError, ValueError, KeyError) as exc:  # a damaged row the typed readers did not catch
        raise StoreError(f"{url} is a damaged register database ({type(exc).__name__}: {exc})") from None
    finally:
        store.close()
    return RegisterReport(vkey, reports)
