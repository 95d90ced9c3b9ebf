"""Every audit rule (docs/audit.md) on entries the gate's own code made: terminal Gate and Decider (and
Pickup) -> signed ledger -> register ingest -> табель. Clocks are fake; everything else is real.

Each test names its rule; the boundaries are the rules' own (``burst_min`` exactly, the closing grace
exactly, the future slack), so a rule loosened or tightened by one fails here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardware.feedback import InOut
from ledger.entry import decode_entry
from register.notify.report import Event as ReportEvent
from register.notify.report import record_report
from register.store.roster import roster_document
from register.tabel import calendar
from register.tabel.audit import Params
from terminal.badge import new_serial
from terminal.gate import OutcomeKind
from tests.register.tabel_terminal import (
    MONTH,
    Terminal,
    Town,
    at,
    forged,
    open_town,
    process_zone,
    roster_csv,
    row,
)

__all__ = ["process_zone"]
pytestmark = pytest.mark.usefixtures("process_zone")

K1 = [f"c-{i:03d}" for i in range(1, 13)]
K2 = [f"d-{i:03d}" for i in range(1, 6)]
GUARDIANS = {"g-001": ["c-001", "c-002"], "g-003": ["c-003"]}
P = Params()


def d(day: int) -> dt.date:
    return dt.date(2025, 3, day)


def working(days: list[dt.date]) -> list[dt.date]:
    """Monday to Friday but Kazakhstan's public holidays (10 March 2025 is 8 March carried over)."""
    national, _ = calendar.national_holidays(days)
    return [x for x in days if x.weekday() < 5 and x not in national]


WORKING = working([d(n) for n in range(3, 15)])  # 3-14 March: nine working days


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    t = open_town(tmp_path)
    t.publish("K1", roster_csv(K1, GUARDIANS))
    t.publish("K2", roster_csv(K2))
    yield t
    t.close()


def honest_days(gate: Terminal, children: list[str], serials: dict[str, str], days: list[dt.date]) -> None:
    """Each child in at 08:MM and out at 17:MM on each day, delivered that evening."""
    for day in days:
        for i, child in enumerate(children):
            gate.accepted(serials[child], at(day.day, f"08:{i:02d}"))
        for i, child in enumerate(children):
            gate.accepted(serials[child], at(day.day, f"17:{i:02d}"))
        gate.deliver(at(day.day, "20:00"))


# -- flags land on the one who wrote them -------------------------------------------------------------
def test_another_kindergartens_gate_checking_in_our_children_holds_none_of_our_days(town: Town) -> None:
    """Director A's gate, with A's own key, checks in B's child ids each morning (B's roster installed on
    A's gate): B's honest days all stay payable; A's табель carries ``unknown_child`` for each."""
    b_serials = town.serials("K2")
    honest = town.terminal("b-gate", kindergarten="K2")
    attacker = town.terminal("a-gate", kindergarten="K1", roster=roster_document(town.store, "K2"))
    for day in WORKING:
        for i, child in enumerate(K2):
            honest.accepted(b_serials[child], at(day.day, f"08:{i:02d}"))
            attacker.accepted(b_serials[child], at(day.day, f"08:{10 + i:02d}"))
        for i, child in enumerate(K2):
            honest.accepted(b_serials[child], at(day.day, f"17:{i:02d}"))
        honest.deliver(at(day.day, "20:00"))
        attacker.deliver(at(day.day, "20:00"))
    b = town.tabel("K2")
    assert [f for f in b.flags if f.rule == "two_places"] == []
    presents = [r for r in b.rows if r.status == "present"]
    assert len(presents) == len(K2) * len(WORKING)
    assert all(r.payable == 1 and r.flags == "" for r in presents)  # zero of B's honest days held
    a = town.tabel("K1")
    unknown = [f for f in a.flags if f.rule == "unknown_child"]
    assert len(unknown) == len(K2) * len(WORKING)
    assert {f.evidence["child"] for f in unknown} == set(K2) and {f.kindergarten for f in unknown} == {"K1"}
    assert {f.device for f in unknown} == {"reg.test/kgate/a-gate"}
    assert all(r.payable == 0 for r in a.rows if r.child in K2)
    assert [f for f in a.flags if f.rule == "two_places"] == []


