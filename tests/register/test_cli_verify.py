"""``kgate register device add/list`` and ``verify_register`` on both backends."""

from __future__ import annotations

import json

import pytest

from kgate.cli import main
from ledger.errors import VerificationError
from register.store import open_store
from register.verify import verify_register
from tests.register.conftest import Device, Server


def test_device_add_and_list(db_url: str, device: Device, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["register", "init", "--db", db_url]) == 0  # only init and serve create a database
    assert main(["register", "device", "add", device.ledger.vkey, "--kindergarten", "K7", "--gate", "east",
                 "--db", db_url]) == 2  # fmt: skip
    assert "--name" in capsys.readouterr().err  # the origin prefix must be known
    assert main(["register", "device", "add", device.ledger.vkey, "--kindergarten", "K7", "--gate", "east",
                 "--db", db_url, "--name", "reg.test"]) == 0  # fmt: skip
    assert "enrolled reg.test/kgate/dev1" in capsys.readouterr().out
    assert main(["register", "device", "add", device.ledger.vkey, "--kindergarten", "K7", "--gate", "east",
                 "--db", db_url, "--name", "reg.test"]) == 2  # fmt: skip
    assert "already" in capsys.readouterr().err
    assert (
        main(
            [
                "register",
                "device",
                "add",
                "not-a-key",
                "--kindergarten",
                "K",
                "--gate",
                "g",
                "--db",
                db_url,
                "--name",
                "reg.test",
            ]
        )
        == 2
    )
    assert "VKEY" in capsys.readouterr().err
    assert main(["register", "device", "list", "--db", db_url, "--json", "--silent-for", "60"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["origin"], r["kindergarten"], r["gate"], r["silent_s"]) for r in rows] == [
        ("reg.test/kgate/dev1", "K7", "east", None)
    ]
    with open_store(db_url) as store:
        dev = store.device_by_origin("reg.test/kgate/dev1")
        assert dev is not None
        store.touch(dev.id, 2**41, {"camera_ok": True})  # heard from (far in the future): not silent
    assert main(["register", "device", "list", "--db", db_url, "--json", "--silent-for", "60"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["register", "device", "list", "--db", db_url]) == 0
    assert "K7\teast" in capsys.readouterr().out


def test_register_commands_have_help() -> None:
    import argparse

    from kgate.cli import build_parser

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                for sub, subparser in action.choices.items():
                    if name.startswith("kgate register") or sub == "register":
                        assert helps.get(sub), f"{name} {sub} has no help text"
                    walk(subparser, f"{name} {sub}")

    walk(build_parser(), "kgate")


def test_verify_register_accepts_then_names_a_changed_entry(server: Server, enrolled: Device) -> None:
    enrolled.append(40)
    for start, end in ((0, 16), (16, 32), (32, 40)):
        assert server.push(enrolled.signer, enrolled.body(start, end)).status_code == 200
    url = _url(server)
    report = verify_register(url)
    assert report.entries == 40 and report.devices[0].checkpoints == 3
    assert report.cosigner_vkey == server.cosigner.vkey
    dev = server.store.device_by_origin(enrolled.ledger.origin)
    assert dev is not None
    good = enrolled.ledger.entries(21, 22)[0]
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with server.store._tx(write=True) as sql:
        sql.run("UPDATE entries SET data = ? WHERE device_id = ? AND idx = ?", (bad, dev.id, 21))
    with pytest.raises(VerificationError, match=r"reg.test/kgate/dev1: entry 21") as info:
        verify_register(url)
    assert info.value.index == 21


def test_verify_register_checks_cosignatures(server: Server, enrolled: Device) -> None:
    enrolled.append(16)
    assert server.push(enrolled.signer, enrolled.body(0, 16)).status_code == 200
    from ledger.note import CosignatureSigner

    other = CosignatureSigner.generate("reg.test")
    with pytest.raises(VerificationError, match="checkpoint of size 16"):
        verify_register(_url(server), cosigner_vkey=other.vkey)


def _url(server: Server) -> str:
    from register.store.sqlite import SqliteStore

    store = server.store
    if isinstance(store, SqliteStore):
        return str(store.path)
    return str(store._url)  # type: ignore[attr-defined]
