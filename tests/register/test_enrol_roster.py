"""Enrolment hands a gate what it needs for rosters: a real register on loopback, both backends.

The register's answer names the kindergarten's roster repository and carries its root metadata;
``kgate enrol`` installs the root and configures ``kgate sync`` so that the first roster update installs
the published roster — or, before anything was published, fetches the root with the first roster.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from kgate.cli import main
from register.enrol import Enrolment
from terminal.badge import new_serial
from terminal.roster import open_roster
from tests.register.conftest import REGISTER, Server

K = "almaty-042"


def _doc(version: int) -> bytes:
    return json.dumps(
        {
            "version": version,
            "kindergarten": K,
            "children": [{"id": "c-1", "name": "Аружан", "group": "Күн", "consent_face": False}],
            "guardians": [{"id": "g-1", "name": "Дана", "children": ["c-1"]}],
            "badges": [{"serial": new_serial(), "child": "c-1"}],
        },
        ensure_ascii=False,
    ).encode()


def _publish(register_state: Path, version: int, tmp_path: Path) -> None:
    """``kgate register tuf publish --kindergarten K``: the operator's command, same id as the token's."""
    path = tmp_path / f"roster-{version}.json"
    path.write_bytes(_doc(version))
    argv = ["register", "tuf", "publish", "--kindergarten", K, "--state", str(register_state), str(path)]
    assert main(argv) == 0


def _roster_update(state: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``kgate sync roster-update`` with the sync.toml that enrolment wrote (plus the agent's paths)."""
    capsys.readouterr()
    argv = ["sync", "roster-update", "--config", str(state / "sync.toml"),
            "--ledger", str(state / "ledger.db"), "--state", str(state)]  # fmt: skip
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def _installed(state: Path) -> int | None:
    with open_roster(state / "roster.db") as roster:
        return roster.version


@pytest.fixture
def rostered(make_server: Callable[..., Server], tmp_path: Path) -> tuple[Server, Path]:
    """A register whose roster repositories live in its state directory, as `kgate register serve`."""
    register_state = tmp_path / "register"
    return make_server(rosters_dir=register_state / "rosters"), register_state


def test_enrolment_after_publish_installs_the_root_and_the_first_update_installs_the_roster(
    rostered: tuple[Server, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, register_state = rostered
    _publish(register_state, 3, tmp_path)
    token = Enrolment(server.store, REGISTER, server.cosigner.vkey).create_token(K, "north")
    state = tmp_path / "gate"
    assert main(["enrol", "--register", server.url, "--token", token, "--state", str(state)]) == 0
    assert f"roster trust root for {K!r} installed" in capsys.readouterr().out
    root = state / "roster-tuf" / "root.json"
    assert root.read_bytes() == (register_state / "rosters" / K / "metadata" / "root.json").read_bytes()
    config = tomllib.loads((state / "sync.toml").read_text())
    assert config["kindergarten"] == K
    assert config["roster_db"] == str((state / "roster.db").resolve())
    assert json.loads((state / "enrolment.json").read_text())["roster_repository"] == K

    code, out = _roster_update(state, capsys)
    assert code == 0, out
    assert "roster v3 installed" in out
    assert _installed(state) == 3
    _publish(register_state, 4, tmp_path)  # the root installed at enrolment keeps verifying updates
    assert _roster_update(state, capsys)[0] == 0
    assert _installed(state) == 4


def test_enrolment_before_any_roster_succeeds_and_the_agent_fetches_the_root_later(
    rostered: tuple[Server, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, register_state = rostered
    token = Enrolment(server.store, REGISTER, server.cosigner.vkey).create_token(K, "north")
    state = tmp_path / "gate"
    assert main(["enrol", "--register", server.url, "--token", token, "--state", str(state)]) == 0
    assert f"no roster published yet for {K!r}" in capsys.readouterr().out
    assert not (state / "roster-tuf" / "root.json").exists()
    assert tomllib.loads((state / "sync.toml").read_text())["kindergarten"] == K

    code, out = _roster_update(state, capsys)
    assert code == 75 and f"no roster published yet for {K!r}" in out
    assert not (state / "roster-tuf" / "root.json").exists()

    _publish(register_state, 1, tmp_path)
    code, out = _roster_update(state, capsys)
    assert code == 0, out
    assert _installed(state) == 1
    assert (state / "roster-tuf" / "root.json").is_file()


def test_a_kindergarten_that_cannot_name_a_repository_enrols_without_rosters(
    rostered: tuple[Server, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = rostered
    token = Enrolment(server.store, REGISTER, server.cosigner.vkey).create_token("Балбөбек", "north")
    state = tmp_path / "gate"
    assert main(["enrol", "--register", server.url, "--token", token, "--state", str(state)]) == 0
    assert "cannot name a roster repository" in capsys.readouterr().out
    config = tomllib.loads((state / "sync.toml").read_text())
    assert "kindergarten" not in config and "roster_db" not in config