def test_two_places_holds_only_where_both_rosters_have_the_child_and_names_the_suspect(town: Town) -> None:
    """c-004 is on K1's roster all month; K2 enrols it too on the 10th. Before that a K2 check-in of
    c-004 is K2's ``not_enrolled`` and holds nothing of K1's; after, both sides get ``two_places``, the
    evidence says K2 (the newer enrolment) is the suspect side, and only K2's day is held."""
    k1 = town.terminal("k1-gate", kindergarten="K1")
    k1_serials = town.serials("K1")
    town.publish("K2", roster_csv([*K2, "c-004"]), at(10, "12:00"))
    k2_doc = roster_document(town.store, "K2")
    k2 = town.terminal("k2-gate", kindergarten="K2", roster=k2_doc)  # the gate has the new roster already
    c004 = town.serials("K2")["c-004"]
    for day in (5, 11):
        k1.accepted(k1_serials["c-004"], at(day, "08:00"))
        k2.accepted(c004, at(day, "08:20"))
        k1.deliver(at(day, "20:00"))
        k2.deliver(at(day, "20:00"))
    (mine,) = town.flags("K1", "two_places")
    assert mine.days == {("c-004", d(11))} and mine.evidence["other_kindergarten"] == "K2"
    assert mine.evidence["suspect"] == "other" and mine.evidence["minutes_apart"] == 20.0
    assert not mine.holding  # a note on the side that had the child first
    (theirs,) = town.flags("K2", "two_places")
    assert theirs.days == {("c-004", d(11))} and theirs.evidence["suspect"] == "this" and theirs.holding
    assert [f.days for f in town.flags("K2", "not_enrolled")] == [{("c-004", d(5))}]
    k1_tabel = town.tabel("K1")
    assert row(k1_tabel, "c-004", d(5)).payable == 1  # K2's unenrolled check-in holds nothing here
    assert row(k1_tabel, "c-004", d(11)).payable == 1 and "two_places" in row(k1_tabel, "c-004", d(11)).flags
    assert row(town.tabel("K2"), "c-004", d(11)).payable == 0


def test_enrolling_another_kindergartens_children_does_not_freeze_their_pay(town: Town) -> None:
    """Director A goes further: imports B's children into A's roster at the register, then A's gate
    checks them in each morning. ``two_places`` now fires on both sides, held only on A's (the newer
    enrolment); B's honest days all stay payable."""
    b_serials = town.serials("K2")
    town.publish("K1", roster_csv([*K1, *K2], GUARDIANS), at(2, "12:00"))
    honest = town.terminal("b-gate", kindergarten="K2")
    attacker = town.terminal("a-gate", kindergarten="K1", roster=roster_document(town.store, "K2"))
    for day in WORKING[:3]:
        for i, child in enumerate(K2):
            honest.accepted(b_serials[child], at(day.day, f"08:{i:02d}"))
            attacker.accepted(b_serials[child], at(day.day, f"08:{10 + i:02d}"))
        for i, child in enumerate(K2):
            honest.accepted(b_serials[child], at(day.day, f"17:{i:02d}"))
        honest.deliver(at(day.day, "20:00"))
        attacker.deliver(at(day.day, "20:00"))
    b = town.tabel("K2")
    notes = [f for f in b.flags if f.rule == "two_places"]
    assert len(notes) == len(K2) * 3 and all(
        f.evidence["suspect"] == "other" and not f.holding for f in notes
    )
    assert all(r.payable == 1 for r in b.rows if r.status == "present")
    a = town.tabel("K1")
    held = [f for f in a.flags if f.rule == "two_places"]
    assert len(held) == len(K2) * 3 and all(f.evidence["suspect"] == "this" and f.holding for f in held)
    assert all(r.payable == 0 for r in a.rows if r.child in K2)


