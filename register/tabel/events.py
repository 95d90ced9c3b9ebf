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

import cbor2

from ledger.entry import _KEY_TO_ATTR, PREFIX, Entry, decode_entry
from ledger.errors import EntryError
from register.store.base import Device, Store
from register.tabel import index

DAY_MS = 86_400_000
LOOKBACK_MS = 7 * DAY_MS  # entries before the month read for the clock rules' state


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
    _local: tuple[ZoneInfo, int, dt.datetime] | None = None  # the last local() result (it is asked often)

    @property
    def counts(self) -> bool:
        """An accepted check-in or check-out that no correction voided."""
        return self.kind in ("in", "out") and self.voided_by is None

    def local(self, zone: ZoneInfo) -> dt.datetime:
        cached = self._local
        if cached is not None and cached[0] is zone and cached[1] == self.time_ms:
            return cached[2]
        when = dt.datetime.fromtimestamp(self.time_ms / 1000, dt.UTC).astimezone(zone)
        self._local = (zone, self.time_ms, when)
        return when


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


def _event(device: Device, entry: Entry, sizes: list[int], received: list[int]) -> Event:
    k = bisect.bisect_right(sizes, entry.index)  # first checkpoint whose size covers the entry
    return Event(
        device.id, device.origin, device.kindergarten, entry.index, entry.kind, entry.time_ms,
        entry.time_ms, entry.clock_synced, entry.boot_id, entry.mono_ns, entry.child,
        entry.method, dict(entry.evidence), entry.reason, entry.ref,
        received[k] if k < len(sizes) else None, sizes[k - 1] if k > 0 else 0,
    )  # fmt: skip


def _stored_entry(blob: bytes) -> Entry:
    """Parse an entry the register stored: ingest checked it is canonical, so the re-encoding check of
    :func:`decode_entry` is skipped (half the cost); the fields are still validated, anything odd gets
    the full check and its message."""
    try:
        obj = cbor2.loads(blob[len(PREFIX) :]) if blob.startswith(PREFIX) else None
        if type(obj) is dict and all(type(k) is str and k in _KEY_TO_ATTR for k in obj):
            return Entry(**{_KEY_TO_ATTR[k]: v for k, v in obj.items()})
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, EntryError):
        pass
    return decode_entry(blob)


def _decode(
    data: Dataset, device: Device, raw: list[tuple[int, bytes]], sizes: list[int], received: list[int]
) -> list[Event]:
    events: list[Event] = []
    for idx, blob in raw:
        try:
            entry = _stored_entry(blob)
        except (EntryError, TypeError) as exc:
            data.undecodable.append((device.origin, idx, str(exc)))
            continue
        events.append(_event(device, entry, sizes, received))
    return events


def _window(
    store: Store, device: Device, lo_ms: int, hi_ms: int, receipts: tuple[list[int], list[int]]
) -> tuple[int, int] | None:
    """The log positions the month needs: entries dated in it (± a day) or received in it, and before
    them the week's entries that set the clock rules' state (the newest date, each boot's last entry)."""
    found = index.span(store, device.id, lo_ms - DAY_MS, hi_ms + DAY_MS)
    first, last = found if found else (None, None)
    sizes, received = receipts
    for k, (size, at) in enumerate(zip(sizes, received, strict=True)):
        if lo_ms <= at < hi_ms and size > (sizes[k - 1] if k else 0):
            lo_i, hi_i = sizes[k - 1] if k else 0, size - 1
            first = lo_i if first is None else min(first, lo_i)
            last = hi_i if last is None else max(last, hi_i)
    if first is None or last is None:
        return None
    before = index.span(store, device.id, lo_ms - DAY_MS - LOOKBACK_MS, lo_ms - DAY_MS)
    return (min(first, before[0]) if before else first), last


def load_month(store: Store, kindergarten: str, lo_ms: int, hi_ms: int, travel_ms: int) -> Dataset:
    """The kindergarten's events the month ``[lo_ms, hi_ms)`` needs, and other kindergartens' check-ins of
    its children within ``travel_ms`` of the month (for ``two_places``); read through ``entry_index``."""
    data = Dataset()
    devices = store.devices()
    mine = [d for d in devices if d.kindergarten == kindergarten]
    index.ensure(store, devices)
    children: set[str] = set()
    for device in mine:
        sizes, received = _receipts(store, device.id)
        window = _window(store, device, lo_ms, hi_ms, (sizes, received))
        if window is None:
            continue
        events = _decode(data, device, index.entries(store, device.id, *window), sizes, received)
        refs = sorted({e.ref for e in events if e.ref is not None and e.ref < window[0]})
        if refs:  # corrections naming entries before the window: their targets, for evidence
            targets = index.some_entries(store, device.id, refs)
            events = _decode(data, device, targets, sizes, received) + events
        _reanchor(events)
        _void(events)
        data.events[device.id] = events
        children.update(e.child for e in events if e.kind == "in" and e.child is not None)
    by_id = {d.id: d for d in devices}
    elsewhere = index.checkins_elsewhere(
        store, sorted(children), {d.id for d in mine}, lo_ms - DAY_MS - travel_ms, hi_ms + DAY_MS + travel_ms
    )
    for device_id, indices in sorted(elsewhere.items()):
        device = by_id[device_id]
        sizes, received = _receipts(store, device_id)
        events = _decode(data, device, index.some_entries(store, device_id, indices), sizes, received)
        voided = index.voiding(store, device_id, indices)
        for e in events:
            e.voided_by = voided.get(e.index)
        data.events[device_id] = events
    return data


def _void(events: list[Event]) -> None:
    """A correction voids the entry its ``ref`` names (the first correction naming it counts)."""
    by_index = {e.index: e for e in events}
    for e in events:
        if e.kind == "correction" and e.ref is not None and e.ref in by_index:
            target = by_index[e.ref]
            if target.voided_by is None:
                target.voided_by = e.index
