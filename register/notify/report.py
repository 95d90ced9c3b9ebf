""" "My child was not there": a parent reports one notified event; auditors see an alarm, the day is held.

Each message links to ``{parent-url}/parent/report?e=KEY`` (the outbox row's key). The parent confirms
with the child's access code (register/parent_codes.py, throttled per address); a code that does not open
that event's child is refused like a wrong code. A report is an alarm (kind ``parent_report``) with the
entry's exact bytes as evidence, one per event however often it is reported; the табель turns each into
a holding flag ``parent_report:ORIGIN:INDEX`` on the child-day, so the day is not payable until an
auditor clears it with ``kgate register flags clear`` (register/tabel/status.py).

Reports are rate-limited per child and local month (the табель's zone): at most
:data:`MAX_REPORTED_DAYS` different days (any number of entries on a day already reported). A report of
one more day is refused (:class:`~register.notify.errors.TooManyReports`, until the next month) and
recorded once per child-month as one ``parent_report_pattern`` alarm for the auditors: a parent
reporting every day of a month is one pattern to look at as a whole, not thirty held days. Reports and
the pattern are auditors' business: the console's overview does not list them to directors or district
officials (register/console/views.py), so the alarm list does not tell a director which family reported.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass
from typing import Final

from ledger.entry import decode_entry
from register.errors import BadCredentials
from register.notify.contacts import DEFAULT_ZONE
from register.notify.errors import TooManyReports
from register.parent_codes import verify_parent_code
from register.store.base import Sql, Store
from register.store.schema import POSTGRES
from register.tabel.audit import RULES, Flag
from register.tabel.calendar import get_settings
from register.users import DEFAULT_POLICY, LoginPolicy

ALARM: Final = "parent_report"
RULE: Final = "parent_report"
PATTERN: Final = "parent_report_pattern"  # one alarm per child-month that hit the limit
MAX_REPORTED_DAYS: Final = 5  # different days of one child that may be reported in one local month
WITHDRAW_WINDOW_MS: Final = 24 * 3600_000  # a report can be withdrawn this long after it was made
MAX_COMMENT: Final = 500  # characters of a parent's comment
PARENT_ALARMS: Final = (ALARM, PATTERN)  # shown to auditors only (register/console/views.py)


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


def record_report(
    store: Store,
    event: Event,
    *,
    now_ms: int,
    max_days: int = MAX_REPORTED_DAYS,
    comment: str | None = None,
) -> bool:
    """The alarm of a parent's report of ``event``, once per event; whether it is new.

    At most ``max_days`` different local days of the event's child and month may be reported; a report
    of one more day raises :class:`TooManyReports` and leaves the month's one ``parent_report_pattern``
    alarm (written at the first refusal). The check and the write are one transaction, serialised per
    child, so concurrent reports cannot pass the limit together.

    Also used by the console's parent page (register/console/report.py), where the parent's session
    already holds the access code's child. ``comment`` (the parent's words, at most
    :data:`MAX_COMMENT` characters) is kept with the report for the auditors. A withdrawn report is not
    made again (one report per event; it stays withdrawn, and this returns False).
    """
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    zone = get_settings(store, event.kindergarten).zone  # the табель's month
    day = _local_day(event.time_ms, zone)
    with store._tx(write=True) as sql:
        if store.dialect is POSTGRES:  # SQLite's write transaction is BEGIN IMMEDIATE: serial already
            sql.one(
                "SELECT id FROM roster_children WHERE kindergarten = ? AND id = ? FOR UPDATE",
                (event.kindergarten, event.child),
            )
        rows = sql.all(
            "SELECT a.kind, a.device_id, a.idx, a.evidence FROM alarms a "
            "JOIN devices d ON d.id = a.device_id WHERE d.kindergarten = ? AND a.kind IN (?, ?)",
            (event.kindergarten, ALARM, PATTERN),
        )
        days: set[dt.date] = set()
        pattern = False
        for kind, device_id, idx, evidence in rows:
            if kind == ALARM and (int(device_id), idx) == (event.device_id, event.index):
                return False  # one alarm per event
            entry = decode_entry(bytes(evidence))
            other = _local_day(entry.time_ms, zone)
            if entry.child != event.child or (other.year, other.month) != (day.year, day.month):
                continue
            if kind == ALARM:
                days.add(other)
            else:
                pattern = True
        refused = day not in days and len(days) >= max_days
        if not refused:
            detail = (
                f"parent reports {event.child} was not there: {event.kind} #{event.index} of {event.origin} "
                f"at {dt.datetime.fromtimestamp(event.time_ms / 1000, dt.UTC).isoformat()}"
            )
            _add_alarm(sql, event, ALARM, detail, now_ms)
            sql.run(
                "INSERT INTO parent_report_notes (device_id, idx, comment) VALUES (?, ?, ?) "
                "ON CONFLICT (device_id, idx) DO NOTHING",
                (event.device_id, event.index, comment),
            )
        elif not pattern:
            detail = (
                f"the parent of {event.child} ({event.kindergarten}) reported {len(days)} days of "
                f"{day:%Y-%m}, the most a month allows; further reports refused: audit the month as a whole"
            )
            _add_alarm(sql, event, PATTERN, detail, now_ms)
    if refused:
        first = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=zone)
        raise TooManyReports(
            f"at most {max_days} days of one month can be reported; the auditors are told",
            retry_after=max(86_400, int(first.timestamp() - now_ms / 1000)),  # a past month: a day
        )
    return True


def _local_day(time_ms: int, zone: zoneinfo.ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).astimezone(zone).date()


def _add_alarm(sql: Sql, event: Event, kind: str, detail: str, now_ms: int) -> None:
    sql.run(
        "INSERT INTO alarms (device_id, time_ms, kind, idx, detail, evidence) VALUES (?, ?, ?, ?, ?, ?)",
        (event.device_id, now_ms, kind, event.index, detail, event.data),
    )


def report_flags(store: Store, kindergarten: str, days: list[dt.date], zone: dt.tzinfo) -> list[Flag]:
    """The holding flags of the parents' reports on ``kindergarten``'s child-days within ``days``; a
    withdrawn report (``parent_report_notes.withdrawn_ms``) holds nothing and is not a flag."""
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT d.origin, a.idx, a.evidence, a.time_ms FROM alarms a "
            "JOIN devices d ON d.id = a.device_id "
            "LEFT JOIN parent_report_notes r ON r.device_id = a.device_id AND r.idx = a.idx "
            "WHERE a.kind = ? AND d.kindergarten = ? AND r.withdrawn_ms IS NULL ORDER BY a.id",
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
