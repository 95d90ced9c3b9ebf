"""``kgate enrol --register URL --token-file FILE``: enrol this device (see :mod:`sync_agent.enrol`).

The token is best given as ``--token-file FILE`` or ``--token -`` (one line on stdin): a token on the
command line shows in ``ps`` to every user of the machine and lands in the shell's history.
``--token T`` still works. :func:`read_token` is shared with ``kgate provision``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kgate.errors import UsageError

MAX_TOKEN_FILE = 4096
TOKEN_HELP = "the token from kgate register token create (- reads one line from stdin; visible in ps)"  # noqa: S105
TOKEN_FILE_HELP = "read the token from FILE (- for stdin): it never appears in ps or shell history"  # noqa: S105


def read_token(token: str | None, token_file: Path | None) -> str | None:
    """The token from ``--token T`` / ``--token -`` (stdin) / ``--token-file FILE``; None if none given."""
    if token is not None and token_file is not None:
        raise UsageError("give the token once: --token or --token-file, not both")
    if token_file is not None and str(token_file) != "-":
        from kgate.bounded import decode_utf8, read_limited  # noqa: PLC0415

        raw = read_limited(token_file, MAX_TOKEN_FILE, "--token-file")
        text, where = decode_utf8(raw, f"--token-file {token_file}"), f"--token-file {token_file}"
    elif token == "-" or token_file is not None:  # noqa: S105 (stdin keeps it out of ps and history)
        text, where = sys.stdin.readline(MAX_TOKEN_FILE), "stdin"
    else:
        return token
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip():
        raise UsageError(f"no enrolment token in {where}")
    if len(lines) > 1:
        raise UsageError(f"{where}: expected the token alone on one line, found {len(lines)} lines")
    return lines[0].strip()


def cmd_enrol(args: argparse.Namespace) -> int:
    from sync_agent.enrol import enrol  # noqa: PLC0415

    state = Path(args.state or os.environ.get("STATE_DIRECTORY", "").split(":")[0] or ".")
    token = read_token(args.token, args.token_file)
    if token is None:
        raise UsageError("the token is missing: --token-file FILE, --token - (stdin) or --token T")
    result = enrol(
        args.register, token, state=state, key=args.key, ca=args.ca, timeout=(args.timeout, args.timeout)
    )
    if args.json:
        print(json.dumps(result.__dict__, ensure_ascii=False, sort_keys=True))
    else:
        print(
            f"enrolled as {result.origin} at {result.kindergarten} / {result.gate}; wrote {state}/sync.toml"
        )
        print(result.roster_note)
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``kgate enrol``."""
    p = subparsers.add_parser(
        "enrol",
        help="enrol this device with the register using a one-time token (makes the device key if needed)",
    )
    p.add_argument("--register", required=True, metavar="URL", help="the register's base URL (https)")
    token = p.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", metavar="T", help=TOKEN_HELP)
    token.add_argument("--token-file", type=Path, metavar="FILE", help=TOKEN_FILE_HELP)
    p.add_argument("--state", help="state directory (default $STATE_DIRECTORY or .)")
    p.add_argument("--key", type=Path, help="device key file (default STATE/device.key)")
    p.add_argument("--ca", type=Path, help="CA bundle that verifies the register's TLS certificate")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per request (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the identity as JSON")
    p.set_defaults(func=cmd_enrol)
