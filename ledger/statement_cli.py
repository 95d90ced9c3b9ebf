"""``kgate statement verify FILE --register-vkey VKEY``: check a parent statement offline.

Exit 0 valid, 1 invalid (the message names the label, log, entry, proof or signature), 2 unreadable. Needs
nothing but the file and the register's published cosigner key (the key itself, or a file holding it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from kgate.bounded import read_limited
from ledger.statement import MAX_STATEMENT_SIZE, verify_statement

MAX_VKEY_FILE = 4096


def _register_vkey(text: str) -> str:
    """The key given on the command line, or the first line of the file it names."""
    if "+" in text and not Path(text).exists():
        return text
    return read_limited(text, MAX_VKEY_FILE, "register key file").decode("utf-8", "replace").strip()


def cmd_verify(args: argparse.Namespace) -> int:
    raw = read_limited(args.file, MAX_STATEMENT_SIZE, "statement")
    verified = verify_statement(raw, _register_vkey(args.register_vkey))
    if args.json:
        row = {
            "valid": True,
            "child": verified.child,
            "month": verified.month,
            "entries": len(verified.entries),
            "kindergarten": verified.kindergarten,
            "timezone": verified.timezone,
            "signed_at": verified.signed_at,
        }
        print(json.dumps(row, sort_keys=True))
    else:
        signed = dt.datetime.fromtimestamp(verified.signed_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"valid: {len(verified.entries)} entries of child {verified.child} in {verified.month} "
            f"({verified.kindergarten}, {verified.timezone}), as the register signed them on {signed}; "
            "each proved against a checkpoint the register cosigned"
        )
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("statement", help="parent statements: verify one offline")
    ssub = st.add_subparsers(dest="statement_command", metavar="COMMAND", required=True)
    v = ssub.add_parser(
        "verify",
        help="check a statement.json with the register's cosigner key",
        description="Exit 0 valid, 1 invalid (says what failed), 2 unreadable.",
    )
    v.add_argument("file", type=Path, metavar="FILE", help="the statement.json")
    v.add_argument(
        "--register-vkey",
        required=True,
        metavar="VKEY",
        help="the register's cosigner vkey, or a file holding it",
    )
    v.add_argument(
        "--json",
        action="store_true",
        help='print {"valid", "child", "month", "entries", "kindergarten", "timezone", "signed_at"}',
    )
    v.set_defaults(func=cmd_verify)
