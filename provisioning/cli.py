"""``kgate provision`` and ``kgate decommission``: thin wrappers over :mod:`provisioning.provision`."""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

from kgate.errors import UsageError


def _ssh(args: argparse.Namespace) -> Any:
    from provisioning.ssh import Ssh  # noqa: PLC0415

    if args.known_hosts is not None and not args.known_hosts.is_file() and not args.accept_new:
        raise UsageError(f"--known-hosts {args.known_hosts}: no such file (or pass --accept-new)")
    return Ssh(args.host, port=args.port, identity=args.identity, known_hosts=args.known_hosts,
               accept_new=args.accept_new)  # fmt: skip


def cmd_provision(args: argparse.Namespace) -> int:
    from provisioning.provision import StepResult, provision, summary  # noqa: PLC0415

    def show(r: StepResult) -> None:
        print(f"{r.step:<9} {r.status:<12} {r.detail}", flush=True)

    from sync_agent.enrol_cli import read_token  # noqa: PLC0415

    token = read_token(args.token, args.token_file)
    results = provision(
        _ssh(args), register=args.register, token=token, dry_run=args.dry_run, wheel=args.wheel,
        camera=args.camera, ca=args.ca, gate=gate_options(args), on_step=show,
    )  # fmt: skip
    print(f"{args.host}: {summary(results)}")
    return 0


