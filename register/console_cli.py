"""``kgate register statement``, ``kindergarten set``, ``user …``, ``parent-code …``: the console's data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_DB = "register.db"
DB_HELP = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"


def cmd_statement(args: argparse.Namespace) -> int:
    from register.statement import build_statement, write_statement  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db, readonly=True) as store:
        statement = build_statement(store, args.child, args.month, kindergarten_name=args.kindergarten)
    json_path, pdf_path = write_statement(statement, Path(args.out))
    print(
        f"{json_path} ({len(statement.verified.entries)} entries, sha256:{statement.sha256}) and {pdf_path}"
    )
    return 0


def cmd_kindergarten_set(args: argparse.Namespace) -> int:
    from register.kindergartens import set_kindergarten  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db) as store:
        k = set_kindergarten(store, args.kindergarten, district=args.district, timezone=args.timezone)
    print(f"{k.name}: district {k.district or '(none)'}, time zone {k.timezone}")
    return 0


def add_commands(sub: Any) -> None:
    """Add the console's data commands under ``kgate register``."""
    st = sub.add_parser(
        "statement",
        help="write a child's month as statement.json (verifiable offline) and statement.pdf",
        description="Writes OUT/statement.json and OUT/statement.pdf (docs/statements.md).",
    )
    st.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    st.add_argument("--child", required=True, help="the child's roster id")
    st.add_argument("--month", required=True, metavar="YYYY-MM", help="the month, local to the kindergarten")
    st.add_argument("--kindergarten", help="the child's kindergarten, if the id is on several rosters")
    st.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files into")
    st.add_argument("--state", help="unused: the cosigner key is read from the database (kept for scripts)")
    st.set_defaults(func=cmd_statement)

    kg = sub.add_parser("kindergarten", help="a kindergarten's district and time zone")
    ksub = kg.add_subparsers(dest="kindergarten_command", metavar="COMMAND", required=True)
    kset = ksub.add_parser("set", help="set the district and/or time zone of a kindergarten")
    kset.add_argument("kindergarten", metavar="K")
    kset.add_argument("--district", help="the district the kindergarten belongs to")
    kset.add_argument("--timezone", help="IANA time zone (default Asia/Almaty)")
    kset.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    kset.set_defaults(func=cmd_kindergarten_set)