# -- pickups ------------------------------------------------------------------------------------------
def test_pickup_by_a_guardian_not_on_the_childs_roster_is_flagged(town: Town) -> None:
    """The gate's local roster is forged: it lists a stranger for c-002 and lets g-003 take c-002 too.
    The register's roster knows neither: ``unknown_guardian`` (a note; the day's presence stands)."""
    stranger = new_serial()
    doc = roster_document(town.store, "K1")
    fake = forged(
        doc, guardians=[{"id": "g-666", "name": "Stranger", "children": ["c-002"]}],
        badges=[{"serial": stranger, "guardian": "g-666", "revoked": False}],
    )  # fmt: skip
    fake_doc = json.loads(fake)
    for g in fake_doc["guardians"]:
        if g["id"] == "g-003":
            g["children"] = ["c-002", "c-003"]
    gate = town.terminal("north", kindergarten="K1", roster=json.dumps(fake_doc).encode(), pickup=True)
    s = town.serials("K1")
    for i, child in enumerate(("c-001", "c-002", "c-003")):
        gate.accepted(s[child], at(3, f"08:0{i}"))
    gate.scan(s["c-001"], at(3, "17:00"))
    honest = gate.accepted(s["g-001"], at(3, "17:00:05"))
    gate.scan(s["c-002"], at(3, "17:10"))
    unknown = gate.accepted(stranger, at(3, "17:10:05"))
    gate.scan(s["c-002"], at(4, "08:00"))  # Tuesday: in again, then taken by g-003
    gate.scan(s["c-002"], at(4, "17:20"))
    other_family = gate.accepted(s["g-003"], at(4, "17:20:05"))
    gate.deliver(at(4, "20:00"))
    assert decode_entry(gate.ledger.entries(unknown, unknown + 1)[0]).evidence["guardian"] == "g-666"
    flags = {f.entries[0]: f for f in town.flags("K1", "unknown_guardian")}
    assert sorted(flags) == [unknown, other_family]
    assert honest not in flags
    assert (
        flags[unknown].evidence["why"] == "not_on_roster" and flags[unknown].evidence["guardian"] == "g-666"
    )
    assert flags[unknown].evidence["guardian_badge"] == stranger and not flags[unknown].holding
    assert flags[other_family].evidence["why"] == "not_for_child"
    t = town.tabel("K1")
    assert "unknown_guardian" in row(t, "c-002", d(3)).flags.split(";")
    assert row(t, "c-002", d(3)).payable == 1  # attendance is not in doubt: the pickup is


