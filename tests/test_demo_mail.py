"""The demo's parent notifications (kgate/mail_demo.py), checked against the issue's bar: ``DIR/mail/``
holds exactly one message per in/out entry of each subscribed child in the register's database, each
with the entry's local time, and none for unsubscribed children. Recounted independently from
``DIR/register/register.db`` (entries decoded with ``ledger.entry.decode_entry``)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import io
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import pytest

from kgate.cli import main
from ledger.entry import decode_entry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the module fixture runs the demo (30 children)
ALMATY = ZoneInfo("Asia/Almaty")
Demo = tuple[Path, dict[str, object]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    out = tmp_path_factory.mktemp("demo")
    buf = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", buf)
        assert main(["demo", "--out", str(out), "--children", "30", "--json"]) == 0
    yield out, json.loads(buf.getvalue())


def subscribed_children(db: sqlite3.Connection) -> dict[str, str]:
    """child -> its opted-in guardian, from the register's roster and contacts tables."""
    rows = db.execute(
        "SELECT p.child, p.guardian FROM roster_pickup p JOIN notify_guardians g "
        "ON g.kindergarten = p.kindergarten AND g.guardian = p.guardian WHERE g.opt_in"
    ).fetchall()
    out: dict[str, str] = {}
    for child, guardian in rows:
        assert child not in out, f"{child} has two subscribed guardians; the bar counts one each"
        out[child] = guardian
    return out


def expected(out: Path) -> tuple[Counter[tuple[str, str, str]], set[str], set[str]]:
    """(child, kind, "HH:MM DD.MM.YYYY" in Almaty) of each in/out of a subscribed child; subscribed; all."""
    db = sqlite3.connect(f"file:{out / 'register' / 'register.db'}?mode=ro", uri=True)
    try:
        subs = subscribed_children(db)
        names = dict(db.execute("SELECT id, name FROM roster_children"))
        events: Counter[tuple[str, str, str]] = Counter()
        for (data,) in db.execute("SELECT data FROM entries"):
            entry = decode_entry(bytes(data))
            if entry.kind in ("in", "out") and entry.child in subs:
                when = dt.datetime.fromtimestamp(entry.time_ms / 1000, dt.UTC).astimezone(ALMATY)
                events[(entry.child, entry.kind, when.strftime("%H:%M %d.%m.%Y"))] += 1
    finally:
        db.close()
    return events, set(subs), set(names)


def names_of(out: Path) -> dict[str, str]:
    """child -> first name, from the register's roster."""
    db = sqlite3.connect(f"file:{out / 'register' / 'register.db'}?mode=ro", uri=True)
    try:
        return {str(c): str(n).split()[0] for c, n in db.execute("SELECT id, name FROM roster_children")}
    finally:
        db.close()


def mails(out: Path) -> list[EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((out / "mail").glob("*.eml"))
    ]


def test_one_message_per_entry_of_each_subscribed_child_with_its_local_time(demo: Demo) -> None:
    out, summary = demo
    events, subs, children = expected(out)
    messages = mails(out)
    assert 3 <= len(subs) < len(children), "a few children subscribed, not all"
    assert sum(events.values()) > 2 * len(subs), "the month gives each subscribed child several entries"
    assert len(messages) == sum(events.values()) == cast(dict[str, int], summary["mail"])["received"]
    ids = [m["Message-ID"] for m in messages]
    assert len(set(ids)) == len(ids), "every message once"
    # Each message names one entry: to the child's guardian, its first name, local time and date, in/out.
    by_address = {f"{c.lower()}.parent@example.kz": c for c in subs}
    first_names = names_of(out)
    got: Counter[tuple[str, str, str]] = Counter()
    kinds = {"келді": "in", "кетті": "out", "приход": "in", "уход": "out", "arrived": "in", "left": "out"}
    for m in messages:
        text = m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        first_line = text.splitlines()[0]
        kind = next(k for word, k in kinds.items() if word in first_line)
        hhmm = next(w.strip(",.") for w in first_line.split() if len(w.strip(",.")) == 5 and ":" in w)
        date = next(w.strip(",.") for w in first_line.split() if w.strip(",.").count(".") == 2)
        child = by_address[str(m["To"])]
        assert first_line.startswith(first_names[child])
        got[(child, kind, f"{hhmm} {date}")] += 1
    assert got == events


