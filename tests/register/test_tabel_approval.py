"""Approval binds the submitted табель, and the late-entry alarm reckons months in the kindergarten's zone;
entries from the terminal's own gate code, under several process time zones."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kgate.cli import main
from register.tabel import approval, calendar, late
from register.tabel.approval import clear_flags
from register.tabel.errors import NotFound, TabelError
from tests.register.tabel_terminal import MONTH, Town, at, open_town, process_zone, roster_csv

__all__ = ["process_zone"]
pytestmark = pytest.mark.usefixtures("process_zone")

CHILDREN = ["c-001", "c-002", "c-003"]


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    t = open_town(tmp_path)
    t.publish("K1", roster_csv(CHILDREN))
    yield t
    t.close()


def test_a_tabel_changed_since_submission_is_not_approved(town: Town) -> None:
    gate, s = town.terminal("north", kindergarten="K1"), town.serials("K1")
    gate.accepted(s["c-001"], at(3, "08:00"))
    gate.deliver(at(3, "20:00"))
    digest = approval.submit(town.store, "K1", MONTH, by="director", now_ms=1)
    gate.accepted(s["c-002"], at(4, "08:00"))  # after submission: the табель is now another one
    gate.deliver(at(4, "20:00"))
    with pytest.raises(TabelError, match="changed since it was submitted"):
        approval.approve(town.store, "K1", MONTH, by="district", now_ms=2, reason="checked")
    assert approval.frozen(town.store, "K1", MONTH) is None
    again = approval.submit(town.store, "K1", MONTH, by="director", now_ms=3)
    assert again != digest
    assert approval.approve(town.store, "K1", MONTH, by="district", now_ms=4, reason="checked") == again
    frozen = approval.frozen(town.store, "K1", MONTH)
    assert frozen is not None and frozen.count(b",present,") == 2  # both check-ins, as re-submitted


def test_the_late_entry_month_is_the_kindergartens_local_month(town: Town) -> None:
    """Approved March in Almaty (UTC+5): an entry at 02:00 on 1 April local is April's (it is still
    31 March in UTC), one at 03:00 on 1 March local is March's (28 February in UTC)."""
    gate, s = town.terminal("north", kindergarten="K1", opens=dt.time(0, 0)), town.serials("K1")
    gate.accepted(s["c-001"], at(28, "08:00", month=2))
    gate.deliver(at(28, "20:00", month=2))
    approval.submit(town.store, "K1", MONTH, by="director", now_ms=1)
    approval.approve(town.store, "K1", MONTH, by="district", now_ms=2, reason="checked")

    def alarms() -> list[tuple[str, list[int]]]:
        found = [json.loads(a.evidence or b"") for a in town.store.alarms() if a.kind == late.ALARM]
        return [(a["month"], a["entries"]) for a in found]

    march = gate.accepted(s["c-002"], at(1, "03:00"))  # 28 Feb 22:00 UTC
    gate.deliver(at(1, "20:00"))
    assert alarms() == [(MONTH, [march])]
    gate.accepted(s["c-003"], at(1, "02:00", month=4))  # 31 Mar 21:00 UTC
    gate.deliver(at(1, "20:00", month=4))
    assert alarms() == [(MONTH, [march])]  # April is not approved: no new alarm


# -- guard rails: a reason to approve despite open flags or absences, reopening, the alarm's real cause ----
@pytest.fixture
def both(tmp_path: Path, db_url: str) -> Iterator[Town]:
    """K1 on each backend: c-001 checked in at 19:45 on the 3rd (after closing: an ``outside_hours`` flag
    holding its payment), c-002 at 08:00 the same day; every other working day absent without a reason."""
    t = open_town(tmp_path, db_url)
    t.publish("K1", roster_csv(CHILDREN))
    gate, s = t.terminal("north", kindergarten="K1"), t.serials("K1")
    gate.accepted(s["c-002"], at(3, "08:00"))
    gate.accepted(s["c-001"], at(3, "19:45"))
    gate.deliver(at(3, "22:00"))
    yield t
    t.close()


