"""Padding detectors: rules over the verified entries that raise flags with their evidence (docs/audit.md).

Each rule has a name, parameters (:class:`Params`) and says whether it *holds* payment: a child-day
touched by an uncleared flag of a holding rule stays ``present`` but is not payable until an auditor
clears the flag (:mod:`register.tabel.flags`). Flags are recomputed from the entries every time, so the
same database gives the same flags; a flag's id names its rule, device and first entry.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from register.tabel.calendar import Settings
from register.tabel.events import Dataset, Event
from register.tabel.people import RosterHistory

#: rule name → (holds payment, one line of what it means); docs/audit.md explains each.
RULES: Final[dict[str, tuple[bool, str]]] = {
    "burst": (True, "check-ins faster than children can walk through a gate"),
    "outside_hours": (True, "check-in outside the opening hours"),
    "closed_day": (True, "check-in on a day the kindergarten was closed"),
    "no_checkout": (False, "check-in without a check-out that day"),
    "two_places": (True, "one child checked in at two kindergartens within minutes"),
    "face_mismatch": (True, "accepted check-in whose own face evidence says it is not the child"),
    "future_dated": (True, "entry dated after the register received it"),
    "back_dated": (True, "entry dated before entries earlier in the log, or before the floor"),
    "clock_inconsistent": (True, "wall time disagrees with the boot's monotonic time"),
    "unanchored": (False, "entry with an unsynced clock and no synced entry in its boot"),
    "backlog": (True, "device silent for days, then a backlog spread over past days"),
    "unknown_child": (True, "check-in of a child never on the kindergarten's roster"),
    "not_enrolled": (True, "check-in of a child not on the roster that day"),
    "old_correction": (False, "correction voiding an entry from another day, or an unknown one"),
    "high_rate": (False, "attendance far above the group's usual rate"),
    "unknown_guardian": (False, "pickup by a guardian the roster does not list for the child"),
    "parent_report": (True, "a parent reported the child was not there (register/notify/report.py)"),
}

DAY_MS: Final = 86_400_000


@dataclass(frozen=True)
class Params:
    """The rules' thresholds (docs/audit.md gives the reasoning for each default)."""

    burst_gap_ms: int = 1500
    burst_min: int = 5
    hours_grace_min: int = 30
    travel_window_min: int = 120
    face_distance_max: int = 550  # thousandths, as the gate records face_dist (terminal THRESHOLD 0.55)
    face_distance_max_1n: int = 500  # mode face (1:N): terminal THRESHOLD_1N 0.50
    face_margin_min: int = 50  # mode face: thousandths (terminal MARGIN 0.05)
    liveness_min: int = 30  # mode face: thousandths of an eye distance (terminal LIVENESS_MIN 0.03)
    future_slack_ms: int = 5 * 60_000
    back_slack_ms: int = 5 * 60_000
    floor_ms: int = 1_577_836_800_000  # 2020-01-01T00:00Z: nothing real is older
    mono_slack_ms: int = 120_000
    mono_drift_ppm: int = 1000
    backlog_silent_days: int = 2
    backlog_min_entries: int = 20
    backlog_min_days: int = 2
    correction_max_age_ms: int = DAY_MS
    rate_min_days: int = 10
    rate_child_min: float = 0.95
    rate_gap: float = 0.4


@dataclass
class Flag:
    """One anomaly: which rule, where, which entries, the child-days it touches, and the numbers."""

    id: str
    rule: str
    holding: bool
    kindergarten: str
    device: str | None
    entries: list[int]
    days: set[tuple[str, dt.date]]
    evidence: dict[str, Any]
    cleared: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "holding": self.holding,
            "kindergarten": self.kindergarten,
            "device": self.device,
            "entries": self.entries,
            "child_days": [[c, d.isoformat()] for c, d in sorted(self.days)],
            "evidence": self.evidence,
            "cleared": self.cleared,
        }


