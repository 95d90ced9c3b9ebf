"""``kgate`` subcommands of the gate terminal: ``kgate scan``."""

from __future__ import annotations

import argparse
import json
import sys
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


def run_scan(args: argparse.Namespace) -> int:
    """Scan every image; unreadable ones are reported on stderr and make the exit status 1."""
    pipeline = ScanPipeline()
    failures = 0
    for origin, result in scan_images(args.images, pipeline):
        if isinstance(result, UnreadableFrame):
            failures += 1
            print(f"kgate scan: {result}", file=sys.stderr)
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
