"""``kgate ledger checkpoint`` and ``kgate ledger vkey`` (``kgate verify`` lives in :mod:`kgate.verify`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ledger.errors import LedgerError
from ledger.store import open_reader


def _checkpoint(args: argparse.Namespace) -> int:
    with open_reader(args.path) as reader:
        print(reader.checkpoint(), end="")
    return 0


def _vkey(args: argparse.Namespace) -> int:
    with open_reader(args.path) as reader:
        print(reader.vkey)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="inspect a device ledger", description="Inspect a device ledger.")
    lsub = ledger.add_subparsers(dest="ledger_command", metavar="COMMAND", required=True)
    c = lsub.add_parser("checkpoint", help="print the newest signed checkpoint (a signed note)")
    c.add_argument("path", type=Path, metavar="PATH")
    c.set_defaults(func=_checkpoint)
    v = lsub.add_parser("vkey", help="print the device's verifier key (note vkey form)")
    v.add_argument("path", type=Path, metavar="PATH")
    v.set_defaults(func=_vkey)


__all__ = ["LedgerError", "add_commands"]