@dataclass
class Context:
    """What the rules read for one kindergarten and month."""

    data: Dataset
    kindergarten: str
    settings: Settings
    days: list[dt.date]
    kinds: dict[dt.date, str]
    roster: RosterHistory
    params: Params = field(default_factory=Params)
    #: another kindergarten's roster history (for ``two_places``); default: none known
    other_roster: Callable[[str], RosterHistory] | None = None
    _present: dict[tuple[str, dt.date], list[Event]] | None = None

    def devices(self) -> dict[int, list[Event]]:
        """This kindergarten's devices and their events (the data also holds others' check-ins)."""
        return {
            d: evs for d, evs in self.data.events.items() if evs and evs[0].kindergarten == self.kindergarten
        }

    def present(self) -> dict[tuple[str, dt.date], list[Event]]:
        """:func:`presence` over this kindergarten's events, computed once."""
        if self._present is None:
            self._present = presence(self, (e for evs in self.devices().values() for e in evs))
        return self._present

    @functools.cached_property
    def zone(self) -> ZoneInfo:
        return self.settings.zone

    def date(self, e: Event) -> dt.date:
        return e.local(self.zone).date()

    def in_month(self, e: Event) -> bool:
        return self.days[0] <= self.date(e) <= self.days[-1]

    def received_in_month(self, e: Event) -> bool:
        """Dated or received in the month (a 2100-dated entry belongs to the month that received it)."""
        if self.in_month(e):
            return True
        if e.received_ms is None:
            return False
        day = dt.datetime.fromtimestamp(e.received_ms / 1000, dt.UTC).astimezone(self.zone).date()
        return self.days[0] <= day <= self.days[-1]


def _flag(ctx: Context, rule: str, events: list[Event], **evidence: Any) -> Flag:
    first = events[0]
    days = {(e.child, ctx.date(e)) for e in events if e.child is not None and e.kind == "in"}
    ev = {"device": first.origin, "entries": [e.index for e in events], **evidence}
    return Flag(
        f"{rule}:{first.origin}:{first.index}", rule, RULES[rule][0], ctx.kindergarten, first.origin,
        [e.index for e in events], days, ev,
    )  # fmt: skip


def _hhmm(e: Event, zone: ZoneInfo) -> str:
    return e.local(zone).strftime("%Y-%m-%d %H:%M:%S")


def checkins(events: Iterable[Event]) -> list[Event]:
    return [e for e in events if e.kind == "in" and e.voided_by is None and e.child is not None]


def _burst(ctx: Context, devices: dict[int, list[Event]]) -> list[Flag]:
    p, out = ctx.params, []
    for events in devices.values():
        ins = checkins(events)
        run: list[Event] = []
        for e in [*ins, None]:
            if e is not None and run and 0 <= e.time_ms - run[-1].time_ms < p.burst_gap_ms:
                run.append(e)
                continue
            if len(run) >= p.burst_min and any(ctx.in_month(r) for r in run):
                span = run[-1].time_ms - run[0].time_ms
                out.append(_flag(
                    ctx, "burst", run, count=len(run), children=len({r.child for r in run}), span_ms=span,
                    per_second=round(len(run) * 1000 / max(span, 1), 1), min_gap_ms=p.burst_gap_ms,
                ))  # fmt: skip
            run = [] if e is None else [e]
    return out


def _hours_and_closed(ctx: Context, ins: list[Event]) -> list[Flag]:
    s, out = ctx.settings, []
    lo = s.minutes(s.opens) - ctx.params.hours_grace_min
    hi = s.minutes(s.closes) + ctx.params.hours_grace_min
    outside: dict[tuple[int, dt.date], list[Event]] = defaultdict(list)
    closed: dict[tuple[int, dt.date], list[Event]] = defaultdict(list)
    for e in ins:
        local = e.local(ctx.zone)
        day = local.date()
        if ctx.kinds.get(day, "working") != "working":
            closed[(e.device, day)].append(e)
        minute = local.hour * 60 + local.minute
        if not lo <= minute <= hi:
            outside[(e.device, day)].append(e)
    for (_, day), evs in sorted(outside.items()):
        out.append(_flag(
            ctx, "outside_hours", evs, date=day.isoformat(), opens=s.opens, closes=s.closes,
            grace_min=ctx.params.hours_grace_min, times=[_hhmm(e, ctx.zone) for e in evs[:50]],
        ))  # fmt: skip
    for (_, day), evs in sorted(closed.items()):
        out.append(_flag(ctx, "closed_day", evs, date=day.isoformat(), day_kind=ctx.kinds[day]))
    return out


def _no_checkout(ctx: Context, events: list[Event]) -> list[Flag]:
    last: dict[tuple[str, dt.date], tuple[str, Event]] = {}
    for e in sorted((e for e in events if e.counts and e.child), key=lambda e: e.time_ms):
        key = (e.child or "", ctx.date(e))
        if e.kind == "in" or key in last:
            last[key] = (e.kind, e)
    return [
        _flag(ctx, "no_checkout", [e], child=child, date=day.isoformat(), last_in=_hhmm(e, ctx.zone))
        for (child, day), (kind, e) in sorted(last.items())
        if kind == "in" and ctx.days[0] <= day <= ctx.days[-1]
    ]


