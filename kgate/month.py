"""The demo's month: the kindergarten's табель and audit for the whole month of the demo's day.

The demo's real gate day stays as it is. The month's other working days come from a second gate of
the same kindergarten (gate ``2``): its log is a :class:`~register.tabel.simulate.SimulatedLog` (the
same canonical entries and signed checkpoints a gate writes, built in memory because thousands of
durable appends would take minutes), pushed entry by entry (20 s after each: an online gate, so the
parents' messages are not "late") through :meth:`Register.ingest` with the embedded register's own
cosigner, on a simulated register clock, into ``DIR/register/register.db``.

The month has: working days (arrivals and departures as :func:`kgate.simulation.day` gives them), a
closed day (heating repairs), absences with reasons entered at the register, forgotten check-ins fixed
by staff at the gate (method ``staff`` + reason), a mistaken scan voided by a ``correction`` — and one
dishonest evening: a burst of check-ins of that day's absent children at 21:40, after closing, which
the audit flags (``burst``, ``outside_hours``) and the табель does not pay. Written: ``DIR/tabel.csv``,
``DIR/tabel.xlsx``, ``DIR/anomalies.json``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kgate import simulation

CLOSED_NOTE = "heating repairs"
REASONS = ("child_ill", "child_ill", "family", "parents_leave", "parent_ill", "sanatorium")
ONLINE_PUSH_S = 20  # seconds from a gate entry to the register: the month's gate is online


@dataclass(frozen=True)
class MonthSummary:
    """What the month's табель says (and where it is)."""

    month: str
    kindergarten: str
    days_simulated: int
    entries: int
    present: int
    payable: int
    flags: int
    dishonest_children: int
    dishonest_flagged: bool
    files: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "files": list(self.files)}


def _ms(day: dt.date, hh: int, mm: int, ss: float = 0.0) -> int:
    when = dt.datetime.combine(day, dt.time(hh, mm), simulation.ALMATY) + dt.timedelta(seconds=ss)
    return simulation.utc_ms(when)


def _closed_day(days: list[dt.date], on: dt.date) -> dt.date:
    """The second Monday of the month (or the Monday after, if that is the demo's own day)."""
    mondays = [d for d in days if d.weekday() == 0 and d != on]
    return mondays[1] if len(mondays) > 1 else mondays[0]


def _dishonest_day(working: list[dt.date], on: dt.date) -> dt.date:
    before = [d for d in working if d < on]
    return before[-1] if before else working[-1]


