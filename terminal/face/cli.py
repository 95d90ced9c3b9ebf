"""``kgate face identify|enrol|forget``: thin commands over :mod:`terminal.face`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from terminal.face.errors import BadImage


def add_commands(subparsers: Any) -> None:
    """Register ``kgate face`` and its subcommands."""
    face = subparsers.add_parser(
        "face", help="face templates and matching (consent-gated, see docs/faces.md)"
    )
    sub = face.add_subparsers(dest="face_command", metavar="COMMAND", required=True)

    ident = sub.add_parser(
        "identify",
        help="identify the largest face of each image against a gallery folder (one subfolder per person)",
        description="Prints one line per image; with --json one object per line: "
        '{"image", "identity" (or null), "distance", "ms"}. identity is null for a person not in the '
        "gallery, an image without a usable face, and when two people are too close to call. A bad "
        "image gets one line on stderr and the others are still processed (exit status 1).",
    )
    ident.add_argument("--gallery", type=Path, required=True, metavar="DIR", help="one subfolder per person")
    ident.add_argument("--json", action="store_true", help="one JSON object per image")
    ident.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="images to identify")
    ident.set_defaults(func=run_identify)

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--config", type=Path, help="the terminal's TOML config (for the roster and key paths)"
    )
    where.add_argument("--roster", type=Path, metavar="DB", help="the roster database (overrides --config)")
    where.add_argument(
        "--faces", type=Path, metavar="DB", help="the template database (default: beside the roster)"
    )
    where.add_argument(
        "--key", type=Path, metavar="FILE", help="the template key (default: beside the device key)"
    )

    enrol = sub.add_parser(
        "enrol",
        parents=[where],
        help="store face templates of a consenting child from photos or the gate's camera (never images)",
        description="Every photo must show exactly one face, large, sharp and frontal; otherwise nothing "
        "is stored. A child without consent_face in the roster is refused. With --camera (staff at the "
        "gate, the terminal service stopped) the frames come from the camera in --config and are checked "
        "in memory; only templates are stored.",
    )
    enrol.add_argument("--child", required=True, metavar="ID", help="the child's roster id")
    enrol.add_argument(
        "--camera", action="store_true", help="take the photos from the camera in --config, not from files"
    )
    enrol.add_argument(
        "--frames", type=int, default=3, metavar="N", help="with --camera: good frames to keep (default 3)"
    )
    enrol.add_argument("photos", nargs="*", type=Path, metavar="PHOTO")
    enrol.set_defaults(func=run_enrol)

    forget = sub.add_parser("forget", parents=[where], help="delete every face template of a child")
    forget.add_argument("child", metavar="CHILD", help="the child's roster id")
    forget.set_defaults(func=run_forget)


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(roster db, template db, key file) from the options, falling back to the terminal config."""
    from terminal.face.templates import DB_NAME, KEY_NAME  # noqa: PLC0415

    roster, key = args.roster, args.key
    if roster is None or key is None:
        from terminal.config import load_config  # noqa: PLC0415

        config = load_config(args.config)
        roster = roster or config.roster_path
        key = key or config.ledger.key.with_name(KEY_NAME)
    return roster, args.faces or roster.with_name(DB_NAME), key


def run_identify(args: argparse.Namespace) -> int:
    """Build the gallery, then answer each image; bad images are reported and skipped."""
    from terminal.face.identify import build_gallery, identify  # noqa: PLC0415
    from terminal.face.pipeline import FacePipeline  # noqa: PLC0415

    pipeline = FacePipeline()
    gallery, problems = build_gallery(pipeline, args.gallery)
    for problem in problems:
        print(f"kgate face identify: gallery: {problem}", file=sys.stderr)
    failures = 0
    for result in identify(pipeline, gallery, args.images):
        if isinstance(result, BadImage):
            failures += 1
            print(f"kgate face identify: {result}", file=sys.stderr, flush=True)
            continue
        if args.json:
            print(json.dumps(result.record(), ensure_ascii=False), flush=True)
        else:
            who = result.identity or f"no match ({result.reason})"
            dist = "" if result.distance is None else f" at {result.distance:.3f}"
            print(f"{result.image}: {who}{dist} ({result.ms:.0f} ms)", flush=True)
    return 1 if failures else 0


def run_enrol(args: argparse.Namespace) -> int:
    """Consent first, then all photos (or camera frames) checked, then stored."""
    from kgate.errors import UsageError  # noqa: PLC0415
    from terminal.face.enrol import consenting_child, enrol, enrol_from_camera  # noqa: PLC0415
    from terminal.face.pipeline import FacePipeline  # noqa: PLC0415
    from terminal.face.templates import open_templates  # noqa: PLC0415
    from terminal.roster import open_roster  # noqa: PLC0415

    if args.camera == bool(args.photos):
        raise UsageError("face enrol: give either PHOTO files or --camera")
    if not 1 <= args.frames <= 10:
        raise UsageError("face enrol: --frames must be between 1 and 10")
    roster_path, faces, key = _paths(args)
    with open_roster(roster_path) as roster:
        consenting_child(roster, args.child)  # refuse before loading models, the camera or a key
        if args.camera:
            from hardware.camera import open_camera  # noqa: PLC0415
            from terminal.config import load_config  # noqa: PLC0415

            camera = open_camera(load_config(args.config).camera)
            try:
                with open_templates(faces, key) as store:
                    pipeline = FacePipeline()
                    count = enrol_from_camera(store, roster, pipeline, args.child, camera, count=args.frames)
                    total = store.count(args.child)
            finally:
                camera.close()
        else:
            with open_templates(faces, key) as store:
                count = enrol(store, roster, FacePipeline(), args.child, args.photos)
                total = store.count(args.child)
    print(f"child {args.child}: {count} template(s) stored ({total} in all)")
    return 0


def run_forget(args: argparse.Namespace) -> int:
    """Delete a child's templates (a no-op, said so, if there are none)."""
    from terminal.face.templates import open_templates  # noqa: PLC0415

    _, faces, key = _paths(args)
    if not faces.exists():
        print(f"child {args.child}: no templates (no template database at {faces})")
        return 0
    with open_templates(faces, key, create=False) as store:
        removed = store.forget(args.child)
    print(f"child {args.child}: {removed} template(s) deleted")
    return 0
