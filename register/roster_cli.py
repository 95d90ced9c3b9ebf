"""``kgate register roster import|show|versions`` and ``kgate register badge reissue|print``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from register.errors import ConfigError

DEFAULT_DB = "register.db"
DB_HELP = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"


def cmd_import(args: argparse.Namespace) -> int:
    from register.roster_csv import read_roster  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415
    from register.store.roster import import_roster, roster_versions  # noqa: PLC0415

    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    people, warnings = read_roster(raw)  # the whole file is validated before the database is touched
    for warning in warnings:  # look-alike names: imported, but someone should look
        print(f"kgate: warning: {warning}", file=sys.stderr)
    with open_store(args.db) as store:
        before = [v.version for v in roster_versions(store, args.kindergarten)]
        version = import_roster(store, args.kindergarten, people)
    children = sum(p.kind == "child" for p in people)
    state = "unchanged" if before and before[-1] == version else "new version"
    print(f"{args.kindergarten}: roster version {version} ({state}): {children} children, "
          f"{len(people) - children} guardians")  # fmt: skip
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.store.roster import roster_document  # noqa: PLC0415

    with open_store(args.db) as store:
        doc = roster_document(store, args.kindergarten, args.version)
    print(doc.decode("utf-8"))
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.store.roster import roster_versions  # noqa: PLC0415

    with open_store(args.db) as store:
        for v in roster_versions(store, args.kindergarten):
            print(json.dumps(v.__dict__, ensure_ascii=False, sort_keys=True))
    return 0


def cmd_reissue(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.store.roster import reissue_badge  # noqa: PLC0415

    kind = "guardian" if args.guardian else "child"
    with open_store(args.db) as store:
        serial, version = reissue_badge(store, args.kindergarten, args.holder, kind=kind)
    print(f"{kind} {args.holder}: new badge {serial}; the old one is revoked in roster version {version}")
    return 0


def cmd_print(args: argparse.Namespace) -> int:
    from register.badges import cards_from_roster, render_sheets  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415
    from register.store.roster import roster_document  # noqa: PLC0415

    if sum(x is not None for x in (args.group, args.child, args.guardian)) > 1:
        raise ConfigError("give at most one of --group, --child, --guardian")
    with open_store(args.db) as store:
        doc = roster_document(store, args.kindergarten)
    cards = cards_from_roster(doc, group=args.group, child=args.child, guardian=args.guardian)
    pages = render_sheets(cards, args.kindergarten, Path(args.out))
    print(f"{args.out}: {len(cards)} badges on {pages} A4 pages")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``roster`` and ``badge`` under ``kgate register``."""
    roster = sub.add_parser("roster", help="each kindergarten's children, guardians and badges, versioned")
    rsub = roster.add_subparsers(dest="roster_command", metavar="COMMAND", required=True)
    imp = rsub.add_parser("import", help="replace a kindergarten's roster with a CSV (docs/rosters.md)")
    imp.add_argument(
        "file", metavar="FILE", help="CSV, UTF-8: kind,id,name,group,consent_face,badge,guardian_of"
    )
    show = rsub.add_parser("show", help="print the roster document the gates install (canonical JSON)")
    show.add_argument("--version", type=int, help="an older version (default: the newest)")
    versions = rsub.add_parser("versions", help="list the roster's versions, one JSON object per line")
    for p in (imp, show, versions):
        p.add_argument("--kindergarten", required=True, help="kindergarten id or name")
        p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    imp.set_defaults(func=cmd_import)
    show.set_defaults(func=cmd_show)
    versions.set_defaults(func=cmd_versions)

    badge = sub.add_parser("badge", help="print badge sheets, reissue a badge")
    bsub = badge.add_subparsers(dest="badge_command", metavar="COMMAND", required=True)
    reissue = bsub.add_parser(
        "reissue", help="a new badge serial; the old one is revoked in the next version"
    )
    reissue.add_argument("holder", metavar="ID", help="the child's id (or the guardian's, with --guardian)")
    reissue.add_argument("--guardian", action="store_true", help="ID is a guardian")
    prt = bsub.add_parser("print", help="A4 PDF of badge cards with cut marks (children and guardians)")
    prt.add_argument("--group", help="only this group's children and their guardians")
    prt.add_argument("--child", help="only this child")
    prt.add_argument("--guardian", help="only this guardian")
    prt.add_argument("--out", required=True, metavar="FILE.pdf", help="the PDF to write")
    for p in (reissue, prt):
        p.add_argument("--kindergarten", required=True, help="kindergarten id or name")
        p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    reissue.set_defaults(func=cmd_reissue)
    prt.set_defaults(func=cmd_print)