def write_month(
    out: Path, kids: list[simulation.Child], on: dt.date, *, seed: int, register_name: str
) -> MonthSummary:
    """Simulate the month of ``on`` into the demo's register and write the табель and the anomalies."""
    from register.keys import load_or_create_keys  # noqa: PLC0415 - the register is heavy to import
    from register.roster_csv import parse_csv  # noqa: PLC0415
    from register.service import Register  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415
    from register.store.roster import import_roster  # noqa: PLC0415
    from register.tabel import calendar, export, status  # noqa: PLC0415
    from register.tabel.people import RosterHistory  # noqa: PLC0415
    from register.tabel.simulate import SimulatedLog  # noqa: PLC0415
    from register.verify import verify_register  # noqa: PLC0415

    month = f"{on:%Y-%m}"
    days = calendar.month_days(month)
    closed = _closed_day(days, on)
    working = [d for d in days if d.weekday() < 5 and d not in (closed, on)]
    dishonest = _dishonest_day(working, on)
    rng = random.Random(f"{seed}-month")  # noqa: S311 - a simulation, not a secret
    db = out / "register" / "register.db"
    now = [0.0]
    with open_store(f"sqlite:///{db}") as store:
        device = store.devices()[0]  # the demo's real gate: its kindergarten is the month's
        k = device.kindergarten
        register = Register(
            store, load_or_create_keys(out / "register", register_name).cosigner, clock=lambda: now[0]
        )
        if not RosterHistory.load(
            store, k, ZoneInfo("Asia/Almaty")
        ).known:  # publish the demo's roster if none is
            rows = "kind,id,name,group\n" + "".join(f"child,{c.child_id},{c.name},{c.group}\n" for c in kids)
            import_roster(store, k, parse_csv(rows.encode()), now_ms=_ms(days[0], 0, 0) - 86_400_000)
        calendar.set_settings(store, k, rate_tiyn=250_000)
        calendar.set_days(store, k, [(closed, "closed", CLOSED_NOTE)])
        origin = device.origin.rsplit("/", 1)[0] + "/demo-month-gate-2"
        log = SimulatedLog(origin, start_ms=_ms(days[0], 6, 0))
        log.enrol(store, kindergarten=k, gate="2")
        staff_days = set(rng.sample(working[:-1], min(3, len(working) - 1)))
        mistaken_day = working[len(working) // 2]
        cheaters: list[str] = []
        for day in working:
            visits = simulation.day(kids, day, seed=seed)
            absent = [v.child for v in visits if v.arrive is None]
            if day == dishonest:  # the evening's forged check-ins are of children who did not come
                extra = max(6, len(kids) // 10)
                chosen = {c.child_id for c in rng.sample(kids, min(extra, len(kids)))}
                visits = [
                    v if v.child.child_id not in chosen else simulation.Visit(v.child, None, None)
                    for v in visits
                ]
                absent = [v.child for v in visits if v.arrive is None]
                cheaters = [c.child_id for c in absent]
            events: list[tuple[int, str, dict[str, Any]]] = []
            came = [v.child.child_id for v in visits if v.arrive]
            staff_child = rng.choice(came) if day in staff_days and came else None
            for when, kind, child in simulation.events(visits):
                fields: dict[str, Any] = {"child": child.child_id, "method": "qr"}
                ms = simulation.utc_ms(when)
                if kind == "in" and child.child_id == staff_child:  # forgot the badge; staff enter it
                    fields = {"child": child.child_id, "method": "staff", "reason": "badge forgotten at home"}
                    ms = _ms(day, 10, 15)
                events.append((ms, kind, fields))
            if day == mistaken_day and absent:  # a sibling's badge scanned for the absent child; voided
                events.append((_ms(day, 8, 20), "mistake", {"child": absent[0].child_id, "method": "qr"}))
                events.append((_ms(day, 8, 21, 30), "void", {"reason": "mistaken scan: sibling's badge"}))
            if day == dishonest:
                for i, cid in enumerate(cheaters):
                    events.append((_ms(day, 21, 40, i * 0.6), "in", {"child": cid, "method": "qr"}))
            events.sort(key=lambda e: (e[0], e[1], str(e[2].get("child"))))
            mistaken = 0
            for ms, kind, fields in events:
                if kind == "mistake":
                    mistaken = log.append("in", ms, **fields)
                elif kind == "void":
                    log.append("correction", ms, ref=mistaken, **fields)
                else:
                    log.append(kind, ms, **fields)
                log.mark()  # an online gate: each entry reaches the register within a minute (parents'
                now[0] = ms / 1000 + ONLINE_PUSH_S  # messages are on time, kgate/mail_demo.py)
                log.deliver(register)
            for n, child in enumerate(absent):
                if day != dishonest and not (day == mistaken_day and n == 0) and rng.random() < 0.7:
                    reason = REASONS[rng.randrange(len(REASONS))]
                    calendar.add_absence(
                        store,
                        k,
                        child.child_id,
                        day,
                        reason,
                        by="staff",
                        now_ms=_ms(day, 9, 30),
                        document=f"справка {day:%d.%m}" if reason == "child_ill" else None,
                    )
            log.mark()
            now[0] = _ms(day, 22, 30) / 1000
            log.deliver(register)  # nothing left on a normal day
        tabel = status.build(store, k, month)
        files = {
            "tabel.csv": export.to_csv(tabel),
            "tabel.xlsx": export.to_xlsx(tabel),
            "anomalies.json": status.anomalies_json(tabel),
        }
    for name, data in files.items():
        (out / name).write_bytes(data)
    verify_register(str(db))
    evening = {(c, dishonest) for c in cheaters}
    flagged = {cd for f in tabel.flags if f.holding and f.cleared is None for cd in f.days}
    return MonthSummary(
        month=month,
        kindergarten=k,
        days_simulated=len(working),
        entries=log.size,
        present=sum(r.status == "present" for r in tabel.rows),
        payable=sum(r.payable for r in tabel.rows),
        flags=len(tabel.flags),
        dishonest_children=len(cheaters),
        dishonest_flagged=bool(evening) and evening <= flagged,
        files=tuple(sorted(files)),
    )
