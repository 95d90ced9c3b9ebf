"""The alarm at ingest when entries arrive for a month whose табель is already approved.

An approved табель is frozen (:mod:`register.tabel.approval`); an ``in``, ``out`` or ``correction``
dated in that month (a correction also by the date of the entry it voids) that arrives afterwards
cannot change it silently: :meth:`register.service.Register.ingest` calls :func:`check` right after
storing the batch, and an alarm ``late_entry_in_approved_month`` names the device, the month and the
entry indices (evidence: JSON). Whether the табель really changes shows when it is next produced
(``tabel_changed``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from ledger.entry import Entry
from register.store.base import Device, Store
from register.tabel.calendar import get_settings

ALARM = "late_entry_in_approved_month"
KINDS = frozenset({"in", "out", "correction"})


def approved_months(store: Store, kindergarten: str) -> set[str]:
    """The months approved and not reopened since (the newest of those two steps is an approval)."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT month, step FROM tabel_approvals WHERE kindergarten = ? "
            "AND step IN ('approved', 'reopened') ORDER BY id",
            (kindergarten,),
        )
    last = {str(m): str(s) for m, s in rows}
    return {m for m, s in last.items() if s == "approved"}


def _ref_times(store: Store, device: Device, refs: Sequence[int]) -> dict[int, int]:
    if not refs:
        return {}
    marks = ",".join("?" * len(refs))
    with store._tx(write=False) as sql:
        rows = sql.all(
            f"SELECT idx, time_ms FROM entry_index WHERE device_id = ? AND idx IN ({marks})",  # noqa: S608
            (device.id, *refs),
        )
    return {int(i): int(t) for i, t in rows}


def check(store: Store, device: Device, entries: Sequence[Entry], *, now_ms: int) -> list[int]:
    """Raise one alarm per approved month that new ``entries`` touch; returns the alarm ids."""
    relevant = [e for e in entries if e.kind in KINDS]
    if not relevant:
        return []
    months = approved_months(store, device.kindergarten)
    if not months:
        return []
    zone = get_settings(store, device.kindergarten).zone
    refs = _ref_times(store, device, sorted({e.ref for e in relevant if e.ref is not None})[:500])

    def month(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(zone).strftime("%Y-%m")

    late: dict[str, list[int]] = {}
    for e in relevant:
        touched = {month(e.time_ms)}
        if e.ref is not None and e.ref in refs:
            touched.add(month(refs[e.ref]))
        for m in sorted(touched & months):
            late.setdefault(m, []).append(e.index)
    alarms = []
    for m, indices in sorted(late.items()):
        detail = (
            f"device {device.origin}: {len(indices)} entries for the approved табель of "
            f"{device.kindergarten} {m} arrived after approval (first index {indices[0]})"
        )
        evidence = json.dumps(
            {"kindergarten": device.kindergarten, "month": m, "device": device.origin, "entries": indices},
            ensure_ascii=False,
            sort_keys=True,
        ).encode()
        alarms.append(
            store.add_alarm(device.id, ALARM, detail, index=indices[0], evidence=evidence, now_ms=now_ms)
        )
    return alarms
