"""The demo's month (kgate/month.py): the табель it writes agrees with an independent recount of the
register database, the XLSX totals agree with the CSV, and the dishonest evening is flagged and unpaid."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import cbor2
import pytest

from kgate.cli import main
from tests.register.test_tabel import _xlsx_totals

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the module fixture runs the demo (30 children)
ALMATY = ZoneInfo("Asia/Almaty")
PREFIX = b"kgate/entry/v1\n"
Demo = tuple[Path, dict[str, object]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    out = tmp_path_factory.mktemp("demo")
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", buf)
        assert main(["demo", "--out", str(out), "--children", "30", "--json"]) == 0
    yield out, json.loads(buf.getvalue())


def table(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "tabel.csv").read_text("utf-8"))))


def test_recount_from_the_register_database_equals_the_present_rows(demo: Demo) -> None:
    out, summary = demo
    month = str(summary["tabel"]["month"])  # type: ignore[index]
    present: set[tuple[str, str]] = set()
    with sqlite3.connect(out / "register" / "register.db") as db:
        devices = [d for (d,) in db.execute("SELECT id FROM devices")]
        assert len(devices) == 2  # the real gate day and the month's simulated gate
        for device in devices:
            entries = []
            for (data,) in db.execute("SELECT data FROM entries WHERE device_id = ? ORDER BY idx", (device,)):
                assert data.startswith(PREFIX)
                entries.append(cbor2.loads(data[len(PREFIX) :]))
            voided = {e["x"] for e in entries if e["k"] == "correction"}
            for e in entries:
                assert e["s"] is True  # every demo clock is synced: no re-anchoring to redo
                if e["k"] == "in" and e["i"] not in voided:
                    day = dt.datetime.fromtimestamp(e["t"] / 1000, ALMATY).date()
                    if f"{day:%Y-%m}" == month:
                        present.add((e["c"], day.isoformat()))
    rows = table(out)
    assert {(r["child"], r["date"]) for r in rows if r["status"] == "present"} == present
    assert len(present) > 300
    statuses = {r["status"] for r in rows}
    assert {"present", "absent", "closed"} <= statuses
    assert any(r["method"] == "staff" for r in rows if r["status"] == "present")  # forgotten check-ins
    assert any(r["absence_reason"] for r in rows if r["status"] == "absent")
    assert any(r["date"].endswith("-09") and r["status"] == "closed" for r in rows)  # the closed Monday


def test_a_mistaken_scan_is_voided(demo: Demo) -> None:
    out, _ = demo
    with sqlite3.connect(out / "register" / "register.db") as db:
        corrections = [
            cbor2.loads(d[len(PREFIX) :])
            for (d,) in db.execute("SELECT data FROM entries")
            if b"correction" in d
        ]
    assert len(corrections) == 1
    assert "mistaken" in corrections[0]["n"]


def test_xlsx_totals_equal_the_csv(demo: Demo) -> None:
    out, _ = demo
    rows = table(out)
    groups = sorted({r["group"] for r in rows})
    totals = _xlsx_totals((out / "tabel.xlsx").read_bytes())
    assert len(totals) == len(groups)
    for (present, payable, amount), group in zip(totals, groups, strict=True):
        mine = [r for r in rows if r["group"] == group]
        assert present == sum(r["status"] == "present" for r in mine)
        assert payable == sum(r["payable"] == "1" for r in mine)
        assert amount == payable * 250_000 // 100  # tenge


def test_the_dishonest_evening_is_flagged_and_not_payable(demo: Demo) -> None:
    out, summary = demo
    doc = json.loads((out / "anomalies.json").read_text("utf-8"))
    bursts = [f for f in doc["flags"] if f["rule"] == "burst"]
    late = [f for f in doc["flags"] if f["rule"] == "outside_hours"]
    assert len(bursts) == 1 and len(late) == 1 and bursts[0]["holding"]
    evening = {tuple(cd) for cd in bursts[0]["child_days"]}
    assert len(evening) == summary["tabel"]["dishonest_children"] >= 5  # type: ignore[index]
    assert bursts[0]["evidence"]["count"] == len(evening)
    assert all(" 21:4" in t for t in late[0]["evidence"]["times"])  # after closing (19:00)
    rows = {(r["child"], r["date"]): r for r in table(out)}
    for child_day in evening:
        row = rows[child_day]
        assert row["status"] == "present" and row["payable"] == "0" and "burst" in row["flags"]
    others = [r for k, r in rows.items() if k not in evening and r["status"] == "present"]
    assert sum(r["payable"] == "1" for r in others) == len(others)  # nothing else held
