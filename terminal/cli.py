"""Gate terminal commands: ``kgate scan``, ``kgate terminal run|today``, ``kgate roster load``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hardware.errors import UnreadableFrame
from terminal.scan import ScanPipeline, ScanResult, scan_images


def add_commands(subparsers: Any) -> None:
    """Register the terminal's commands on the ``kgate`` argument parser."""
    scan = subparsers.add_parser(
        "scan",
        help="decode QR codes in still images with the terminal's own frame pipeline",
        description=(
            "Run the gate terminal's frame pipeline (replay camera -> QR decoder) on still images. "
            "Text is each symbol's payload as its character set says (ECI, else ISO-8859-1 or "
            "Shift_JIS, as the QR standard and zxing-cpp decide)."
        ),
    )
    scan.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    scan.add_argument(
        "--json", action="store_true", help='one JSON object per image: {"image", "codes", "ms"}'
    )
    scan.set_defaults(func=run_scan)
    _add_terminal(subparsers)
    _add_roster(subparsers)


def _add_terminal(subparsers: Any) -> None:
    terminal = subparsers.add_parser("terminal", help="the gate terminal service and its staff views")
    sub = terminal.add_subparsers(dest="terminal_command", metavar="COMMAND", required=True)
    run = sub.add_parser(
        "run",
        help="run the gate: camera -> scan -> decide -> ledger -> screen (systemd Type=notify)",
        description="Run the gate terminal until SIGTERM. Sends READY=1 to $NOTIFY_SOCKET once the camera "
        "delivers frames and WATCHDOG=1 while frames keep arriving. Logs go to stdout (journald).",
    )
    config_help = "the terminal's TOML config (default $CONFIGURATION_DIRECTORY/terminal.toml)"
    run.add_argument("--config", type=Path, help=config_help)
    run.add_argument("--frames", type=int, metavar="N", help="stop after N frames (tests, demos)")
    run.add_argument("--max-seconds", type=float, metavar="S", help="stop after S seconds (tests, demos)")
    run.add_argument("--check-config", action="store_true", help="validate the config, print it, and exit")
    run.set_defaults(func=run_terminal)
    today = sub.add_parser(
        "today", help="today's list for staff: who is in, who has left, who is absent (read-only)"
    )
    today.add_argument("--config", type=Path, help=config_help)
    today.add_argument("--json", action="store_true", help="print the list as JSON")
    today.add_argument(
        "--png",
        type=Path,
        metavar="FILE",
        help="also save the staff screen as a PNG (FILE-2.png, … for more pages)",
    )
    today.set_defaults(func=run_today)


def _add_roster(subparsers: Any) -> None:
    roster = subparsers.add_parser("roster", help="the terminal's local roster of children and badges")
    sub = roster.add_subparsers(dest="roster_command", metavar="COMMAND", required=True)
    load = sub.add_parser(
        "load",
        help="validate a roster JSON file and install it (never an older version)",
        description="Validate FILE completely, then install it into the roster database in one "
        "transaction. A lower version than the installed one is refused; the same version is a no-op.",
    )
    load.add_argument("file", type=Path, metavar="FILE", help="roster JSON (see docs/terminal.md)")
    load.add_argument("--db", type=Path, required=True, metavar="PATH", help="the roster database")
    load.add_argument(
        "--face-key",
        type=Path,
        metavar="FILE",
        help="the face template key (default: face.key beside the roster database); used to prune templates",
    )
    load.set_defaults(func=run_roster_load)


def run_roster_load(args: argparse.Namespace) -> int:
    """Install the roster file; errors become one line naming the bad field."""
    import sqlite3  # noqa: PLC0415

    from terminal.roster import RosterError, load_roster  # noqa: PLC0415

    try:
        roster = load_roster(args.db, args.file, face_key=args.face_key)
    except sqlite3.Error as exc:
        raise RosterError(f"cannot install into the roster database {args.db}: {exc}") from None
    with roster:
        print(f"roster v{roster.version} installed in {args.db}: {len(roster.children())} children")
        removed = roster.faces_removed
    if removed:
        print(f"face templates of {removed} withdrawn or departed child(ren) deleted")
    return 0