def month_cli(t: Town, command: str, *argv: str) -> int:
    return main(
        ["register", "month", command, "--db", t.url, "--kindergarten", "K1", "--month", MONTH, *argv]
    )


def explain_absences(t: Town) -> int:
    absent = [r for r in t.tabel("K1").rows if r.status == "absent" and not r.absence_reason]
    for r in absent:
        calendar.add_absence(t.store, "K1", r.child, r.date, "family", document=None, by="director", now_ms=5)
    return len(absent)


def test_approval_with_open_holding_flags_or_unexplained_absences_needs_a_reason(
    both: Town, capsys: pytest.CaptureFixture[str]
) -> None:
    t = both
    held = [f.id for f in t.flags("K1", "outside_hours")]
    assert len(held) == 1
    absent = sum(1 for r in t.tabel("K1").rows if r.status == "absent")
    assert month_cli(t, "submit", "--by", "director") == 0
    assert month_cli(t, "approve", "--by", "district") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"1 open payment-holding flag (outside_hours) and {absent} absences without a reason" in err
    assert "--reason" in err
    assert approval.frozen(t.store, "K1", MONTH) is None
    assert [s.step for s in approval.steps(t.store, "K1", MONTH)] == ["submitted"]
    assert month_cli(t, "approve", "--by", "district", "--reason", " ") == 2  # a blank reason is none
    assert "--reason must be" in capsys.readouterr().err

    # the flag cleared: the absences alone still need a reason
    clear_flags(t.store, held, by="auditor", reason="evening group", now_ms=3)
    approval.submit(t.store, "K1", MONTH, by="director", now_ms=4)
    with pytest.raises(TabelError, match=f"has {absent} absences without a reason: approve with --reason"):
        approval.approve(t.store, "K1", MONTH, by="district", now_ms=5)
    # every absence explained: approved without a reason
    assert explain_absences(t) == absent
    digest = approval.submit(t.store, "K1", MONTH, by="director", now_ms=6)
    assert approval.concerns(t.tabel("K1")).text() == ""
    assert approval.approve(t.store, "K1", MONTH, by="district", now_ms=7) == digest
    assert approval.steps(t.store, "K1", MONTH)[-1].reason == ""


def test_the_reason_is_recorded_with_the_approval_and_shown_in_its_steps(
    both: Town, capsys: pytest.CaptureFixture[str]
) -> None:
    t = both
    assert month_cli(t, "submit", "--by", "director") == 0
    why = "flag checked on site; absences: the families were phoned"
    assert month_cli(t, "approve", "--by", "district", "--reason", why) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"K1 {MONTH}: approved, sha256 ")
    assert month_cli(t, "status") == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(s["step"], s["by"], s["reason"]) for s in shown] == [
        ("submitted", "director", ""),
        ("approved", "district", why),
    ]
    assert approval.frozen(t.store, "K1", MONTH) is not None