def test_no_message_for_unsubscribed_children(demo: Demo) -> None:
    out, summary = demo
    _, subs, children = expected(out)
    mail = cast(dict[str, object], summary["mail"])
    opted_out = str(mail["opted_out_child"])
    assert opted_out in children and opted_out not in subs
    recipients = {str(m["To"]) for m in mails(out)}
    assert recipients == {f"{c.lower()}.parent@example.kz" for c in subs}
    assert f"{opted_out.lower()}.parent@example.kz" not in recipients


def test_one_parents_not_there_report_is_an_alarm_with_the_entry(demo: Demo) -> None:
    """The demo's parent taps "my child was not there": one alarm, the entry's exact bytes as evidence."""
    out, summary = demo
    report = cast(dict[str, dict[str, object]], summary["mail"])["report"]
    db = sqlite3.connect(out / "register" / "register.db")
    try:
        alarms = db.execute(
            "SELECT d.origin, a.idx, a.evidence FROM alarms a JOIN devices d ON d.id = a.device_id "
            "WHERE a.kind = 'parent_report'"
        ).fetchall()
        (origin, index, evidence), *more = alarms
        stored = db.execute(
            "SELECT e.data FROM entries e JOIN devices d ON d.id = e.device_id "
            "WHERE d.origin = ? AND e.idx = ?",
            (origin, index),
        ).fetchone()[0]
    finally:
        db.close()
    assert more == [] and report["alarm"] is True
    assert (origin, index) == (report["device"], report["index"])
    entry = decode_entry(bytes(evidence))
    assert bytes(evidence) == bytes(stored) and entry.kind == "in" and entry.child == report["child"]


def test_mails_are_dated_when_sent_named_and_late_only_when_late(demo: Demo) -> None:
    """Each mail's Date is when the dispatcher sent it (just after the register stored the entry, spread
    over the month); it says "late" exactly when the entry reached the register > 10 min after the gate
    wrote it; From and the text carry the kindergarten's name; each has RFC 8058 one-click unsubscribe."""
    from kgate.mail_demo import NAME

    out, _ = demo
    db = sqlite3.connect(f"file:{out / 'register' / 'register.db'}?mode=ro", uri=True)
    try:
        rows = {
            str(key): (int(created), decode_entry(bytes(data)).time_ms)
            for key, created, data in db.execute(
                "SELECT n.key, n.created_ms, e.data FROM notify_outbox n "
                "JOIN entries e ON e.device_id = n.device_id AND e.idx = n.idx"
            )
        }
    finally:
        db.close()
    late_words = ("Sent late", "с опозданием", "кешігіп")
    days, on_time, late = set(), 0, 0
    for m in mails(out):
        created_ms, gate_ms = rows[str(m["Message-ID"]).strip("<>").partition("@")[0]]
        sent = email.utils.parsedate_to_datetime(str(m["Date"])).timestamp()
        assert created_ms // 1000 <= sent <= created_ms / 1000 + 5, (m["Date"], created_ms)  # whole seconds
        days.add(dt.datetime.fromtimestamp(sent, ALMATY).date())
        text = m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        says_late = any(w in text for w in late_words)
        assert says_late == (created_ms - gate_ms > 10 * 60_000), text
        late, on_time = late + says_late, on_time + (not says_late)
        assert m["From"].addresses[0].display_name == NAME and NAME in text
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert str(m["List-Unsubscribe"]).startswith(
            "<https://register.demo.kgate.kz/console/parent/unsubscribe?t="
        )
    assert len(days) >= 10, "the month's mails are spread over its days"
    assert on_time > late, (on_time, late)  # only the demo's own day, synced when the demo runs, is late
