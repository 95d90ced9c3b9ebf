"""``kgate verify PATH``: a device ledger or a register database, one algorithm for both.

A command of the top layer (docs/architecture.md): it picks :func:`ledger.verify.verify_ledger` or
:func:`register.verify.verify_register` by what the file is, so neither package imports the other.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

from kgate.bounded import KiB, decode_utf8, read_limited
from kgate.errors import UsageError
from ledger.errors import StorageError
from ledger.sqlite import open_readonly

#: A signed checkpoint note is a few hundred bytes; this leaves room for many cosignatures.
MAX_CHECKPOINT_FILE = 64 * KiB


def _read_checkpoint(path: Path) -> str:
    """The ``--checkpoint`` file as text, read with a size cap before anything parses it."""
    return decode_utf8(read_limited(path, MAX_CHECKPOINT_FILE, "checkpoint"), f"checkpoint {path}")


def verify_path(target: str, *, presented: str | None = None, vkey: str | None = None) -> dict[str, Any]:
    """Verify a device ledger or a register database (a path or PostgreSQL URL); a JSON-able summary."""
    if _is_register(target):
        from register.verify import verify_register  # noqa: PLC0415 - only register files need it

        if presented is not None or vkey is not None:
            raise UsageError("--checkpoint and --vkey apply to device ledgers, not register databases")
        report = verify_register(target)
        return {"kind": "register", "devices": len(report.devices), "entries": report.entries}
    from ledger.verify import verify_ledger  # noqa: PLC0415

    r = verify_ledger(Path(target), presented=presented, vkey=vkey)
    return {"kind": "ledger", "origin": r.origin, "size": r.size, "checkpoints": r.checkpoints}


def _is_register(target: str) -> bool:
    """A PostgreSQL URL, or an SQLite file with the register's ``devices`` table."""
    if target.startswith(("postgresql://", "postgres://", "sqlite://")):
        return True
    path = Path(target)
    if not path.is_file():
        return False
    try:
        conn = open_readonly(path)
    except StorageError:
        return False  # the ledger verifier reports what is wrong with the file
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'devices'")
        return found.fetchone() is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _verify(args: argparse.Namespace) -> int:
    presented = _read_checkpoint(args.checkpoint) if args.checkpoint else None
    summary = verify_path(args.path, presented=presented, vkey=args.vkey)
    if args.json:
        print(json.dumps({"ok": True, **summary}, sort_keys=True))
    elif summary["kind"] == "ledger":
        print(
            f"ok: {summary['origin']}: {summary['size']} entries, "
            f"{summary['checkpoints']} signed checkpoints verified"
        )
    else:
        print(f"ok: register database: {summary['devices']} devices, {summary['entries']} entries verified")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="verify a device ledger or register database (exit 0 ok, 1 invalid, 2 unreadable)",
        description="Check every entry, the Merkle tree, every stored checkpoint's signature and their "
        "consistency. Exit 0 when valid, 1 when invalid (the first bad entry is named on stderr), "
        "2 when the input is unreadable.",
    )
    p.add_argument("path", metavar="PATH", help="ledger.db, register.db or a register's postgresql:// URL")
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="a signed checkpoint the ledger must be consistent with",
    )
    p.add_argument("--vkey", help="the device's verifier key to require (default: the one in the file)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_verify)
