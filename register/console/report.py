"""The parent page's "my child was not there that day": every entry of the child that local day is reported.

Each entry becomes the same ``parent_report`` alarm a message's report link raises
(:func:`register.notify.report.record_report`: the entry's exact bytes as evidence, one alarm per
entry), so the auditors see it and the табель holds the child-day until an auditor clears the flag.
The entries are the ones of the parent's verified statement (docs/statements.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

from register.errors import ConfigError
from register.notify.report import Event, record_report
from register.statement import build_statement
from register.store.base import Store


def report_day(store: Store, kindergarten: str, child: str, day: dt.date, *, now_ms: int) -> int:
    """Report each of ``child``'s entries on ``day``; returns how many were newly reported."""
    statement = build_statement(store, child, f"{day:%Y-%m}", kindergarten_name=kindergarten)
    zone = ZoneInfo(statement.verified.timezone)
    devices = {d.origin: d.id for d in store.devices()}
    found = [
        p
        for p in statement.verified.entries
        if dt.datetime.fromtimestamp(p.entry.time_ms / 1000, zone).date() == day
    ]
    if not found:
        raise ConfigError(f"no entries of {child} on {day}: nothing to report")
    data = {
        (log["origin"], e["index"]): base64.b64decode(e["data"])
        for log in json.loads(statement.data)["logs"]
        for e in log["entries"]
    }
    new = 0
    for p in found:
        event = Event(
            kindergarten, child, devices[p.origin], p.origin, p.entry.index, p.entry.kind, p.entry.time_ms,
            data[(p.origin, p.entry.index)], statement.verified.timezone,
        )  # fmt: skip
        new += record_report(store, event, now_ms=now_ms)
    return new
