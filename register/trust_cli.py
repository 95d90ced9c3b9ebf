"""``kgate register token|roster|badge …`` and ``device revoke``: the register's trust commands.

Thin over :mod:`register.enrol`, :mod:`register.rosters` and :mod:`register.badges`; every command takes
``--db`` like the rest of ``kgate register``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path
from typing import Any

from register.errors import ConfigError
from register.store import Store

DEFAULT_DB = "register.db"
DB_HELP = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"


def known_register_name(store: Store, args: argparse.Namespace) -> str:
    """The register's name: as recorded by the register, else its keys' in --state, else --name."""
    from register.keys import load_or_create_keys  # noqa: PLC0415
    from register.store.enrolment import register_name  # noqa: PLC0415

    with store._tx(write=False) as sql:
        name = register_name(sql)
    if name is not None:
        return name
    state = Path(args.state or os.environ.get("STATE_DIRECTORY", "").split(":")[0] or ".")
    try:
        return load_or_create_keys(state, None).cosigner.name
    except ConfigError:
        pass
    if args.name:
        return str(args.name)
    raise ConfigError(
        "the register's name (the origin prefix) is unknown: give --name REGISTER-HOST, "
        "or --state with the register's keys"
    )


def _enrolment(store: Store, args: argparse.Namespace) -> Any:
    from register.enrol import Enrolment  # noqa: PLC0415

    return Enrolment(store)


def cmd_token_create(args: argparse.Namespace) -> int:
    from register.enrol import parse_duration  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    expires = parse_duration(args.expires)
    with open_store(args.db) as store:
        token = _enrolment(store, args).create_token(
            args.kindergarten, args.gate, expires_s=expires, replaces=args.replaces
        )
    print(token)
    return 0


def cmd_device_revoke(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415

    if (args.origin is None) == (args.key is None):
        raise ConfigError(
            "give the device's ORIGIN or --key VKEY (what kgate decommission printed), not both"
        )
    by = args.by or os.environ.get("SUDO_USER") or getpass.getuser()
    with open_store(args.db) as store:
        enrolment = _enrolment(store, args)
        if args.key is not None:
            from ledger.errors import BadKeyError  # noqa: PLC0415
            from ledger.note import Ed25519Verifier  # noqa: PLC0415

            try:
                Ed25519Verifier.from_vkey(args.key)
            except BadKeyError as exc:
                raise ConfigError(f"--key: not an Ed25519 note verifier key: {exc}") from None
            origin = enrolment.revoke_key(args.key, reason=args.reason, by=by).origin
        else:
            origin = args.origin
            enrolment.revoke(origin, reason=args.reason, by=by)
    print(f"revoked {origin}: its pushes are refused from now on; its stored log stays")
    return 0


def cmd_device_revocations(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db) as store:
        for r in _enrolment(store, args).revocations():
            print(json.dumps(r.__dict__, ensure_ascii=False, sort_keys=True))
    return 0


def _keys_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=DEFAULT_DB, help=DB_HELP)
    p.add_argument("--state", help="directory of the register keys (default $STATE_DIRECTORY or .)")
    p.add_argument("--name", help="the register's name, when no register has run on --db yet")


def add_commands(sub: Any, device_sub: Any) -> None:
    """Add the trust commands under ``kgate register`` (``sub``) and ``kgate register device``."""
    token = sub.add_parser("token", help="one-time enrolment tokens for devices")
    tsub = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = tsub.add_parser(
        "create", help="print a one-time token that enrols one device at a kindergarten's gate (kgate enrol)"
    )
    create.add_argument("--kindergarten", required=True, help="kindergarten id or name")
    create.add_argument("--gate", required=True, help="gate name within the kindergarten")
    create.add_argument("--expires", default="24h", help="lifetime: 30m, 24h, 7d (default %(default)s)")
    create.add_argument(
        "--replaces", metavar="ORIGIN", help="the device this one replaces; it is revoked at enrolment"
    )
    _keys_args(create)
    create.set_defaults(func=cmd_token_create)

    revoke = device_sub.add_parser("revoke", help="revoke a device: its pushes get 403, its log stays")
    revoke.add_argument("origin", metavar="ORIGIN", nargs="?", help="the device's log origin")
    revoke.add_argument(
        "--key",
        metavar="VKEY",
        help="instead of ORIGIN: the device whose stored key is VKEY (kgate decommission)",
    )
    revoke.add_argument("--reason", required=True, help="why (recorded with who and when)")
    revoke.add_argument("--by", help="who revokes (default: the user running the command)")
    _keys_args(revoke)
    revoke.set_defaults(func=cmd_device_revoke)

    revs = device_sub.add_parser("revocations", help="list revocations (who, when, why, replaced by)")
    _keys_args(revs)
    revs.set_defaults(func=cmd_device_revocations)

    from register import roster_cli  # noqa: PLC0415

    roster_cli.add_commands(sub)
