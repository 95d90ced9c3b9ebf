"""The parent page's "my child was not there", through the real console over HTTP (SQLite and
PostgreSQL): one tap only opens a confirmation page; the confirmed report keeps the parent's comment and
holds the child-day in the табель; within 24 hours the parent withdraws it — the withdrawal is recorded
(the alarm stays for the auditors) and the табель's ``parent_report`` flag no longer holds the day;
after 24 hours a report can no longer be withdrawn.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import uvicorn

from ledger.note import CosignatureSigner
from register.app import create_app
from register.console import mount_console
from register.ingest import Batch
from register.parent_codes import create_parent_code
from register.service import Register
from register.store import Store, open_store
from register.store.base import Device as DeviceRow
from register.tabel import status
from register.users import audit_log
from tests.conftest import free_port
from tests.register.conftest import Device
from tests.register.notify_fixtures import day, device_at, subscribe

ALMATY = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 12, tzinfo=ALMATY)  # a Monday
DAY1, DAY2 = "2026-03-02", "2026-03-03"


@dataclass
class World:
    url: str
    store: Store
    now: list[float]  # the console's and the register's clock (seconds)
    code: str


def _push(register: Register, row: DeviceRow, dev: Device, start: int) -> None:
    size = dev.ledger.size
    cp = dev.ledger.checkpoint_at(size)
    assert cp is not None
    entries = tuple(dev.ledger.entries(start, size))
    register.ingest(row, Batch(dev.ledger.origin, start, entries, cp, 0, ()), evidence=b"")


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Register + console on loopback on one fake clock; C2 (Tom) came on 2 and 3 March."""
    store = open_store(db_url)
    now = [MORNING.timestamp() + 60]
    register = Register(store, CosignatureSigner.generate("reg.test"), clock=lambda: now[0])
    app = create_app(register)
    mount_console(app, store, secure=False, clock=lambda: now[0])
    dev = device_at(tmp_path / "dev", int(MORNING.timestamp() * 1000))
    row = store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(store)
    day(dev)
    dev.clock.time_ms = int((MORNING + dt.timedelta(days=1)).timestamp() * 1000)
    dev.ledger.append("in", child="C2", method="qr")
    _push(register, row, dev, 0)
    now[0] = (MORNING + dt.timedelta(days=2)).timestamp()  # 4 March: the parent reads the month
    code = create_parent_code(store, "K1", "C2", now_ms=int(now[0] * 1000))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # wait for the readiness flag, not a fixed time
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "register did not start"
        time.sleep(0.01)
    yield World(f"http://127.0.0.1:{port}", store, now, code)
    server.should_exit = True
    thread.join(10)
    dev.ledger.close()
    store.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def _parent(w: World) -> requests.Session:
    s = requests.Session()
    form = s.get(f"{w.url}/console/parent", timeout=10)
    r = s.post(f"{w.url}/console/parent", data={"csrf": _csrf(form.text), "code": w.code}, timeout=10)
    assert r.ok and "/console/parent/month" in r.url, r.text[:300]
    return s


def _report(w: World, s: requests.Session, date: str, comment: str) -> requests.Response:
    confirm = s.get(f"{w.url}/console/parent/not-there", params={"date": date}, timeout=10)
    assert confirm.ok and 'name="comment"' in confirm.text and 'name="confirm"' in confirm.text
    data = {"csrf": _csrf(confirm.text), "date": date, "confirm": "yes", "comment": comment}
    return s.post(f"{w.url}/console/parent/not-there", data=data, timeout=30)


def _held(store: Store, date: str) -> tuple[int, list[str]]:
    t = status.build(store, "K1", "2026-03")
    row = next(r for r in t.rows if r.child == "C2" and r.date.isoformat() == date)
    return row.payable, row.flags.split(";")


def _notes(store: Store) -> list[tuple[str | None, bool]]:
    with store._tx(write=False) as sql:
        rows = sql.all("SELECT comment, withdrawn_ms FROM parent_report_notes ORDER BY idx")
    return [(r[0], r[1] is not None) for r in rows]


def _reports(store: Store) -> int:
    return len([a for a in store.alarms() if a.kind == "parent_report"])


def test_one_tap_only_asks_for_confirmation(world: World) -> None:
    s = _parent(world)
    month = s.get(f"{world.url}/console/parent/month", params={"month": "2026-03"}, timeout=30)
    assert (
        f'action="/console/parent/not-there"><input type="hidden" name="date" value="{DAY1}">' in month.text
    )
    confirm = s.get(f"{world.url}/console/parent/not-there", params={"date": DAY1}, timeout=10)
    tap = s.post(
        f"{world.url}/console/parent/not-there", data={"csrf": _csrf(confirm.text), "date": DAY1}, timeout=10
    )
    assert tap.ok and tap.url.endswith(f"/console/parent/not-there?date={DAY1}")
    assert _reports(world.store) == 0 and _held(world.store, DAY1)[0] == 1


def test_confirmed_report_with_comment_is_withdrawn_within_24_hours(world: World) -> None:
    s = _parent(world)
    assert _held(world.store, DAY1)[0] == 1
    r = _report(world, s, DAY1, "он был у бабушки")
    assert r.ok and "reported=" in r.url
    assert _notes(world.store) == [("он был у бабушки", False)]
    payable, flags = _held(world.store, DAY1)
    assert payable == 0 and "parent_report" in flags

    world.now[0] += 23 * 3600  # within the window
    s = _parent(world)  # the parent session lasts less than a day: the parent opens the page again
    page = s.get(f"{world.url}/console/parent/month", params={"month": "2026-03"}, timeout=30)
    assert f'data-date="{DAY1}">' in page.text and "/console/parent/withdraw" in page.text
    done = s.post(
        f"{world.url}/console/parent/withdraw", data={"csrf": _csrf(page.text), "date": DAY1}, timeout=30
    )
    assert done.ok and f"withdrawn={DAY1}" in done.url
    assert _reports(world.store) == 1  # recorded, not deleted: the alarm stays for the auditors
    assert _notes(world.store) == [("он был у бабушки", True)]
    payable, flags = _held(world.store, DAY1)
    assert payable == 1 and "parent_report" not in flags
    assert ("parent:K1/C2", "parent/withdraw") in [(a.actor, a.action) for a in audit_log(world.store)]
    again = s.post(
        f"{world.url}/console/parent/withdraw", data={"csrf": _csrf(page.text), "date": DAY1}, timeout=30
    )
    assert again.status_code == 400  # nothing left to withdraw


def test_a_report_older_than_24_hours_cannot_be_withdrawn(world: World) -> None:
    s = _parent(world)
    assert _report(world, s, DAY2, "").ok
    assert _notes(world.store) == [(None, False)]
    world.now[0] += 24 * 3600 + 1
    s = _parent(world)  # a fresh session the next day
    page = s.get(f"{world.url}/console/parent/month", params={"month": "2026-03"}, timeout=30)
    assert "/console/parent/withdraw" not in page.text
    confirm = s.get(f"{world.url}/console/parent/not-there", params={"date": DAY2}, timeout=10)
    late = s.post(
        f"{world.url}/console/parent/withdraw", data={"csrf": _csrf(confirm.text), "date": DAY2}, timeout=30
    )
    assert late.status_code == 400 and "24" in late.text
    assert _notes(world.store) == [(None, False)]
    payable, flags = _held(world.store, DAY2)
    assert payable == 0 and "parent_report" in flags