def _panel(text: str) -> list[int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT in pixels, e.g. 800x480")
    return [int(width), int(height)]


def _pin(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a BCM GPIO number (0-27)")
    return int(text)


def _relay_pin(text: str) -> int | None:
    if text.lower() == "none":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a BCM GPIO number (0-27) or none")
    return int(text)


def gate_options(args: argparse.Namespace) -> dict[str, Any]:
    """The gate's settings given on the command line (the rest take provisioning.device.GATE_DEFAULTS)."""
    from provisioning.device import GATE_DEFAULTS  # noqa: PLC0415

    return {key: getattr(args, key) for key in GATE_DEFAULTS if hasattr(args, key)}  # given: SUPPRESS


def _gate_args(p: argparse.ArgumentParser) -> None:
    """The gate's display, panel, language, pickup, face mode and feedback pins (Raspberry Pi defaults)."""
    from hardware.display import BACKENDS  # noqa: PLC0415
    from provisioning.device import GATE_DEFAULTS as D  # noqa: PLC0415
    from terminal.config import MODES, PICKUP_POLICIES  # noqa: PLC0415

    g = p.add_argument_group(
        "the gate (written to /etc/kgate/terminal.toml; docs/provisioning.md)",
        argument_default=argparse.SUPPRESS,
    )  # an option not given is no attribute
    g.add_argument("--display", choices=tuple(BACKENDS), help=f"screen backend (default {D['display']}: the "
                   "Pi's DSI/HDMI screen through /dev/fb0; null for a gate without a screen)")  # fmt: skip
    g.add_argument("--panel", type=_panel, metavar="WxH",
                   help="the panel in pixels (default 800x480, the official 7\" Touch Display)")  # fmt: skip
    g.add_argument(
        "--language", metavar="LANG", help=f"the gate's language: kk, ru or en (default {D['language']})"
    )
    g.add_argument("--pickup", choices=PICKUP_POLICIES,
                   help="guardian: a check-out needs a guardian's badge (default off)")  # fmt: skip
    g.add_argument("--face-mode", dest="face_mode", choices=MODES,
                   help="how children are identified (default qr; docs/faces.md)")  # fmt: skip
    g.add_argument("--no-feedback", dest="feedback", action="store_const", const=False,
                   help="no LEDs, buzzer, relay or buttons wired (no [feedback] table)")  # fmt: skip
    for pin, what in (("green_pin", "green LED"), ("red_pin", "red LED"), ("buzzer_pin", "buzzer"),
                      ("relay_pin", "door relay"), ("in_button_pin", "In button"),
                      ("out_button_pin", "Out button")):  # fmt: skip
        default = "none" if D[pin] is None else D[pin]
        g.add_argument("--" + pin.replace("_", "-"), dest=pin, metavar="GPIO",
                       type=_relay_pin if pin == "relay_pin" else _pin,
                       help=f"BCM pin of the {what} (default {default}; hardware/README.md)")  # fmt: skip


def cmd_decommission(args: argparse.Namespace) -> int:
    from provisioning.decommission import decommission  # noqa: PLC0415
    from provisioning.provision import StepResult, summary  # noqa: PLC0415

    def show(r: StepResult) -> None:
        print(f"{r.step:<10} {r.status:<12} {r.detail}", flush=True)

    results = decommission(
        _ssh(args), db=args.db, reason=args.reason, by=args.by, skip_sync=args.skip_sync,
        dry_run=args.dry_run, on_step=show,
    )  # fmt: skip
    print(f"{args.host}: {summary(results)}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    """Build what ``kgate provision`` copies, for the Ansible role (provisioning/ansible) to copy instead."""
    import shutil  # noqa: PLC0415

    from provisioning import bundle  # noqa: PLC0415

    arch, _, py = args.platform.partition("-")
    major, _, minor = py.partition(".")
    if not (arch and major.isdigit() and minor.isdigit()):
        raise UsageError(f"--platform {args.platform!r}: expected ARCH-X.Y, e.g. aarch64-3.11")
    dest: Path = args.dir
    if dest.exists():
        if not (dest / "device.py").is_file():
            raise UsageError(f"{dest} exists and is not a kgate bundle; give a new directory")
        shutil.rmtree(dest)  # a bundle of ours: rebuilt whole, never mixed with an older one
    digest = bundle.build(dest, bundle.DeviceFacts(arch, (int(major), int(minor))), wheel=args.wheel,
                          camera=args.camera)  # fmt: skip
    print(f"{dest}: wheelhouse {digest[:12]}")
    return 0


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("host", metavar="[USER@]HOST", help="the device (root, or a user with passwordless sudo)")
    p.add_argument("--port", type=int, help="SSH port (default 22)")
    p.add_argument("--identity", type=Path, metavar="FILE", help="SSH private key to log in with")
    p.add_argument("--known-hosts", type=Path, metavar="FILE", help="known_hosts file with the device's key")
    p.add_argument(
        "--accept-new",
        action="store_true",
        help="trust the host key on first contact (a changed key is refused)",
    )


def add_commands(subparsers: Any) -> None:
    """Add ``kgate provision`` and ``kgate decommission``."""
    p = subparsers.add_parser(
        "provision",
        help="turn a freshly flashed Raspberry Pi OS into an enrolled, running gate over SSH (idempotent)",
        description="Runs the provisioning steps ON the device (docs/provisioning.md); each step reports "
        "changed or unchanged, a second run changes nothing. The device key is made on the device.",
    )
    _connection_args(p)
    p.add_argument("--register", required=True, metavar="URL", help="the register's base URL (https)")
    from sync_agent.enrol_cli import TOKEN_FILE_HELP, TOKEN_HELP  # noqa: PLC0415

    token = p.add_mutually_exclusive_group()
    token.add_argument("--token", metavar="T", help="one-time enrolment token: " + TOKEN_HELP)
    token.add_argument("--token-file", type=Path, metavar="FILE", help=TOKEN_FILE_HELP)
    p.add_argument("--ca", type=Path, metavar="FILE", help="CA bundle for the register's TLS certificate")
    p.add_argument("--dry-run", action="store_true", help="change nothing; say what would change")
    p.add_argument(
        "--wheel", type=Path, metavar="FILE", help="install this kgate wheel (default: build one here)"
    )
    p.add_argument(
        "--camera", default="picamera2", metavar="BACKEND",
        help="picamera2 (default), opencv, or replay:IMAGE for a gate without a camera",
    )  # fmt: skip
    _gate_args(p)
    p.set_defaults(func=cmd_provision)

    d = subparsers.add_parser(
        "decommission",
        help="retire a gate over SSH: final sync, keys destroyed, units removed, revoked at the register",
        description="Stops the units, pushes what is pending (kgate sync once), overwrites and removes the "
        "device and face keys, removes the units and archives the state (ledger, identity) under "
        "/var/lib/kgate-decommissioned on the device. With --db the device is then revoked in the register's "
        "database; without it the exact operator command is printed. A second run changes nothing.",
    )
    _connection_args(d)
    d.add_argument("--db", metavar="URL", help="the register's database: revoke the device there")
    d.add_argument(
        "--reason", default="decommissioned", help="recorded with the revocation (default %(default)s)"
    )
    d.add_argument("--by", help="who revokes (default: the user running the command)")
    d.add_argument(
        "--skip-sync",
        action="store_true",
        help="do not push first (register unreachable; the ledger is archived)",
    )
    d.add_argument("--dry-run", action="store_true", help="change nothing; say what would change")
    d.set_defaults(func=cmd_decommission)

    b = subparsers.add_parser(
        "provision-bundle",
        help="build the bundle kgate provision copies (for the Ansible role in provisioning/ansible)",
        description="Writes the wheelhouse, unit files, snippets and provisioning/device.py into DIR; the "
        "Ansible role copies it to each gate and runs device.py exactly as kgate provision does.",
    )
    b.add_argument("dir", type=Path, metavar="DIR", help="where to build it (replaced if it is a bundle)")
    native = f"{platform.machine()}-{sys.version_info[0]}.{sys.version_info[1]}"
    b.add_argument(
        "--platform",
        default=native,
        metavar="ARCH-X.Y",
        help="the gates' CPU and Python (default %(default)s)",
    )
    b.add_argument("--wheel", type=Path, metavar="FILE", help="this kgate wheel (default: build one here)")
    b.add_argument("--camera", default="picamera2", metavar="BACKEND", help="as for kgate provision")
    b.set_defaults(func=cmd_bundle)
