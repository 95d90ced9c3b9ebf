"""Commands that need a register database refuse to create one: only ``register init`` and ``register
serve`` create a missing SQLite file; every other ``kgate register`` command says in one line that there
is none (exit 2) and leaves nothing behind. A PostgreSQL database is the operator's to create (its
tables are created on first use, as before)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kgate.cli import build_parser, main
from register import cli as register_cli
from register.store import sqlite_path

NEEDING = [
    ["tabel", "--kindergarten", "K1", "--month", "2025-03"],
    ["tabel", "--kindergarten", "K1", "--month", "2025-03", "--format", "xlsx", "--out", "t.xlsx"],
    ["anomalies", "--kindergarten", "K1", "--month", "2025-03"],
    ["month", "status", "--kindergarten", "K1", "--month", "2025-03"],
    ["month", "approve", "--kindergarten", "K1", "--month", "2025-03", "--reason", "x"],
    ["flags", "list", "--kindergarten", "K1", "--month", "2025-03"],
    ["calendar", "set", "--kindergarten", "K1", "--tz", "Asia/Almaty"],
    ["alarms"],
    ["device", "list"],
    ["roster", "show", "--kindergarten", "K1"],
    ["token", "create", "--kindergarten", "K1", "--gate", "north", "--name", "reg.test"],
]


@pytest.mark.parametrize("argv", NEEDING, ids=lambda a: " ".join(a[:2]))
def test_a_command_without_a_database_says_so_and_creates_none(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no --db: the default register.db here
    assert main(["register", *argv]) == 2
    err = capsys.readouterr().err
    line = (
        "kgate: error: no register database at register.db (kgate register init --db register.db creates one)"
    )
    assert err == line + "\n"
    assert list(tmp_path.iterdir()) == []  # no empty register.db, no output file


def test_init_creates_it_and_then_the_commands_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["register", "init"]) == 0
    assert capsys.readouterr().out == "register database created at register.db\n"
    assert main(["register", "init"]) == 0  # again: nothing lost, the schema checked
    assert capsys.readouterr().out == "register database ready at register.db\n"
    assert main(["register", "alarms"]) == 0
    assert main(["register", "tabel", "--kindergarten", "K1", "--month", "2025-03"]) == 2
    assert "no roster and no entries for 'K1'" in capsys.readouterr().err  # the database is there now
    (tmp_path / "dir.db").mkdir()
    assert main(["register", "init", "--db", "dir.db"]) == 2
    assert "exists and is not a file" in capsys.readouterr().err


def test_only_init_and_serve_may_create_it() -> None:
    """Walk the whole ``kgate register`` tree: every command runs under existing_only but these two."""
    (register,) = [
        p
        for a in build_parser()._actions
        if isinstance(a, argparse._SubParsersAction)
        for n, p in a.choices.items()
        if n == "register"
    ]
    creating: list[str] = []
    seen = 0

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        nonlocal seen
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    func = child.get_default("func")
                    if func is not None:
                        seen += 1
                        if func.__name__ != "run":  # not wrapped by register.cli._existing_only
                            creating.append(f"{path} {name}".strip())
                    walk(child, f"{path} {name}")

    walk(register, "")
    assert sorted(creating) == ["init", "serve"] and seen > 30
    assert register.prog.endswith(" register") and set(register_cli.CREATING) == {"init", "serve"}


def test_postgresql_databases_are_the_operators_and_get_their_tables(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing (empty) PostgreSQL database is used, never created; a missing SQLite file is refused."""
    code = main(["register", "month", "status", "--kindergarten", "K1", "--month", "2025-03", "--db", db_url])
    if sqlite_path(db_url) is None:
        assert code == 0
        assert main(["register", "alarms", "--db", db_url]) == 0  # the tables are there now
    else:
        assert code == 2 and "no register database at" in capsys.readouterr().err
        assert not Path(str(sqlite_path(db_url))).exists()
