"""The parent page's "my child was not there that day": every entry of the child that local day is reported.

Each entry becomes the same ``parent_report`` alarm a message's report link raises
(:func:`register.notify.report.record_report`: the entry's exact bytes as evidence, one alarm per
entry), so the auditors see it and the табель holds the child-day until an auditor clears the flag.
The entries are the ones the parent's statement of that month holds (docs/statements.md).

The page asks for confirmation and an optional comment first. A report can be withdrawn by the parent
within :data:`~register.notify.report.WITHDRAW_WINDOW_MS` (24 h) of making it: the withdrawal is
recorded (``parent_report_notes.withdrawn_ms``; the alarm stays for the auditors) and the day is no
longer held.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ledger.entry import decode_entry
from register.errors import ConfigError
from register.notify.report import ALARM, WITHDRAW_WINDOW_MS, Event, record_report
from register.statement import month_entries
from register.store.base import Store


def report_day(
    store: Store, kindergarten: str, child: str, day: dt.date, *, now_ms: int, comment: str | None = None
) -> int:
    """Report each of ``child``'s entries on ``day``; returns how many were newly reported."""
    zone_name, entries = month_entries(store, child, f"{day:%Y-%m}", kindergarten_name=kindergarten)
    zone = ZoneInfo(zone_name)
    found = [
        (device, idx, data, entry)
        for device, idx, data in entries
        if dt.datetime.fromtimestamp((entry := decode_entry(data)).time_ms / 1000, zone).date() == day
    ]
    if not found:
        raise ConfigError(f"no entries of {child} on {day}: nothing to report")
    new = 0
    for device, idx, data, entry in found:
        event = Event(
            kindergarten, child, device.id, device.origin, idx, entry.kind, entry.time_ms, data, zone_name
        )
        new += record_report(store, event, now_ms=now_ms, comment=comment)
    return new


def _reports(
    store: Store, kindergarten: str, child: str, zone: ZoneInfo
) -> list[tuple[int, int, dt.date, int, bool]]:
    """``(device id, index, local day, reported ms, withdrawn)`` of each report of ``child``."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT a.device_id, a.idx, a.evidence, a.time_ms, r.withdrawn_ms FROM alarms a "
            "JOIN devices d ON d.id = a.device_id "
            "LEFT JOIN parent_report_notes r ON r.device_id = a.device_id AND r.idx = a.idx "
            "WHERE a.kind = ? AND d.kindergarten = ? ORDER BY a.id",
            (ALARM, kindergarten),
        )
    out = []
    for device_id, idx, evidence, reported_ms, withdrawn in rows:
        entry = decode_entry(bytes(evidence))
        if entry.child == child:
            day = dt.datetime.fromtimestamp(entry.time_ms / 1000, zone).date()
            out.append((int(device_id), int(idx), day, int(reported_ms), withdrawn is not None))
    return out


def withdrawable_days(store: Store, kindergarten: str, child: str, zone: str, *, now_ms: int) -> set[str]:
    """The local days (ISO) of ``child`` with a report the parent may still withdraw."""
    return {
        day.isoformat()
        for _d, _i, day, at, withdrawn in _reports(store, kindergarten, child, ZoneInfo(zone))
        if not withdrawn and now_ms - at <= WITHDRAW_WINDOW_MS
    }


def withdraw_day(store: Store, kindergarten: str, child: str, day: dt.date, zone: str, *, now_ms: int) -> int:
    """Withdraw ``child``'s reports of ``day`` made within the window; how many (ConfigError if none)."""
    mine = [
        (device_id, idx)
        for device_id, idx, d, at, withdrawn in _reports(store, kindergarten, child, ZoneInfo(zone))
        if d == day and not withdrawn and now_ms - at <= WITHDRAW_WINDOW_MS
    ]
    if not mine:
        raise ConfigError(f"no report of {day} to withdraw: a report can be withdrawn within 24 hours")
    with store._tx(write=True) as sql:
        for device_id, idx in mine:
            sql.run(
                "INSERT INTO parent_report_notes (device_id, idx, withdrawn_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (device_id, idx) DO UPDATE SET withdrawn_ms = excluded.withdrawn_ms "
                "WHERE parent_report_notes.withdrawn_ms IS NULL",
                (device_id, idx, now_ms),
            )
    return len(mine)
