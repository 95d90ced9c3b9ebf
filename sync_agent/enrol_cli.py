"""``kgate enrol --register URL --token T``: enrol this device (see :mod:`sync_agent.enrol`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any


def cmd_enrol(args: argparse.Namespace) -> int:
    from sync_agent.enrol import enrol  # noqa: PLC0415

    state = Path(args.state or os.environ.get("STATE_DIRECTORY", "").split(":")[0] or ".")
    result = enrol(
        args.register, args.token, state=state, key=args.key, ca=args.ca, timeout=(args.timeout, args.timeout)
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
    p.add_argument("--token", required=True, help="the token from kgate register token create")
    p.add_argument("--state", help="state directory (default $STATE_DIRECTORY or .)")
    p.add_argument("--key", type=Path, help="device key file (default STATE/device.key)")
    p.add_argument("--ca", type=Path, help="CA bundle that verifies the register's TLS certificate")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per request (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the identity as JSON")
    p.set_defaults(func=cmd_enrol)
