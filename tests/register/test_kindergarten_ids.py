"""Kindergarten ids and scopes the register does not know are refused with "did you mean" (one helper,
``register.kindergartens.check_kindergarten`` / ``check_district``, called from the CLI), on SQLite and
PostgreSQL; a register that knows no kindergarten yet refuses nothing."""

from __future__ import annotations

import io

import pytest

from kgate.cli import main
from register.errors import ConfigError
from register.kindergartens import check_kindergarten, known, set_district
from register.roster_csv import parse_csv
from register.store import open_store
from register.store.roster import import_roster
from tests.register.tabel_terminal import roster_csv

PASSWORD = "correct horse battery"


@pytest.fixture
def url(db_url: str) -> str:
    """Two kindergartens with rosters, one of them in a district."""
    with open_store(db_url) as store:
        for k in ("almaty-042", "almaty-017"):
            import_roster(store, k, parse_csv(roster_csv(["c-001", "c-002"])), now_ms=0)
        set_district(store, "almaty-042", "Almaly")
    return db_url


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kgate: error: ")
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["tabel", "--month", "2025-03"],
        ["anomalies", "--month", "2025-03"],
        ["month", "submit", "--month", "2025-03", "--by", "director"],
        ["calendar", "set", "--tz", "Asia/Almaty"],
        ["absence", "add", "--child", "c-001", "--date", "2025-03-03", "--reason", "child_ill"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_unknown_kindergarten_is_refused_with_did_you_mean(
    url: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["register", *argv, "--db", url, "--kindergarten", "almaty-43"]) == 2
    err = _one_line(capsys)
    assert "--kindergarten 'almaty-43': no kindergarten of that id in the register" in err
    assert "did you mean 'almaty-042'" in err
    with open_store(url) as store:  # nothing was written for the mistyped id
        assert known(store) == ["almaty-017", "almaty-042"]
        with store._tx(write=False) as sql:
            assert sql.one("SELECT count(*) FROM tabel_absences")[0] == 0
            assert sql.one("SELECT count(*) FROM tabel_approvals")[0] == 0


def test_no_close_id_lists_the_known_ones_and_a_known_id_passes(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["register", "month", "status", "--db", url, "--kindergarten", "zzz", "--month", "2025-03"]) == 2
    )
    assert "the register knows 'almaty-017', 'almaty-042'" in _one_line(capsys)
    assert (
        main(
            ["register", "month", "status", "--db", url, "--kindergarten", "almaty-017", "--month", "2025-03"]
        )
        == 0
    )


def test_a_user_scope_is_checked_for_directors_and_district_officials(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def add(name: str, role: str, scope: str) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        return main(["register", "user", "add", name, "--role", role, "--scope", scope, "--db", url])

    assert add("aigul", "director", "almaty-43") == 2
    err = _one_line(capsys)
    assert "--scope 'almaty-43'" in err and "did you mean 'almaty-042'" in err
    assert add("dina", "district", "Almali") == 2
    assert "--scope 'Almali': no district of that id in the register" in _one_line(capsys)
    assert add("aigul", "director", "almaty-042") == 0 and add("dina", "district", "Almaly") == 0
    assert main(["register", "user", "list", "--db", url]) == 0
    listed = capsys.readouterr().out
    assert "aigul\tdirector\talmaty-042" in listed and "dina\tdistrict\tAlmaly" in listed


def test_a_register_that_knows_no_kindergarten_refuses_none(db_url: str) -> None:
    with open_store(db_url) as store:
        assert known(store) == [] and check_kindergarten(store, "almaty-43") == "almaty-43"
        import_roster(store, "almaty-042", parse_csv(roster_csv(["c-001"])), now_ms=0)
        assert check_kindergarten(store, "almaty-042") == "almaty-042"
        with pytest.raises(ConfigError, match="did you mean 'almaty-042'"):
            check_kindergarten(store, "almaty-42")
