""" "My child was not there": the link in a real delivered message, the parent's access code, the alarm
with the entry attached, the child-day held in the табель, and an auditor's clearance (both backends).

A real register with the console on loopback (uvicorn), a real SMTP server (aiosmtpd) receiving the
message whose link the test follows, and ``kgate register flags clear`` run as the auditor would.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import uvicorn

from kgate.cli import main
from ledger.entry import decode_entry
from ledger.note import CosignatureSigner
from register.app import create_app
from register.console import mount_console, views
from register.ingest import Batch
from register.notify.channels.smtp import EmailChannel
from register.notify.dispatcher import Dispatcher
from register.notify.errors import TooManyReports
from register.notify.report import MAX_REPORTED_DAYS, Event, find_event, record_report
from register.parent_codes import create_parent_code
from register.service import Register
from register.store import Store, open_store
from register.tabel import status
from register.users import LoginPolicy, add_user
from tests.conftest import free_port
from tests.register.conftest import Device
from tests.register.notify_fixtures import day, device_at, smtp_sink, subscribe

ALMATY = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 12, tzinfo=ALMATY)  # a Monday
POLICY = LoginPolicy(max_failures=5, address_max_failures=50, lockout_s=600)


@dataclass
class World:
    url: str
    store: Store
    dev: Device
    db_url: str
    register: Register
    device_id: int


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Register + console on loopback; K1's roster subscribed; the gate's day (C0, C1, C2 in; C0 out)."""
    store = open_store(db_url)
    register = Register(store, CosignatureSigner.generate("reg.test"))
    app = create_app(register)
    mount_console(app, store, secure=False, policy=POLICY)
    dev = device_at(tmp_path / "dev", int(MORNING.timestamp() * 1000))
    row = store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(store)
    day(dev)
    size = dev.ledger.size
    cp = dev.ledger.checkpoint_at(size)
    assert cp is not None
    register.ingest(
        row, Batch(dev.ledger.origin, 0, tuple(dev.ledger.entries(0, size)), cp, 0, ()), evidence=b""
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a loaded machine: wait for the readiness flag, not a fixed time
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "register did not start"
        time.sleep(0.01)
    yield World(f"http://127.0.0.1:{port}", store, dev, db_url, register, row.id)
    server.should_exit = True
    thread.join(10)
    dev.ledger.close()
    store.close()


def _payable(store: Store, child: str) -> tuple[int, str]:
    t = status.build(store, "K1", "2026-03")
    row = next(r for r in t.rows if r.child == child and r.date == MORNING.date())
    return row.payable, row.flags


def _report_links(w: World) -> dict[str, str]:
    """Deliver the notifications to a real SMTP server; each recipient's first 'in' message's link."""
    with smtp_sink() as sink:
        channel = EmailChannel(sink.host, sink.port, "k@reg.test", domain="reg.test")
        dispatcher = Dispatcher(w.store, {"email": channel}, parent_url=w.url + "/console")
        assert dispatcher.run_once().sent == 3  # C0 in, C0 out (g-0), C2 in (g-2)
        dispatcher.close()
        mails = sink.messages
    links: dict[str, str] = {}
    for m in mails:
        text = m.get_content()
        if "arrived" in text or "келді" in text:
            found = re.search(r"(http://\S+/console/parent/report\?e=[0-9a-f]{32})", text)
            assert found, text
            links[str(m["To"])] = found[1]
    return links


def test_parent_reports_an_event_alarm_holds_the_day_until_cleared(world: World) -> None:
    w = world
    link = _report_links(w)["jane@example.com"]  # g-2, the guardian of C2 (Tom)
    code_c2 = create_parent_code(w.store, "K1", "C2", now_ms=0)
    code_c0 = create_parent_code(w.store, "K1", "C0", now_ms=0)
    assert _payable(w.store, "C2") == (1, "no_checkout")  # present, the flag does not hold payment

    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "08:14 02.03.2026" in page.text  # C2's check-in, local time
    key = link.rsplit("=", 1)[1]
    post = f"{w.url}/console/parent/report"
    # Another child's valid code does not open this event; a wrong code neither. Nothing recorded.
    for code in (code_c0, "0000-0000-0000-0000"):
        refused = requests.post(post, data={"e": key, "code": code}, timeout=10)
        assert refused.status_code == 401
    assert not [a for a in w.store.alarms() if a.kind == "parent_report"]

    done = requests.post(post, data={"e": key, "code": code_c2.lower()}, timeout=10)  # one step
    assert done.status_code == 200 and "auditors are told" in done.text
    again = requests.post(post, data={"e": key, "code": code_c2}, timeout=10)
    assert again.status_code == 200 and "already reported" in again.text
    alarms = [a for a in w.store.alarms() if a.kind == "parent_report"]
    assert len(alarms) == 1
    index = alarms[0].index
    assert index is not None
    assert alarms[0].evidence == w.dev.ledger.entries(index, index + 1)[0]  # the entry, byte for byte
    assert "C2" in alarms[0].detail
    payable, flags = _payable(w.store, "C2")
    assert payable == 0 and "parent_report" in flags.split(";")
    assert _payable(w.store, "C0")[0] == 1  # other children's days are untouched

    flag = f"parent_report:{w.dev.ledger.origin}:{index}"
    out = io.StringIO()
    with redirect_stdout(out):
        exit_code = main(["register", "flags", "clear", flag, "--reason", "checked the video: he was there",
                     "--by", "aud", "--db", w.db_url])  # fmt: skip
    assert exit_code == 0, out.getvalue()
    assert _payable(w.store, "C2")[0] == 1


def test_unknown_link_is_404(world: World) -> None:
    assert requests.get(f"{world.url}/console/parent/report?e={'0' * 32}", timeout=10).status_code == 404
    assert requests.get(f"{world.url}/console/parent/report?e=x", timeout=10).status_code == 404


# -- a report of every day of a month: rate-limited, one pattern for the auditors, hidden from directors --


def _more_days(w: World, days: int) -> dict[tuple[dt.date, str], str]:
    """C2 in at 08:xx and out at 17:xx (picked up by g-2) on the ``days`` days after MORNING, pushed; the
    notification key of each (local day, kind) of C2 to g-2 by email."""
    old = w.dev.ledger.size
    for n in range(1, days + 1):
        w.dev.clock.time_ms = int((MORNING + dt.timedelta(days=n)).timestamp() * 1000)
        w.dev.ledger.append("in", child="C2", method="qr")
        w.dev.clock.advance(9 * 3600)
        w.dev.ledger.append("out", child="C2", method="qr", evidence={"guardian": "g-2"})
    size = w.dev.ledger.size
    cp = w.dev.ledger.checkpoint_at(size)
    assert cp is not None
    batch = Batch(w.dev.ledger.origin, old, tuple(w.dev.ledger.entries(old, size)), cp, old,
                  tuple(w.dev.ledger.consistency_proof(old, size)))  # fmt: skip
    row = w.store.device_by_origin(w.dev.ledger.origin)
    assert row is not None
    w.register.ingest(row, batch, evidence=b"")
    with w.store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT n.key, e.data FROM notify_outbox n JOIN entries e ON e.device_id = n.device_id "
            "AND e.idx = n.idx WHERE n.guardian = 'g-2' AND n.channel = 'email'"
        )
    keys = {}
    for key, data in rows:
        entry = decode_entry(bytes(data))
        keys[(dt.datetime.fromtimestamp(entry.time_ms / 1000, ALMATY).date(), entry.kind)] = str(key)
    return keys