def _two_places(ctx: Context, ins: list[Event]) -> list[Flag]:
    """Only where both kindergartens have the child on their roster in force that day: a check-in of a
    child one side does not have is that side's ``unknown_child`` / ``not_enrolled``, never a hold on the
    other side's honest day. ``suspect``: the side whose current enrolment of the child is newer; the
    flag holds the day on the suspect side (on both when the enrolments began together) and is a note on
    the other, so enrolling another kindergarten's children cannot freeze that kindergarten's pay."""
    window = ctx.params.travel_window_min * 60_000
    elsewhere: dict[str, list[Event]] = defaultdict(list)
    for e in checkins(ctx.data.all()):
        if e.kindergarten != ctx.kindergarten:
            elsewhere[e.child or ""].append(e)
    out = []
    for e in ins:
        child = e.child or ""
        mine = ctx.roster.enrolled_since(child, ctx.date(e))
        if mine is None:
            continue  # not ours that day: our own unknown_child / not_enrolled says so
        for other in elsewhere.get(child, ()):
            gap = abs(other.time_ms - e.time_ms)
            if gap > window or ctx.other_roster is None:
                continue
            roster = ctx.other_roster(other.kindergarten)
            theirs = roster.enrolled_since(child, roster.day_of(other.time_ms))
            if theirs is None:
                continue  # the other side checked in a child not on its roster: its own flag
            suspect = "both" if mine == theirs else ("this" if mine > theirs else "other")
            flag = _flag(
                ctx, "two_places", [e], child=e.child, other_kindergarten=other.kindergarten,
                other_device=other.origin, other_entry=other.index, minutes_apart=round(gap / 60_000, 1),
                suspect=suspect, enrolled_since_ms=mine, other_enrolled_since_ms=theirs,
            )  # fmt: skip
            flag.holding = suspect != "other"
            out.append(flag)
            break
    return out


#: ``face_method`` values the gate writes (terminal/face/check.py ``FaceMethod``).
FACE_MATCH: Final = 3
FACE_MISMATCH: Final = 4
NO_USABLE_FACE: Final = 5


def _int(ev: dict[str, Any], key: str) -> int | None:
    value = ev.get(key)
    return value if type(value) is int else None


def _face_problems(e: Event, p: Params) -> list[str]:
    """Why an accepted check-in's own face evidence says it is not the child (empty: nothing wrong).

    Keys and units as the gate writes them: ``face_method`` (3 match, 4 mismatch, 5 no usable face),
    ``face_dist`` and ``face_margin`` in thousandths, ``liveness`` in thousandths of an eye distance.
    """
    ev = e.evidence
    method, dist = _int(ev, "face_method"), _int(ev, "face_dist")
    problems = []
    if method == FACE_MISMATCH:
        problems.append("face_method_mismatch")
    elif method == NO_USABLE_FACE:
        problems.append("face_method_no_usable_face")
    one_to_n = e.method == "face"
    limit = p.face_distance_max_1n if one_to_n else p.face_distance_max
    if dist is not None and dist > limit:
        problems.append("face_dist_over_max")
    if one_to_n:
        margin, live = _int(ev, "face_margin"), _int(ev, "liveness")
        if margin is not None and margin < p.face_margin_min:
            problems.append("face_margin_under_min")
        if live is not None and live < p.liveness_min:
            problems.append("liveness_under_min")
    if e.method in ("face", "qr+face") and method != NO_USABLE_FACE and (method is None or dist is None):
        problems.append("face_evidence_missing")  # the gate writes both whenever it compared a face
    return problems


def _face(ctx: Context, ins: list[Event]) -> list[Flag]:
    out: list[Flag] = []
    p = ctx.params
    for e in ins:
        problems = _face_problems(e, p)
        if problems:
            ev = e.evidence
            out.append(_flag(
                ctx, "face_mismatch", [e], child=e.child, method=e.method, problems=problems,
                face_method=_int(ev, "face_method"), face_dist=_int(ev, "face_dist"),
                face_margin=_int(ev, "face_margin"), liveness=_int(ev, "liveness"),
                face_set=_int(ev, "face_set"),
                face_dist_max=p.face_distance_max_1n if e.method == "face" else p.face_distance_max,
                badge=ev.get("badge"),
            ))  # fmt: skip
    return out


