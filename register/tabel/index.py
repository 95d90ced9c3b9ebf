"""``entry_index``: each stored entry's decoded fields (kind, child, time, method, ref), by device and time.

Written by :meth:`register.service.Register.ingest` in the same transaction as the entries, so a
month's табель finds that month's entries without decoding every device's whole log. A database stored
before the index existed is indexed on first use (:func:`ensure`). ``time_ms`` is the entry's own wall
time, before re-anchoring: windows built on it are widened (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ledger.entry import Entry, decode_entry
from ledger.errors import EntryError
from register.store.base import Device, Sql, Store

_INSERT = (
    "INSERT INTO entry_index (device_id, idx, kind, child, time_ms, method, ref) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
Row = tuple[int, int, str, str | None, int, str | None, int | None]


def rows(device_id: int, entries: Iterable[Entry]) -> list[Row]:
    return [(device_id, e.index, e.kind, e.child, e.time_ms, e.method, e.ref) for e in entries]


def write(sql: Sql, device_id: int, entries: Iterable[Entry]) -> None:
    """Index ``entries`` (inside the caller's transaction: the ingest's)."""
    sql.many(_INSERT, rows(device_id, entries))


#: Set in ``meta`` once every stored entry is indexed; from then on ingest keeps the index complete
#: (it writes the index in the same transaction as the entries), so no табель has to look again.
COMPLETE = "entry_index.complete"


def ensure(store: Store, devices: Sequence[Device]) -> None:
    """Index the devices' stored entries the index lacks (a database from before the index; idempotent).

    Runs once per database: after a pass that leaves every device indexed, the ``meta`` row
    :data:`COMPLETE` says so and later calls return at once (a register of 10,000 devices would
    otherwise pay a round trip per device for every табель). A read-only store only checks.
    """
    if store.get_meta(COMPLETE) == "1":
        return
    with store._tx(write=False) as sql:
        newest = {
            int(device_id): int(idx)
            for device_id, idx in sql.all("SELECT device_id, max(idx) FROM entry_index GROUP BY device_id")
        }
    for device in devices:
        after = newest.get(device.id, -1)
        if after + 1 < device.size:
            _backfill(store, device, after)
    if not getattr(store, "readonly", False):
        store.set_meta(COMPLETE, "1")


def _backfill(store: Store, device: Device, after: int) -> None:
    batch: list[Row] = []
    for idx, _leaf, data in store.iter_entries(device.id):
        if int(idx) <= after:
            continue
        try:
            entry = decode_entry(bytes(data))
        except (EntryError, TypeError):
            batch.append((device.id, int(idx), "undecodable", None, 0, None, None))
            continue
        batch.extend(rows(device.id, [entry]))
    with store._tx(write=True) as sql:
        store._lock_device(sql, device.id)
        have = sql.one("SELECT max(idx) FROM entry_index WHERE device_id = ?", (device.id,))
        if have is None or have[0] is None or int(have[0]) == after:  # nobody indexed meanwhile
            sql.many(_INSERT, batch)


def span(store: Store, device_id: int, lo_ms: int, hi_ms: int) -> tuple[int, int] | None:
    """The first and last index of the device's entries dated in ``[lo_ms, hi_ms)``."""
    with store._tx(write=False) as sql:
        row = sql.one(
            "SELECT min(idx), max(idx) FROM entry_index WHERE device_id = ? AND time_ms >= ? AND time_ms < ?",
            (device_id, lo_ms, hi_ms),
        )
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


def entries(store: Store, device_id: int, lo: int, hi: int) -> list[tuple[int, bytes]]:
    """Stored entries ``lo..hi`` (inclusive) as (index, bytes)."""
    with store._tx(write=False) as sql:
        found = sql.all(
            "SELECT idx, data FROM entries WHERE device_id = ? AND idx >= ? AND idx <= ? ORDER BY idx",
            (device_id, lo, hi),
        )
    return [(int(i), bytes(d)) for i, d in found]


def some_entries(store: Store, device_id: int, indices: Sequence[int]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for chunk in range(0, len(indices), 500):
        part = list(indices[chunk : chunk + 500])
        marks = ",".join("?" * len(part))
        with store._tx(write=False) as sql:
            found = sql.all(
                f"SELECT idx, data FROM entries WHERE device_id = ? AND idx IN ({marks})",  # noqa: S608
                (device_id, *part),
            )
        out.extend((int(i), bytes(d)) for i, d in found)
    return sorted(out)


def checkins_elsewhere(
    store: Store, children: Sequence[str], exclude: set[int], lo_ms: int, hi_ms: int
) -> dict[int, list[int]]:
    """``in`` entries of ``children`` dated in ``[lo_ms, hi_ms)`` on devices not in ``exclude``."""
    out: dict[int, list[int]] = {}
    for chunk in range(0, len(children), 500):
        part = list(children[chunk : chunk + 500])
        marks = ",".join("?" * len(part))
        with store._tx(write=False) as sql:
            found = sql.all(
                f"SELECT device_id, idx FROM entry_index WHERE child IN ({marks}) "  # noqa: S608
                "AND time_ms >= ? AND time_ms < ? AND kind = 'in'",
                (*part, lo_ms, hi_ms),
            )
        for device_id, idx in found:
            if int(device_id) not in exclude:
                out.setdefault(int(device_id), []).append(int(idx))
    return out


def voiding(store: Store, device_id: int, refs: Sequence[int]) -> dict[int, int]:
    """Corrections of the device naming one of ``refs``: ref → the first correction's index."""
    out: dict[int, int] = {}
    for chunk in range(0, len(refs), 500):
        part = list(refs[chunk : chunk + 500])
        marks = ",".join("?" * len(part))
        with store._tx(write=False) as sql:
            found: list[Any] = sql.all(
                f"SELECT ref, idx FROM entry_index WHERE device_id = ? AND kind = 'correction' "  # noqa: S608
                f"AND ref IN ({marks}) ORDER BY idx",
                (device_id, *part),
            )
        for ref, idx in found:
            out.setdefault(int(ref), int(idx))
    return out
