"""The verified entries as events the табель and the audit read: decoded, re-anchored, corrections applied.

Only entries the register stored (verified at ingest) are read. Each event knows when the register
received it (the first stored checkpoint covering it) and which entries the register had cosigned before
(``cosigned_before``: the size of the previous checkpoint). Entries written with an unsynced clock get
their wall time from the nearest clock-synced entry of the same boot: ``time = mono + (t_s - mono_s)``.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from ledger.entry import decode_entry
from ledger.errors import EntryError
from register.store.base import Store


@dataclass(slots=True)
class Event:
    """One stored entry as the табель sees it (``time_ms`` is the re-anchored UTC time)."""

    device: int
    origin: str
    kindergarten: str
    index: int
    kind: str
    time_ms: int
    raw_ms: int
    synced: bool
    boot: bytes
    mono_ns: int
    child: str | None
    method: str | None
    evidence: dict[str, Any]
    reason: str | None
    ref: int | None
    received_ms: int | None
    cosigned_before: int
    anchored: bool = True
    voided_by: int | None = None

    @property
    def counts(self) -> bool:
        """An accepted check-in or check-out that no correction voided."""
        return self.kind in ("in", "out") and self.voided_by is None

    def local(self, zone: ZoneInfo) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC).astimezone(zone)


@dataclass
class Dataset:
    """Every device's events, in log order per device; undecodable rows are listed, not dropped silently."""

    events: dict[int, list[Event]] = field(default_factory=dict)
    undecodable: list[tuple[str, int, str]] = field(default_factory=list)

    def all(self) -> list[Event]:
        return [e for evs in self.events.values() for e in evs]

    def of(self, kindergarten: str) -> list[Event]:
        return [e for evs in self.events.values() for e in evs if e.kindergarten == kindergarten]


def _receipts(store: Store, device_id: int) -> tuple[list[int], list[int]]:
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT size, received_ms FROM checkpoints WHERE device_id = ? ORDER BY size", (device_id,)
        )
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows]


def _reanchor(events: list[Event]) -> None:
    """Unsynced entries take the offset (wall − monotonic) of the nearest synced entry of their boot."""
    by_boot: dict[bytes, list[Event]] = defaultdict(list)
    for e in events:
        by_boot[e.boot].append(e)
    for evs in by_boot.values():
        if all(e.synced for e in evs):
            continue
        anchors = [e for e in evs if e.synced]
        monos = [a.mono_ns for a in anchors]
        for e in evs:
            if e.synced:
                continue
            if not anchors:
                e.anchored = False
                continue
            i = bisect.bisect_left(monos, e.mono_ns)
            near = min(
                (anchors[j] for j in (i - 1, i) if 0 <= j < len(anchors)),
                key=lambda a: abs(a.mono_ns - e.mono_ns),
            )
            e.time_ms = near.raw_ms + (e.mono_ns - near.mono_ns) // 1_000_000


def load(store: Store) -> Dataset:
    """Decode every stored entry of every device (the audit needs other kindergartens for travel)."""
    data = Dataset()
    for device in store.devices():
        sizes, received = _receipts(store, device.id)
        events: list[Event] = []
        for idx, _leaf, raw in store.iter_entries(device.id):
            try:
                entry = decode_entry(bytes(raw))
            except (EntryError, TypeError) as exc:
                data.undecodable.append((device.origin, int(idx), str(exc)))
                continue
            k = bisect.bisect_right(sizes, int(idx))  # first checkpoint whose size covers idx
            events.append(
                Event(
                    device.id, device.origin, device.kindergarten, entry.index, entry.kind, entry.time_ms,
                    entry.time_ms, entry.clock_synced, entry.boot_id, entry.mono_ns, entry.child,
                    entry.method, dict(entry.evidence), entry.reason, entry.ref,
                    received[k] if k < len(sizes) else None, sizes[k - 1] if k > 0 else 0,
                )
            )  # fmt: skip
        _reanchor(events)
        by_index = {e.index: e for e in events}
        for e in events:
            if e.kind == "correction" and e.ref is not None and e.ref in by_index:
                target = by_index[e.ref]
                if target.voided_by is None:
                    target.voided_by = e.index
        data.events[device.id] = events
    return data
