"""``kgate register statement``, ``kindergarten set``, ``user …``, ``parent-code …``: the console's data."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DB = "register.db"
DB_HELP = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"


def cmd_statement(args: argparse.Namespace) -> int:
    from register.statement import build_statement, load_cosigner, write_statement  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    state = args.state or os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "."
    signer = load_cosigner(Path(state))
    with open_store(args.db, readonly=True) as store:
        statement = build_statement(
            store, args.child, args.month, kindergarten_name=args.kindergarten, signer=signer
        )
    json_path, pdf_path = write_statement(statement, Path(args.out))
    print(
        f"{json_path} ({len(statement.verified.entries)} entries, sha256:{statement.sha256}) and {pdf_path}"
    )
    return 0


def cmd_kindergarten_set(args: argparse.Namespace) -> int:
    from register.kindergartens import set_district  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db) as store:
        set_district(store, args.kindergarten, args.district)
    print(f"{args.kindergarten}: district {args.district}")
    return 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def read_password(prompt: str = "password: ") -> str:
    """The password from stdin: asked twice on a terminal, else the first line (never argv)."""
    from register.errors import ConfigError  # noqa: PLC0415

    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ")
        return first
    line = sys.stdin.readline(4096)
    return line.removesuffix("\n").removesuffix("\r")


def cmd_user_add(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.users import add_user, check_password  # noqa: PLC0415

    password = check_password(read_password())
    with open_store(args.db) as store:
        from register.kindergartens import check_district, check_kindergarten  # noqa: PLC0415

        if args.role == "director" and args.scope is not None:  # mistyped: refused with "did you mean"
            check_kindergarten(store, args.scope, "--scope")
        elif args.role == "district" and args.scope is not None:
            check_district(store, args.scope, "--scope")
        user = add_user(
            store, args.user, args.role, args.scope, password, now_ms=_now_ms(), language=args.language
        )
    print(f"added {user.name}: {user.role} of {user.scope or 'everything (read-only)'}")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.users import disable_user  # noqa: PLC0415

    with open_store(args.db) as store:
        user = disable_user(store, args.user, now_ms=_now_ms())
    print(f"disabled {user.name}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.users import users  # noqa: PLC0415

    with open_store(args.db, readonly=True) as store:
        found = users(store)
    for u in found:
        if args.json:
            print(json.dumps(u.as_json(), sort_keys=True, ensure_ascii=False))
        else:
            state = "disabled" if u.disabled else "active"
            print(f"{u.name}\t{u.role}\t{u.scope or '*'}\t{u.language}\t{state}")
    return 0


def cmd_parent_code(args: argparse.Namespace) -> int:
    from register.parent_codes import create_parent_code  # noqa: PLC0415
    from register.statement import child_home  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db) as store:
        home, name = child_home(store, args.child, args.kindergarten)
        code = create_parent_code(store, home, args.child, now_ms=_now_ms())
    print(f"{code}\t{home}\t{args.child}\t{name}")
    return 0


def add_commands(sub: Any) -> None:
    """Add the console's data commands under ``kgate register``."""
    st = sub.add_parser(
        "statement",
        help="write a child's month as statement.json (verifiable offline) and statement.pdf",
        description="Writes OUT/statement.json, statement.pdf and register.vkey (docs/statements.md).",
    )
    st.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    st.add_argument("--child", required=True, help="the child's roster id")
    st.add_argument("--month", required=True, metavar="YYYY-MM", help="the month, local to the kindergarten")
    st.add_argument("--kindergarten", help="the child's kindergarten, if the id is on several rosters")
    st.add_argument("--out", required=True, metavar="DIR", help="directory to write the two files into")
    st.add_argument(
        "--state",
        help="the register's key directory: its cosigner key signs the statement "
        "(default $STATE_DIRECTORY or .)",
    )
    st.set_defaults(func=cmd_statement)

    kg = sub.add_parser("kindergarten", help="a kindergarten's district (the scope of district officials)")
    ksub = kg.add_subparsers(dest="kindergarten_command", metavar="COMMAND", required=True)
    kset = ksub.add_parser(
        "set", help="put a kindergarten in a district (its time zone: kgate register calendar set --tz)"
    )
    kset.add_argument("kindergarten", metavar="K")
    kset.add_argument("--district", required=True, help="the district the kindergarten belongs to")
    kset.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    kset.set_defaults(func=cmd_kindergarten_set)

    user = sub.add_parser("user", help="console users: add, disable, list")
    usub = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    uadd = usub.add_parser(
        "add",
        help="add a console user; the password is read from stdin (asked twice on a terminal)",
        description="director: --scope KINDERGARTEN; district: --scope DISTRICT; auditor: no scope.",
    )
    uadd.add_argument("user", metavar="NAME", help="login name: lower-case letters, digits, . _ -")
    uadd.add_argument("--role", required=True, choices=("director", "district", "auditor"))
    uadd.add_argument("--scope", help="the kindergarten (director) or district (district official)")
    uadd.add_argument("--language", default="ru", choices=("kk", "ru", "en"), help="page language")
    uadd.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    uadd.set_defaults(func=cmd_user_add)
    udis = usub.add_parser("disable", help="disable a user: no more logins, sessions end")
    udis.add_argument("user", metavar="NAME")
    udis.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    udis.set_defaults(func=cmd_user_disable)
    ulist = usub.add_parser("list", help="list console users")
    ulist.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    ulist.add_argument("--json", action="store_true", help="one JSON object per line")
    ulist.set_defaults(func=cmd_user_list)

    pcode = sub.add_parser("parent-code", help="per-child access codes for the console's parent page")
    psub = pcode.add_subparsers(dest="parent_code_command", metavar="COMMAND", required=True)
    pcreate = psub.add_parser("create", help="print a new code for a child once (only its hash is kept)")
    pcreate.add_argument("--child", required=True, help="the child's roster id")
    pcreate.add_argument("--kindergarten", help="the child's kindergarten, if the id is on several rosters")
    pcreate.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    pcreate.set_defaults(func=cmd_parent_code)
