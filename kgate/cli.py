"""The ``kgate`` console script: one argparse tree whose subcommands live in their own packages.

Every package that contributes commands has ``<package>/cli.py`` with ``add_commands(subparsers)``;
each command sets ``func(args) -> int``. Errors derived from :class:`KgateError` become one line on
stderr and a non-zero exit; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kgate import __version__
from kgate.errors import KgateError

# Packages that add subcommands, in the order they appear in ``kgate --help``.
COMMAND_MODULES = (
    "kgate.demo",
    "ledger.cli",
    "terminal.cli",
    "terminal.face.cli",
    "sync_agent.cli",
    "register.cli",
    "provisioning.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgate",
        description="Verifiable attendance for kindergarten gates.",
    )
    parser.add_argument("--version", action="version", version=f"kgate {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # the package has no commands yet
                continue
            raise
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except KgateError as exc:
        if args.debug:
            raise
        print(f"kgate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
