"""``kgate sync once|run|status|serve|clear-alarm``: thin wrappers over the sync agent's library."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from kgate.errors import UsageError
from kgate.sdnotify import Notifier
from kgate.urls import is_loopback
from ledger.errors import BadKeyError, LedgerError
from ledger.keys import load_key
from ledger.note import Ed25519Verifier
from ledger.store import open_reader
from sync_agent.agent import Backoff, SyncAgent, run_forever
from sync_agent.client import RegisterClient
from sync_agent.config import load_config
from sync_agent.errors import RetryableError
from sync_agent.heartbeat import STATUS_FILE, HeartbeatSource
from sync_agent.pull import PullServer, PullService
from sync_agent.state import SyncState


def add_commands(subparsers: Any) -> None:
    """Register ``kgate sync ...``."""
    sync = subparsers.add_parser("sync", help="deliver the device log to the register; serve it for pulling")
    sub = sync.add_subparsers(dest="sync_command", metavar="SYNC_COMMAND", required=True)

    once = sub.add_parser("once", help="push everything pending now, then exit (0 ok, 75 retry later)")
    _push_flags(once)
    once.add_argument("--json", action="store_true", help="print the round's result as JSON")
    once.set_defaults(func=cmd_once)

    run = sub.add_parser("run", help="daemon: push in a loop (systemd Type=notify, watchdog)")
    _push_flags(run)
    run.add_argument("--poll-interval", type=float, help="seconds between rounds when idle (default 30)")
    run.add_argument(
        "--push-interval", type=float, help="seconds between rounds while entries flow (default 2)"
    )
    run.set_defaults(func=cmd_run)

    roster = sub.add_parser("roster-update", help="fetch, verify (TUF) and install the newest roster now")
    _push_flags(roster)
    roster.add_argument("--root", type=Path, help="install this trusted root.json first (at enrolment)")
    roster.set_defaults(func=cmd_roster_update)

    status = sub.add_parser("status", help="sizes, pending entries and the last error, from the state dir")
    status.add_argument("--state", type=Path, required=True, help="the agent's state directory")
    status.add_argument("--ledger", type=Path, help="ledger to read the size from (default: as last synced)")
    status.add_argument("--json", action="store_true", help='print {"size", "cosigned_size", "pending", ...}')
    status.set_defaults(func=cmd_status)

    serve = sub.add_parser("serve", help="serve the log read-only as c2sp.org/tlog-tiles to the register")
    serve.add_argument("--ledger", type=Path, required=True, help="the device ledger (read-only)")
    serve.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    serve.add_argument(
        "--register-request-vkey",
        action="append",
        required=True,
        help="the register's Ed25519 request-signing vkey (repeat for key rotation)",
    )
    serve.add_argument("--prefix", default="", help="URL path prefix of the log (default: none)")
    serve.add_argument("--tls-cert", type=Path, help="TLS certificate chain (required off loopback)")
    serve.add_argument("--tls-key", type=Path, help="TLS private key")
    serve.set_defaults(func=cmd_serve)

    clear = sub.add_parser("clear-alarm", help="resume pushing after a fatal error was investigated")
    clear.add_argument("--state", type=Path, required=True, help="the agent's state directory")
    clear.set_defaults(func=cmd_clear_alarm)


def _push_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML file with the keys below (flags override it)")
    p.add_argument("--ledger", type=Path, help="the device ledger (read-only)")
    p.add_argument("--state", type=Path, help="the agent's state directory (default $STATE_DIRECTORY)")
    p.add_argument("--register", help="the register's base URL (https://...)")
    p.add_argument("--key", type=Path, help="the device key file (0600), signs every request")
    p.add_argument("--register-vkey", help="the register's cosigner vkey (pinned)")
    p.add_argument("--ca", type=Path, help="CA bundle to verify the register's TLS certificate")
    p.add_argument("--terminal-status", type=Path, help="the terminal's status JSON (roster, camera)")
    p.add_argument("--batch-size", type=int, help="entries per push (16..65536, default 1024)")
    p.add_argument("--roster-db", type=Path, help="the terminal's roster database (enables roster updates)")
    p.add_argument("--kindergarten", help="this gate's kindergarten id (its roster repository)")


def _setup_logging(stream: TextIO | None = None) -> None:
    logging.basicConfig(
        stream=stream or sys.stdout,
        level=logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )


def _build(args: argparse.Namespace) -> tuple[SyncAgent, Any]:
    """Config → (agent, config); close the agent with :func:`_close`."""
    overrides = {k: getattr(args, k, None) for k in (
        "ledger", "state", "register", "key", "register_vkey", "ca", "terminal_status", "batch_size",
        "poll_interval", "push_interval", "roster_db", "kindergarten")}  # fmt: skip
    cfg = load_config(args.config, overrides)
    signer = load_key(cfg.key)
    reader = open_reader(cfg.ledger)
    if signer.vkey != reader.vkey:
        reader.close()
        raise UsageError(f"key: {cfg.key} is not the key of the ledger {cfg.ledger}")
    state = SyncState(cfg.state)
    client = RegisterClient(cfg.register, signer, ca=cfg.ca, timeout=(cfg.connect_timeout, cfg.read_timeout))
    status_file = cfg.terminal_status or cfg.state / STATUS_FILE
    agent = SyncAgent(
        reader,
        state,
        client,
        cfg.cosigner(),
        heartbeat=HeartbeatSource(cfg.ledger, status_file),
        batch_size=cfg.batch_size,
        heartbeat_interval=cfg.heartbeat_interval,
    )
    return agent, cfg


def _close(agent: SyncAgent) -> None:
    agent.client.close()
    agent.state.close()
    agent.reader.close()


def cmd_once(args: argparse.Namespace) -> int:

    _setup_logging(sys.stderr if args.json else None)  # --json: stdout carries only the JSON line
    agent, _ = _build(args)
    try:
        try:
            result = agent.sync_once()
        except RetryableError as exc:
            print(f"kgate: sync: will retry later: {exc}", file=sys.stderr)
            return 75  # EX_TEMPFAIL
        if args.json:
            print(json.dumps(result.__dict__))
        return 0
    finally:
        _close(agent)


def cmd_run(args: argparse.Namespace) -> int:

    _setup_logging()
    agent, cfg = _build(args)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    notifier = Notifier()
    agent.on_batch = notifier.watchdog
    if cfg.roster_db is not None and cfg.kindergarten is not None:
        threading.Thread(target=_roster_loop, args=(cfg, stop), daemon=True).start()
    try:
        return run_forever(
            agent,
            Backoff(cfg.backoff_base, cfg.backoff_cap),
            stop,
            poll_interval=cfg.poll_interval,
            push_interval=cfg.push_interval,
            notifier=notifier,
        )
    finally:
        _close(agent)


def _roster_update(cfg: Any) -> Any:
    from sync_agent.roster_update import update_from_config  # noqa: PLC0415

    return update_from_config(cfg)


def _roster_loop(cfg: Any, stop: threading.Event) -> None:
    """``kgate sync run``'s roster hook: check for a new roster every ``roster_interval`` seconds."""
    from sync_agent.errors import SyncError  # noqa: PLC0415

    while not stop.is_set():
        try:
            _roster_update(cfg)
        except SyncError as exc:  # logged and retried next interval; the installed roster stays
            logging.getLogger("kgate.sync").warning("roster update: %s", exc)
        stop.wait(cfg.roster_interval)