def _clock(ctx: Context, devices: dict[int, list[Event]]) -> list[Flag]:
    p, out = ctx.params, list[Flag]()
    for events in devices.values():
        newest: Event | None = None
        prev_in_boot: dict[bytes, Event] = {}
        for e in events:
            if not ctx.received_in_month(e):  # the clock state still advances through other months
                _advance(e, prev_in_boot)
                newest = _newest(e, newest, p)
                continue
            raised = len(out)
            if not e.anchored:
                out.append(_flag(ctx, "unanchored", [e], boot_id=e.boot.hex(), time_ms=e.time_ms))
            if e.received_ms is not None and e.time_ms > e.received_ms + p.future_slack_ms:
                out.append(_flag(
                    ctx, "future_dated", [e], time_ms=e.time_ms, received_ms=e.received_ms,
                    ahead_s=(e.time_ms - e.received_ms) // 1000,
                ))  # fmt: skip
            elif e.time_ms < p.floor_ms:
                out.append(_flag(ctx, "back_dated", [e], time_ms=e.time_ms, floor_ms=p.floor_ms))
            elif newest is not None and e.time_ms < newest.time_ms - p.back_slack_ms:
                out.append(_flag(
                    ctx, "back_dated", [e], time_ms=e.time_ms, later_entry=newest.index,
                    later_time_ms=newest.time_ms, behind_s=(newest.time_ms - e.time_ms) // 1000,
                    later_already_cosigned=newest.index < e.cosigned_before,
                ))  # fmt: skip
            prev = prev_in_boot.get(e.boot)
            if prev is not None:
                mono_ms = (e.mono_ns - prev.mono_ns) // 1_000_000
                wall_ms = e.time_ms - prev.time_ms
                slack = p.mono_slack_ms + abs(mono_ms) * p.mono_drift_ppm // 1_000_000
                if abs(wall_ms - mono_ms) > slack:
                    out.append(_flag(
                        ctx, "clock_inconsistent", [e], previous_entry=prev.index, wall_delta_ms=wall_ms,
                        mono_delta_ms=mono_ms, slack_ms=slack,
                    ))  # fmt: skip
            if len(out) == raised or out[-1].rule in ("unanchored", "no_checkout"):
                _advance(e, prev_in_boot)  # a flagged entry is no reference for the next one
            newest = _newest(e, newest, p)
    return out


def _advance(e: Event, prev_in_boot: dict[bytes, Event]) -> None:
    prev_in_boot[e.boot] = e


def _newest(e: Event, newest: Event | None, p: Params) -> Event | None:
    """The latest-dated plausible entry so far (future-dated ones do not raise the bar)."""
    plausible = e.time_ms <= (e.received_ms or e.time_ms) + p.future_slack_ms
    return e if plausible and (newest is None or e.time_ms > newest.time_ms) else newest


def _backlog(ctx: Context, devices: dict[int, list[Event]]) -> list[Flag]:
    p, out = ctx.params, []
    for events in devices.values():
        batches: dict[int, list[Event]] = defaultdict(list)
        for e in events:
            batches[e.cosigned_before].append(e)
        receipts = sorted({(b, evs[0].received_ms or 0) for b, evs in batches.items()})
        for (_, before_ms), (start, at_ms) in itertools.pairwise(receipts):
            ins = checkins(batches[start])
            silent = at_ms - before_ms
            days = {ctx.date(e) for e in ins}
            if (
                silent >= p.backlog_silent_days * DAY_MS
                and len(ins) >= p.backlog_min_entries
                and len(days) >= p.backlog_min_days
                and any(ctx.in_month(e) for e in ins)
            ):
                out.append(_flag(
                    ctx, "backlog", ins, silent_days=round(silent / DAY_MS, 1), delivered=len(ins),
                    over_days=len(days), received_ms=at_ms,
                ))  # fmt: skip
    return out


def _roster(ctx: Context, ins: list[Event]) -> list[Flag]:
    out = []
    for e in ins:
        child = e.child or ""
        if child not in ctx.roster.known:
            out.append(_flag(ctx, "unknown_child", [e], child=child))
        elif child not in ctx.roster.on(ctx.date(e)):
            out.append(_flag(ctx, "not_enrolled", [e], child=child, date=ctx.date(e).isoformat()))
    return out


