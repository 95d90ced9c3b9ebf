"""Parents are told: contacts at the register only, the outbox written with the entries (exactly one row
per entry, guardian and channel however often the entries arrive), and delivery over real servers."""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.entry import decode_entry
from ledger.note import Ed25519Signer
from register.ingest import Batch
from register.notify.channels.base import Channel
from register.notify.channels.smtp import EmailChannel
from register.notify.channels.telegram import TelegramChannel
from register.notify.channels.webhook import WebhookChannel
from register.notify.contacts import import_contacts, list_contacts, parse_contacts
from register.notify.dispatcher import Dispatcher, Outcome, Policy, retry, status
from register.notify.errors import ContactsImportError
from register.notify.outbox import notification_key
from register.store import Store
from register.store.roster import roster_document
from tests.e2e.test_tls import make_ca, make_server_cert, write_ca
from tests.register.conftest import Device, Server
from tests.register.notify_fixtures import (
    CONTACTS,
    day,
    device_at,
    http_receiver,
    smtp_sink,
    subscribe,
)

ALMATY = zoneinfo.ZoneInfo("Asia/Almaty")


def outbox(store: Store) -> list[tuple[int, str, str, str]]:
    with store._tx(write=False) as sql:
        rows = sql.all(
            "SELECT idx, guardian, channel, state FROM notify_outbox ORDER BY idx, guardian, channel"
        )
    return [(int(r[0]), r[1], r[2], r[3]) for r in rows]


