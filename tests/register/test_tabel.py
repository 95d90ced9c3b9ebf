"""The табель and its audit on real signed ledgers ingested by a real register (both backends).

A clean synthetic month (closed day, absences with reasons, a staff check-in, a mistaken scan voided by
a correction) raises no flag; each attack and each detector fixture raises its flag with evidence.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kgate.cli import main
from ledger.entry import decode_entry
from ledger.note import CosignatureSigner
from register.roster_csv import parse_csv
from register.service import Register
from register.store import Store, open_store
from register.store.roster import import_roster
from register.tabel import approval, calendar, export, index, late, status
from register.tabel.audit import Flag
from register.tabel.simulate import Gate, local
from tests.register.tabel_terminal import process_zone

__all__ = ["process_zone"]
pytestmark = pytest.mark.usefixtures("process_zone")  # each test under Almaty and Los Angeles

K = "K1"
MONTH = "2025-03"
ZONE = ZoneInfo("Asia/Almaty")
CHILDREN = [(f"c-00{i}", f"Бала {i}", "Күншуақ" if i <= 3 else "Солнышко") for i in range(1, 7)]
ROSTER = "kind,id,name,group\n" + "".join(f"child,{c},{n},{g}\n" for c, n, g in CHILDREN)
RATE = 250_000  # tiyn per child-day
HOLIDAY = dt.date(2025, 3, 21)


@dataclass
class World:
    """The register, its database and the gates, on one simulated clock."""

    store: Store
    register: Register
    gates: dict[str, Gate]
    now: list[float]
    root: Path
    url: str

    def gate(self, name: str, kindergarten: str = K) -> Gate:
        if name not in self.gates:
            start = dt.datetime(2025, 2, 28, tzinfo=ZONE)
            self.gates[name] = Gate(
                self.store, self.root / name, f"reg.test/kgate/{name}", kindergarten=kindergarten, gate=name,
                start=start,
            )  # fmt: skip
        return self.gates[name]

    def deliver(self, name: str, when: dt.datetime) -> None:
        self.now[0] = when.timestamp()
        self.gates[name].at(when).deliver(self.register)

    def tabel(self) -> status.Tabel:
        return status.build(self.store, K, MONTH)

    def flags(self, rule: str) -> list[Flag]:
        return [f for f in self.tabel().flags if f.rule == rule]


LAST = dt.date(2025, 3, 28)  # the clean month's gate stops on Friday 28th; tests act on 29th-31st


def working_days(last: dt.date = LAST) -> list[dt.date]:
    """Monday–Friday but the holidays: Kazakhstan's (10, 21, 24 and 25 March 2025) and the one set by hand."""
    days = calendar.month_days(MONTH)
    national, _ = calendar.national_holidays(days)
    return [d for d in days if d.weekday() < 5 and d != HOLIDAY and d not in national and d <= last]


def build_month(store: Store, root: Path, url: str) -> World:
    now = [dt.datetime(2025, 2, 28, tzinfo=ZONE).timestamp()]
    register = Register(store, CosignatureSigner.generate("reg.test"), clock=lambda: now[0])
    world = World(store, register, {}, now, root, url)
    import_roster(store, K, parse_csv(ROSTER.encode()), now_ms=int(now[0] * 1000))
    calendar.set_settings(store, K, rate_tiyn=RATE)
    calendar.set_days(store, K, [(HOLIDAY, "holiday", "Наурыз")])
    gate = world.gate("north")
    for day in working_days():
        mistaken = None
        for i, (child, _, _) in enumerate(CHILDREN):
            if child == "c-006" and day.weekday() == 0:
                calendar.add_absence(
                    store, K, child, day, "child_ill", document="справка 12", by="t", now_ms=0
                )
                continue
            if child == "c-005" and day == dt.date(2025, 3, 6):
                mistaken = gate.at(local(day, f"08:0{i}")).append("in", child=child, method="qr").index
                continue
            if child == "c-003" and day == dt.date(2025, 3, 5):
                gate.at(local(day, "10:00")).append("in", child=child, method="staff", reason="forgot badge")
                continue
            gate.at(local(day, f"08:0{i}")).append("in", child=child, method="qr")
        if mistaken is not None:
            gate.at(local(day, "08:30")).append("correction", ref=mistaken, reason="mistaken scan")
        for i, (child, _, _) in enumerate(CHILDREN):
            if (child == "c-006" and day.weekday() == 0) or (child == "c-005" and day == dt.date(2025, 3, 6)):
                continue
            gate.at(local(day, f"18:0{i}")).append("out", child=child, method="qr")
        world.deliver("north", local(day, "20:00"))
    return world


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    store = open_store(db_url)
    w = build_month(store, tmp_path, db_url)
    yield w
    for g in w.gates.values():
        g.close()
    store.close()


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'register.db'}"
    store = open_store(url)
    w = build_month(store, tmp_path, url)
    yield w
    for g in w.gates.values():
        g.close()
    store.close()


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def row(t: status.Tabel, child: str, day: str) -> status.Row:
    return next(r for r in t.rows if r.child == child and r.date.isoformat() == day)


