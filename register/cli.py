"""``kgate register …``: serve the register, pull device logs, manage its device registry, list alarms."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from register import tuf_cli
from register.errors import ConfigError

DEFAULT_DB = "register.db"


def _state_dir(args: argparse.Namespace) -> Path:
    if args.state:
        return Path(args.state)
    return Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or ".")


def _key_name(args: argparse.Namespace) -> str | None:
    """``--name``, else the host name when keys must be generated, else None (existing keys keep theirs)."""
    from register.keys import COSIGNER_FILE, REQUEST_FILE  # noqa: PLC0415

    if args.name:
        return str(args.name)
    state = _state_dir(args)
    if (state / COSIGNER_FILE).exists() and (state / REQUEST_FILE).exists():
        return None
    return platform.node() or None


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def cmd_serve(args: argparse.Namespace) -> int:
    from register.app import create_app  # noqa: PLC0415
    from register.keys import load_or_create_keys  # noqa: PLC0415
    from register.limits import Limits  # noqa: PLC0415
    from register.server import ServeSettings, default_authorities, parse_authority, serve  # noqa: PLC0415
    from register.service import Register  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    host, port = _listen(args.listen)
    try:
        settings = ServeSettings(max_connections=args.max_connections, header_timeout=args.header_timeout)
        limits = Limits(
            max_batch=args.max_batch, rate=args.rate, burst=args.burst, body_timeout=args.body_timeout
        )
        authorities = [parse_authority(a) for a in args.authority] if args.authority else None
        for proxy in args.trusted_proxy or ():
            try:
                ipaddress.ip_address(proxy)
            except ValueError:
                raise ValueError(f"--trusted-proxy {proxy[:60]!r}: expected an IP address") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist")
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    keys = load_or_create_keys(_state_dir(args), _key_name(args))
    store = open_store(args.db)
    try:
        register = Register(store, keys.cosigner, max_batch=args.max_batch)
        if authorities is None:
            authorities = default_authorities(host, port, keys.cosigner.name)
        app = create_app(register, limits=limits, authorities=authorities)
        app.state.rosters_dir = _state_dir(args) / "rosters"  # register/tuf_cli.py repos_dir
        if args.console:
            from register.console import mount_console  # noqa: PLC0415 - jinja2 only with --console

            mount_console(
                app, store, secure=args.tls_cert is not None, trusted_proxies=args.trusted_proxy or ()
            )
        logging.getLogger("kgate.register").info(
            "serving on %s:%d as %s, cosigner %s", host, port, " ".join(authorities), keys.cosigner.vkey
        )
        serve(app, host, port, settings, tls_cert=args.tls_cert, tls_key=args.tls_key)
    finally:
        store.close()
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Create the register database (a SQLite file, or the tables in an existing PostgreSQL database), or
    bring its schema up to date; the one command besides ``serve`` that may create it."""
    from register.store import open_store, sqlite_path  # noqa: PLC0415

    path = sqlite_path(args.db)
    new = path is not None and not path.exists()
    if path is not None and path.exists() and not path.is_file():
        raise ConfigError(f"--db {args.db!r}: {path} exists and is not a file")
    with open_store(args.db, create=True):
        pass
    print(f"register database {'created' if new else 'ready'} at {path if path is not None else args.db}")
    return 0


#: ``kgate register`` commands that may create a missing SQLite database; every other one refuses.
CREATING: frozenset[str] = frozenset({"serve", "init"})


