"""The parents' emails as received by a real SMTP server: the kindergarten's name, the sender's name, the
time of sending as ``Date``, "late" only for an entry that reached the register late, and RFC 8058
one-click unsubscribe through the real HTTP endpoint of a register on loopback (SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
import uvicorn

from ledger.note import CosignatureSigner
from register.app import create_app
from register.console import mount_console
from register.ingest import Batch
from register.notify.channels.smtp import EmailChannel
from register.notify.contacts import import_contacts, parse_contacts
from register.notify.dispatcher import Dispatcher
from register.notify.errors import NotifyConfigError
from register.service import Register
from register.store import Store, open_store
from register.store.base import Device as DeviceRow
from tests.conftest import free_port
from tests.register.conftest import Device
from tests.register.notify_fixtures import CONTACTS, day, device_at, smtp_sink, subscribe

ALMATY = ZoneInfo("Asia/Almaty")
MORNING = dt.datetime(2026, 3, 2, 8, 12, tzinfo=ALMATY)
NAME = "«Балапан» балабақшасы"


@dataclass
class World:
    url: str
    store: Store
    dev: Device
    row: DeviceRow
    register: Register
    now: list[float]  # the register's clock (seconds)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Register + console on loopback; K1 named for messages; the gate's day pushed 2 minutes after it."""
    store = open_store(db_url)
    now = [0.0]
    register = Register(store, CosignatureSigner.generate("reg.test"), clock=lambda: now[0])
    app = create_app(register)
    mount_console(app, store, secure=False)
    dev = device_at(tmp_path / "dev", int(MORNING.timestamp() * 1000))
    row = store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(store)
    import_contacts(store, "K1", parse_contacts(CONTACTS.encode()), name=NAME)
    day(dev)  # 08:12 .. 08:15
    now[0] = MORNING.timestamp() + 5 * 60  # online: the register has each entry within minutes
    w = World("", store, dev, row, register, now)
    _push_from(w, 0)
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
    w.url = f"http://127.0.0.1:{port}"
    yield w
    server.should_exit = True
    thread.join(10)
    dev.ledger.close()
    store.close()


def _push_from(w: World, start: int) -> None:
    size = w.dev.ledger.size
    cp = w.dev.ledger.checkpoint_at(size)
    assert cp is not None
    entries = tuple(w.dev.ledger.entries(start, size))
    w.register.ingest(w.row, Batch(w.dev.ledger.origin, start, entries, cp, 0, ()), evidence=b"")


def _deliver(w: World, start_s: float, sender_name: str | None = NAME) -> list[EmailMessage]:
    """One dispatcher pass to a real SMTP server; its clock starts at ``start_s`` and ticks 1 s a read."""
    clock = [start_s]

    def tick() -> float:
        clock[0] += 1
        return clock[0]

    with smtp_sink() as sink:
        channel = EmailChannel(sink.host, sink.port, "k@reg.test", domain="reg.test", sender_name=sender_name)
        dispatcher = Dispatcher(w.store, {"email": channel}, parent_url=w.url + "/console", clock=tick)
        while dispatcher.run_once().sent:
            pass
        dispatcher.close()
        return sink.messages


def _unsubscribed(store: Store) -> list[tuple[str, str]]:
    with store._tx(write=False) as sql:
        rows = sql.all("SELECT guardian, address FROM notify_unsubscribed ORDER BY guardian")
    return [(str(r[0]), str(r[1])) for r in rows]