def test_a_month_is_reopened_with_a_reason_then_submitted_and_approved_again(
    both: Town, capsys: pytest.CaptureFixture[str]
) -> None:
    t = both
    assert month_cli(t, "reopen", "--by", "district", "--reason", "x") == 2  # not approved: nothing to reopen
    assert "is not approved: nothing to reopen" in capsys.readouterr().err
    first = approval.submit(t.store, "K1", MONTH, by="director", now_ms=1)
    approval.approve(t.store, "K1", MONTH, by="district", now_ms=2, reason="checked")
    assert late.approved_months(t.store, "K1") == {MONTH}
    with pytest.raises(TabelError, match=r"already approved \(the district reopens it first"):
        approval.submit(t.store, "K1", MONTH, by="director", now_ms=3)
    with pytest.raises(SystemExit):  # argparse: --reason is required
        month_cli(t, "reopen", "--by", "district")
    capsys.readouterr()
    assert month_cli(t, "reopen", "--by", "district", "--reason", "a certificate came late") == 0
    assert capsys.readouterr().out.strip() == f"K1 {MONTH}: reopened, sha256 {first}"
    assert approval.frozen(t.store, "K1", MONTH) is None and late.approved_months(t.store, "K1") == set()
    # not approved again until submitted again
    with pytest.raises(NotFound, match="was not submitted since it was reopened"):
        approval.approve(t.store, "K1", MONTH, by="district", now_ms=5, reason="checked")
    # the director corrects the month (a late certificate) and submits it; the district approves again
    r = next(r for r in t.tabel("K1").rows if r.child == "c-003" and r.status == "absent")
    calendar.add_absence(
        t.store, "K1", "c-003", r.date, "child_ill", document="No. 17", by="director", now_ms=6
    )
    again = approval.submit(t.store, "K1", MONTH, by="director", now_ms=7)
    assert again != first
    assert approval.approve(t.store, "K1", MONTH, by="district", now_ms=8, reason="rest checked") == again
    frozen = approval.frozen(t.store, "K1", MONTH)
    assert frozen is not None and b",child_ill," in frozen
    steps = approval.steps(t.store, "K1", MONTH)  # history kept: nothing deleted or edited
    assert [(s.step, s.digest, s.reason) for s in steps] == [
        ("submitted", first, ""),
        ("approved", first, "checked"),
        ("reopened", first, "a certificate came late"),
        ("submitted", again, ""),
        ("approved", again, "rest checked"),
    ]
    assert late.approved_months(t.store, "K1") == {MONTH}


def test_a_flag_cleared_after_approval_says_so_and_whether_the_amount_changes(
    both: Town, capsys: pytest.CaptureFixture[str]
) -> None:
    t = both
    approval.submit(t.store, "K1", MONTH, by="director", now_ms=1)
    approval.approve(t.store, "K1", MONTH, by="district", now_ms=2, reason="checked")
    # a note (holds nothing) cleared after approval: the табель does not change, no alarm
    note = next(f.id for f in t.flags("K1", "no_checkout"))
    clear_flags(t.store, [note], by="auditor", reason="left with the teacher", now_ms=3)
    assert approval.document(t.store, "K1", MONTH, "csv", now_ms=4)[1] is None
    # the holding flag cleared after approval: c-001's 3rd becomes payable
    held = next(f.id for f in t.flags("K1", "outside_hours"))
    clear_flags(t.store, [held], by="auditor", reason="evening group", now_ms=5)
    assert main(["register", "tabel", "--db", t.url, "--kindergarten", "K1", "--month", MONTH]) == 0
    out, err = capsys.readouterr()
    assert out.encode() == approval.frozen(t.store, "K1", MONTH)  # the approved табель stands
    alarms = [a for a in t.store.alarms() if a.kind == approval.ALARM]
    assert len(alarms) == 1 and alarms[0].detail in err
    detail = alarms[0].detail
    assert f"flag {held} (outside_hours) was cleared after approval by auditor: 'evening group'" in detail
    assert "the payable amount would change from 2500.00 tenge to 5000.00 tenge (1 -> 2" in detail
    assert "entries arrived" not in detail and note not in detail  # the note changed nothing
    # produced again: the same alarm, not another one
    approval.document(t.store, "K1", MONTH, "csv", now_ms=6)
    assert [a.detail for a in t.store.alarms() if a.kind == approval.ALARM] == [detail]


def test_an_absence_reason_entered_after_approval_leaves_the_amount_unchanged(both: Town) -> None:
    t = both
    approval.submit(t.store, "K1", MONTH, by="director", now_ms=1)
    approval.approve(t.store, "K1", MONTH, by="district", now_ms=2, reason="checked")
    r = next(r for r in t.tabel("K1").rows if r.status == "absent")
    calendar.add_absence(t.store, "K1", r.child, r.date, "child_ill", document=None, by="director", now_ms=3)
    _, changed = approval.document(t.store, "K1", MONTH, "csv", now_ms=4)
    assert changed is not None
    assert "absence reasons entered after approval (1 child-days)" in changed
    assert "the payable amount is unchanged (1 child-days, 2500.00 tenge)" in changed
    assert "entries arrived" not in changed and "cleared" not in changed
