"""The demo's parent notifications: a few guardians subscribe, the dispatcher mails them, ``DIR/mail/``.

Before the day is synced, the mothers of a few children opt in (and one mother opts out) through the
real ``kgate register contacts import`` command, so the register's outbox gets their notifications in
the same transactions that store the entries (docs/notifications.md). After the day and the month are
in the register, the dispatcher delivers everything due once, by email, to a local SMTP sink (aiosmtpd
on 127.0.0.1, a free port) that writes each message it accepts to ``DIR/mail/NNNN.eml``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kgate.errors import UsageError

SUBSCRIBED = 5  # children whose mother opts in
LANGS = ("kk", "ru", "en")
PARENT_URL = "https://register.demo.kgate.kz/console"  # the report link: /console/parent/report
SENDER = "kgate@register.demo.kgate.kz"
NAME = "№42 балабақша · детский сад №42"  # the kindergarten's name in messages and the sender's name
ZONE = "Asia/Almaty"  # the contacts' default zone (register.notify.contacts.DEFAULT_ZONE)


@dataclass(frozen=True)
class Subscription:
    """Who opted in before the day: guardian id -> child id, and the child whose mother said no."""

    guardians: dict[str, str]
    opted_out: str


def choose(children: Sequence[str]) -> Subscription:
    """Every ``len/SUBSCRIBED``-th child's mother opts in; the next child's mother opts out."""
    step = max(1, len(children) // SUBSCRIBED)
    picked = list(children[::step][:SUBSCRIBED])
    rest = [c for c in children if c not in picked]
    return Subscription({f"G{c}m": c for c in picked}, rest[0] if rest else "")


def contacts_csv(sub: Subscription) -> str:
    """The contacts CSV of ``sub`` (docs/notifications.md): e-mail only, languages in turn."""
    lines = ["guardian,lang,opt_in,email"]
    for i, (gid, child) in enumerate(sorted(sub.guardians.items())):
        lines.append(f"{gid},{LANGS[i % len(LANGS)]},yes,{child.lower()}.parent@example.kz")
    if sub.opted_out:
        lines.append(f"G{sub.opted_out}m,ru,no,{sub.opted_out.lower()}.parent@example.kz")
    return "\n".join(lines) + "\n"


def subscribe(register_dir: Path, kindergarten: str, children: Sequence[str]) -> Subscription:
    """Import the contacts with ``kgate register contacts import`` into ``register_dir/register.db``."""
    from kgate.cli import main  # noqa: PLC0415 - the real command, in this process

    sub = choose(children)
    path = register_dir / "contacts.csv"
    path.write_text(contacts_csv(sub), encoding="utf-8")
    db = f"sqlite:///{register_dir / 'register.db'}"
    argv = ["register", "contacts", "import", "--kindergarten", kindergarten, "--name", NAME, "--db", db]
    argv.append(str(path))
    with contextlib.redirect_stdout(io.StringIO()):  # its one line would spoil `kgate demo --json`
        code = main(argv)
    if code != 0:
        raise UsageError(f"kgate register contacts import {path} failed (exit {code})")
    return sub


class _Sink:
    """aiosmtpd handler: each accepted message becomes ``mail/NNNN.eml``, numbered in arrival order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.count += 1
            (self.folder / f"{self.count:04d}.eml").write_bytes(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_sink(folder: Path) -> Iterator[tuple[int, _Sink]]:
    """An SMTP server on 127.0.0.1 (a free port) writing what it accepts to ``folder``."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - the `demo` extra

    folder.mkdir(parents=True, exist_ok=True)
    sink = _Sink(folder)
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def month_end_s(on: dt.date) -> float:
    """POSIX seconds of the end of ``on``'s month in Almaty: when the demo's register has all of it."""
    first = (on.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(first, dt.time(), tzinfo=ZoneInfo(ZONE)).timestamp()


def deliver(out: Path, sub: Subscription, on: dt.date) -> dict[str, Any]:
    """Run the dispatcher over ``out/register/register.db`` into ``out/mail/``; the summary.

    The month's register clock is simulated (kgate/month.py: each entry reaches the register 20 s after
    the gate wrote it), so the dispatcher's clock is too: it steps through the times the notifications
    became due and sends each batch then, so every mail's ``Date`` is when it would have been sent
    (spread over the month, not one time for all). A second after each due time is its time of sending.
    """
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("aiosmtpd") is None:
        return {"skipped": "aiosmtpd is not installed (pip install 'kgate[demo]')"}
    from register.notify.channels.smtp import EmailChannel  # noqa: PLC0415 - the register is heavy
    from register.notify.dispatcher import Dispatcher, status  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    sent = 0
    with (
        smtp_sink(out / "mail") as (port, sink),
        open_store(f"sqlite:///{out / 'register' / 'register.db'}") as store,
    ):
        channel = EmailChannel("127.0.0.1", port, SENDER, domain=SENDER.rpartition("@")[2], sender_name=NAME)
        end = month_end_s(on)
        with store._tx(write=False) as sql:
            dues = sorted(
                {int(r[0]) for r in sql.all("SELECT due_ms FROM notify_outbox WHERE state = 'pending'")}
            )
        now = [0.0]
        dispatcher = Dispatcher(store, {"email": channel}, parent_url=PARENT_URL, clock=lambda: now[0])
        try:
            for due_ms in dues:
                now[0] = due_ms / 1000 + 1
                while (outcome := dispatcher.run_once()).sent + outcome.retried + outcome.dead:
                    sent += outcome.sent
                    if outcome.retried or outcome.dead:
                        raise UsageError(f"the demo's SMTP sink refused mail: {status(store)['dead']}")
        finally:
            dispatcher.close()
        received = sink.count
        report = _report_one(store, sub, now_ms=int(max(time.time(), end) * 1000))
    return {
        "folder": str(out / "mail"),
        "subscribed_children": sorted(sub.guardians.values()),
        "opted_out_child": sub.opted_out,
        "sent": sent,
        "received": received,
        "report": report,
    }


def _report_one(store: Any, sub: Subscription, *, now_ms: int) -> dict[str, Any]:
    """One parent taps "my child was not there" on the latest check-in they were told of.

    The parent opens the link of their message and gives the child's access code, exactly as the
    console's report page does (register/notify/report.py); the report is an alarm for the auditors
    with the entry attached, and it holds that child-day in the табель until an auditor clears it.
    """
    from register.notify.report import report_not_there  # noqa: PLC0415
    from register.parent_codes import create_parent_code  # noqa: PLC0415

    children = sorted(sub.guardians.values())
    marks = ",".join("?" * len(children))
    query = (  # only "?" placeholders are formatted in
        "SELECT n.key, d.kindergarten FROM notify_outbox n JOIN devices d ON d.id = n.device_id "  # noqa: S608
        "JOIN entry_index x ON x.device_id = n.device_id AND x.idx = n.idx "
        f"WHERE x.kind = 'in' AND x.child IN ({marks}) ORDER BY x.time_ms DESC LIMIT 1"
    )
    with store._tx(write=False) as sql:
        row = sql.one(query, tuple(children))
    if row is None:
        return {"skipped": "no check-in of a subscribed child was notified"}
    key, kindergarten = str(row[0]), str(row[1])
    from register.notify.report import find_event  # noqa: PLC0415

    event = find_event(store, key)
    assert event is not None
    code = create_parent_code(store, kindergarten, event.child, now_ms=now_ms, actor="demo")
    event, new = report_not_there(store, key, code, address="127.0.0.1", now_ms=now_ms)
    return {"child": event.child, "device": event.origin, "index": event.index, "alarm": new}