# -- the timing rules --------------------------------------------------------------------------------------
def test_burst_fires_at_exactly_its_minimum_and_not_below(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    fast = [gate.accepted(s[c], at(3, f"09:00:{i:02d}")) for i, c in enumerate(K1[:5])]  # 5 scans, 1 s apart
    slow = [gate.accepted(s[c], at(4, f"09:00:{i:02d}")) for i, c in enumerate(K1[:4])]  # 4: not a burst
    gate.deliver(at(4, "20:00"))
    (burst,) = town.flags("K1", "burst")
    assert P.burst_min == 5 and burst.entries == fast and burst.evidence["count"] == 5
    assert burst.evidence["span_ms"] == 4000 and not set(slow) & set(burst.entries)
    t = town.tabel("K1")
    assert all(row(t, c, d(3)).payable == 0 for c in K1[:5])
    assert all(row(t, c, d(4)).payable == 1 for c in K1[:4])


def test_outside_hours_keeps_the_grace_at_both_ends(town: Town) -> None:
    """The register's calendar is 07:00-19:00 with 30 minutes' grace; the gate itself opens 06:00-23:00."""
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    early = gate.accepted(s["c-002"], at(3, "06:29"))
    early_ok = gate.accepted(s["c-001"], at(3, "06:30"))
    late_ok = gate.accepted(s["c-003"], at(3, "19:15"))
    edge_ok = gate.accepted(s["c-004"], at(3, "19:30"))
    late = gate.accepted(s["c-005"], at(3, "19:31"))
    gate.deliver(at(3, "23:00"))
    flagged = {i for f in town.flags("K1", "outside_hours") for i in f.entries}
    assert flagged == {early, late}
    assert not flagged & {early_ok, late_ok, edge_ok}
    t = town.tabel("K1")
    assert row(t, "c-003", d(3)).payable == 1  # an honest 19:15 check-in is paid
    assert row(t, "c-005", d(3)).payable == 0


def test_closed_day_and_no_checkout(town: Town) -> None:
    # Days away from Kazakhstan's March holidays (8, 10, 21-25 March 2025): the 6th is made a holiday
    # by hand, the 15th is a plain Saturday.
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    calendar.set_days(town.store, "K1", [(d(6), "holiday", "closed by the kindergarten")])
    holiday = gate.accepted(s["c-002"], at(6, "09:00"))
    gate.accepted(s["c-003"], at(13, "09:00"))
    stayed = gate.accepted(s["c-004"], at(13, "09:05"))  # in, never out
    gate.accepted(s["c-003"], at(13, "17:00"))  # in, then out: no flag
    saturday = gate.accepted(s["c-001"], at(15, "09:00"))
    gate.deliver(at(15, "20:00"))
    closed = {f.entries[0]: f.evidence["day_kind"] for f in town.flags("K1", "closed_day")}
    assert closed == {saturday: "closed", holiday: "holiday"}
    assert {f.entries[0] for f in town.flags("K1", "no_checkout")} == {saturday, holiday, stayed}
    t = town.tabel("K1")
    assert (row(t, "c-001", d(15)).status, row(t, "c-001", d(15)).payable) == ("present", 0)
    assert row(t, "c-004", d(13)).payable == 1  # no_checkout does not hold


def test_future_dated_beyond_the_slack_and_not_within_it(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    within = gate.accepted(s["c-001"], at(3, "09:04"))
    beyond = gate.accepted(s["c-002"], at(3, "09:06"))
    gate.deliver(at(3, "09:00"))  # the register's clock: 09:00 when it receives them
    (flag,) = town.flags("K1", "future_dated")
    assert flag.entries == [beyond] and flag.evidence["ahead_s"] == 360 and within != beyond
    assert row(town.tabel("K1"), "c-002", d(3)).payable == 0


def test_back_dated_and_clock_inconsistent(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    gate.accepted(s["c-001"], at(12, "09:00"))
    gate.deliver(at(12, "20:00"))
    gate.clock.time_ms = int(at(5, "09:00").timestamp() * 1000)  # the wall clock set back a week, "synced"
    back = gate.accepted(s["c-002"])
    gate.deliver(at(12, "20:05"))
    (flag,) = town.flags("K1", "back_dated")
    assert flag.entries == [back] and flag.evidence["behind_s"] == 7 * 86400
    assert flag.evidence["later_already_cosigned"] is True
    (clock,) = town.flags("K1", "clock_inconsistent")
    assert clock.entries == [back] and clock.evidence["wall_delta_ms"] < -6 * 86_400_000
    assert row(town.tabel("K1"), "c-002", d(5)).payable == 0


def test_unanchored_is_raised_for_a_boot_without_a_synced_clock(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1", synced=False), town.serials("K1")
    first = gate.accepted(s["c-001"], at(3, "09:00"))
    gate.deliver(at(3, "20:00"))
    flags = town.flags("K1", "unanchored")
    assert first in {f.entries[0] for f in flags}
    assert all(f.evidence["boot_id"] == gate.clock.boot_id.hex() and not f.holding for f in flags)
    assert row(town.tabel("K1"), "c-001", d(3)).payable == 1  # a note, not a hold


def test_an_unsynced_check_in_takes_its_time_from_the_boots_synced_entry(town: Town) -> None:
    """The gate's real-time clock is 3 days behind and not synced; a minute later NTP sets it. The
    check-in made before is dated by the boot's monotonic clock from the synced one: 08:00 on the 3rd."""
    gate, s = town.terminal("north", kindergarten="K1", synced=False), town.serials("K1")
    gate.at(at(3, "08:00"))
    gate.clock.time_ms -= 3 * 86_400_000  # wall time wrong, monotonic time right
    early = gate.accepted(s["c-001"])
    assert decode_entry(gate.ledger.entries(early, early + 1)[0]).clock_synced is False
    gate.clock.advance(60)
    gate.clock.time_ms, gate.clock.synced = int(at(3, "08:01").timestamp() * 1000), True
    gate.accepted(s["c-002"])
    gate.deliver(at(3, "20:00"))
    t = town.tabel("K1")
    r = row(t, "c-001", d(3))
    assert (r.status, r.first_in, r.payable) == ("present", "08:00", 1)
    assert {f.rule for f in t.flags} == {"no_checkout"}  # no unanchored, back_dated or clock flags


def test_backlog_at_exactly_its_minimums(town: Town) -> None:
    """Silent exactly 2 days, then exactly 20 check-ins spread over exactly 2 days: a backlog."""
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    gate.accepted(s["c-001"], at(3, "09:00"))
    gate.deliver(at(3, "20:00"))
    entries = [gate.accepted(s[c], at(4, f"09:{i:02d}")) for i, c in enumerate(K1[:10])]
    entries += [gate.accepted(s[c], at(5, f"09:{i:02d}")) for i, c in enumerate(K1[:10])]
    gate.deliver(at(5, "20:00"))  # the previous push was exactly 2 days earlier
    (flag,) = town.flags("K1", "backlog")
    assert flag.evidence["silent_days"] == 2.0 and flag.evidence["delivered"] == 20
    assert flag.evidence["over_days"] == 2 and flag.entries == entries
    assert row(town.tabel("K1"), "c-005", d(4)).payable == 0


def test_backlog_needs_every_minimum(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    gate.accepted(s["c-001"], at(3, "09:00"))
    gate.deliver(at(3, "20:00"))
    for i, c in enumerate(K1[:10]):
        gate.accepted(s[c], at(4, f"09:{i:02d}"))
    for i, c in enumerate(K1[:9]):
        gate.accepted(s[c], at(5, f"09:{i:02d}"))  # 19 check-ins
    gate.deliver(at(5, "20:00"))
    assert town.flags("K1", "backlog") == []


# -- rosters, corrections, reports, rates -------------------------------------------------------------
def test_not_enrolled_reads_the_roster_in_force_that_day(town: Town) -> None:
    """c-012 leaves the roster on the 6th; the gate still has the old roster and lets it in on the 7th.
    Its days before leaving stay paid; the 7th is ``not_enrolled``."""
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    before = gate.accepted(s["c-012"], at(5, "08:00"))
    gate.accepted(s["c-012"], at(5, "17:00"))
    town.publish("K1", roster_csv(K1[:11], GUARDIANS), at(6, "12:00"))
    after = gate.accepted(s["c-012"], at(7, "08:00"))
    gate.deliver(at(7, "20:00"))
    (flag,) = town.flags("K1", "not_enrolled")
    assert flag.entries == [after] and flag.evidence["date"] == "2025-03-07" and before != after
    t = town.tabel("K1")
    assert (row(t, "c-012", d(5)).status, row(t, "c-012", d(5)).payable, row(t, "c-012", d(5)).flags) == (
        "present", 1, "",
    )  # fmt: skip
    assert (row(t, "c-012", d(7)).status, row(t, "c-012", d(7)).payable) == ("present", 0)
    assert row(t, "c-012", d(11)).status == "not_enrolled"  # a working day after leaving


def test_unknown_child_from_a_forged_local_roster(town: Town) -> None:
    serial = new_serial()
    doc = forged(
        roster_document(town.store, "K1"),
        children=[{"id": "x-999", "name": "Ghost", "group": "Күншуақ", "consent_face": False}],
        badges=[{"serial": serial, "child": "x-999", "revoked": False}],
    )
    gate = town.terminal("north", kindergarten="K1", roster=doc)
    ghost = gate.accepted(serial, at(3, "08:00"))
    gate.deliver(at(3, "20:00"))
    (flag,) = town.flags("K1", "unknown_child")
    assert flag.entries == [ghost] and flag.evidence["child"] == "x-999"
    r = row(town.tabel("K1"), "x-999", d(3))
    assert (r.status, r.payable, r.group) == ("present", 0, "")


def test_old_correction(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    old = gate.accepted(s["c-001"], at(3, "08:00"))
    fresh = gate.accepted(s["c-002"], at(5, "08:00"))
    gate.correct(fresh, "mistaken scan", at(5, "08:30"))
    late = gate.correct(old, "wrong child", at(5, "09:00"))
    gate.deliver(at(5, "20:00"))
    (flag,) = town.flags("K1", "old_correction")
    assert flag.entries == [late, old] and flag.evidence["ref"] == old and flag.evidence["age_h"] == 49.0
    assert not flag.holding and flag.days == {("c-001", d(3))}
    assert row(town.tabel("K1"), "c-002", d(5)).status == "absent"  # voided in time: no flag


def test_parent_report_holds_the_reported_day(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    index = gate.accepted(s["c-001"], at(3, "08:00"))
    gate.deliver(at(3, "20:00"))
    device = town.store.device_by_origin(gate.ledger.origin)
    assert device is not None
    data = bytes(next(e for i, _, e in town.store.iter_entries(device.id) if i == index))
    entry = decode_entry(data)
    record_report(
        town.store, ReportEvent("K1", "c-001", device.id, device.origin, index, "in", entry.time_ms, data,
                                "Asia/Almaty"), now_ms=1,
    )  # fmt: skip
    (flag,) = town.flags("K1", "parent_report")
    assert flag.holding and flag.days == {("c-001", d(3))}
    assert row(town.tabel("K1"), "c-001", d(3)).payable == 0


def test_high_rate(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    for n, day in enumerate(working(calendar.month_days(MONTH))):
        here = [(i, c) for i, c in enumerate(K1[:4]) if c == "c-001" or n % 4 == i]
        for i, child in here:
            gate.accepted(s[child], at(day.day, f"08:0{i}"))
        for i, child in here:
            gate.accepted(s[child], at(day.day, f"17:0{i}"))
        gate.deliver(at(day.day, "20:00"))
    flags = town.flags("K1", "high_rate")
    assert [f.evidence["child"] for f in flags] == ["c-001"]
    assert flags[0].evidence["child_rate"] == 1.0 and not flags[0].holding


def test_an_honest_month_through_the_gate_raises_no_holding_flag(town: Town) -> None:
    gate = town.terminal("north", kindergarten="K1")
    honest_days(gate, K1, town.serials("K1"), WORKING[:3])
    t = town.tabel("K1")
    assert [f.id for f in t.flags] == []
    assert sum(r.payable for r in t.rows) == len(K1) * 3
    assert MONTH == "2025-03"


def test_a_refused_scan_is_no_checkin(town: Town) -> None:
    gate = town.terminal("north", kindergarten="K1", closes=dt.time(19, 0))
    assert gate.scan(new_serial(), at(3, "18:00"), direction=InOut.IN).kind is OutcomeKind.REFUSED
    assert gate.scan(town.serials("K1")["c-001"], at(3, "20:00")).kind is OutcomeKind.REFUSED
    gate.deliver(at(3, "21:00"))
    assert all(r.status != "present" for r in town.tabel("K1").rows)
