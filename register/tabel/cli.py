"""``kgate register tabel|calendar|absence|anomalies|flags|month``: the табель and its audit.

See docs/tabel.md and docs/audit.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from register.tabel.errors import TabelError

DEFAULT_DB = "register.db"
DB_HELP = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _who(args: argparse.Namespace) -> str:
    return str(args.by) if args.by else getpass.getuser()


def _known(store: Any, kindergarten: str) -> None:
    """Refuse a kindergarten id the register does not know, with "did you mean" (kindergartens.py)."""
    from register.kindergartens import check_kindergarten  # noqa: PLC0415

    check_kindergarten(store, kindergarten)


def _write(data: bytes, out: str | None) -> None:
    """To ``out`` atomically (a temporary file renamed into place), or to stdout."""
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TabelError(f"cannot write {out}: {exc.strerror}") from None


def _teachers(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        group, sep, name = pair.partition("=")
        if not sep or not group.strip() or not name.strip():
            raise TabelError(f"--teacher {pair!r}: expected GROUP=NAME")
        out[group.strip()] = name.strip()
    return out


def cmd_tabel(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import approval, export, form, status  # noqa: PLC0415
    from register.tabel.errors import NotFound  # noqa: PLC0415

    teachers = _teachers(args.teacher)
    with open_store(args.db) as store:
        _known(store, args.kindergarten)
        if args.format == "csv":
            data, changed = approval.document(store, args.kindergarten, args.month, "csv", now_ms=_now_ms())
        else:  # the printed form: the current month (the approved CSV stays what was approved)
            tabel = status.build(store, args.kindergarten, args.month)
            if not tabel.rows:
                raise NotFound(f"no roster and no entries for {args.kindergarten!r}")
            changed = approval.check(
                store, args.kindergarten, args.month, export.to_csv(tabel), now_ms=_now_ms(), tabel=tabel
            )
            render = form.to_pdf if args.format == "pdf" else form.to_xlsx
            data = render(tabel, args.lang, organisation=args.organisation, teachers=teachers)
    if changed:
        print(f"kgate: ALARM: {changed}; printing the approved табель", file=sys.stderr)
    _write(data, args.out)
    return 0


def cmd_anomalies(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import status  # noqa: PLC0415

    with open_store(args.db) as store:
        _known(store, args.kindergarten)
        found = status.flags(store, status.context(store, args.kindergarten, args.month))
    if args.json:
        doc = {"kindergarten": args.kindergarten, "month": args.month, "flags": [f.as_json() for f in found]}
        print(json.dumps(doc, ensure_ascii=False, sort_keys=True))
        return 0
    for f in found:
        if args.uncleared and f.cleared is not None:
            continue
        state = "cleared" if f.cleared else ("HOLDS PAYMENT" if f.holding else "note")
        numbers = {k: v for k, v in f.evidence.items() if k not in ("entries", "times")}
        print(f"{f.id}\t{state}\t{len(f.days)} child-days\t{json.dumps(numbers, ensure_ascii=False)}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Clear the named flags and/or every uncleared flag the filter selects, with one reason."""
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import status  # noqa: PLC0415
    from register.tabel.approval import clear_flags  # noqa: PLC0415

    filtered = args.kindergarten is not None or args.month is not None or args.rule
    if filtered and (args.kindergarten is None or args.month is None):
        raise TabelError("--kindergarten and --month go together (and --rule needs both)")
    if not args.flag and not filtered:
        raise TabelError("name a FLAG, or select flags with --kindergarten K --month YYYY-MM [--rule R]")
    with open_store(args.db) as store:
        ids = list(args.flag)
        if filtered:
            _known(store, args.kindergarten)
            found = status.flags(store, status.context(store, args.kindergarten, args.month))
            rules = set(args.rule or ())
            ids += [f.id for f in found if f.cleared is None and (not rules or f.rule in rules)]
        cleared = clear_flags(store, ids, by=_who(args), reason=args.reason, now_ms=_now_ms())
    for flag in cleared:
        print(f"cleared {flag}")
    print(f"{len(cleared)} flag{'' if len(cleared) == 1 else 's'} cleared")
    return 0


