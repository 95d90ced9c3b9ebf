""" "My child was not there": a parent reports one notified event; auditors see an alarm, the day is held.

Each message links to ``{parent-url}/parent/report?e=KEY`` (the outbox row's key). The parent confirms
with the child's access code (register/parent_codes.py, throttled per address); a code that does not open
that event's child is refused like a wrong code. A report is an alarm (kind ``parent_report``) with the
entry's exact bytes as evidence, one per event however often it is reported; the табель turns each into
a holding flag ``parent_report:ORIGIN:INDEX`` on the child-day, so the day is not payable until an
auditor clears it with ``kgate register flags clear`` (register/tabel/status.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Final

from ledger.entry import decode_entry
from register.errors import BadCredentials
from register.notify.contacts import DEFAULT_ZONE
from register.parent_codes import verify_parent_code
from register.store.base import Store
from register.tabel.audit import RULES, Flag
from register.users import DEFAULT_POLICY, LoginPolicy

ALARM: Final = "parent_report"
RULE: Final = "parent_report"


@dataclass(frozen=True)
class Event:
    """The notified entry a report is about."""

    kindergarten: str
    child: str
    device_id: int
    origin: str
    index: int
    kind: str
    time_ms: int
    data: bytes
    zone: str


def find_event(store: Store, key: str) -> Event | None:
    """The entry behind a notification key (None for an unknown key)."""
    if not (len(key) == 32 and all(c in "0123456789abcdef" for c in key)):
        return None
    with store._tx(write=False) as sql:
        row = sql.one(
            "SELECT d.kindergarten, d.id, d.origin, n.idx, e.data, n.payload FROM notify_outbox n "
            "JOIN devices d ON d.id = n.device_id "
            "JOIN entries e ON e.device_id = n.device_id AND e.idx = n.idx WHERE n.key = ? LIMIT 1",
            (key,),
        )
    if row is None:
        return None
    entry = decode_entry(bytes(row[4]))
    if entry.child is None:
        return None
    zone = str(json.loads(row[5]).get("zone", DEFAULT_ZONE))
    return Event(str(row[0]), entry.child, int(row[1]), str(row[2]), int(row[3]), entry.kind,
                 entry.time_ms, bytes(row[4]), zone)  # fmt: skip


def report_not_there(
    store: Store, key: str, code: str, *, address: str, now_ms: int, policy: LoginPolicy = DEFAULT_POLICY
) -> tuple[Event, bool]:
    """Record the parent's report of the event ``key``; (the event, whether this report is new).

    :class:`BadCredentials` for an unknown key or a code that does not open the event's child (one
    answer for both, so neither can be probed), :class:`~register.errors.LockedOut` after too many.
    """
    access = verify_parent_code(store, code, address=address, now_ms=now_ms, policy=policy)
    event = find_event(store, key)
    if event is None or (access.kindergarten, access.child) != (event.kindergarten, event.child):
        raise BadCredentials("this access code does not open this event")
    return event, record_report(store, event, now_ms=now_ms)


def record_report(store: Store, event: Event, *, now_ms: int) -> bool:
    """The alarm of a parent's report of ``event``, once per event; whether it is new.

    Also used by the console's parent page (register/console/report.py), where the parent's session
    already holds the access code's child.
    """
    known = any(
        a.kind == ALARM and a.index == event.index for a in store.alarms(event.device_id)
    )  # one alarm per event
    if not known:
        store.add_alarm(
            event.device_id,
            ALARM,
            f"parent reports {event.child} was not there: {event.kind} #{event.index} of {event.origin} "
            f"at {dt.datetime.fromtimestamp(event.time_ms / 1000, dt.UTC).isoformat()}",
            index=event.index,
            evidence=event.data,
            now_ms=now_ms,
        )
    return not known


def report_flags(store: Store, kindergarten: str, days: list[dt.date], zone: dt.tzinfo) -> list[Flag]:
    """The holding flags of the parents' reports on ``kindergarten``'s child-days within ``days``."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT d.origin, a.idx, a.evidence, a.time_ms FROM alarms a "
            "JOIN devices d ON d.id = a.device_id WHERE a.kind = ? AND d.kindergarten = ? ORDER BY a.id",
            (ALARM, kindergarten),
        )
    out: list[Flag] = []
    for origin, idx, evidence, reported_ms in rows:
        entry = decode_entry(bytes(evidence))
        day = dt.datetime.fromtimestamp(entry.time_ms / 1000, dt.UTC).astimezone(zone).date()
        if entry.child is None or not days[0] <= day <= days[-1]:
            continue
        out.append(Flag(
            f"{RULE}:{origin}:{idx}", RULE, RULES[RULE][0], kindergarten, str(origin), [int(idx)],
            {(entry.child, day)},
            {"device": origin, "entries": [int(idx)], "kind": entry.kind, "reported_ms": int(reported_ms)},
        ))  # fmt: skip
    return out
