"""Child-day status for a kindergarten and month, from verified entries only (docs/tabel.md).

``present``: at least one accepted, unvoided ``in`` that local day; ``closed``: not a working day;
``not_enrolled``: not on the roster that day; ``future``: a day after today with none of these;
``absent`` otherwise, with the reason staff gave. A present
day is payable unless an uncleared flag of a holding rule touches it (or it is closed / not enrolled).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from register.store.base import Store
from register.tabel import audit
from register.tabel.calendar import absences, day_kinds, get_settings, month_days
from register.tabel.events import Dataset, load_month
from register.tabel.people import Child, RosterHistory


@dataclass(frozen=True)
class Row:
    """One CSV row of the табель."""

    kindergarten: str
    group: str
    child: str
    name: str
    date: dt.date
    status: str
    first_in: str
    last_out: str
    method: str
    absence_reason: str
    flags: str
    payable: int


@dataclass
class Tabel:
    """A month's rows and flags, and the kindergarten's rate."""

    kindergarten: str
    month: str
    rows: list[Row]
    flags: list[audit.Flag]
    rate_tiyn: int


def clearances(store: Store) -> dict[str, dict[str, Any]]:
    with store._tx(write=False) as sql:
        rows = sql.all("SELECT flag, cleared_by, reason, time_ms FROM tabel_clearances")
    return {str(r[0]): {"by": r[1], "reason": r[2], "time_ms": int(r[3])} for r in rows}


def context(store: Store, kindergarten: str, month: str, data: Dataset | None = None) -> audit.Context:
    days = month_days(month)
    settings = get_settings(store, kindergarten)
    if data is None:
        lo = dt.datetime.combine(days[0], dt.time(), settings.zone)
        hi = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), settings.zone)
        travel = audit.Params().travel_window_min * 60_000
        data = load_month(store, kindergarten, int(lo.timestamp() * 1000), int(hi.timestamp() * 1000), travel)
    rosters: dict[str, RosterHistory] = {}

    def other_roster(other: str) -> RosterHistory:
        """Another kindergarten's roster history (in its own zone), read once."""
        if other not in rosters:
            rosters[other] = RosterHistory.load(store, other, get_settings(store, other).zone)
        return rosters[other]

    return audit.Context(
        data,
        kindergarten,
        settings,
        days,
        day_kinds(store, kindergarten, days),
        RosterHistory.load(store, kindergarten, settings.zone),
        other_roster=other_roster,
    )


def flags(store: Store, ctx: audit.Context) -> list[audit.Flag]:
    """The month's flags with their clearances filled in."""
    from register.notify.report import report_flags  # noqa: PLC0415 - the flag source of parents' reports

    cleared = clearances(store)
    found = sorted(
        [*audit.run(ctx), *report_flags(store, ctx.kindergarten, ctx.days, ctx.zone)], key=lambda f: f.id
    )
    for f in found:
        f.cleared = cleared.get(f.id)
    return found


def build(
    store: Store, kindergarten: str, month: str, data: Dataset | None = None, *, now_ms: int | None = None
) -> Tabel:
    """The табель of ``kindergarten`` for ``month`` (YYYY-MM) as of ``now_ms`` (default: now).

    A day after today (local) that would be ``absent`` is ``future``: not yet an absence, blank on the form.
    """
    ctx = context(store, kindergarten, month, data)
    now = time.time() if now_ms is None else now_ms / 1000
    today = dt.datetime.fromtimestamp(now, ctx.zone).date()
    found = flags(store, ctx)
    present = ctx.present()
    reasons = absences(store, kindergarten, ctx.days)
    touched: dict[tuple[str, dt.date], list[audit.Flag]] = {}
    for f in found:
        for key in f.days:
            touched.setdefault(key, []).append(f)
    children = dict(ctx.roster.known)
    for child, _ in present:
        children.setdefault(child, Child(child, "", ""))  # unknown child: its own rows, flagged
    rows: list[Row] = []
    zone = ctx.zone
    for kid in sorted(children.values(), key=lambda c: (c.group, c.id)):
        enrolled_any = any(kid.id in ctx.roster.on(d) for d in ctx.days)
        if not enrolled_any and not any((kid.id, d) in present for d in ctx.days):
            continue  # left before this month: not in its табель
        for day in ctx.days:
            evs = present.get((kid.id, day), [])
            ins = [e for e in evs if e.kind == "in"]
            outs = [e for e in evs if e.kind == "out"]
            day_flags = sorted({f.rule for f in touched.get((kid.id, day), [])})
            holding = any(f.holding and f.cleared is None for f in touched.get((kid.id, day), []))
            enrolled = kid.id in ctx.roster.on(day)
            if ins:
                status = "present"
            elif ctx.kinds[day] != "working":
                status = "closed"
            elif not enrolled:
                status = "not_enrolled"
            elif day > today:
                status = "future"
            else:
                status = "absent"
            payable = int(status == "present" and enrolled and ctx.kinds[day] == "working" and not holding)
            rows.append(Row(
                kindergarten, kid.group, kid.id, kid.name, day, status,
                ins[0].local(zone).strftime("%H:%M") if ins else "",
                outs[-1].local(zone).strftime("%H:%M") if outs else "",
                (ins[0].method or "") if ins else "",
                reasons.get((kid.id, day), "") if status == "absent" else "",
                ";".join(day_flags), payable,
            ))  # fmt: skip
    return Tabel(kindergarten, month, rows, found, ctx.settings.rate_tiyn)


def anomalies_json(t: Tabel) -> bytes:
    """The month's flags as canonical JSON (sorted keys; what ``anomalies --json`` and the demo write)."""
    doc = {"kindergarten": t.kindergarten, "month": t.month, "flags": [f.as_json() for f in t.flags]}
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")
