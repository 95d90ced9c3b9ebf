"""``kgate register flags clear``: several flags at once, by id and/or by a filter, one reason recorded per
flag, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kgate.cli import main
from register.tabel import status
from tests.register.tabel_terminal import MONTH, Town, at, open_town, process_zone, roster_csv, row

__all__ = ["process_zone"]
pytestmark = pytest.mark.usefixtures("process_zone")

CHILDREN = ["c-001", "c-002", "c-003"]
DAYS = (3, 4, 5)


@pytest.fixture
def town(tmp_path: Path) -> Iterator[Town]:
    """Three evenings at 19:45 (past the closing grace) through K1's gate: 3 ``outside_hours`` flags (one
    per device-day) and 9 ``no_checkout`` notes."""
    t = open_town(tmp_path)
    t.publish("K1", roster_csv(CHILDREN))
    gate, serials = t.terminal("north", kindergarten="K1"), t.serials("K1")
    for day in DAYS:
        for i, child in enumerate(CHILDREN):
            gate.accepted(serials[child], at(day, f"19:4{5 + i}"))
        gate.deliver(at(day, "22:00"))
    yield t
    t.close()


def clearances(t: Town) -> dict[str, tuple[str, str, int]]:
    with t.store._tx(write=False) as sql:
        rows = sql.all("SELECT flag, cleared_by, reason, time_ms FROM tabel_clearances")
    return {str(r[0]): (str(r[1]), str(r[2]), int(r[3])) for r in rows}


def clear(t: Town, *argv: str) -> int:
    return main(["register", "flags", "clear", *argv, "--by", "auditor", "--db", t.url])


def test_a_filter_clears_every_uncleared_flag_of_a_rule_with_one_reason(
    town: Town, capsys: pytest.CaptureFixture[str]
) -> None:
    hours = [f.id for f in town.flags("K1", "outside_hours")]
    assert len(hours) == 3 and all(
        row(town.tabel("K1"), c, at(3, "00:00").date()).payable == 0 for c in CHILDREN
    )
    reason = "the evening group: staff confirmed"
    argv = ["--kindergarten", "K1", "--month", MONTH, "--rule", "outside_hours", "--reason", reason]
    assert clear(town, *argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "3 flags cleared" and sorted(out[:-1]) == sorted(f"cleared {i}" for i in hours)
    recorded = clearances(town)
    assert set(recorded) == set(hours)  # no_checkout notes untouched
    assert {(by, why) for by, why, _ in recorded.values()} == {("auditor", reason)}  # per flag
    t = town.tabel("K1")
    assert all(r.payable == 1 for r in t.rows if r.status == "present")
    assert all(f.cleared is not None for f in t.flags if f.rule == "outside_hours")
    # again: nothing left to clear under that filter
    assert clear(town, *argv) == 0
    assert capsys.readouterr().out.splitlines() == ["0 flags cleared"]


def test_ids_and_a_filter_together_and_all_or_nothing(town: Town, capsys: pytest.CaptureFixture[str]) -> None:
    notes = sorted(f.id for f in town.flags("K1", "no_checkout"))
    hours = sorted(f.id for f in town.flags("K1", "outside_hours"))
    assert clear(town, hours[0], "--reason", "checked") == 0
    assert capsys.readouterr().out.splitlines() == [f"cleared {hours[0]}", "1 flag cleared"]
    # one of the named flags is already cleared: refused, and none of the others is cleared either
    assert clear(town, notes[0], notes[1], hours[0], "--reason", "checked") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"flag {hours[0]} is already cleared" in err
    assert set(clearances(town)) == {hours[0]}
    # two ids plus the filter (which skips what is already cleared)
    argv = ["--kindergarten", "K1", "--month", MONTH, "--rule", "outside_hours", "--reason", "checked"]
    assert clear(town, notes[0], notes[1], *argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "4 flags cleared"
    assert set(clearances(town)) == {*hours, notes[0], notes[1]}
    # all flags of the month, every rule
    assert clear(town, "--kindergarten", "K1", "--month", MONTH, "--reason", "month reviewed") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "7 flags cleared"
    assert all(f.cleared is not None for f in status.build(town.store, "K1", MONTH).flags)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reason", "x"], "name a FLAG"),
        (["--kindergarten", "K1", "--reason", "x"], "--kindergarten and --month go together"),
        (["--rule", "burst", "--reason", "x"], "--kindergarten and --month go together"),
        (["--kindergarten", "K1", "--month", "2025-13", "--reason", "x"], "expected YYYY-MM"),
        (["--kindergarten", "K1", "--month", MONTH, "--reason", " "], "--reason must be"),
    ],
)
def test_bad_requests_are_one_line_and_change_nothing(
    town: Town, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert clear(town, *argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert clearances(town) == {}