@pytest.fixture
def live(server: Server, tmp_path: Path) -> Iterator[Device]:
    """A device whose clock is now, enrolled at K1/north, with the subscribed roster and one day pushed."""
    dev = device_at(tmp_path / "live", int(time.time() * 1000))
    server.store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(server.store)
    day(dev)
    yield dev
    dev.ledger.close()


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the test CA that signed it."""
    ca_key, ca = make_ca("kgate notify test CA")
    cert, key = make_server_cert(ca_key, ca, tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, write_ca(ca, tmp_path / "ca.pem")


# -- contacts ---------------------------------------------------------------------------------------


def test_contacts_errors_name_line_and_column_and_change_nothing(server: Server) -> None:
    subscribe(server.store)
    before = list_contacts(server.store, "K1")
    bad = CONTACTS.replace("jane@example.com", "jane-at-example")
    with pytest.raises(ContactsImportError, match=r"line 4, column 4 \(email\)"):
        parse_contacts(bad.encode())
    with pytest.raises(ContactsImportError, match=r"line 2, column 7 \(phone\)"):
        parse_contacts(CONTACTS.replace("+77011234567", "87011234567").encode())
    unknown = parse_contacts((CONTACTS + "g-9,en,yes,x@example.com,,,\n").encode())
    with pytest.raises(ContactsImportError, match=r"line 5, column guardian: no guardian 'g-9'"):
        import_contacts(server.store, "K1", unknown)
    assert list_contacts(server.store, "K1") == before  # nothing half-written


def test_contacts_never_reach_the_gates_roster_document(server: Server) -> None:
    subscribe(server.store)
    doc = roster_document(server.store, "K1").decode()
    for secret in ("serik@example.kz", "+77011234567", "jane@example.com", "opt_in", "lang"):
        assert secret not in doc


def test_contacts_cli_refuses_bad_file_with_one_line(tmp_path: Path) -> None:
    csv = tmp_path / "contacts.csv"
    csv.write_text(CONTACTS.replace(",kk,", ",de,"), encoding="utf-8")
    db = tmp_path / "r.db"
    proc = subprocess.run(
        [sys.executable, "-m", "kgate", "register", "contacts", "import", "--kindergarten", "K1",
         "--db", str(db), str(csv)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "kgate: error: line 2, column 2 (lang): must be one of kk, ru, en"
    ]


# -- the outbox -------------------------------------------------------------------------------------


def test_pushed_twice_and_pulled_notifies_once_per_guardian_and_channel(server: Server, live: Device) -> None:
    body = live.body(0, live.ledger.size)
    assert server.push(live.signer, body).status_code == 200
    assert server.push(live.signer, body).status_code == 200  # the agent re-sends after a lost answer
    row = server.store.device_by_origin(live.ledger.origin)
    assert row is not None
    cp = live.ledger.checkpoint_at(live.ledger.size)
    assert cp is not None
    pulled = Batch(live.ledger.origin, 0, tuple(live.ledger.entries(0, live.ledger.size)), cp, 0, ())
    server.register.ingest(row, pulled, evidence=b"")  # the same entries, pulled
    # C0 in (0) and out (3) to g-0 by email and SMS webhook; C2 in (2) to g-2; C1's guardian opted out
    assert outbox(server.store) == [
        (0, "g-0", "email", "pending"), (0, "g-0", "webhook", "pending"),
        (2, "g-2", "email", "pending"),
        (3, "g-0", "email", "pending"), (3, "g-0", "webhook", "pending"),
    ]  # fmt: skip


def test_refused_batch_writes_no_notification(server: Server, live: Device) -> None:
    body = live.body(0, live.ledger.size)
    body["checkpoint"] = body["checkpoint"].replace("\n\n", "\n\nbroken\n", 1)
    assert server.push(live.signer, body).status_code >= 400
    assert outbox(server.store) == []


# -- delivery over real servers ---------------------------------------------------------------------


def test_email_over_starttls_and_signed_webhook_deliver_each_once(
    server: Server, live: Device, tls: tuple[ssl.SSLContext, Path]
) -> None:
    ctx, ca = tls
    assert server.push(live.signer, live.body(0, live.ledger.size)).status_code == 200
    request_key = Ed25519Signer.generate("reg.test")
    with smtp_sink(ctx) as sink, http_receiver(signer=request_key) as hook:
        channels: dict[str, Channel] = {
            "email": EmailChannel(sink.host, sink.port, "kgate@reg.test", ca=ca, domain="reg.test"),
            "webhook": WebhookChannel({"sms": hook.url + "/send"}, request_key),
        }
        dispatcher = Dispatcher(server.store, channels, parent_url="https://reg.test/")
        first = dispatcher.run_once()
        again = dispatcher.run_once()
        dispatcher.close()
        mails, calls = sink.messages, hook.requests
    assert (first.sent, again.sent) == (5, 0)
    origin = live.ledger.origin
    assert sorted(str(m["Message-ID"]) for m in mails) == sorted(
        f"<{notification_key(origin, i, g)}@reg.test>" for i, g in ((0, "g-0"), (2, "g-2"), (3, "g-0"))
    )
    by_to = {(m["To"], m["Subject"]): m for m in mails}
    kk_in = next(m for (to, subj), m in by_to.items() if to == "serik@example.kz" and "келді" in subj)
    kk_out = next(m for (to, subj), m in by_to.items() if to == "serik@example.kz" and "кетті" in subj)
    en_in = next(m for (to, _), m in by_to.items() if to == "jane@example.com")
    gate_time = dt.datetime.fromtimestamp(decode_entry(live.ledger.entries(0, 1)[0]).time_ms / 1000, ALMATY)
    assert kk_in["Subject"] == f"Аружан балабақшаға келді: {gate_time:%H:%M}, {gate_time:%d.%m.%Y}."
    text_out = kk_out.get_content()
    assert "Алып кеткен: Серік Ахметов." in text_out and "https://reg.test/parent" in text_out
    en_text = en_in.get_content()
    assert en_text.startswith("Tom arrived at kindergarten at ") and "K1, gate north." in en_text
    for m in mails:
        body = m.get_content()
        assert "412" not in body and "distance" not in body.lower() and "late" not in body.lower()
    assert hook.rejected == []
    assert [c["json"]["to"] for c in calls] == ["+77011234567", "+77011234567"]
    for c in calls:
        assert c["headers"]["Idempotency-Key"] == c["json"]["id"]
        assert c["json"]["text"].startswith("Аружан балабақша")


def test_message_has_the_local_time_of_the_entry(server: Server, tmp_path: Path) -> None:
    # 2026-03-02 03:12 UTC = 08:12 in Almaty (UTC+5 since March 2024); the entry is old, hence late
    gate_ms = int(dt.datetime(2026, 3, 2, 3, 12, tzinfo=dt.UTC).timestamp() * 1000)
    dev = device_at(tmp_path / "late", gate_ms)
    server.store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(server.store)
    dev.ledger.append("in", child="C2", method="qr")
    assert server.push(dev.signer, dev.body(0, 1)).status_code == 200
    with smtp_sink() as sink:
        d = Dispatcher(
            server.store,
            {"email": EmailChannel(sink.host, sink.port, "k@reg.test")},
            parent_url="http://x.test",
        )
        assert d.run_once().sent == 1
        (mail,) = sink.messages
    dev.ledger.close()
    text = mail.get_content()
    assert text.startswith("Tom arrived at kindergarten at 08:12 on 02.03.2026.")
    assert "Sent late; the time is the one recorded at the gate." in text


def test_telegram_over_https_stores_the_message_id(
    server: Server, live: Device, tls: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    ctx, ca = tls
    contacts = "guardian,lang,opt_in,telegram\ng-2,ru,yes,-1001234567\n"
    import_contacts(server.store, "K1", parse_contacts(contacts.encode()))
    assert server.push(live.signer, live.body(0, live.ledger.size)).status_code == 200
    with http_receiver(tls=ctx, telegram=True) as bot:
        channel = TelegramChannel("123:SECRET", base_url=bot.url, ca=ca)
        d = Dispatcher(server.store, {"telegram": channel}, parent_url="https://reg.test")
        assert d.run_once().sent == 1
        (call,) = bot.requests
    assert call["path"] == "/bot123:SECRET/sendMessage"
    assert call["json"]["chat_id"] == -1001234567
    assert call["json"]["text"].startswith("Tom: приход в детский сад в ")
    with server.store._tx(write=False) as sql:
        assert sql.one("SELECT remote_id FROM notify_outbox")[0] == "1000"


def test_failures_back_off_then_die_and_an_operator_retries(server: Server, live: Device) -> None:
    assert server.push(live.signer, live.body(0, live.ledger.size)).status_code == 200
    with server.store._tx(write=True) as sql:
        sql.run("DELETE FROM notify_outbox WHERE channel <> 'webhook'")
    now = [time.time()]
    key = Ed25519Signer.generate("reg.test")
    with http_receiver(signer=key) as hook:
        hook.replies = [(503, {}), (503, {}), (400, {"error": "bad number"})]
        d = Dispatcher(
            server.store, {"webhook": WebhookChannel({"sms": hook.url}, key)}, parent_url="https://r.test",
            policy=Policy(max_attempts=5, base_s=10), clock=lambda: now[0], rng=lambda: 1.0,
        )  # fmt: skip
        assert d.run_once().retried == 2  # both rows: 503
        assert d.run_once().sent == 0  # not due yet: backoff 10 s
        now[0] += 10
        outcome = d.run_once()  # one 400 (dead at once), one 200
        assert (outcome.sent, outcome.dead) == (1, 1)
        report = status(server.store)
        (dead,) = report["dead"]
        assert dead["attempts"] == 2 and "HTTP 400" in dead["last_error"]
        assert retry(server.store, None, now_ms=int(now[0] * 1000)) == 1
        assert d.run_once().sent == 1
    assert status(server.store)["counts"] == {"webhook": {"sent": 2}}
    keys = [c["headers"]["Idempotency-Key"] for c in hook.requests]
    assert len(set(keys)) == 2 and len(keys) == 5  # each retry carries the same key


# -- the mail carries only what the register knows -------------------------------------------------

HOSTILE = "send your access code to this WhatsApp number +7 701 000 00 00"


def test_forged_pickup_evidence_never_reaches_the_mail(server: Server, tmp_path: Path) -> None:
    """A forged check-out, signed by a real device key and ingested by the normal push, whose guardian
    evidence is hostile text, another family's guardian, or the child's own guardian: the mails name
    only the roster's guardian; the others say "not on the roster" in the guardian's language."""
    dev = device_at(tmp_path / "forged", int(time.time() * 1000))
    server.store.add_device(dev.ledger.vkey, kindergarten="K1", gate="north", now_ms=0)
    subscribe(server.store)
    for guardian in (HOSTILE, "g-2", "g-0"):  # free text; Jane (C2's), not C0's; C0's own guardian
        dev.ledger.append("out", child="C0", method="qr", evidence={"guardian": guardian})
        dev.clock.advance(60)
    dev.ledger.append("out", child="C2", method="qr", evidence={"guardian": HOSTILE, "note": HOSTILE})
    assert server.push(dev.signer, dev.body(0, dev.ledger.size)).status_code == 200
    with smtp_sink() as sink:
        d = Dispatcher(
            server.store, {"email": EmailChannel(sink.host, sink.port, "k@reg.test")}, parent_url="http://x"
        )
        assert d.run_once().sent == 4  # C0's three (kk, g-0) and C2's one (en, g-2)
        mails = sink.messages
    dev.ledger.close()
    with server.store._tx(write=False) as sql:
        payloads = [p for (p,) in sql.all("SELECT payload FROM notify_outbox")]
    for text in [m.as_string() for m in mails] + [m.get_content() for m in mails] + payloads:
        assert "WhatsApp" not in text and "access code" not in text
    kk = [m.get_content() for m in mails if m["To"] == "serik@example.kz"]
    (en,) = [m.get_content() for m in mails if m["To"] == "jane@example.com"]
    assert sum("Алып кеткен: баланың тізімінде жоқ адам." in t for t in kk) == 2  # hostile text, g-2
    assert sum("Алып кеткен: Серік Ахметов." in t for t in kk) == 1
    assert not any("Jane" in t for t in kk)  # another family's guardian is not named as a pickup
    assert "Picked up by someone not on the roster." in en


# -- the dispatcher's lease and dead letters --------------------------------------------------------


def test_a_leased_row_is_not_claimed_again_before_its_lease_ends(server: Server, live: Device) -> None:
    """Two dispatchers on one outbox: the second finds nothing while the first holds the lease (no
    duplicate); once the lease has run out (the first died), the second sends, and the first's late
    result cannot overwrite the second's."""
    assert server.push(live.signer, live.body(0, live.ledger.size)).status_code == 200
    now = [time.time()]
    policy = Policy(lease_s=60)
    with smtp_sink() as sink:

        def dispatcher() -> Dispatcher:
            channel = EmailChannel(sink.host, sink.port, "k@reg.test")
            return Dispatcher(server.store, {"email": channel}, parent_url="http://x", policy=policy,
                              clock=lambda: now[0])  # fmt: skip

        first, second = dispatcher(), dispatcher()
        token, items = first.claim()
        assert len(items) == 3  # the three email rows, now leased to `first`
        now[0] += 59.999
        assert second.run_once() == Outcome()  # the lease holds: nothing to claim, nothing sent
        assert sink.messages == []
        for item in items[:2]:
            assert first.deliver(token, item) == "sent"  # `first` delivers two, then "dies"
        now[0] += 0.001  # the lease of the third has run out
        assert second.run_once().sent == 1
        assert first.deliver(token, items[2]) == "sent"  # too late: its record must not apply
        assert second.run_once() == Outcome()
        ids = sink.message_ids()
        first.close()
        second.close()
    assert len(ids) == 4 and len(set(ids)) == 3  # one at-least-once repeat, only of the expired lease
    with server.store._tx(write=False) as sql:
        rows = sql.all("SELECT attempts, state FROM notify_outbox WHERE channel = 'email' ORDER BY idx")
    assert sorted((int(a), s) for a, s in rows) == [(1, "sent"), (1, "sent"), (2, "sent")]


