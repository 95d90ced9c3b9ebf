"""The parent page's "my child was not there that day": every entry of the child that local day is reported.

Each entry becomes the same ``parent_report`` alarm a message's report link raises
(:func:`register.notify.report.record_report`: the entry's exact bytes as evidence, one alarm per
entry), so the auditors see it and the табель holds the child-day until an auditor clears the flag.
The entries are the ones the parent's statement of that month holds (docs/statements.md).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ledger.entry import decode_entry
from register.errors import ConfigError
from register.notify.report import Event, record_report
from register.statement import month_entries
from register.store.base import Store


def report_day(store: Store, kindergarten: str, child: str, day: dt.date, *, now_ms: int) -> int:
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
        new += record_report(store, event, now_ms=now_ms)
    return new