# -- the clean month ----------------------------------------------------------------------------------
def test_clean_month_raises_no_flag_and_has_every_status(world: World) -> None:
    t = world.tabel()
    assert [f.id for f in t.flags] == []
    assert len(t.rows) == 6 * 31
    assert row(t, "c-001", "2025-03-03").status == "present"
    assert row(t, "c-001", "2025-03-03").first_in == "08:00"
    assert row(t, "c-001", "2025-03-03").last_out == "18:00"
    assert row(t, "c-001", "2025-03-21").status == "closed"  # the holiday
    assert row(t, "c-001", "2025-03-22").status == "closed"  # a Saturday
    ill = row(t, "c-006", "2025-03-03")
    assert (ill.status, ill.absence_reason, ill.payable) == ("absent", "child_ill", 0)
    staff = row(t, "c-003", "2025-03-05")
    assert (staff.status, staff.method, staff.first_in) == ("present", "staff", "10:00")
    voided = row(t, "c-005", "2025-03-06")
    assert (voided.status, voided.payable) == ("absent", 0)  # the mistaken scan was voided
    assert all(r.payable == (r.status == "present") for r in t.rows)


def test_csv_columns_and_reproducible_bytes(world: World, tmp_path: Path) -> None:
    outs = []
    for n in range(2):
        out = tmp_path / f"t{n}.csv"
        argv = ["register", "tabel", "--db", world.url, "--kindergarten", K, "--month", MONTH]
        assert main([*argv, "--format", "csv", "--out", str(out)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0].split(b"\n", 1)[0] == (
        b"kindergarten,group,child,name,date,status,first_in,last_out,method,absence_reason,flags,payable"
    )
    assert outs[0] == export.to_csv(world.tabel())


def test_independent_recount_equals_present_rows(world: World) -> None:
    """Decode the stored bytes, apply corrections, take Almaty dates: the CSV's present rows."""
    present: set[tuple[str, str]] = set()
    for device in world.store.devices():
        entries = [decode_entry(bytes(data)) for _, _, data in world.store.iter_entries(device.id)]
        voided = {e.ref for e in entries if e.kind == "correction"}
        for e in entries:
            if e.kind == "in" and e.index not in voided and e.child:
                day = dt.datetime.fromtimestamp(e.time_ms / 1000, ZONE).date()
                if day.strftime("%Y-%m") == MONTH:
                    present.add((e.child, day.isoformat()))
    table = rows(export.to_csv(world.tabel()))
    assert {(r["child"], r["date"]) for r in table if r["status"] == "present"} == present
    assert len(present) > 90  # 16 working days (4 national holidays) × 6 children, minus absences


def _xlsx_totals(data: bytes) -> list[list[int]]:
    """The last three numbers of each form sheet's totals row, its last row with numbers: days attended,
    days payable and the amount (tenge), read from the XML."""
    totals = []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in sorted(n for n in z.namelist() if n.startswith("xl/worksheets/sheet")):
            xml = z.read(name).decode()
            rows = re.findall(r"<row [^>]*>(.*?)</row>", xml)
            numbers = [
                [int(v) for v in re.findall(r'<c r="[A-Z]+\d+"(?: s="\d+")?><v>(\d+)</v>', row)]
                for row in rows
            ]
            totals.append([n for n in numbers if n][-1][-3:])
    return totals


def test_xlsx_totals_equal_csv(world: World) -> None:
    t = world.tabel()
    table = rows(export.to_csv(t))
    data = export.to_xlsx(t)
    assert data == export.to_xlsx(world.tabel())  # reproducible too
    totals = _xlsx_totals(data)
    for (present, payable, amount), group in zip(totals, ["Күншуақ", "Солнышко"], strict=True):
        mine = [r for r in table if r["group"] == group]
        assert present == sum(r["status"] == "present" for r in mine)
        assert payable == sum(r["payable"] == "1" for r in mine)
        assert amount == payable * RATE // 100  # tenge


# -- the attacks ----------------------------------------------------------------------------------------
def test_backdated_a_week_is_flagged(sqlite_world: World) -> None:
    w = sqlite_world
    gate = w.gates["north"]
    gate.at(local(dt.date(2025, 3, 31), "21:00"))
    gate.clock.time_ms = int(local(dt.date(2025, 3, 20), "08:30").timestamp() * 1000)  # synced=True lie
    gate.append("in", child="c-006", method="qr")
    w.deliver("north", local(dt.date(2025, 3, 31), "21:05"))
    back = w.flags("back_dated")
    assert len(back) == 1
    assert back[0].evidence["behind_s"] > 7 * 86400
    assert back[0].evidence["later_already_cosigned"] is True
    assert back[0].days == {("c-006", dt.date(2025, 3, 20))}
    assert w.flags("clock_inconsistent")[0].evidence["mono_delta_ms"] >= 0
    r = row(w.tabel(), "c-006", "2025-03-20")
    assert (r.status, r.payable) == ("present", 0)
    assert "back_dated" in r.flags.split(";")


def test_dated_2100_and_1970_are_flagged(sqlite_world: World) -> None:
    w = sqlite_world
    gate = w.gates["north"]
    gate.at(local(dt.date(2025, 3, 31), "21:00"))
    gate.clock.time_ms = int(dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    gate.append("in", child="c-001", method="qr")
    gate.clock.time_ms = 86_400_000
    gate.append("in", child="c-002", method="qr")
    w.deliver("north", local(dt.date(2025, 3, 31), "21:05"))
    future = w.flags("future_dated")
    assert len(future) == 1 and future[0].evidence["ahead_s"] > 70 * 365 * 86400
    back = [f for f in w.flags("back_dated") if "floor_ms" in f.evidence]
    assert len(back) == 1 and back[0].evidence["time_ms"] == 86_400_000


def test_burst_of_400_checkins_after_closing_is_flagged_and_not_payable(sqlite_world: World) -> None:
    w = sqlite_world
    gate = w.gates["north"]
    day = dt.date(2025, 3, 31)
    gate.at(local(day, "21:30"))
    for i in range(400):
        gate.append("in", child=f"c-00{i % 6 + 1}", method="qr")
        gate.clock.advance(0.001)
    w.deliver("north", local(day, "22:00"))
    burst = w.flags("burst")
    assert len(burst) == 1
    ev = burst[0].evidence
    assert ev["count"] == 400 and ev["children"] == 6 and ev["span_ms"] < 500
    assert len(ev["entries"]) == 400
    assert w.flags("outside_hours")[0].evidence["closes"] == "19:00"
    t = w.tabel()
    assert all(row(t, c, "2025-03-31").payable == 0 for c, _, _ in CHILDREN)
    assert row(t, "c-001", "2025-03-28").payable == 1


def test_unknown_child_is_flagged(sqlite_world: World) -> None:
    w = sqlite_world
    w.gates["north"].at(local(dt.date(2025, 3, 31), "09:00")).append("in", child="x-999", method="qr")
    w.deliver("north", local(dt.date(2025, 3, 31), "21:00"))
    (flag,) = w.flags("unknown_child")
    assert flag.evidence["child"] == "x-999" and flag.device == "reg.test/kgate/north"
    r = row(w.tabel(), "x-999", "2025-03-31")
    assert (r.status, r.payable, r.group) == ("present", 0, "")


def test_correction_of_an_old_entry_is_flagged(sqlite_world: World) -> None:
    w = sqlite_world
    gate = w.gates["north"]
    old = next(
        i for i in range(gate.ledger.size) if decode_entry(gate.ledger.entries(i, i + 1)[0]).kind == "in"
    )
    gate.at(local(dt.date(2025, 3, 31), "21:00")).append("correction", ref=old, reason="wrong child")
    w.deliver("north", local(dt.date(2025, 3, 31), "21:05"))
    (flag,) = w.flags("old_correction")
    assert flag.evidence["ref"] == old and flag.evidence["age_h"] > 24 * 20


# -- the other detectors ----------------------------------------------------------------------------------
def test_closed_day_face_mismatch_no_checkout(sqlite_world: World) -> None:
    w = sqlite_world
    gate = w.gates["north"]
    gate.at(local(dt.date(2025, 3, 29), "09:00")).append("in", child="c-001", method="qr")  # Saturday
    gate.at(local(dt.date(2025, 3, 31), "08:30")).append(
        "in", child="c-002", method="qr+face", evidence={"face_method": 4, "face_dist": 810}
    )
    w.deliver("north", local(dt.date(2025, 3, 31), "20:00"))
    assert w.flags("closed_day")[0].evidence["day_kind"] == "closed"
    face = w.flags("face_mismatch")[0]
    assert face.evidence["face_dist"] == 810 and face.evidence["face_method"] == 4
    checkout = {f.evidence["child"] for f in w.flags("no_checkout")}
    assert checkout == {"c-001", "c-002"}
    # an auditor clears the face flag: the day becomes payable again, and it is recorded
    assert row(w.tabel(), "c-002", "2025-03-31").payable == 0
    approval.clear_flag(w.store, face.id, by="auditor", reason="twin brother, checked", now_ms=1)
    assert row(w.tabel(), "c-002", "2025-03-31").payable == 1
    assert w.flags("face_mismatch")[0].cleared == {"by": "auditor", "reason": "twin brother, checked",
                                                    "time_ms": 1}  # fmt: skip


def test_two_places_backlog_not_enrolled(sqlite_world: World) -> None:
    w = sqlite_world
    other = w.gate("south-k2", kindergarten="K2")
    day = dt.date(2025, 3, 31)
    # c-004 is on both rosters (two_places needs both sides to have the child: docs/audit.md)
    import_roster(w.store, "K2", parse_csv(b"kind,id,name,group\nchild,c-004,Bala 4,Ai\n"), now_ms=0)
    w.gates["north"].at(local(day, "08:00")).append("in", child="c-004", method="qr")
    other.at(local(day, "08:20")).append("in", child="c-004", method="qr")
    w.deliver("south-k2", local(day, "20:00"))
    w.deliver("north", local(day, "20:00"))
    (travel,) = w.flags("two_places")
    assert travel.evidence["other_kindergarten"] == "K2" and travel.evidence["minutes_apart"] == 20.0
    assert travel.evidence["suspect"] == "this"  # K1's enrolment (28 February) is newer than K2's
    # a second gate silent for days, then delivering three past days at once
    late = w.gate("east")
    w.deliver("east", local(dt.date(2025, 3, 10), "20:00"))
    for d in (11, 12, 13):
        for i in range(8):
            late.at(local(dt.date(2025, 3, d), f"09:{i:02d}")).append(
                "in", child=f"c-00{i % 6 + 1}", method="qr"
            )
    w.deliver("east", local(dt.date(2025, 3, 17), "20:00"))
    (backlog,) = w.flags("backlog")
    assert backlog.evidence["delivered"] == 24 and backlog.evidence["over_days"] == 3
    assert backlog.evidence["silent_days"] >= 6
    # c-006 leaves the roster on the 24th; a check-in on the 26th is not enrolled
    left = ROSTER.replace("child,c-006,Бала 6,Солнышко\n", "")
    import_roster(
        w.store,
        K,
        parse_csv(left.encode()),
        now_ms=int(local(dt.date(2025, 3, 24), "12:00").timestamp() * 1000),
    )
    w.gates["north"].at(local(dt.date(2025, 3, 31), "21:00"))
    t = w.tabel()
    assert row(t, "c-006", "2025-03-31").status == "not_enrolled"
    assert row(t, "c-006", "2025-03-26").status == "present"  # checked in: present, flagged
    assert "not_enrolled" in row(t, "c-006", "2025-03-26").flags
    assert row(t, "c-006", "2025-03-26").payable == 0


def test_high_rate_child_is_flagged(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    now = [dt.datetime(2025, 2, 28, tzinfo=ZONE).timestamp()]
    register = Register(store, CosignatureSigner.generate("reg.test"), clock=lambda: now[0])
    import_roster(store, K, parse_csv(ROSTER.encode()), now_ms=0)
    gate = Gate(store, tmp_path / "g", "reg.test/kgate/g", kindergarten=K, gate="g",
                start=dt.datetime(2025, 2, 28, tzinfo=ZONE))  # fmt: skip
    for n, day in enumerate(working_days(dt.date(2025, 3, 31))):
        for i, (child, _, _) in enumerate(CHILDREN):
            if child == "c-001" or n % 4 == i % 4:
                gate.at(local(day, f"08:0{i}")).append("in", child=child, method="qr")
                gate.at(local(day, f"17:0{i}")).append("out", child=child, method="qr")
        now[0] = local(day, "20:00").timestamp()
        gate.deliver(register)
    flags = [f for f in status.build(store, K, MONTH).flags if f.rule == "high_rate"]
    assert [f.evidence["child"] for f in flags] == ["c-001"]
    assert flags[0].evidence["child_rate"] >= 0.95 and flags[0].evidence["group_rate"] < 0.5
    gate.close()
    store.close()


# -- approval --------------------------------------------------------------------------------------------
def test_approved_month_is_frozen_and_a_late_entry_raises_an_alarm(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["register", "month"]
    common = ["--db", world.url, "--kindergarten", K, "--month", MONTH]
    assert main([*argv, "approve", *common, "--by", "district"]) == 2  # not submitted yet
    assert main([*argv, "submit", *common, "--by", "director"]) == 0
    assert main([*argv, "approve", *common, "--by", "district", "--reason", "absences checked"]) == 0
    before = export.to_csv(world.tabel())
    world.gates["north"].at(local(dt.date(2025, 3, 31), "08:00")).append("in", child="c-006", method="qr")
    world.deliver("north", local(dt.date(2025, 4, 2), "20:00"))
    capsys.readouterr()
    assert main(["register", "tabel", *common, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert out.encode() == before
    assert "ALARM" in err
    alarms = [a for a in world.store.alarms() if a.kind == "tabel_changed"]
    assert len(alarms) == 1 and alarms[0].evidence is not None
    assert "entries arrived or changed after approval (1 child-days)" in alarms[0].detail  # its real cause
    assert "flag" not in alarms[0].detail.split(": ", 1)[1].split(";")[0]
    steps = approval.steps(world.store, K, MONTH)
    assert [(s.step, s.by) for s in steps] == [("submitted", "director"), ("approved", "district")]


def test_cli_errors_are_one_line(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--db", world.url, "--kindergarten", K]
    assert main(["register", "tabel", *common, "--month", "2025-13"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["register", "calendar", "set", *common, "--tz", "Mars/Olympus"]) == 2
    assert "time zone" in capsys.readouterr().err


def test_database_stored_before_the_index_gives_the_same_tabel(world: World) -> None:
    before = export.to_csv(world.tabel())
    with world.store._tx(write=True) as sql:  # as a database from before the index: no rows, no flag
        sql.run("DELETE FROM entry_index")
        sql.run("DELETE FROM meta WHERE key = ?", (index.COMPLETE,))
    assert export.to_csv(world.tabel()) == before  # indexed again on first use
    with world.store._tx(write=False) as sql:
        assert sql.one("SELECT count(*) FROM entry_index")[0] == world.gates["north"].ledger.size


def test_late_entry_for_an_approved_month_raises_an_alarm_at_ingest(world: World) -> None:
    approval.submit(world.store, K, MONTH, by="director", now_ms=1)
    approval.approve(world.store, K, MONTH, by="district", now_ms=2, reason="absences checked")
    gate = world.gates["north"]

    def alarms() -> list[dict[str, object]]:
        found = [a for a in world.store.alarms() if a.kind == late.ALARM]
        assert all(a.index is not None and a.evidence for a in found)
        return [json.loads(a.evidence or b"") for a in found]

    march = gate.at(local(dt.date(2025, 3, 31), "08:00")).append("in", child="c-006", method="qr").index
    world.deliver("north", local(dt.date(2025, 3, 31), "20:00"))
    assert [(a["month"], a["entries"]) for a in alarms()] == [(MONTH, [march])]
    gate.at(local(dt.date(2025, 4, 1), "08:00")).append("in", child="c-001", method="qr")
    world.deliver("north", local(dt.date(2025, 4, 1), "20:00"))
    assert len(alarms()) == 1  # April is not approved
    old = next(e for e in map(decode_entry, gate.ledger.entries(0, gate.ledger.size)) if e.kind == "in")
    void = gate.append("correction", ref=old.index, reason="mistaken scan").index  # dated April 1st
    world.deliver("north", local(dt.date(2025, 4, 1), "21:00"))
    assert [(a["month"], a["entries"]) for a in alarms()][1:] == [(MONTH, [void])]  # it voids a March entry