def run_terminal(args: argparse.Namespace) -> int:
    """Validate the config, then run the service until SIGTERM (or --frames / --max-seconds)."""
    from terminal.config import load_config  # noqa: PLC0415
    from terminal.service import serve  # noqa: PLC0415

    config = load_config(args.config)
    if args.check_config:
        print(f"{config.source}: ok")
        return 0
    for name in ("frames", "max_seconds"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            from kgate.errors import UsageError  # noqa: PLC0415

            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    serve(config, max_frames=args.frames, max_seconds=args.max_seconds)
    return 0


def run_today(args: argparse.Namespace) -> int:
    """Print today's list from the ledger (read-only) and the roster."""
    from ledger.store import open_reader  # noqa: PLC0415
    from terminal.config import load_config  # noqa: PLC0415
    from terminal.roster import open_roster  # noqa: PLC0415
    from terminal.today import today_from_ledger  # noqa: PLC0415

    config = load_config(args.config)
    tz = config.gate.decide.tzinfo()
    day = dt.datetime.now(dt.UTC).astimezone(tz).date()
    with open_reader(config.ledger.path) as reader, open_roster(config.roster_path) as roster:
        listing = today_from_ledger(reader, day, tz).today_list(roster.children())
    if args.png is not None:
        from terminal.screen import GateScreen  # noqa: PLC0415

        screen = GateScreen(config.screen)
        lang = config.gate.language
        for page in range(screen.today_page_count(listing, lang)):  # FILE, then FILE-2.png, …
            path = args.png if page == 0 else args.png.with_stem(f"{args.png.stem}-{page + 1}")
            screen.render_today(listing, lang, page=page).save(path)
    if args.json:
        groups = [
            {
                "group": g.name,
                "children": [
                    {
                        "name": c.name,
                        "in": _hhmm(c.time_in),
                        "out": _hhmm(c.time_out),
                        "pickup_refused": c.alert is not None,
                    }
                    for c in g.children
                ],
            }
            for g in listing.groups
        ]
        print(json.dumps({"date": listing.date.isoformat(), "groups": groups}, ensure_ascii=False))
        return 0
    for group in listing.groups:
        print(f"{group.name}: {len(group.present)} in, {len(group.left)} left, {len(group.absent)} absent")
        for child in group.children:
            flag = "  (pickup refused: see the ledger)" if child.alert else ""
            print(
                f"  {_hhmm(child.time_in) or '--:--'}  {_hhmm(child.time_out) or '--:--'}  {child.name}{flag}"
            )
    return 0


def _hhmm(value: dt.time | None) -> str | None:
    return None if value is None else f"{value:%H:%M}"


def run_scan(args: argparse.Namespace) -> int:
    """Scan every image; unreadable ones are reported on stderr and make the exit status 1."""
    pipeline = ScanPipeline()
    failures = 0
    for origin, result in scan_images(args.images, pipeline):
        if isinstance(result, UnreadableFrame):
            failures += 1
            print(f"kgate: error: {result}", file=sys.stderr)
            continue
        print(_json_line(origin, result) if args.json else _human_line(origin, result), flush=True)
    return 1 if failures else 0


def _json_line(origin: str, result: ScanResult) -> str:
    record = {"image": origin, "codes": [code.text for code in result.codes], "ms": round(result.ms, 3)}
    return json.dumps(record, ensure_ascii=False)


def _human_line(origin: str, result: ScanResult) -> str:
    if not result.codes:
        return f"{origin}: no QR code ({result.ms:.1f} ms)"
    # repr-style escaping keeps a hostile payload from sending control sequences to the terminal.
    texts = ", ".join(_printable(code.text) for code in result.codes)
    return f"{origin}: {texts} ({result.ms:.1f} ms)"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