def cmd_calendar_set(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import calendar  # noqa: PLC0415

    if (args.day is None) != (args.kind is None):
        raise TabelError("--day and --kind go together")
    with open_store(args.db) as store:
        _known(store, args.kindergarten)
        s = calendar.set_settings(
            store,
            args.kindergarten,
            tz=args.tz,
            opens=args.opens,
            closes=args.closes,
            rate_tiyn=args.rate_tiyn,
        )
        if args.day is not None:
            calendar.set_days(
                store, args.kindergarten, [(calendar.parse_day(args.day), args.kind, args.note)]
            )
    print(f"{s.kindergarten}: {s.tz}, open {s.opens}-{s.closes}, {s.rate_tiyn} tiyn per child-day")
    return 0


def cmd_calendar_import(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import calendar  # noqa: PLC0415

    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise TabelError(f"cannot read {args.file}: {exc.strerror}") from None
    days = calendar.parse_calendar_csv(raw)  # all validated before the database is touched
    with open_store(args.db) as store:
        _known(store, args.kindergarten)
        n = calendar.set_days(store, args.kindergarten, days)
    print(f"{args.kindergarten}: {n} days set")
    return 0


def cmd_absence(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import calendar  # noqa: PLC0415

    day = calendar.parse_day(args.date, "--date")
    with open_store(args.db) as store:
        _known(store, args.kindergarten)
        calendar.add_absence(
            store, args.kindergarten, args.child, day, args.reason,
            document=args.document, by=_who(args), now_ms=_now_ms(),
        )  # fmt: skip
    print(f"{args.child} {day}: absent, {calendar.REASONS[args.reason]}")
    return 0


def cmd_month(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.tabel import approval  # noqa: PLC0415

    with open_store(args.db) as store:
        _known(store, args.kindergarten)
        if args.month_command == "submit":
            digest = approval.submit(store, args.kindergarten, args.month, by=_who(args), now_ms=_now_ms())
        elif args.month_command == "approve":
            digest = approval.approve(
                store, args.kindergarten, args.month, by=_who(args), now_ms=_now_ms(), reason=args.reason
            )
        elif args.month_command == "reopen":
            digest = approval.reopen(
                store, args.kindergarten, args.month, by=_who(args), reason=args.reason, now_ms=_now_ms()
            )
        else:
            for s in approval.steps(store, args.kindergarten, args.month):
                print(json.dumps(s.__dict__, ensure_ascii=False, sort_keys=True))
            return 0
    done = {"submit": "submitted", "approve": "approved", "reopen": "reopened"}[args.month_command]
    print(f"{args.kindergarten} {args.month}: {done}, sha256 {digest}")
    return 0


def _common(p: argparse.ArgumentParser, *, month: bool = True) -> None:
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    p.add_argument("--kindergarten", required=True, help="kindergarten id or name")
    if month:
        p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month")


def add_commands(sub: Any) -> None:
    """Add the табель commands under ``kgate register``."""
    from register.tabel.audit import RULES  # noqa: PLC0415
    from register.tabel.calendar import DAY_KINDS, REASONS  # noqa: PLC0415

    tabel = sub.add_parser(
        "tabel", help="the month's табель: CSV (long form), or the printed form as XLSX or PDF"
    )
    _common(tabel)
    tabel.add_argument(
        "--format", choices=("csv", "xlsx", "pdf"), default="csv", help="(default %(default)s)"
    )
    tabel.add_argument(
        "--lang",
        choices=("ru", "kk"),
        default="ru",
        help="the form's language (XLSX, PDF; default %(default)s)",
    )
    tabel.add_argument("--organisation", metavar="NAME", help="the form's organisation (default: the id)")
    tabel.add_argument(
        "--teacher", metavar="GROUP=NAME", action="append", default=[], help="a group's teacher (repeatable)"
    )
    tabel.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    tabel.set_defaults(func=cmd_tabel)

    anomalies = sub.add_parser("anomalies", help="the month's audit flags with their evidence")
    _common(anomalies)
    anomalies.add_argument("--json", action="store_true", help="one JSON document with every flag")
    anomalies.add_argument("--uncleared", action="store_true", help="only flags not cleared yet")
    anomalies.set_defaults(func=cmd_anomalies)

    flags = sub.add_parser("flags", help="list or clear audit flags")
    fsub = flags.add_subparsers(dest="flags_command", metavar="COMMAND", required=True)
    lst = fsub.add_parser("list", help="the month's flags (as anomalies)")
    _common(lst)
    lst.add_argument("--json", action="store_true", help="one JSON document with every flag")
    lst.add_argument("--uncleared", action="store_true", help="only flags not cleared yet")
    lst.set_defaults(func=cmd_anomalies)
    clear = fsub.add_parser(
        "clear",
        help="an auditor clears flags (named, or selected by a filter): their child-days become payable",
    )
    clear.add_argument("flag", metavar="FLAG", nargs="*", help="flag ids (from flags list)")
    clear.add_argument("--kindergarten", help="with --month: every uncleared flag of that month ...")
    clear.add_argument("--month", metavar="YYYY-MM", help="with --kindergarten: the month to select from")
    clear.add_argument(
        "--rule", action="append", choices=sorted(RULES), help="... of this rule only (repeatable)"
    )
    clear.add_argument("--reason", required=True, help="why the flags are cleared (recorded per flag)")
    clear.add_argument("--by", help="who clears it (default: the user running the command)")
    clear.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    clear.set_defaults(func=cmd_clear)

    cal = sub.add_parser("calendar", help="a kindergarten's time zone, hours, rate and calendar")
    csub = cal.add_subparsers(dest="calendar_command", metavar="COMMAND", required=True)
    cset = csub.add_parser("set", help="set the time zone, hours, rate, or one day's kind")
    _common(cset, month=False)
    cset.add_argument("--tz", help="IANA time zone (default Asia/Almaty)")
    cset.add_argument("--opens", metavar="HH:MM", help="opening time (default 07:00)")
    cset.add_argument("--closes", metavar="HH:MM", help="closing time (default 19:00)")
    cset.add_argument("--rate-tiyn", type=int, help="amount per payable child-day, integer tiyn")
    cset.add_argument("--day", metavar="YYYY-MM-DD", help="a day to set (with --kind)")
    cset.add_argument("--kind", choices=DAY_KINDS, help="the day's kind")
    cset.add_argument("--note", default="", help="why (a holiday's name, repairs, ...)")
    cset.set_defaults(func=cmd_calendar_set)
    cimp = csub.add_parser("import", help="set days from a CSV: date,kind[,note]")
    _common(cimp, month=False)
    cimp.add_argument("file", metavar="FILE", help="CSV, UTF-8, header date,kind[,note]")
    cimp.set_defaults(func=cmd_calendar_import)

    absence = sub.add_parser("absence", help="absences with a reason from the fixed list")
    asub = absence.add_subparsers(dest="absence_command", metavar="COMMAND", required=True)
    add = asub.add_parser("add", help="record why a child was absent on a day")
    _common(add, month=False)
    add.add_argument("--child", required=True, help="the child's id")
    add.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the day")
    add.add_argument("--reason", required=True, choices=list(REASONS), help="the reason")
    add.add_argument("--document", help="reference to a supporting document (certificate number, ...)")
    add.add_argument("--by", help="who enters it (default: the user running the command)")
    add.set_defaults(func=cmd_absence)

    month = sub.add_parser("month", help="submit (director), approve and reopen (district) a month's табель")
    msub = month.add_subparsers(dest="month_command", metavar="COMMAND", required=True)
    sub_p = msub.add_parser("submit", help="the director submits the month")
    _common(sub_p)
    sub_p.add_argument("--by", help="who (default: the user running the command)")
    sub_p.set_defaults(func=cmd_month)
    app = msub.add_parser(
        "approve",
        help="the district approves it; with open payment-holding flags or absences without a reason, "
        "only with --reason",
    )
    _common(app)
    app.add_argument("--by", help="who (default: the user running the command)")
    app.add_argument(
        "--reason", help="why it is approved despite open holding flags or unexplained absences (recorded)"
    )
    app.set_defaults(func=cmd_month)
    reo = msub.add_parser(
        "reopen", help="the district reopens an approved month (then submitted and approved again)"
    )
    _common(reo)
    reo.add_argument("--by", help="who (default: the user running the command)")
    reo.add_argument("--reason", required=True, help="why it is reopened (recorded)")
    reo.set_defaults(func=cmd_month)
    st = msub.add_parser("status", help="the month's steps, one JSON object per line (with reasons)")
    _common(st)
    st.set_defaults(func=cmd_month)