def cmd_roster_update(args: argparse.Namespace) -> int:
    from sync_agent.roster_update import RosterUnavailable, install_root  # noqa: PLC0415

    _setup_logging(sys.stderr)
    names = ("ledger", "state", "register", "key", "register_vkey", "ca", "roster_db", "kindergarten")
    overrides = {k: getattr(args, k, None) for k in names}
    cfg = load_config(args.config, overrides)
    if args.root is not None:
        try:
            install_root(cfg.state, args.root.read_bytes(), tuf_dir=cfg.roster_tuf)
        except OSError as exc:
            raise UsageError(f"cannot read root {args.root}: {exc.strerror}") from None
    try:
        result = _roster_update(cfg)
    except RosterUnavailable as exc:
        print(f"kgate: sync: will retry later: {exc}", file=sys.stderr)
        return 75
    state = "installed" if result.installed else "already installed"
    print(f"roster v{result.version} {state}, valid until {result.expires.isoformat()}")
    return 0


def status_dict(state_dir: Path, ledger: Path | None) -> dict[str, Any]:
    """What ``kgate sync status --json`` prints; ``size`` is None when the ledger cannot be read."""

    with SyncState(state_dir, readonly=True) as state:
        snap = state.read()
    path = ledger or (Path(snap.ledger_path) if snap.ledger_path else None)
    size: int | None = None
    if path is not None:
        try:
            with open_reader(path) as reader:
                size = reader.size
        except LedgerError:
            size = None
    cosigned = snap.cosigned_size or 0
    return {
        "size": size,
        "cosigned_size": cosigned,
        "pending": None if size is None else max(0, size - cosigned),
        "last_error": snap.last_error,
    }


def cmd_status(args: argparse.Namespace) -> int:

    st = status_dict(args.state, args.ledger)
    if args.json:
        print(json.dumps(st))
        return 0
    with SyncState(args.state, readonly=True) as state:
        snap = state.read()
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snap.last_success_time))
        if snap.last_success_time
        else "never"
    )
    line = (
        f"{snap.origin or '?'}: {st['size'] if st['size'] is not None else '?'} entries, "
        f"{st['cosigned_size']} cosigned, {st['pending'] if st['pending'] is not None else '?'} pending; "
        f"last success {when}"
    )
    if snap.halted:
        line += f"; HALTED: {snap.halted}"
    elif snap.last_error:
        line += f"; last error: {snap.last_error}"
    print(line)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    _setup_logging()
    host, sep, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not host:
        raise UsageError(f"--listen: expected HOST:PORT, got {args.listen!r}")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    if args.tls_cert is None and not is_loopback(host):
        raise UsageError("--listen: serving off loopback needs --tls-cert and --tls-key")
    try:
        keys = [Ed25519Verifier.from_vkey(v) for v in args.register_request_vkey]
    except BadKeyError as exc:
        raise UsageError(f"--register-request-vkey: {exc}") from None
    reader = open_reader(args.ledger)
    server = PullServer(
        PullService(reader, keys, prefix=args.prefix), host, int(port),
        tls_cert=args.tls_cert, tls_key=args.tls_key,
    )  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    server.start()
    logging.getLogger(__name__).info("serving %s on %s", reader.origin, server.server_address)
    notifier = Notifier()
    notifier.ready()
    try:
        while not stop.wait(5.0):
            notifier.watchdog()
    finally:
        server.stop()
        reader.close()
    return 0


def cmd_clear_alarm(args: argparse.Namespace) -> int:

    with SyncState(args.state) as state:
        state.clear_halt()
    print("pushing resumes at the next round")
    return 0