def _held_on(store: Store, child: str, on: dt.date) -> bool:
    """Whether a parent's report holds the child-day (weekends and holidays are not payable anyway)."""
    t = status.build(store, "K1", f"{on:%Y-%m}")
    row = next(r for r in t.rows if r.child == child and r.date == on)
    return "parent_report" in row.flags.split(";")


def test_reporting_every_day_is_limited_one_pattern_for_auditors_none_for_directors(world: World) -> None:
    w = world
    keys = _more_days(w, MAX_REPORTED_DAYS + 2)
    code = create_parent_code(w.store, "K1", "C2", now_ms=0)
    post = f"{w.url}/console/parent/report"
    days = [MORNING.date() + dt.timedelta(days=n) for n in range(1, MAX_REPORTED_DAYS + 3)]

    def report(on: dt.date, kind: str = "in") -> requests.Response:
        return requests.post(post, data={"e": keys[(on, kind)], "code": code}, timeout=30)

    for reported in days[:MAX_REPORTED_DAYS]:
        assert report(reported).status_code == 200
    assert report(days[0], "out").status_code == 200  # another entry of a day already reported: allowed
    for late in days[MAX_REPORTED_DAYS:]:  # one day more than a month allows, twice
        refused = report(late)
        assert refused.status_code == 429 and "Too many reports this month" in refused.text
        assert 0 < int(refused.headers["Retry-After"]) <= 31 * 86400
    alarms = w.store.alarms()
    assert len([a for a in alarms if a.kind == "parent_report"]) == MAX_REPORTED_DAYS + 1
    (pattern,) = [a for a in alarms if a.kind == "parent_report_pattern"]  # one pattern, not one per try
    assert "C2" in pattern.detail and f"{MAX_REPORTED_DAYS} days of 2026-03" in pattern.detail
    assert [_held_on(w.store, "C2", d) for d in days] == [True] * MAX_REPORTED_DAYS + [False, False]
    # the auditors see the reports and the pattern; a director or district official of K1 sees neither
    now_ms = int(time.time() * 1000)
    auditor = {a["kind"] for a in views.overview(w.store, None, page=0, apage=0, now_ms=now_ms)["alarms"]}
    director = views.overview(w.store, {"K1"}, page=0, apage=0, now_ms=now_ms)["alarms"]
    assert {"parent_report", "parent_report_pattern"} <= auditor
    assert not any(a["kind"].startswith("parent_report") or "C2" in a["detail"] for a in director)
    # the held days themselves: the director's flags page and табель CSV say only `held_for_audit`
    # (no rule, no entry, no evidence); the auditor's name the reports
    add_user(w.store, "dir1", "director", "K1", "a long enough password", now_ms=0)
    add_user(w.store, "aud", "auditor", None, "a long enough password", now_ms=0)
    month = f"{days[0]:%Y-%m}"
    seen = {}
    for who in ("dir1", "aud"):
        browser = requests.Session()
        form = browser.get(f"{w.url}/console/login", timeout=30)
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        login = browser.post(
            f"{w.url}/console/login", allow_redirects=False, timeout=30,
            data={"csrf": csrf[1], "name": who, "password": "a long enough password"},
        )  # fmt: skip
        assert login.status_code == 303, login.text
        page = browser.get(f"{w.url}/console/k/K1/flags", params={"month": month}, timeout=30)
        download = browser.get(f"{w.url}/console/k/K1/tabel.csv", params={"month": month}, timeout=30)
        assert page.status_code == download.status_code == 200
        seen[who] = (page.text, download.text)
    director_page, director_csv = seen["dir1"]
    auditor_page, auditor_csv = seen["aud"]
    assert "parent_report" not in director_page + director_csv
    assert director_page.count("held_for_audit") == MAX_REPORTED_DAYS + 1  # day 1: its in and its out
    assert director_csv.count("held_for_audit") == MAX_REPORTED_DAYS  # a row per child-day
    assert auditor_csv.count("parent_report") == MAX_REPORTED_DAYS
    assert "parent_report" in auditor_page and "held_for_audit" not in auditor_page + auditor_csv


def test_concurrent_reports_cannot_pass_the_limit_together(world: World) -> None:
    w = world
    keys = _more_days(w, MAX_REPORTED_DAYS + 3)
    events = []
    for (_day, kind), key in sorted(keys.items()):
        if kind == "in":
            event = find_event(w.store, key)
            assert event is not None
            events.append(event)
    barrier = threading.Barrier(len(events))
    results: list[str] = []

    def report(event: Event) -> None:
        barrier.wait(timeout=60)
        try:
            record_report(w.store, event, now_ms=int(time.time() * 1000))
            results.append("ok")
        except TooManyReports:
            results.append("refused")

    threads = [threading.Thread(target=report, args=(e,)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == ["ok"] * MAX_REPORTED_DAYS + ["refused"] * (len(events) - MAX_REPORTED_DAYS)
    assert len([a for a in w.store.alarms() if a.kind == "parent_report_pattern"]) == 1