def test_retryable_failures_dead_letter_after_max_attempts(server: Server, live: Device) -> None:
    """A gateway that answers 503 for ever: the row is retried with backoff, then dead after
    max_attempts, and never tried again until an operator retries it."""
    assert server.push(live.signer, live.body(0, live.ledger.size)).status_code == 200
    with server.store._tx(write=True) as sql:
        sql.run("DELETE FROM notify_outbox WHERE NOT (channel = 'webhook' AND idx = 0)")
    now = [time.time()]
    key = Ed25519Signer.generate("reg.test")
    with http_receiver(signer=key) as hook:
        hook.replies = [(503, {})] * 10
        d = Dispatcher(
            server.store, {"webhook": WebhookChannel({"sms": hook.url}, key)}, parent_url="https://r.test",
            policy=Policy(max_attempts=3, base_s=10, cap_s=20), clock=lambda: now[0], rng=lambda: 1.0,
        )  # fmt: skip
        outcomes = []
        for _ in range(6):
            outcomes.append(d.run_once())
            now[0] += 20  # past any backoff (capped at 20 s)
        d.close()
        tries = len(hook.requests)
    assert outcomes[:3] == [Outcome(retried=1), Outcome(retried=1), Outcome(dead=1)]
    assert outcomes[3:] == [Outcome()] * 3 and tries == 3
    (dead,) = status(server.store)["dead"]
    assert dead["attempts"] == 3 and "503" in dead["last_error"]
