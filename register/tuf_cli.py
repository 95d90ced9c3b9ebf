"""``kgate register tuf …``: publish a kindergarten's roster, refresh its timestamp, export its root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from register.errors import ConfigError


def repos_dir(state: Path) -> Path:
    """Where the per-kindergarten repositories live (served at /v1/rosters/)."""
    return state / "rosters"


def keys_dir(state: Path) -> Path:
    """Where the roster keys live (root.key, targets.key, online.key)."""
    return state / "roster-keys"


def _repo(args: argparse.Namespace) -> Any:
    from register.cli import _state_dir  # noqa: PLC0415
    from register.tuf_repo import RosterRepository  # noqa: PLC0415

    state = _state_dir(args)
    return RosterRepository(repos_dir(state), keys_dir(state), args.kindergarten)


def cmd_publish(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    try:
        document = Path(args.file).read_bytes()
        version = json.loads(document)["version"]
    except OSError as exc:
        raise ConfigError(f"cannot read roster {args.file}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"roster {args.file} is not JSON with a version") from None
    targets = _repo(args).publish(document, version)
    print(f"{args.kindergarten}: roster v{version} published (targets v{targets})")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    print(f"{args.kindergarten}: timestamp v{_repo(args).refresh()}")
    return 0


def cmd_root(args: argparse.Namespace) -> int:
    repo = _repo(args)
    if not repo.exists:
        raise ConfigError(f"no roster published for {args.kindergarten!r} yet")
    sys.stdout.buffer.write((repo.metadata / "root.json").read_bytes())
    return 0


def add_commands(sub: Any) -> None:
    """Add ``kgate register tuf …`` under ``kgate register``."""
    tuf = sub.add_parser("tuf", help="signed roster delivery to the gates (TUF): publish, refresh, root")
    tsub = tuf.add_subparsers(dest="tuf_command", metavar="COMMAND", required=True)
    state_help = "directory of the register's state and keys (default $STATE_DIRECTORY or .)"
    for name, func, text in (
        ("publish", cmd_publish, "sign and publish a roster document (JSON) for one kindergarten"),
        ("refresh", cmd_refresh, "re-sign the timestamp (daily; needs only the online key)"),
        ("root", cmd_root, "print the kindergarten's trusted root.json, installed on a gate at enrolment"),
    ):
        cmd = tsub.add_parser(name, help=text)
        cmd.add_argument("--kindergarten", required=True, help="the kindergarten id")
        cmd.add_argument("--state", help=state_help)
        if name == "publish":
            cmd.add_argument("file", metavar="FILE", help="the roster document (roster_document bytes)")
        cmd.set_defaults(func=func)
