"""``kgate register contacts import|show`` and ``kgate register notify run|status|retry``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from register.notify.errors import NotifyConfigError

DEFAULT_DB = "register.db"
DB_HELP = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"


def cmd_contacts_import(args: argparse.Namespace) -> int:
    from register.notify.contacts import check_name, check_zone, import_contacts, parse_contacts  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise NotifyConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    guardians = parse_contacts(raw)  # the whole file is validated before the database is touched
    zone = None if args.zone is None else check_zone(args.zone)
    name = None if args.name is None else check_name(args.name)
    with open_store(args.db) as store:
        subscribed = import_contacts(store, args.kindergarten, guardians, zone=zone, name=name)
    print(f"{args.kindergarten}: contacts of {len(guardians)} guardians, {subscribed} opted in")
    return 0


def cmd_contacts_show(args: argparse.Namespace) -> int:
    from register.notify.contacts import list_contacts  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db, readonly=True) as store:
        for row in list_contacts(store, args.kindergarten):
            print(json.dumps(row, ensure_ascii=False, sort_keys=True))
    return 0


def _channels(args: argparse.Namespace) -> dict[str, Any]:
    """The channels the options configure (at least one)."""
    from register.notify.channels.base import Channel  # noqa: PLC0415

    out: dict[str, Channel] = {}
    if args.smtp:
        from register.notify.channels.smtp import EmailChannel, parse_hostport, read_credentials  # noqa: PLC0415

        host, port = parse_hostport(args.smtp)
        creds = None if args.smtp_credentials is None else read_credentials(args.smtp_credentials)
        out["email"] = EmailChannel(
            host,
            port,
            args.smtp_from,
            credentials=creds,
            ca=args.ca,
            domain=args.smtp_from.rpartition("@")[2],
            sender_name=args.smtp_from_name,
        )
    if args.telegram_token:
        from register.notify.channels.telegram import TelegramChannel, read_token  # noqa: PLC0415

        out["telegram"] = TelegramChannel(
            read_token(args.telegram_token), base_url=args.telegram_api, ca=args.ca
        )
    if args.webhook:
        from register.cli import _state_dir  # noqa: PLC0415
        from register.keys import load_or_create_keys  # noqa: PLC0415
        from register.notify.channels.webhook import WebhookChannel, parse_targets  # noqa: PLC0415

        keys = load_or_create_keys(_state_dir(args), None)
        out["webhook"] = WebhookChannel(parse_targets(args.webhook), keys.request, ca=args.ca)
    if not out:
        raise NotifyConfigError("configure at least one channel: --smtp, --telegram-token or --webhook")
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from kgate.sdnotify import Notifier  # noqa: PLC0415
    from kgate.urls import check_url  # noqa: PLC0415
    from register.notify.dispatcher import Dispatcher, Policy  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    parent_url = check_url(args.parent_url, "--parent-url")
    if args.batch < 1 or args.record_every < 1:
        raise NotifyConfigError("--batch and --record-every must be at least 1")
    policy = Policy(
        max_attempts=args.max_attempts, lease_s=args.lease, batch=args.batch, record_every=args.record_every
    )
    channels = _channels(args)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda n, _f: stopping.append(n))
    with open_store(args.db) as store:
        dispatcher = Dispatcher(store, channels, parent_url=parent_url, policy=policy)
        try:
            if args.once:
                total = 0
                while (outcome := dispatcher.run_once()).sent + outcome.retried + outcome.dead:
                    total += outcome.sent
                print(f"sent {total}")
                return 0
            notifier = Notifier()
            notifier.ready()
            logging.getLogger("kgate.register.notify").info(
                "delivering through %s", ", ".join(sorted(channels))
            )
            dispatcher.run(interval=args.interval, stop=lambda: bool(stopping), tick=notifier.watchdog)
        finally:
            dispatcher.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from register.notify.dispatcher import status  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db, readonly=True) as store:
        report = status(store)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, sort_keys=True))
        return 0
    for channel, states in sorted(report["counts"].items()):
        print(channel + "\t" + "\t".join(f"{s}={n}" for s, n in sorted(states.items())))
    for d in report["dead"]:
        print(f"dead {d['id']}\t{d['channel']}\t{d['device']}#{d['index']}\t{d['guardian']}\t"
              f"attempts={d['attempts']}\t{d['last_error']}")  # fmt: skip
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from register.notify.dispatcher import retry  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    if (args.id is None) == (not args.dead):
        raise NotifyConfigError("give one notification ID or --dead")
    with open_store(args.db) as store:
        n = retry(store, None if args.dead else [args.id], now_ms=int(time.time() * 1000))
    if args.id is not None and n == 0:
        raise NotifyConfigError(f"notification {args.id} is not a dead letter")
    print(f"{n} notifications queued again")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def add_commands(sub: Any) -> None:
    """Add ``contacts`` and ``notify`` under ``kgate register``."""
    contacts = sub.add_parser("contacts", help="guardians' notification contacts and consent (register only)")
    csub = contacts.add_subparsers(dest="contacts_command", metavar="COMMAND", required=True)
    imp = csub.add_parser(
        "import", help="replace a kindergarten's contacts with a CSV (docs/notifications.md)"
    )
    imp.add_argument(
        "file",
        metavar="FILE",
        help="CSV, UTF-8: guardian,lang,opt_in,email,telegram,sms_gateway,phone,digest",
    )
    imp.add_argument("--zone", help="the kindergarten's time zone for messages (default Asia/Almaty)")
    imp.add_argument("--name", help="the kindergarten's name in messages (default: its id)")
    show = csub.add_parser("show", help="print each guardian's contacts, one JSON object per line")
    for p in (imp, show):
        p.add_argument("--kindergarten", required=True, help="kindergarten id or name")
        p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    imp.set_defaults(func=cmd_contacts_import)
    show.set_defaults(func=cmd_contacts_show)

    notify = sub.add_parser("notify", help="deliver check-in/out notifications to parents")
    nsub = notify.add_subparsers(dest="notify_command", metavar="COMMAND", required=True)
    run = nsub.add_parser("run", help="the dispatcher: deliver due notifications (a loop, or --once)")
    run.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    run.add_argument(
        "--interval", type=_positive, default=1.0, help="seconds between idle polls (%(default)s)"
    )
    run.add_argument("--parent-url", default="http://127.0.0.1:8470", help="base URL of the parent page")
    run.add_argument("--smtp", metavar="HOST:PORT", help="email: the SMTP server (STARTTLS unless loopback)")
    run.add_argument("--smtp-from", default="kgate@kgate.invalid", help="email: the From address")
    run.add_argument(
        "--smtp-from-name", metavar="NAME", help="email: the sender's display name, e.g. the kindergarten's"
    )
    run.add_argument("--smtp-credentials", type=Path, metavar="FILE", help="email: USER:PASSWORD, 0600")
    run.add_argument("--telegram-token", type=Path, metavar="FILE", help="Telegram: the bot token, 0600")
    run.add_argument("--telegram-api", default="https://api.telegram.org", help="Telegram: Bot API base URL")
    run.add_argument("--webhook", action="append", metavar="NAME=URL", help="an SMS gateway webhook (repeat)")
    run.add_argument("--state", help="directory of the register keys, for signing webhooks")
    run.add_argument("--ca", type=Path, metavar="FILE", help="CA bundle for SMTP TLS and HTTPS")
    run.add_argument(
        "--max-attempts", type=int, default=8, help="attempts before a dead letter (%(default)s)"
    )
    run.add_argument("--lease", type=_positive, default=60.0, help="seconds a claim lasts (%(default)s)")
    run.add_argument("--batch", type=int, default=100, help="rows claimed at once (%(default)s)")
    run.add_argument(
        "--record-every",
        type=int,
        default=50,
        help="sends recorded per commit; a crash re-sends at most this many (%(default)s)",
    )
    stat = nsub.add_parser("status", help="counts per channel and state, and the dead letters")
    stat.add_argument("--json", action="store_true", help="one JSON object")
    rty = nsub.add_parser("retry", help="queue a dead notification (or all of them) again")
    rty.add_argument("id", metavar="ID", type=int, nargs="?", help="the notification id (see status)")
    rty.add_argument("--dead", action="store_true", help="every dead letter")
    for p in (run, stat, rty):
        p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    run.set_defaults(func=cmd_run)
    stat.set_defaults(func=cmd_status)
    rty.set_defaults(func=cmd_retry)
