"""Approval binds the submitted табель, and the late-entry alarm reckons months in the kindergarten's zone;
entries from the terminal's own gate code, under several process time zones."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from register.tabel import approval, late
from register.tabel.errors import TabelError
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
        approval.approve(town.store, "K1", MONTH, by="district", now_ms=2)
    assert approval.frozen(town.store, "K1", MONTH) is None
    again = approval.submit(town.store, "K1", MONTH, by="director", now_ms=3)
    assert again != digest
    assert approval.approve(town.store, "K1", MONTH, by="district", now_ms=4) == again
    frozen = approval.frozen(town.store, "K1", MONTH)
    assert frozen is not None and frozen.count(b",present,") == 2  # both check-ins, as re-submitted


def test_the_late_entry_month_is_the_kindergartens_local_month(town: Town) -> None:
    """Approved March in Almaty (UTC+5): an entry at 02:00 on 1 April local is April's (it is still
    31 March in UTC), one at 03:00 on 1 March local is March's (28 February in UTC)."""
    gate, s = town.terminal("north", kindergarten="K1", opens=dt.time(0, 0)), town.serials("K1")
    gate.accepted(s["c-001"], at(28, "08:00", month=2))
    gate.deliver(at(28, "20:00", month=2))
    approval.submit(town.store, "K1", MONTH, by="director", now_ms=1)
    approval.approve(town.store, "K1", MONTH, by="district", now_ms=2)

    def alarms() -> list[tuple[str, list[int]]]:
        found = [json.loads(a.evidence or b"") for a in town.store.alarms() if a.kind == late.ALARM]
        return [(a["month"], a["entries"]) for a in found]

    march = gate.accepted(s["c-002"], at(1, "03:00"))  # 28 Feb 22:00 UTC
    gate.deliver(at(1, "20:00"))
    assert alarms() == [(MONTH, [march])]
    gate.accepted(s["c-003"], at(1, "02:00", month=4))  # 31 Mar 21:00 UTC
    gate.deliver(at(1, "20:00", month=4))
    assert alarms() == [(MONTH, [march])]  # April is not approved: no new alarm