def _guardians(ctx: Context, events: list[Event]) -> list[Flag]:
    """Pickups (accepted ``out``) whose ``guardian`` evidence is not a guardian of the child on the roster
    in force that day, or whose ``guardian_badge`` is not that guardian's badge."""
    out = []
    for e in events:
        if not e.counts or e.kind != "out" or e.child is None or not ctx.in_month(e):
            continue
        guardian, badge = e.evidence.get("guardian"), e.evidence.get("guardian_badge")
        if guardian is None and badge is None:
            continue  # no pickup policy at that gate: a plain check-out
        day = ctx.date(e)
        known = ctx.roster.guardians_on(day)
        may = known.children.get(guardian) if isinstance(guardian, str) else None
        if may is None:
            why = "not_on_roster"
        elif e.child not in may:
            why = "not_for_child"
        elif badge is not None and (not isinstance(badge, str) or known.badges.get(badge) != guardian):
            why = "badge_not_theirs"
        else:
            continue
        flag = _flag(
            ctx, "unknown_guardian", [e], child=e.child, date=day.isoformat(), why=why,
            guardian=guardian if isinstance(guardian, str) else None,
            guardian_badge=badge if isinstance(badge, str) else None,
        )  # fmt: skip
        flag.days = {(e.child, day)}
        out.append(flag)
    return out


def _corrections(ctx: Context, devices: dict[int, list[Event]]) -> list[Flag]:
    out = []
    for events in devices.values():
        by_index = {e.index: e for e in events}
        for e in events:
            if e.kind != "correction" or not ctx.in_month(e):
                continue
            target = by_index.get(e.ref if e.ref is not None else -1)
            if target is None or target.kind not in ("in", "out"):
                out.append(_flag(ctx, "old_correction", [e], ref=e.ref, reason=e.reason, target="none"))
            elif e.time_ms - target.time_ms > ctx.params.correction_max_age_ms:
                flag = _flag(
                    ctx, "old_correction", [e, target], ref=e.ref, reason=e.reason, target_kind=target.kind,
                    age_h=round((e.time_ms - target.time_ms) / 3_600_000, 1),
                )  # fmt: skip
                flag.days = {(target.child or "", ctx.date(target))}
                out.append(flag)
    return out


def presence(ctx: Context, events: Iterable[Event]) -> dict[tuple[str, dt.date], list[Event]]:
    """Accepted, unvoided ``in`` and ``out`` events per (child, local day) in the month, by time."""
    days: dict[tuple[str, dt.date], list[Event]] = defaultdict(list)
    for e in events:
        if e.counts and e.child is not None:
            day = ctx.date(e)
            if ctx.days[0] <= day <= ctx.days[-1]:
                days[(e.child, day)].append(e)
    for evs in days.values():
        evs.sort(key=lambda e: (e.time_ms, e.device, e.index))
    return days


def _high_rate(ctx: Context, present: dict[tuple[str, dt.date], list[Event]]) -> list[Flag]:
    p = ctx.params
    working = [d for d in ctx.days if ctx.kinds[d] == "working"]
    rates: dict[str, tuple[str, float, int]] = {}
    for child in {c for d in working for c in ctx.roster.on(d)}:
        enrolled = [d for d in working if child in ctx.roster.on(d)]
        here = sum(1 for d in enrolled if any(e.kind == "in" for e in present.get((child, d), ())))
        if enrolled:
            rates[child] = (ctx.roster.known[child].group, here / len(enrolled), len(enrolled))
    out = []
    for child, (group, rate, n) in sorted(rates.items()):
        others = [r for c, (g, r, _) in rates.items() if g == group and c != child]
        if n < p.rate_min_days or not others or rate < p.rate_child_min:
            continue
        usual = sum(others) / len(others)
        if rate - usual >= p.rate_gap:
            days = {(child, d) for d in working if (child, d) in present}
            out.append(Flag(
                f"high_rate:{ctx.kindergarten}:{child}:{ctx.days[0]:%Y-%m}", "high_rate",
                RULES["high_rate"][0],
                ctx.kindergarten, None, [], days,
                {"child": child, "group": group, "child_rate": round(rate, 3), "group_rate": round(usual, 3),
                 "working_days": n},
            ))  # fmt: skip
    return out


def run(ctx: Context) -> list[Flag]:
    """Every rule over the kindergarten's entries; flags touching the month, sorted by id."""
    devices = ctx.devices()
    mine = [e for evs in devices.values() for e in evs]
    ins = [e for e in checkins(mine) if ctx.in_month(e)]
    flags = [
        *_burst(ctx, devices),
        *_hours_and_closed(ctx, ins),
        *_no_checkout(ctx, mine),
        *_two_places(ctx, ins),
        *_face(ctx, ins),
        *_clock(ctx, devices),
        *_backlog(ctx, devices),
        *_roster(ctx, ins),
        *_guardians(ctx, mine),
        *_corrections(ctx, devices),
        *_high_rate(ctx, ctx.present()),
    ]
    unique: dict[str, Flag] = {}
    for f in flags:
        unique.setdefault(f.id, f)
    return sorted(unique.values(), key=lambda f: f.id)
