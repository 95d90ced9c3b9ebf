"""The ``kgate`` console script: one argparse tree whose subcommands live in their own packages.

Every package that contributes commands has ``<package>/cli.py`` with ``add_commands(subparsers)``;
each command sets ``func(args) -> int``. Errors derived from :class:`KgateError` become one line on
stderr and a non-zero exit; a traceback is shown only with ``--debug``.

A reader that closes the pipe early (``kgate ... | head -1``) ends the command quietly with exit 141,
128 + SIGPIPE, what a shell reports for ``cat`` or ``seq`` in the same place: the output was cut short,
so it is not a success, but nothing went wrong that deserves a message.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from kgate import __version__
from kgate.errors import KgateError

# Packages that add subcommands, in the order they appear in ``kgate --help``.
COMMAND_MODULES = (
    "kgate.demo",
    "kgate.verify",
    "ledger.cli",
    "ledger.statement_cli",
    "terminal.cli",
    "terminal.face.cli",
    "sync_agent.cli",
    "sync_agent.enrol_cli",
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


#: Exit status after the reader closed stdout: 128 + SIGPIPE, as a shell reports for coreutils.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a closed stdout pipe ends it quietly (see the module docstring)."""
    try:
        try:
            return _run(argv)
        finally:  # also after --help's SystemExit: a write the reader never takes fails here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's flush at exit cannot fail a second time.

    The recipe of the Python docs' "Note on SIGPIPE" (library/signal.html).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run(argv: Sequence[str] | None) -> int:
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
