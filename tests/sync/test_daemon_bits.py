"""systemd notification, configuration validation, heartbeat contents, CLI help texts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kgate.cli import build_parser
from kgate.errors import UsageError
from kgate.sdnotify import Notifier
from ledger.note import CosignatureSigner
from sync_agent.config import load_config
from sync_agent.heartbeat import HeartbeatSource


def test_notifier_sends_ready_and_watchdog(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        n = Notifier(path)
        assert n.ready() and n.watchdog()
        assert [sock.recv(100), sock.recv(100)] == [b"READY=1", b"WATCHDOG=1"]
    assert Notifier("").ready() is False  # not under systemd: a no-op


def test_config_from_toml_names_the_bad_key(tmp_path: Path) -> None:
    vkey = CosignatureSigner.generate("reg.test").verifier().vkey
    good = (
        'ledger = "/l.db"\nstate = "/s"\nregister = "https://r.example"\nkey = "/k"\n'
        f'register_vkey = "{vkey}"\n'
    )
    (tmp_path / "a.toml").write_text(good + "batch_size = 512\n")
    cfg = load_config(tmp_path / "a.toml", {"batch_size": None})
    assert cfg.batch_size == 512 and cfg.ledger == Path("/l.db")
    assert load_config(tmp_path / "a.toml", {"batch_size": 64}).batch_size == 64
    for extra, key in (
        ("batch_size = 8\n", "batch_size"),
        ("colour = 1\n", "colour"),
        ("read_timeout = -1\n", "read_timeout"),
    ):
        (tmp_path / "b.toml").write_text(good + extra)
        with pytest.raises(UsageError, match=f"^{key}:"):
            load_config(tmp_path / "b.toml", {})
    (tmp_path / "c.toml").write_text(good.replace(vkey, "nonsense"))
    with pytest.raises(UsageError, match=r"^register_vkey:"):
        load_config(tmp_path / "c.toml", {})


def test_heartbeat_reads_the_terminal_status(tmp_path: Path) -> None:
    status = tmp_path / "terminal-status.json"
    status.write_text(json.dumps({"roster_version": 7, "camera_ok": False}))
    hb = HeartbeatSource(tmp_path / "ledger.db", status, clock_synced=lambda: True)(3)
    assert hb["roster_version"] == 7 and hb["camera_ok"] is False and hb["pending"] == 3
    assert hb["free_disk_bytes"] > 0 and hb["clock_synced"] is True and hb["software_version"]
    status.write_text("{broken")
    hb = HeartbeatSource(tmp_path / "ledger.db", status, clock_synced=lambda: True)(0)
    assert hb["roster_version"] is None and hb["camera_ok"] is None


def test_every_sync_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    sync = sub.choices["sync"]  # type: ignore[index]
    inner = next(a for a in sync._actions if a.dest == "sync_command")
    for name, p in inner.choices.items():
        assert p.description or any(c.dest == name for c in inner._choices_actions), name
        for action in p._actions:
            assert action.help, f"sync {name} {action.dest} has no help"