def _existing_only(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from register.store import existing_only  # noqa: PLC0415

        with existing_only():
            result: int = func(args)
        return result

    return run


def _refuse_creating(parser: argparse.ArgumentParser) -> None:
    """Every command under ``parser`` runs with :func:`register.store.existing_only` (the one place)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if parser.prog.endswith(" register") and name in CREATING:
                    continue
                func = child.get_default("func")
                if func is not None:
                    child.set_defaults(func=_existing_only(func))
                _refuse_creating(child)


def cmd_device_add(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415
    from register.trust_cli import known_register_name  # noqa: PLC0415

    with open_store(args.db) as store:
        name = known_register_name(store, args)
        device = store.add_device(
            args.vkey,
            kindergarten=args.kindergarten,
            gate=args.gate,
            now_ms=int(time.time() * 1000),
            register_name=name,
        )
    print(f"enrolled {device.origin} ({device.keyid}) at {device.kindergarten} / {device.gate}")
    return 0


def cmd_device_list(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415

    now_ms = int(time.time() * 1000)
    with open_store(args.db, readonly=True) as store:
        devices = store.devices()
    if args.silent_for is not None:
        cutoff = now_ms - int(args.silent_for * 1000)
        devices = [d for d in devices if d.last_seen_ms is None or d.last_seen_ms < cutoff]
    if args.json:
        for d in devices:
            row: dict[str, Any] = d.as_json()
            row["silent_s"] = None if d.last_seen_ms is None else (now_ms - d.last_seen_ms) / 1000
            print(json.dumps(row, sort_keys=True))
        return 0
    for d in devices:  # the status in words (not only in --json's "disabled"): REVOKED or live
        seen = "never" if d.last_seen_ms is None else f"{(now_ms - d.last_seen_ms) / 1000:.0f}s ago"
        status = "REVOKED" if d.disabled else "live"
        print(f"{d.origin}\t{status}\t{d.kindergarten}\t{d.gate}\tsize={d.size}\tlast seen {seen}")
    return 0


def cmd_alarms(args: argparse.Namespace) -> int:
    from register.store import open_store  # noqa: PLC0415

    with open_store(args.db, readonly=True) as store:
        names = {d.id: d.origin for d in store.devices()}
        for a in store.alarms():
            row = {
                "id": a.id, "device": names.get(a.device_id or -1), "time_ms": a.time_ms, "kind": a.kind,
                "index": a.index, "detail": a.detail, "evidence_bytes": len(a.evidence or b""),
            }  # fmt: skip
            print(
                json.dumps(row, sort_keys=True)
                if args.json
                else f"{a.id}\t{row['device']}\t{a.kind}\t{a.detail}"
            )
    return 0


EXIT_RETRY = 75  # EX_TEMPFAIL: the device could not be reached; try again later
EXIT_INVALID = 3  # the pulled log does not verify, or the device refused our signature
EXIT_EQUIVOCATION = 4  # 409: the device's log contradicts what the register holds (alarm recorded)


def cmd_pull(args: argparse.Namespace) -> int:
    from ledger.errors import FetchError, FetchUnreachable  # noqa: PLC0415
    from register.errors import ApiError, Equivocation, StoreUnavailable  # noqa: PLC0415
    from register.keys import load_or_create_keys  # noqa: PLC0415
    from register.pull import pull_device  # noqa: PLC0415
    from register.service import Register  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415

    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.max_entries < 1:
        raise ConfigError("--max-entries must be positive")
    keys = load_or_create_keys(_state_dir(args), args.name)
    with open_store(args.db) as store:
        device = store.device_by_origin(args.device)
        if device is None:
            raise ConfigError(f"--device {args.device!r}: no enrolled device has this origin")
        register = Register(store, keys.cosigner, max_batch=args.max_entries)
        try:
            result = pull_device(
                register, device, args.url, keys.request, timeout=(args.timeout, args.timeout), ca=args.ca
            )
        except Equivocation as exc:
            print(f"kgate: register pull: EQUIVOCATION (alarm recorded): {exc}", file=sys.stderr)
            return EXIT_EQUIVOCATION
        except (FetchUnreachable, StoreUnavailable) as exc:
            print(f"kgate: register pull: will retry later: {exc}", file=sys.stderr)
            return EXIT_RETRY
        except (FetchError, ApiError) as exc:
            print(f"kgate: register pull: refused: {exc}", file=sys.stderr)
            return EXIT_INVALID
    if args.json:
        print(json.dumps(result.__dict__, sort_keys=True))
    else:
        print(
            f"{result.origin}: fetched {result.fetched} entries from {result.start}; "
            f"the register holds {result.size}, cosigned"
        )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from register.keys import load_or_create_keys  # noqa: PLC0415

    keys = load_or_create_keys(_state_dir(args), _key_name(args))
    from register.tuf_cli import keys_dir  # noqa: PLC0415
    from register.tuf_repo import key_roles  # noqa: PLC0415

    roster_keys = key_roles(keys_dir(_state_dir(args)))
    row: dict[str, Any] = {"cosigner_vkey": keys.cosigner.vkey, "request_vkey": keys.request.vkey}
    row["roster_keys"] = roster_keys
    if args.json:
        print(json.dumps(row, sort_keys=True))
    else:
        print(f"cosigner {row['cosigner_vkey']}\nrequest  {row['request_vkey']}")
        for key in roster_keys:  # TUF roster signing: root/targets keep offline, online signs daily
            state = key["keyid"] or "not generated yet"
            print(f"roster   {'+'.join(key['roles'])}: {key['file']} ({state})")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def add_commands(subparsers: Any) -> None:
    """Add ``kgate register …`` to the top-level parser."""
    reg = subparsers.add_parser("register", help="the central register: serve, devices, alarms")
    sub = reg.add_subparsers(dest="register_command", metavar="COMMAND", required=True)
    db_help = "database: a path or sqlite:///PATH (SQLite), or postgresql://... (default %(default)s)"

    serve = sub.add_parser("serve", help="serve the register API (push, state, heartbeat) over HTTP")
    serve.add_argument("--db", default=DEFAULT_DB, help=db_help)
    serve.add_argument(
        "--listen", default="127.0.0.1:8470", help="HOST:PORT to listen on (default %(default)s)"
    )
    serve.add_argument("--state", help="directory of the register keys (default $STATE_DIRECTORY or .)")
    serve.add_argument("--name", help="key name for new keys: the register host (default: host name)")
    serve.add_argument("--max-batch", type=int, default=4096, help="entries per push (%(default)s)")
    serve.add_argument(
        "--rate", type=_positive, default=10.0, help="requests/s per device (default %(default)s)"
    )
    serve.add_argument("--burst", type=int, default=40, help="request burst per device (%(default)s)")
    serve.add_argument(
        "--authority",
        action="append",
        metavar="HOST[:PORT]",
        help="the host[:port] devices sign for, as in their register URL (repeatable; default: the "
        "--listen address, its loopback aliases, and the register name)",
    )
    serve.add_argument(
        "--body-timeout", type=_positive, default=10.0, help="seconds to receive a body (%(default)s)"
    )
    serve.add_argument(
        "--header-timeout",
        type=_positive,
        default=10.0,
        help="seconds to send a request head (%(default)s)",
    )
    serve.add_argument(
        "--max-connections", type=int, default=256, help="open connections; beyond: 503 (%(default)s)"
    )
    serve.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    serve.add_argument(
        "--console", action="store_true", help="also serve the web console under /console (docs/console.md)"
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDR",
        help="IP address of a reverse proxy whose X-Forwarded-For names the console's client (repeatable; "
        "default: none, the socket's peer is the client)",
    )
    serve.set_defaults(func=cmd_serve)

    pull = sub.add_parser(
        "pull",
        help="fetch a device's log from its tlog-tiles server (kgate sync serve) and ingest it like a push",
        description="Exit 0 ingested, 3 does not verify or refused, 4 equivocation (alarm), 75 retry later.",
    )
    pull.add_argument("url", metavar="URL", help="the device log's base URL (its --prefix included)")
    pull.add_argument("--device", required=True, metavar="ORIGIN", help="the enrolled device's log origin")
    pull.add_argument("--db", default=DEFAULT_DB, help=db_help)
    pull.add_argument("--state", help="directory of the register keys (default $STATE_DIRECTORY or .)")
    pull.add_argument("--name", help="key name if the keys must be generated (the register host)")
    pull.add_argument("--ca", type=Path, help="CA bundle to verify the device's TLS certificate")
    pull.add_argument(
        "--timeout", type=_positive, default=30.0, help="seconds per request (default %(default)s)"
    )
    pull.add_argument(
        "--max-entries", type=int, default=1 << 20, help="most new entries one pull ingests (%(default)s)"
    )
    pull.add_argument("--json", action="store_true", help="print the result as JSON")
    pull.set_defaults(func=cmd_pull)

    keys = sub.add_parser(
        "keys",
        help="print the register's cosigner and request vkeys (generating them) and roster TUF key roles",
    )
    keys.add_argument("--state", help="directory of the register keys (default $STATE_DIRECTORY or .)")
    keys.add_argument("--name", help="key name for new keys: the register host (default: host name)")
    keys.add_argument("--json", action="store_true", help='print {"cosigner_vkey", "request_vkey"}')
    keys.set_defaults(func=cmd_keys)

    tuf_cli.add_commands(sub)
    from register.notify import cli as notify_cli  # noqa: PLC0415

    notify_cli.add_commands(sub)
    device = sub.add_parser("device", help="the registry of device keys")
    dsub = device.add_subparsers(dest="device_command", metavar="COMMAND", required=True)
    add = dsub.add_parser("add", help="enrol a device by its verifier key (kgate ledger vkey)")
    add.add_argument("vkey", metavar="VKEY", help="the device's note verifier key name+hash+base64")
    add.add_argument("--kindergarten", required=True, help="kindergarten id or name")
    add.add_argument("--gate", required=True, help="gate name within the kindergarten")
    add.add_argument("--db", default=DEFAULT_DB, help=db_help)
    add.add_argument("--state", help="directory of the register keys (default $STATE_DIRECTORY or .)")
    add.add_argument("--name", help="the register's name (origin prefix), when no register ran on --db")
    add.set_defaults(func=cmd_device_add)
    lst = dsub.add_parser(
        "list", help="list devices, each marked live or REVOKED (optionally only those silent for a while)"
    )
    lst.add_argument("--db", default=DEFAULT_DB, help=db_help)
    lst.add_argument(
        "--silent-for", type=_positive, metavar="SECONDS", help="only devices not heard from for this long"
    )
    lst.add_argument("--json", action="store_true", help="one JSON object per line")
    lst.set_defaults(func=cmd_device_list)

    alarms = sub.add_parser("alarms", help="list alarms (equivocation evidence)")
    alarms.add_argument("--db", default=DEFAULT_DB, help=db_help)
    alarms.add_argument("--json", action="store_true", help="one JSON object per line")
    alarms.set_defaults(func=cmd_alarms)

    from register import console_cli, trust_cli  # noqa: PLC0415

    trust_cli.add_commands(sub, dsub)
    console_cli.add_commands(sub)
    from register.tabel import cli as tabel_cli  # noqa: PLC0415

    tabel_cli.add_commands(sub)

    init = sub.add_parser(
        "init",
        help="create the register database (or bring its schema up to date); only it and serve create one",
    )
    init.add_argument("--db", default=DEFAULT_DB, help=db_help)
    init.set_defaults(func=cmd_init)
    _refuse_creating(reg)
