"""A parent's "my child was not there that day": an alarm for the auditors with the day's entries attached.

The evidence is JSON with each of the child's entries that local day as exact bytes, its inclusion
proof and the cosigned checkpoint it is proved against: the same material as the parent's statement
(docs/statements.md), so an auditor can check it offline.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Final
from zoneinfo import ZoneInfo

from register.errors import ConfigError
from register.statement import build_statement
from register.store.base import Store

ALARM: Final = "parent_disputed"


def report_day(store: Store, kindergarten: str, child: str, day: dt.date, *, now_ms: int) -> int:
    """Record the parent's dispute of ``day``; returns the alarm's id. Refused for a day without entries."""
    statement = build_statement(store, child, f"{day:%Y-%m}", kindergarten_name=kindergarten)
    zone = ZoneInfo(statement.verified.timezone)
    doc = json.loads(statement.data)
    wanted = {
        (p.origin, p.entry.index)
        for p in statement.verified.entries
        if dt.datetime.fromtimestamp(p.entry.time_ms / 1000, zone).date() == day
    }
    if not wanted:
        raise ConfigError(f"no entries of {child} on {day}: nothing to dispute")
    logs = []
    for log in doc["logs"]:
        entries = [e for e in log["entries"] if (log["origin"], e["index"]) in wanted]
        if entries:
            logs.append({**log, "entries": entries})
    evidence = {
        "kindergarten": kindergarten,
        "child": child,
        "date": day.isoformat(),
        "register_vkey": doc["register_vkey"],
        "logs": logs,
    }
    first = logs[0]
    device = store.device_by_origin(first["origin"])
    detail = (
        f"parent of {child} ({kindergarten}) reports the child was not there on {day}: {len(wanted)} entries"
    )
    return store.add_alarm(
        None if device is None else device.id,
        ALARM,
        detail,
        index=first["entries"][0]["index"],
        evidence=json.dumps(evidence, sort_keys=True).encode(),
        now_ms=now_ms,
    )