def test_mail_names_the_kindergarten_and_sender_and_is_dated_when_sent(world: World) -> None:
    sent_at = MORNING.timestamp() + 6 * 60
    mails = _deliver(world, sent_at)
    assert len(mails) == 3  # C0 in and out to g-0, C2 in to g-2 (g-1 opted out)
    dates = [email.utils.parsedate_to_datetime(str(m["Date"])).timestamp() for m in mails]
    assert len(set(dates)) == 3, dates  # each message's own time of sending, not one Date for all
    assert all(sent_at < d <= sent_at + 30 for d in dates), dates
    for m in mails:
        sender = m["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == (NAME, "k@reg.test")
        text = m.get_content()
        assert NAME in text and "K1" not in text
        assert "late" not in text.lower() and "кешігіп" not in text  # pushed within minutes: on time


def test_late_only_for_an_entry_that_reached_the_register_late(world: World) -> None:
    _deliver(world, MORNING.timestamp() + 6 * 60)
    old = world.dev.ledger.size
    world.dev.clock.time_ms = int((MORNING + dt.timedelta(hours=1)).timestamp() * 1000)
    world.dev.ledger.append("out", child="C2", method="qr", evidence={"guardian": "g-2"})  # 09:12
    world.now[0] = (MORNING + dt.timedelta(hours=4)).timestamp()  # the gate was offline for 3 hours
    _push_from(world, old)
    world.dev.clock.time_ms = int((MORNING + dt.timedelta(hours=5)).timestamp() * 1000)
    world.dev.ledger.append("in", child="C0", method="qr")  # 13:12, pushed one minute later
    world.now[0] = (MORNING + dt.timedelta(hours=5, minutes=1)).timestamp()
    _push_from(world, old + 1)
    mails = {str(m["To"]): m.get_content() for m in _deliver(world, world.now[0] + 60)}
    assert "Sent late; the time is the one recorded at the gate." in mails["jane@example.com"]
    assert "кешігіп" not in mails["serik@example.kz"]


def test_one_click_unsubscribe_over_http(world: World) -> None:
    mails = _deliver(world, MORNING.timestamp() + 6 * 60)
    links = {}
    for m in mails:
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        header = str(m["List-Unsubscribe"])
        assert header.startswith(f"<{world.url}/console/parent/unsubscribe?t=") and header.endswith(">")
        links[str(m["To"])] = header[1:-1]
    jane, serik = links["jane@example.com"], links["serik@example.kz"]
    one_click = {"List-Unsubscribe": "One-Click"}

    # a GET (a mail scanner following the link) shows a button and changes nothing
    page = requests.get(serik, timeout=10)
    assert page.status_code == 200 and "One-Click" in page.text
    # a forged MAC, a token for no email, a missing body: refused, nothing written
    forged = serik[:-3] + ("AAA" if not serik.endswith("AAA") else "BBB")
    assert requests.post(forged, data=one_click, timeout=10).status_code == 404
    key = serik.rpartition("t=")[2].partition(".")[0]
    stranger = serik.replace(key, "0" * 32)
    assert requests.post(stranger, data=one_click, timeout=10).status_code == 404
    assert requests.post(serik, data={}, timeout=10).status_code == 400
    assert _unsubscribed(world.store) == []

    # RFC 8058: POST List-Unsubscribe=One-Click to the URL, no login; twice is the same as once
    for _ in range(2):
        done = requests.post(jane, data=one_click, timeout=10)
        assert done.status_code == 200 and "jane@example.com" in done.text
    assert _unsubscribed(world.store) == [("g-2", "jane@example.com")]

    # the next day's entries: Jane gets nothing, Serik still does
    old = world.dev.ledger.size
    world.dev.clock.time_ms = int((MORNING + dt.timedelta(days=1)).timestamp() * 1000)
    world.dev.ledger.append("in", child="C2", method="qr")
    world.dev.ledger.append("in", child="C0", method="qr")
    world.now[0] = (MORNING + dt.timedelta(days=1, minutes=2)).timestamp()
    _push_from(world, old)
    later = _deliver(world, world.now[0] + 60)
    assert [str(m["To"]) for m in later] == ["serik@example.kz"]


def test_sender_name_must_be_printable() -> None:
    with pytest.raises(NotifyConfigError, match="--smtp-from-name"):
        EmailChannel("127.0.0.1", 25, "k@reg.test", sender_name="a\r\nBcc: x@y.z")


def test_bad_name_and_sender_name_are_one_line_errors(tmp_path: Path) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text(CONTACTS, encoding="utf-8")
    db = tmp_path / "r.db"
    for argv, error in (
        (["register", "contacts", "import", "--kindergarten", "K1", "--name", " ", "--db", str(db), str(csv)],
         "kgate: error: --name must be 1-120 printable characters"),
        (["register", "notify", "run", "--once", "--smtp", "127.0.0.1:25", "--smtp-from-name", "a\tb",
          "--db", str(db)],
         "kgate: error: --smtp-from-name must be printable text"),
    ):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "kgate", *argv], capture_output=True, text=True, check=False, timeout=60
        )
        assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [error], proc.stderr
    assert not db.exists()  # nothing written


def test_a_digest_guardian_gets_one_mail_for_the_day_at_19(world: World) -> None:
    # g-0 (Serik, the parent of C0) chose the digest; C0 came in and left on the pushed morning
    csv = (
        "guardian,lang,opt_in,email,digest\n"
        "g-0,kk,yes,serik@example.kz,yes\n"
        "g-1,ru,no,ivan@example.kz,\n"
        "g-2,en,yes,jane@example.com,no\n"
    )
    import_contacts(world.store, "K1", parse_contacts(csv.encode()))
    old = world.dev.ledger.size
    world.dev.clock.time_ms = int((MORNING + dt.timedelta(days=1)).timestamp() * 1000)
    world.dev.ledger.append("in", child="C0", method="qr")
    world.dev.clock.advance(8 * 3600)
    world.dev.ledger.append("out", child="C0", method="qr", evidence={"guardian": "g-0"})
    world.dev.ledger.append("in", child="C2", method="qr")
    world.now[0] = world.dev.clock.time_ms / 1000 + 30
    _push_from(world, old)
    # the day's first pass (the morning's rows were queued before the digest was chosen: sent one by one)
    first = _deliver(world, world.now[0] + 1)
    assert sorted(str(m["To"]) for m in first) == ["jane@example.com"] * 2 + ["serik@example.kz"] * 2
    assert all("03.03.2026" not in m.get_content() for m in first if str(m["To"]) == "serik@example.kz")
    seven = dt.datetime(2026, 3, 3, 19, 0, tzinfo=ALMATY).timestamp()
    assert _deliver(world, seven - 5) == []  # not before 19:00
    (digest,) = _deliver(world, seven)
    text = digest.get_content()
    assert str(digest["To"]) == "serik@example.kz"
    assert "келді" in text and "кетті" in text and text.count("03.03.2026") == 2
    with world.store._tx(write=False) as sql:
        states = sql.all(
            "SELECT state FROM notify_outbox WHERE guardian = 'g-0' AND channel = 'email' ORDER BY idx"
        )
    assert [s[0] for s in states] == ["sent"] * 4
